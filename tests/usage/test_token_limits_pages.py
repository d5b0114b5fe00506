"""Setting a developer token's limits (issue 29): on the Tokens page (owners and admins on any token;
a member on their own, lowering but never raising what an admin set) and with manage.py create_token;
the page shows each token's limits, today's and this period's use, and its expiry."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from billing.models import AuditEvent, credits
from usage.models import DeveloperToken, hash_token
from usage.services import run_authorize
from usage.tokens import TokenLimits, TokenLimitsInvalid, token_create, token_limits_set

from tests.factories import PASSWORD

from .conftest import Api, authorize

URL = "/w/acme/settings/tokens/"
NO_LIMITS = {"max_credits_per_run": "", "max_credits_per_day": "", "max_credits_per_month": "", "expires_at": ""}


def login(client, user):
    assert client.login(email=user.email, password=PASSWORD)


def limits_url(token) -> str:
    return f"{URL}{token.pk}/limits/"


@pytest.mark.django_db
def test_a_member_creates_a_token_with_limits_and_may_change_them(client, team):
    login(client, team.member)
    response = client.post(URL, {"name": "loop", "max_credits_per_day": "5", "max_credits_per_run": "1",
                                 "allowed_models": ["gpt-4o-mini"], "expires_at": "2099-01-01T12:30"})
    assert response.status_code == 302
    token = DeveloperToken.objects.get(name="loop")
    assert (token.max_credits_per_day, token.max_credits_per_run, token.allowed_models) == (
        credits(5), credits(1), ["gpt-4o-mini"])
    assert token.expires_at.isoformat() == "2099-01-01T12:30:00+00:00"
    assert token.admin_limits is None  # a member's own limits: theirs to raise again
    assert client.post(limits_url(token), {**NO_LIMITS, "max_credits_per_day": "50"}).status_code == 302
    token.refresh_from_db()
    assert token.max_credits_per_day == credits(50) and token.max_credits_per_run is None


@pytest.mark.django_db
def test_an_admin_sets_limits_on_a_members_token_which_the_member_may_lower_not_raise(client, team):
    token = token_create(membership=team.membership(team.member), name="engine").token
    login(client, team.admin)
    assert client.post(limits_url(token), {**NO_LIMITS, "max_credits_per_day": "10", "max_credits_per_month": "100",
                                           "allowed_models": ["gpt-4o", "gpt-4o-mini"]}).status_code == 302
    token.refresh_from_db()
    assert token.max_credits_per_day == credits(10) and token.admin_limits["max_credits_per_day"] == credits(10)
    event = AuditEvent.objects.get(action="token.limits_set")
    assert event.actor == team.admin and event.detail["max_credits_per_day"] == "10"
    assert event.before["max_credits_per_day"] is None and event.detail["allowed_models"] == "gpt-4o, gpt-4o-mini"

    client.logout()
    login(client, team.member)
    page = client.get(limits_url(token)).content.decode()
    assert 'data-testid="ceiling"' in page and "may lower them, not raise them" in page
    lower = {**NO_LIMITS, "max_credits_per_day": "4", "max_credits_per_month": "100", "allowed_models": ["gpt-4o"]}
    assert client.post(limits_url(token), lower).status_code == 302
    token.refresh_from_db()
    assert token.max_credits_per_day == credits(4) and token.allowed_models == ["gpt-4o"]
    # Back up to the admin's limit is fine; past it, removing it, or another model is not.
    assert client.post(limits_url(token), {**lower, "max_credits_per_day": "10"}).status_code == 302
    for change, message in ((
            {"max_credits_per_day": "10.5"}, "you may lower it, not raise or remove it"),
            ({"max_credits_per_month": ""}, "you may lower it, not raise or remove it"),
            ({"allowed_models": ["gpt-4o", "claude-opus-4"]}, "not add any"),
            ({"allowed_models": []}, "not add any")):
        response = client.post(limits_url(token), {**lower, **change})
        assert response.status_code == 200 and message in response.content.decode(), change
    token.refresh_from_db()
    assert token.max_credits_per_day == credits(10) and token.max_credits_per_month == credits(100)
    assert token.allowed_models == ["gpt-4o"]


@pytest.mark.django_db
def test_an_admins_expiry_may_only_come_sooner(team):
    token = token_create(membership=team.membership(team.member), name="engine").token
    soon = timezone.now() + timedelta(days=7)
    token_limits_set(token=token, limits=TokenLimits(expires_at=soon), by=team.membership(team.admin))
    member = team.membership(team.member)
    with pytest.raises(TokenLimitsInvalid, match="expire sooner"):
        token_limits_set(token=token, limits=TokenLimits(expires_at=soon + timedelta(days=1)), by=member)
    with pytest.raises(TokenLimitsInvalid, match="expire sooner"):
        token_limits_set(token=token, limits=TokenLimits(), by=member)
    token_limits_set(token=token, limits=TokenLimits(expires_at=soon - timedelta(days=1)), by=member)


@pytest.mark.django_db
def test_a_member_cannot_reach_another_members_token_and_an_outsider_sees_nothing(client, team, outsider):
    admins = token_create(membership=team.membership(team.admin), name="admins").token
    login(client, team.member)
    assert client.get(limits_url(admins)).status_code == 404
    assert client.post(limits_url(admins), {**NO_LIMITS, "max_credits_per_day": "1"}).status_code == 404
    client.logout()
    assert client.login(email=outsider.email, password="pw-outsider-1")
    assert client.get(limits_url(admins)).status_code == 404
    admins.refresh_from_db()
    assert admins.max_credits_per_day is None
    with pytest.raises(TokenLimitsInvalid):
        token_limits_set(token=admins, limits=TokenLimits(max_credits_per_day=1), by=team.membership(team.member))


@pytest.mark.parametrize("change, message", [
    ({"max_credits_per_day": "0"}, "greater than zero"), ({"max_credits_per_day": "-1"}, "greater than zero"),
    ({"max_credits_per_day": "abc"}, "not a number"), ({"max_credits_per_run": "6", "max_credits_per_day": "5"},
                                                       "cannot exceed the daily limit"),
    ({"expires_at": "2001-01-01T00:00"}, "in the future"), ({"allowed_models": ["no-such-model"]}, "valid choice"),
    ({"expires_at": "soon"}, "valid date"),
])
@pytest.mark.django_db
def test_bad_limits_are_form_errors_and_change_nothing(client, team, change, message):
    token = token_create(membership=team.membership(team.member), name="engine").token
    login(client, team.owner)
    response = client.post(limits_url(token), {**NO_LIMITS, **change})
    assert response.status_code == 200 and message in response.content.decode()
    token.refresh_from_db()
    assert not token.has_limits


@pytest.mark.django_db
def test_the_tokens_page_shows_limits_use_and_expiry(client, team):
    created = token_create(membership=team.membership(team.member), name="nightly", admin_set=True,
                           limits=TokenLimits(max_credits_per_day=credits(5), max_credits_per_month=credits(50),
                                              allowed_models=("gpt-4o",),
                                              expires_at=timezone.now() + timedelta(days=3)))
    api = Api(created.raw)
    authorize(api, "r-1")  # holds 5: the day's limit
    assert authorize(api, "r-2").status_code == 402
    login(client, team.owner)
    html = client.get(URL).content.decode()
    row = html[html.index(f'data-prefix="{created.token.prefix}"'):]
    row = row[:row.index("</tr>")]
    assert 'data-testid="token-today">5<' in row and "of 5 credits" in row and "limit reached" in row
    assert 'data-testid="token-period">5<' in row and "of 50 credits" in row
    assert "gpt-4o" in row and "Expires" in row
    token_create(membership=team.membership(team.owner), name="plain")
    assert "No limits" in client.get(URL).content.decode()


@pytest.mark.django_db
def test_an_expired_token_says_so_on_the_page(client, team):
    token = token_create(membership=team.membership(team.member), name="old").token
    DeveloperToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(days=1))
    login(client, team.member)
    html = client.get(URL).content.decode()
    assert '<span class="badge crit">expired</span>' in html


@pytest.mark.django_db
def test_create_token_takes_limits(team):
    out = io.StringIO()
    call_command("create_token", "acme", team.member.email, "--name", "cron", "--max-per-run", "0.5",
                 "--max-per-day", "5", "--max-per-month", "40", "--models", "gpt-4o-mini, gpt-4o",
                 "--expires-in-days", "30", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    token = DeveloperToken.objects.get(token_hash=hash_token(raw))
    assert (token.name, token.max_credits_per_run, token.max_credits_per_day, token.max_credits_per_month) == (
        "cron", credits("0.5"), credits(5), credits(40))
    assert token.allowed_models == ["gpt-4o-mini", "gpt-4o"]
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    assert token.admin_limits is not None  # set by an operator: the member may only lower them
    assert Api(raw).get("/v1/billing/balance").json()["token"]["max_credits_per_day"] == "5"


@pytest.mark.parametrize("args, message", [
    (["--max-per-day", "0"], "more than 0"), (["--max-per-day", "1e3"], "scientific"),
    (["--models", "gpt-5"], "Unknown model"), (["--expires-in-days", "0"], "1 to 3650"),
    (["--max-per-run", "10", "--max-per-day", "5"], "cannot exceed"),
])
@pytest.mark.django_db
def test_create_token_refuses_bad_limits_and_creates_nothing(team, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_token", "acme", team.member.email, *args, stdout=io.StringIO())
    assert not DeveloperToken.objects.exists()


@pytest.mark.django_db
def test_a_limit_change_reaches_a_cached_token_at_once(team, settings):
    """The token cache reloads after a limits change (the row's save moves the access version)."""
    created = token_create(membership=team.membership(team.member), name="engine")
    api = Api(created.raw)
    assert api.get("/v1/billing/balance").json()["token"] is None
    token_limits_set(token=created.token, limits=TokenLimits(max_credits_per_day=credits(1)),
                     by=team.membership(team.owner))
    assert api.get("/v1/billing/balance").json()["token"]["max_credits_per_day"] == "1"
    run_authorize(membership=team.membership(team.member), workflow="wf", agent="bot", model="gpt-4o",
                  token=created.token)
