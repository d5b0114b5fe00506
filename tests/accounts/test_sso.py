"""Single sign-on (issue 32) against a real OpenID provider process (tests/oidc_provider/,
django-oauth-toolkit on its own port): the authorization request, the code exchange and the ID
token's verification, each way a sign-in can fail, just-in-time members, "SSO required", and the
settings (Enterprise only, a domain per workspace, the secret encrypted)."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client

from accounts.models import SsoConnection
from accounts.sso import SsoError, sso_settings_set
from billing.models import AuditEvent, Membership, Plan, User
from billing.services import user_get_or_create
from budgets.workspaces import workspace_create
from tests.accounts.conftest import local_path
from tests.factories import PASSWORD, make_workspace


@pytest.fixture
def acme(db):
    return make_workspace(slug="acme", plan="enterprise")


def _configure(team, provider, *, required=False, default_role="member", domains=("acme.test",)):
    return sso_settings_set(workspace=team.workspace, actor=team.owner, issuer=provider.issuer,
                            client_id=provider.client_id, client_secret=provider.client_secret,
                            domains=list(domains), required=required, default_role=default_role)


def _start(client, email, method="get"):
    response = getattr(client, method)("/accounts/sso/", {"email": email})
    assert response.status_code == 302, response.content.decode()[:500]
    return response["Location"]


def _sso(client, provider, email):
    """The whole round trip: start, sign in at the provider, come back; the callback's response."""
    callback = provider.sign_in(_start(client, email), email)
    return client.get(local_path(callback))


def _signed_in(client) -> User | None:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id else None


def test_it_sends_the_browser_to_the_provider_with_the_code_flow_state_nonce_and_pkce(acme, provider, settings):
    _configure(acme, provider)
    for method in ("get", "post"):
        location = _start(Client(), "New@Acme.test", method)
        assert location.startswith(provider.issuer + "/authorize/")
        query = {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}
        assert query["response_type"] == "code"
        assert query["client_id"] == provider.client_id
        assert query["redirect_uri"] == settings.SITE_URL + "/accounts/sso/callback/"
        assert {"openid", "email"} <= set(query["scope"].split())
        assert len(query["state"]) >= 20 and len(query["nonce"]) >= 20
        assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43


def test_a_new_address_of_the_domain_arrives_with_the_default_role(acme, provider):
    _configure(acme, provider, default_role="admin")
    client = Client()
    response = _sso(client, provider, "new@acme.test")
    assert response.status_code == 302 and response["Location"] == "/w/acme/settings/billing/"
    user = _signed_in(client)
    assert user.email == "new@acme.test" and user.first_name == "Nora"
    assert not user.has_usable_password()
    assert Membership.objects.get(workspace=acme.workspace, user=user).role == "admin"
    event = AuditEvent.objects.get(workspace=acme.workspace, action="member.add", detail__email="new@acme.test")
    assert event.detail == {"email": "new@acme.test", "role": "admin", "via": "sso"}
    assert client.get("/w/acme/settings/billing/").status_code == 200


def test_an_existing_member_signs_in_as_themselves(acme, provider):
    _configure(acme, provider, default_role="admin")
    client = Client()
    assert _sso(client, provider, "member@acme.test").status_code == 302
    assert _signed_in(client) == acme.member
    assert acme.membership(acme.member).role == "member"  # the default role is for newcomers only
    assert Membership.objects.filter(workspace=acme.workspace).count() == 3


@pytest.mark.parametrize("mode, message", [
    ("forged", "signature could not be verified"),
    ("tampered", "signature could not be verified"),
    ("wrong_aud", "issued for another application"),
    ("expired", "has expired"),
    ("bad_nonce", "nonce differs"),
    ("foreign_email", "which is not an address of this workspace"),
])
def test_a_bad_id_token_signs_in_nobody(acme, provider, mode, message):
    _configure(acme, provider)
    provider.misbehave(mode)
    client = Client()
    response = _sso(client, provider, "new@acme.test")
    assert response.status_code in (400, 403)
    assert message in response.content.decode()
    assert "You are not signed in" in response.content.decode()
    assert _signed_in(client) is None
    assert not User.objects.filter(email__in=["new@acme.test", "ceo@acme.test", "someone@elsewhere.test"]).exists()


def test_an_address_the_provider_has_not_verified_signs_in_nobody(acme, provider):
    _configure(acme, provider)
    client = Client()
    response = _sso(client, provider, "unverified@acme.test")
    assert response.status_code == 400
    assert "has not verified this e-mail address" in response.content.decode()
    assert _signed_in(client) is None and not User.objects.filter(email="unverified@acme.test").exists()


def test_a_replayed_callback_signs_in_nobody(acme, provider):
    _configure(acme, provider)
    client = Client()
    callback = provider.sign_in(_start(client, "new@acme.test"), "new@acme.test")
    assert client.get(local_path(callback)).status_code == 302
    client.post("/accounts/logout/")
    assert _signed_in(client) is None
    replay = client.get(local_path(callback))
    assert replay.status_code == 400 and "already completed" in replay.content.decode()
    assert _signed_in(client) is None
    # Nor in another browser, which never started that sign-in.
    stranger = Client()
    assert stranger.get(local_path(callback)).status_code == 400 and _signed_in(stranger) is None


def test_a_callback_without_a_started_sign_in_or_with_a_provider_error_signs_in_nobody(acme, provider):
    _configure(acme, provider)
    client = Client()
    assert client.get("/accounts/sso/callback/?code=abc&state=made-up").status_code == 400
    location = _start(client, "new@acme.test")
    state = parse_qs(urlsplit(location).query)["state"][0]
    response = client.get("/accounts/sso/callback/", {"error": "access_denied", "state": state})
    assert response.status_code == 400 and "access_denied" in response.content.decode()
    assert _signed_in(client) is None


def test_an_address_no_workspace_claims_gets_a_form_error(acme, provider):
    _configure(acme, provider)
    response = Client().get("/accounts/sso/", {"email": "someone@nowhere.test"})
    assert response.status_code == 400
    assert "No workspace signs in addresses at nowhere.test" in response.content.decode()
    assert Client().get("/accounts/sso/").status_code == 200  # the form asking for the address
    assert Client().get("/accounts/sso/", {"email": "not an address"}).status_code == 400


def test_newcomers_join_within_the_plans_member_cap(acme, provider):
    _configure(acme, provider)
    Plan.objects.filter(pk="enterprise").update(max_members=3)  # owner, admin, member: full
    client = Client()
    response = _sso(client, provider, "new@acme.test")
    assert response.status_code == 403 and "Acme Inc is full" in response.content.decode()
    assert _signed_in(client) is None and not User.objects.filter(email="new@acme.test").exists()
    assert _sso(Client(), provider, "member@acme.test").status_code == 302  # members still sign in


def test_an_account_of_other_workspaces_joins_by_invitation_first(acme, provider):
    _configure(acme, provider)
    late = user_get_or_create(email="late@acme.test", password=PASSWORD)
    workspace_create(slug="late-personal", name="Late", owner=late, plan_id="free", kind="personal")
    client = Client()
    response = _sso(client, provider, "late@acme.test")
    assert response.status_code == 403 and "Ask an owner or admin of Acme Inc to invite it" in response.content.decode()
    assert _signed_in(client) is None
    assert not Membership.objects.filter(workspace=acme.workspace, user=late).exists()


def test_staff_never_sign_in_through_a_workspaces_provider(acme, provider):
    _configure(acme, provider)
    User.objects.filter(pk=acme.member.pk).update(is_staff=True)
    client = Client()
    assert _sso(client, provider, "member@acme.test").status_code == 403
    assert _signed_in(client) is None


# --- SSO required ----------------------------------------------------------------------------------

def _password_login(client, email, password=PASSWORD):
    return client.post("/accounts/login/", {"username": email, "password": password}, REMOTE_ADDR="203.0.113.9")


def test_sso_required_refuses_members_passwords_and_keeps_the_owners_break_glass(acme, provider):
    _configure(acme, provider, required=True)
    client = Client()
    response = _password_login(client, acme.member.email)
    assert response.status_code == 200
    body = response.content.decode()
    assert "signs in people at acme.test through single sign-on" in body and "/accounts/sso/?email=member%40acme.test" in body
    assert _signed_in(client) is None
    assert _password_login(client, acme.admin.email).status_code == 200 and _signed_in(client) is None
    # The owner's password still works, and the log says so.
    owner = Client()
    assert _password_login(owner, acme.owner.email).status_code == 302 and _signed_in(owner) == acme.owner
    event = AuditEvent.objects.get(workspace=acme.workspace, action="sso.break_glass_login")
    assert event.actor == acme.owner and event.detail["ip"] == "203.0.113.9"
    # Someone of the domain who is not a member of the workspace is not affected.
    user_get_or_create(email="late@acme.test", password=PASSWORD)
    assert _password_login(Client(), "late@acme.test").status_code == 302
    # A wrong password is the usual answer (nothing about SSO or membership without the password).
    assert "single sign-on" not in _password_login(Client(), acme.member.email, "wrong").content.decode()


def test_sso_required_refuses_password_resets_of_members(acme, provider):
    _configure(acme, provider, required=True)
    for email in (acme.member.email, acme.owner.email):
        assert Client().post("/accounts/password_reset/", {"email": email}).status_code == 302
    member_mail, owner_mail = (next(m for m in mail.outbox if m.to == [email])
                               for email in (acme.member.email, acme.owner.email))
    assert "no reset link is sent" in member_mail.body and "/accounts/reset/" not in member_mail.body
    assert "/accounts/sso/?email=member%40acme.test" in member_mail.body
    assert "/accounts/reset/" in owner_mail.body  # the owner's way in when the provider is down


def test_without_sso_required_passwords_keep_working(acme, provider):
    _configure(acme, provider, required=False)
    assert _password_login(Client(), acme.member.email).status_code == 302


# --- Settings ---------------------------------------------------------------------------------------

def test_sso_is_an_enterprise_feature(team, provider):
    with pytest.raises(SsoError, match="part of the Enterprise plan"):
        _configure(team, provider)
    client = Client()
    client.force_login(team.owner)
    page = client.get("/w/acme/settings/security/").content.decode()
    assert "Single sign-on is part of the <strong>Enterprise</strong> plan" in page
    response = client.post("/w/acme/settings/security/", {
        "enabled": "on", "issuer": provider.issuer, "client_id": "x", "client_secret": "y", "domains": "acme.test",
        "default_role": "member"})
    assert response.status_code == 400 and not SsoConnection.objects.exists()


def test_a_workspace_that_leaves_enterprise_stops_signing_in_and_refusing_passwords(acme, provider):
    _configure(acme, provider, required=True)
    acme.workspace.plan_id = "team"
    acme.workspace.save(update_fields=["plan"])
    assert Client().get("/accounts/sso/", {"email": "new@acme.test"}).status_code == 400
    assert _password_login(Client(), acme.member.email).status_code == 302


def test_a_domain_belongs_to_one_workspace(acme, provider):
    _configure(acme, provider)
    other = make_workspace(slug="rival", plan="enterprise")
    with pytest.raises(SsoError, match="acme.test already signs in through another workspace"):
        _configure(other, provider, domains=("rival.test", "acme.test"))
    assert not SsoConnection.objects.filter(workspace=other.workspace).exists()


def test_the_owner_saves_settings_the_secret_is_stored_encrypted_and_never_shown(acme, provider):
    client = Client()
    client.force_login(acme.owner)
    response = client.post("/w/acme/settings/security/", {
        "enabled": "on", "issuer": provider.issuer, "client_id": provider.client_id,
        "client_secret": provider.client_secret, "domains": "Acme.test, acme.example", "required": "on",
        "default_role": "admin"})
    assert response.status_code == 302
    connection = SsoConnection.objects.get(workspace=acme.workspace)
    assert connection.domain_names == ["acme.example", "acme.test"] and connection.required
    assert provider.client_secret not in connection.client_secret_encrypted
    page = client.get("/w/acme/settings/security/").content.decode()
    assert provider.client_secret not in page and "A client secret is stored" in page
    event = AuditEvent.objects.get(workspace=acme.workspace, action="sso.settings_set")
    assert event.actor == acme.owner and event.before == {}
    assert event.detail["domains"] == ["acme.example", "acme.test"] and event.detail["required"]
    assert event.detail["client_secret_changed"] is True and provider.client_secret not in str(event.detail)
    # Saved again without a secret: the stored one is kept (and still signs people in).
    response = client.post("/w/acme/settings/security/", {
        "enabled": "on", "issuer": provider.issuer, "client_id": provider.client_id, "client_secret": "",
        "domains": "acme.test", "default_role": "member"})
    assert response.status_code == 302
    last = AuditEvent.objects.filter(action="sso.settings_set").order_by("-id").first()
    assert last.before["required"] is True and last.detail["required"] is False
    assert last.detail["client_secret_changed"] is False
    assert _sso(Client(), provider, "new@acme.test").status_code == 302


def test_admins_see_the_security_page_and_only_the_owner_changes_it(acme, provider):
    _configure(acme, provider)
    admin = Client()
    admin.force_login(acme.admin)
    page = admin.get("/w/acme/settings/security/")
    assert page.status_code == 200 and "Only the workspace owner can change single sign-on" in page.content.decode()
    assert admin.post("/w/acme/settings/security/", {"issuer": "https://evil.example"}).status_code == 403
    member = Client()
    member.force_login(acme.member)
    assert member.get("/w/acme/settings/security/").status_code == 403


@pytest.mark.parametrize("issuer, refusal", [
    ("http://idp.example.com", "must be reached over https://"),
    ("https://user@idp.example.com", "not a usable identity provider address"),
])
def test_the_issuer_must_be_https(acme, issuer, refusal):
    with pytest.raises(SsoError, match=refusal):
        sso_settings_set(workspace=acme.workspace, actor=None, issuer=issuer, client_id="c", client_secret="s",
                         domains=["acme.test"], required=False)


def test_plain_http_to_loopback_is_for_development_and_tests_only(acme, provider, settings):
    _configure(acme, provider)
    settings.SSO_ALLOW_LOOPBACK = False
    response = Client().get("/accounts/sso/", {"email": "new@acme.test"})
    assert response.status_code == 400 and "must be reached over https://" in response.content.decode()


def test_an_issuer_at_an_internal_address_is_never_called(acme):
    # The test's socket guard would raise (a 500) if a connection to 10.0.0.1 were even tried.
    sso_settings_set(workspace=acme.workspace, actor=None, issuer="https://10.0.0.1/realms/acme", client_id="c",
                     client_secret="s", domains=["acme.test"], required=False)
    response = Client().get("/accounts/sso/", {"email": "new@acme.test"})
    assert response.status_code == 502 and "could not be reached" in response.content.decode()


def test_set_sso_command(acme, provider):
    call_command("set_sso", "acme", "--issuer", provider.issuer, "--client-id", provider.client_id,
                 "--client-secret", provider.client_secret, "--domains", "acme.test,acme.example", "--required",
                 "--default-role", "admin")
    connection = SsoConnection.objects.get(workspace=acme.workspace)
    assert (connection.enabled, connection.required, connection.default_role) == (True, True, "admin")
    assert connection.domain_names == ["acme.example", "acme.test"]
    call_command("set_sso", "acme", "--off")
    connection.refresh_from_db()
    assert not connection.enabled and connection.domain_names == ["acme.example", "acme.test"]
    assert Client().get("/accounts/sso/", {"email": "new@acme.test"}).status_code == 400
    assert AuditEvent.objects.filter(workspace=acme.workspace, action="sso.settings_set", actor=None).count() == 2


def test_staff_set_sso_in_the_admin_under_the_same_rules(acme, team_plan_workspace, provider):
    staff = User.objects.create_user(email="staff@lenserfight.test", password=PASSWORD, is_staff=True,
                                     is_superuser=True)
    client = Client()
    client.force_login(staff)
    form = {"enabled": "on", "issuer": provider.issuer, "client_id": provider.client_id,
            "client_secret": provider.client_secret, "domains_text": "acme.test", "default_role": "member"}
    response = client.post("/admin/accounts/ssoconnection/add/", {**form, "workspace": team_plan_workspace.pk})
    assert response.status_code == 200 and "part of the Enterprise plan" in response.content.decode()
    assert not SsoConnection.objects.exists()
    response = client.post("/admin/accounts/ssoconnection/add/", {**form, "workspace": acme.workspace.pk})
    assert response.status_code == 302, response.content.decode()[:2000]
    connection = SsoConnection.objects.get(workspace=acme.workspace)
    assert AuditEvent.objects.get(action="sso.settings_set").actor == staff
    page = client.get(f"/admin/accounts/ssoconnection/{connection.pk}/change/").content.decode()
    assert provider.client_secret not in page and "acme.test" in page
    assert _sso(Client(), provider, "new@acme.test").status_code == 302


@pytest.fixture
def team_plan_workspace(db):
    return make_workspace(slug="teamco", plan="team").workspace


def test_a_person_with_an_authenticator_enters_a_code_after_sso(acme, provider):
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    _configure(acme, provider)
    device = TOTPDevice.objects.create(user=acme.member, name="phone", confirmed=True)
    client = Client()
    response = _sso(client, provider, "member@acme.test")
    assert response.status_code == 302 and response["Location"] == "/accounts/two-factor/verify/"
    assert _signed_in(client) is None
    totp = TOTP(device.bin_key)
    response = client.post("/accounts/two-factor/verify/", {"token": f"{totp.token():06d}"})
    assert response.status_code == 302 and response["Location"] == "/w/acme/settings/billing/"
    assert _signed_in(client) == acme.member


def test_the_discovery_document_is_read_once_for_a_burst_of_sign_ins(acme, provider):
    _configure(acme, provider)
    log = provider.data_dir / "provider.log"
    before = log.read_text().count("openid-configuration")
    for _ in range(3):
        _start(Client(), "new@acme.test")
    assert log.read_text().count("openid-configuration") == before + 1
