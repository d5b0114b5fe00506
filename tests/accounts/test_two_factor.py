"""Two-factor sign-in (issue 32) with real TOTP codes: the test reads the key the page shows, as a
person types it into an authenticator app, and computes the codes from it (RFC 6238 through
django_otp.oath, which the portal's own verification does not call from here)."""

import base64
import re
import time

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.two_factor import two_factor_requirement_set
from billing.models import AuditEvent
from tests.factories import PASSWORD


def _code(secret: str, at: float | None = None) -> str:
    totp = TOTP(base64.b32decode(secret.replace(" ", "")))
    totp.time = at if at is not None else time.time()
    return f"{totp.token():06d}"


def _next_code(secret: str) -> str:
    """The code of the next 30-second step (accepted: one step of drift; a used step is not)."""
    return _code(secret, time.time() + 30)


def _enrol(client) -> tuple[str, list[str]]:
    """Set up an authenticator through the page; the secret and the recovery codes it showed."""
    assert client.post("/accounts/two-factor/", {"action": "start"}).status_code == 302
    page = client.get("/accounts/two-factor/").content.decode()
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', page).group(1)
    assert 'src="data:image/svg+xml' in page  # the QR code
    response = client.post("/accounts/two-factor/", {"action": "confirm", "token": _code(secret)})
    assert response.status_code == 200, response.content.decode()[:300]
    codes = re.search(r'data-testid="recovery-codes">([^<]+)<', response.content.decode()).group(1).split()
    return secret, codes


def _login(client, email, password=PASSWORD):
    return client.post("/accounts/login/", {"username": email, "password": password}, REMOTE_ADDR="203.0.113.20")


def _signed_in(client):
    return client.session.get("_auth_user_id")


@pytest.mark.django_db
def test_anyone_adds_an_authenticator_and_gets_recovery_codes(team):
    client = Client()
    client.force_login(team.member)
    assert "Off." in client.get("/accounts/two-factor/").content.decode()
    secret, codes = _enrol(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert TOTPDevice.objects.get(user=team.member).confirmed
    assert "On." in client.get("/accounts/two-factor/").content.decode()
    event = AuditEvent.objects.get(action="two_factor.enrol", workspace=team.workspace)
    assert event.actor == team.member and secret.replace(" ", "") not in str(event.detail)


@pytest.mark.django_db
def test_a_wrong_code_does_not_confirm_the_authenticator(team):
    client = Client()
    client.force_login(team.member)
    client.post("/accounts/two-factor/", {"action": "start"})
    page = client.get("/accounts/two-factor/").content.decode()
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', page).group(1)
    wrong = f"{(int(_code(secret)) + 1) % 1_000_000:06d}"
    response = client.post("/accounts/two-factor/", {"action": "confirm", "token": wrong})
    assert response.status_code == 400 and "not the one your authenticator app shows" in response.content.decode()
    assert not TOTPDevice.objects.get(user=team.member).confirmed


@pytest.mark.django_db
def test_signing_in_asks_for_the_code_after_the_password(team):
    enrolling = Client()
    enrolling.force_login(team.member)
    secret, codes = _enrol(enrolling)

    client = Client()
    response = _login(client, team.member.email)
    assert response.status_code == 302 and response["Location"] == "/accounts/two-factor/verify/"
    assert _signed_in(client) is None  # not signed in until the code
    assert client.get("/w/acme/settings/billing/").status_code == 302
    response = client.post("/accounts/two-factor/verify/", {"token": "000000" if _code(secret) != "000000" else "111111"})
    assert response.status_code == 400 and _signed_in(client) is None
    time.sleep(1.1)  # django-otp's delay after one wrong code
    response = client.post("/accounts/two-factor/verify/", {"token": _next_code(secret)})
    assert response.status_code == 302 and _signed_in(client) == str(team.member.pk)
    assert client.get("/w/acme/settings/billing/").status_code == 200


@pytest.mark.django_db
def test_a_recovery_code_signs_in_once(team):
    enrolling = Client()
    enrolling.force_login(team.member)
    _, codes = _enrol(enrolling)
    first = Client()
    _login(first, team.member.email)
    assert first.post("/accounts/two-factor/verify/", {"token": codes[0]}).status_code == 302
    assert _signed_in(first) == str(team.member.pk)
    again = Client()
    _login(again, team.member.email)
    assert again.post("/accounts/two-factor/verify/", {"token": codes[0]}).status_code == 400
    assert _signed_in(again) is None


@pytest.mark.django_db
def test_a_wrong_password_still_counts_toward_the_lockout_with_two_factor_on(team, settings):
    enrolling = Client()
    enrolling.force_login(team.member)
    _enrol(enrolling)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(Client(), team.member.email, "wrong")
    assert _login(Client(), team.member.email).status_code == 429


@pytest.mark.django_db
def test_a_workspace_requires_two_factor_of_its_owner_and_admins(team):
    owner = Client()
    owner.force_login(team.owner)
    # The owner cannot require it before having it (they would lock themselves out of this page).
    response = owner.post("/w/acme/settings/security/two-factor/", {"two_factor_required": "on"})
    assert response.status_code == 400 and "Set up your own authenticator app first" in response.content.decode()
    owner_secret, _ = _enrol(owner)
    assert owner.post("/w/acme/settings/security/two-factor/", {"two_factor_required": "on"}).status_code == 302
    team.workspace.refresh_from_db()
    assert team.workspace.two_factor_required
    event = AuditEvent.objects.get(workspace=team.workspace, action="two_factor.requirement_set")
    assert event.before == {"two_factor_required": False} and event.detail == {"two_factor_required": True}
    assert owner.get("/w/acme/settings/billing/").status_code == 200  # verified when enrolling

    # An admin without an authenticator is sent to enrol before any Billing page, then back.
    admin = Client()
    assert _login(admin, team.admin.email).status_code == 302
    response = admin.get("/w/acme/settings/billing/plans/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/two-factor/?next=%2Fw%2Facme%2Fsettings%2Fbilling%2Fplans%2F"
    assert "requires two-factor authentication" in admin.get(response["Location"]).content.decode()
    admin_secret, _ = _enrol(admin)
    assert admin.get("/w/acme/settings/billing/plans/").status_code == 200

    # Members are not asked.
    member = Client()
    _login(member, team.member.email)
    assert member.get("/w/acme/settings/billing/").status_code == 200

    # The owner's next sign-in needs the code before the workspace.
    again = Client()
    assert _login(again, team.owner.email)["Location"] == "/accounts/two-factor/verify/"
    assert again.get("/w/acme/settings/billing/").status_code == 302
    again.post("/accounts/two-factor/verify/", {"token": _next_code(owner_secret)})
    assert again.get("/w/acme/settings/billing/").status_code == 200


@pytest.mark.django_db
def test_a_session_without_its_code_is_asked_for_it(team):
    """An authenticator added in another browser: this older session proves a code before the pages."""
    admin = Client()
    _login(admin, team.admin.email)
    elsewhere = Client()
    elsewhere.force_login(team.admin)
    secret, _ = _enrol(elsewhere)
    two_factor_requirement_set(workspace=team.workspace, required=True, actor=None)
    response = admin.get("/w/acme/settings/billing/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/two-factor/")
    response = admin.post(response["Location"], {"action": "verify", "token": _next_code(secret)})
    assert response.status_code == 302 and response["Location"] == "/w/acme/settings/billing/"
    assert admin.get("/w/acme/settings/billing/").status_code == 200


@pytest.mark.django_db
def test_two_factor_is_removed_only_with_a_code_and_not_while_required(team):
    client = Client()
    client.force_login(team.owner)
    secret, codes = _enrol(client)
    assert client.post("/accounts/two-factor/", {"action": "remove", "token": "123"}).status_code == 400
    assert TOTPDevice.objects.filter(user=team.owner).exists()
    two_factor_requirement_set(workspace=team.workspace, required=True, actor=team.owner)
    response = client.post("/accounts/two-factor/", {"action": "remove", "token": codes[0]})
    assert response.status_code == 400 and "requires two-factor authentication" in response.content.decode()
    two_factor_requirement_set(workspace=team.workspace, required=False, actor=team.owner)
    assert client.post("/accounts/two-factor/", {"action": "remove", "token": codes[1]}).status_code == 302
    assert not TOTPDevice.objects.filter(user=team.owner).exists()
    assert AuditEvent.objects.filter(action="two_factor.remove", workspace=team.workspace).count() == 1
    assert _login(Client(), team.owner.email).status_code == 302  # a password alone again


@pytest.mark.django_db
def test_only_the_owner_changes_the_requirement(team):
    admin = Client()
    admin.force_login(team.admin)
    assert admin.post("/w/acme/settings/security/two-factor/", {"two_factor_required": "on"}).status_code == 403
    team.workspace.refresh_from_db()
    assert not team.workspace.two_factor_required
