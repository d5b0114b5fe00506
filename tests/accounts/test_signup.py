"""Sign-up: switchable (404 when off), one personal Free workspace with its first credits, Django's
password validators, an existing address refused, attempts bounded per IP with a shared counter."""

import pytest
from django.urls import reverse

from billing.models import LedgerEntry, Membership, User, Workspace, credits

pytestmark = pytest.mark.django_db
URL = "/accounts/signup/"
GOOD = {"email": "Sam@Example.com", "name": "Sam Solo", "password1": "a-long-passphrase-42",
        "password2": "a-long-passphrase-42"}


@pytest.fixture
def signup_on(settings):
    settings.SIGNUP_ENABLED = True
    return settings


def test_sign_up_switched_off_is_404(client, settings):
    settings.SIGNUP_ENABLED = False
    assert client.get(URL).status_code == 404
    assert client.post(URL, GOOD).status_code == 404
    assert not User.objects.filter(email="sam@example.com").exists()
    assert "Create an account" not in client.get(reverse("login")).content.decode()


def test_it_creates_exactly_one_personal_workspace_with_its_free_credits(client, signup_on):
    assert "Create an account" in client.get(reverse("login")).content.decode()
    response = client.post(URL, GOOD)
    user = User.objects.get(email="sam@example.com")
    memberships = Membership.objects.filter(user=user)
    assert memberships.count() == 1
    workspace = memberships.get().workspace
    assert memberships.get().role == "owner"
    assert (workspace.kind, workspace.plan_id) == (Workspace.PERSONAL, "free")
    assert workspace.wallet.monthly == credits(50)
    assert LedgerEntry.objects.filter(workspace=workspace, kind="grant").count() == 1
    assert response.status_code == 302 and response.url == reverse("billing:overview", kwargs={"slug": workspace.slug})
    page = client.get(response.url)  # signed in, through Django's authentication
    assert page.status_code == 200 and "50" in page.content.decode()


def test_an_existing_address_and_weak_passwords_are_form_errors(client, signup_on, team):
    response = client.post(URL, {**GOOD, "email": team.member.email})
    assert response.status_code == 200 and "account with this address exists" in response.content.decode()
    response = client.post(URL, {**GOOD, "password1": "short", "password2": "short"})
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    response = client.post(URL, {**GOOD, "email": "not-an-address"})
    assert response.status_code == 200
    assert User.objects.count() == 3 and Workspace.objects.count() == 1


def test_two_people_with_the_same_local_part_get_different_workspaces(client, signup_on):
    client.post(URL, GOOD)
    client.logout()
    client.post(URL, {**GOOD, "email": "sam@elsewhere.com"})
    slugs = sorted(Workspace.objects.values_list("slug", flat=True))
    assert slugs == ["sam", "sam-2"]


@pytest.mark.needs_redis
def test_sign_up_attempts_are_bounded_per_ip(client, signup_on):
    signup_on.SIGNUP_ATTEMPTS_PER_HOUR = 3
    for n in range(3):
        assert client.post(URL, {**GOOD, "password2": "mismatch"}).status_code == 200
    response = client.post(URL, GOOD)
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert not User.objects.filter(email="sam@example.com").exists()
    # Another address is not affected.
    assert client.post(URL, GOOD, REMOTE_ADDR="10.0.0.9").status_code == 302


def test_a_signed_in_user_without_a_workspace_can_start_a_personal_one(client, signup_on, team):
    from billing.services import user_get_or_create

    lonely = user_get_or_create(email="lonely@example.com", password="pw-lonely-12345")
    client.login(email=lonely.email, password="pw-lonely-12345")
    page = client.get("/").content.decode()
    assert "No workspace yet" in page and "Create my personal workspace" in page
    response = client.post(URL)
    assert response.status_code == 302
    assert Membership.objects.filter(user=lonely, role="owner", workspace__kind="personal").count() == 1
    client.post(URL)  # a second POST does not make a second workspace
    assert Membership.objects.filter(user=lonely).count() == 1


@pytest.mark.parametrize("look_alike", ["admın@acme.test", "ADMİN@acme.test"])
def test_it_refuses_an_address_spelled_with_look_alike_letters(client, signup_on, team, look_alike):
    before = User.objects.count()
    response = client.post(URL, {**GOOD, "email": look_alike})
    assert response.status_code == 200
    assert "plain (ASCII) spelling" in response.content.decode()
    assert User.objects.count() == before


def test_it_finds_a_compatibility_spelling_taken(client, signup_on, team):
    """NFKC folds the long s (ſ) into a plain s, and case-folding the capitals: the same account."""
    for same in ("owner@acme.teſt", "OWNER@ACME.TEST"):
        response = client.post(URL, {**GOOD, "email": same})
        assert "An account with this address exists" in response.content.decode(), same
    assert User.objects.filter(email__startswith="owner@").count() == 1


def test_an_invitation_to_a_look_alike_address_is_refused(team):
    from billing.members import MembershipError, invitation_create

    with pytest.raises(MembershipError, match="plain"):
        invitation_create(workspace=team.workspace, email="admın@acme.test", role="member", actor=team.owner)
