"""Developer tokens: shown once, stored hashed, revoked at once; members manage only their own."""

import io
import re

import pytest
from django.core.management import call_command

from usage.models import DeveloperToken, hash_token
from usage.tokens import token_create

from tests.factories import PASSWORD

from .conftest import Api

URL = "/w/acme/settings/tokens/"


def login(client, user):
    assert client.login(email=user.email, password=PASSWORD)


@pytest.mark.django_db
def test_it_creates_a_token_shown_once(client, team):
    login(client, team.member)
    response = client.post(URL, {"name": "ci"})
    assert response.status_code == 302 and response.url == URL  # POST/redirect/GET: a reload creates nothing
    html = client.get(URL).content.decode()
    token = DeveloperToken.objects.get(name="ci")
    raw = re.search(r'data-testid="token-value">(lf_[^<]+)<', html).group(1)
    assert hash_token(raw) == token.token_hash and raw not in token.token_hash
    assert token.membership.user == team.member
    assert raw not in client.get(URL).content.decode()  # never shown again
    assert Api(raw).get("/v1/ping").status_code == 200
    assert DeveloperToken.objects.filter(membership__user=team.member).count() == 1


@pytest.mark.django_db
def test_a_new_token_is_not_shown_in_another_workspace(client, team):
    """The raw token waits in the session for one page view; it appears only on its own workspace's page."""
    from billing.services import member_add
    from tests.factories import make_workspace

    member_add(workspace=make_workspace(slug="beta").workspace, user=team.member, role="member")
    login(client, team.member)
    client.post(URL, {"name": "ci"})
    assert "token-value" not in client.get("/w/beta/settings/tokens/").content.decode()


@pytest.mark.django_db
def test_a_member_sees_and_revokes_only_their_own_tokens(client, team):
    mine = token_create(membership=team.membership(team.member), name="mine").token
    theirs = token_create(membership=team.membership(team.admin), name="admins").token
    login(client, team.member)
    html = client.get(URL).content.decode()
    assert "mine" in html and "admins" not in html
    assert client.post(f"{URL}{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert client.post(f"{URL}{mine.pk}/revoke/").status_code == 302
    mine.refresh_from_db()
    assert mine.revoked_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["owner", "admin"])
def test_owner_and_admin_see_and_revoke_every_token(persona, client, team):
    new = token_create(membership=team.membership(team.member), name="members")
    login(client, getattr(team, persona))
    html = client.get(URL).content.decode()
    assert "members" in html and team.member.email in html
    client.post(f"{URL}{new.token.pk}/revoke/")
    response = Api(new.raw).get("/v1/ping")
    assert response.status_code == 401


@pytest.mark.django_db
def test_it_shows_last_used(client, team):
    new = token_create(membership=team.membership(team.member), name="engine")
    login(client, team.member)
    assert "never" in client.get(URL).content.decode()
    Api(new.raw).get("/v1/ping")
    assert "ago" in client.get(URL).content.decode()


@pytest.mark.django_db
def test_revoke_needs_post(client, team):
    token = token_create(membership=team.membership(team.member)).token
    login(client, team.member)
    assert client.get(f"{URL}{token.pk}/revoke/").status_code == 405


@pytest.mark.django_db
def test_the_command_prints_the_token_alone_on_the_last_line(team):
    out = io.StringIO()
    call_command("create_token", "acme", "member@acme.test", "--name", "engine", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    assert raw.startswith("lf_") and " " not in raw
    assert DeveloperToken.objects.get(token_hash=hash_token(raw)).name == "engine"
    assert Api(raw).get("/v1/ping").json()["workspace"] == "acme"


@pytest.mark.django_db
def test_the_command_refuses_a_non_member(team, outsider):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("create_token", "acme", outsider.email, stdout=io.StringIO())


@pytest.mark.django_db
def test_the_api_docs_token_hint_links_to_the_tokens_page_of_ones_own_workspace(client, team, outsider):
    """Issue 30: "create a token under Settings -> Developer tokens" linked nowhere."""
    schema = client.get("/v1/schema/").content.decode()
    assert "[Developer tokens](/settings/tokens/)" in schema
    assert client.get("/settings/tokens/").status_code == 302  # to the login
    client.force_login(team.member)
    assert client.get("/settings/tokens/")["Location"] == "/w/acme/settings/tokens/"
    client.force_login(outsider)
    assert client.get("/settings/tokens/")["Location"] == "/w/elsewhere/settings/tokens/"
