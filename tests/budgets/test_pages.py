"""The budget pages for each persona: owner and admin change, a member looks (POST 403), an outsider gets 404."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from billing.models import AuditEvent, Invitation, Membership, credits
from budgets.models import WorkspaceBudget
from tests.factories import PASSWORD
from usage.models import Agent


def _login(client, user):
    assert client.login(email=user.email, password=PASSWORD)


def _urls(team):
    agent = Agent.objects.get_or_create(workspace=team.workspace, name="bot")[0]
    slug = team.workspace.slug
    return [reverse("budgets:alerts", kwargs={"slug": slug}), reverse("budgets:agents", kwargs={"slug": slug}),
            reverse("budgets:agent_budget", kwargs={"slug": slug, "agent_id": agent.pk}),
            reverse("budgets:members", kwargs={"slug": slug})]


@pytest.mark.django_db
def test_it_shows_every_budget_page_to_members_and_refuses_their_changes(client, team):
    _login(client, team.member)
    alerts, agents, agent_budget, members = _urls(team)
    for url in (alerts, agents, agent_budget, members):
        assert client.get(url).status_code == 200, url
    for url in (alerts, agent_budget, members):
        assert client.post(url, {"action": "budget", "monthly_limit": "1"}).status_code == 403, url
    assert client.post(agents, {}).status_code == 405  # a list, nothing to change
    assert "Only the workspace owner and admins" in client.get(alerts).content.decode()


@pytest.mark.django_db
def test_it_hides_the_workspace_from_outsiders(client, team, outsider):
    client.force_login(outsider)
    alerts, agents, agent_budget, members = _urls(team)
    for url in (alerts, agents, agent_budget, members):
        assert client.get(url).status_code == 404, url
    for url in (alerts, agent_budget, members):
        assert client.post(url, {}).status_code == 404, url


@pytest.mark.django_db
def test_it_requires_sign_in(client, team):
    response = client.get(_urls(team)[0])
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.django_db
def test_it_lets_the_owner_set_the_budget_and_levels(client, team):
    _login(client, team.owner)
    url = reverse("budgets:alerts", kwargs={"slug": "acme"})
    response = client.post(url, {"monthly_limit": "250.5", "warning_enabled": "on", "hard_limit_enabled": "on",
                                 "webhook_url": "https://hooks.example.com/x"})
    assert response.status_code == 302
    budget = WorkspaceBudget.objects.get(workspace=team.workspace)
    assert budget.monthly_limit == credits("250.5") and budget.warning_enabled and not budget.critical_enabled
    assert budget.webhook_url == "https://hooks.example.com/x"
    assert AuditEvent.objects.filter(action="budget.set", actor=team.owner).exists()
    page = client.get(url).content.decode()
    assert "of 250.5 credits" in page and budget.webhook_secret in page and "hmac.compare_digest" in page


@pytest.mark.django_db
def test_it_explains_bad_amounts(client, team):
    _login(client, team.admin)
    url = reverse("budgets:alerts", kwargs={"slug": "acme"})
    for value, words in [("-5", "greater than zero"), ("abc", "is not a number"), ("1.0000000001", "decimal places"),
                         ("10000000000000", "more than"), ("1e13", "scientific notation")]:
        response = client.post(url, {"monthly_limit": value})
        assert response.status_code == 200
        assert words in response.content.decode(), value
    assert WorkspaceBudget.objects.get(workspace=team.workspace).monthly_limit is None


@pytest.mark.django_db
def test_it_lets_an_admin_rotate_the_webhook_secret(client, team):
    _login(client, team.admin)
    before = WorkspaceBudget.objects.get(workspace=team.workspace).webhook_secret
    client.post(reverse("budgets:alerts", kwargs={"slug": "acme"}), {"action": "rotate_secret"})
    after = WorkspaceBudget.objects.get(workspace=team.workspace).webhook_secret
    assert after != before and after.startswith("whsec_")


@pytest.mark.django_db
def test_it_lets_an_admin_set_an_agents_budgets(client, team):
    _login(client, team.admin)
    url = _urls(team)[2]
    response = client.post(url, {"max_per_run": "5", "max_per_day": "50", "max_per_month": "500"})
    assert response.status_code == 302
    agent = Agent.objects.get(workspace=team.workspace, name="bot")
    assert (agent.max_per_run, agent.max_per_day, agent.max_per_month) == (credits(5), credits(50), credits(500))
    response = client.post(url, {"max_per_run": "60", "max_per_day": "50", "max_per_month": ""})
    page = response.content.decode()
    assert response.status_code == 200 and "cannot exceed the daily budget" in page and "This field is required" in page


@pytest.mark.django_db
def test_it_hides_another_workspaces_agent(client, team, outsider):
    from billing.models import Workspace

    foreign = Agent.objects.create(workspace=Workspace.objects.get(slug="elsewhere"), name="theirs")
    _login(client, team.owner)
    url = reverse("budgets:agent_budget", kwargs={"slug": "acme", "agent_id": foreign.pk})
    assert client.get(url).status_code == 404


@pytest.mark.django_db
def test_it_lets_the_owner_manage_members(client, team):
    _login(client, team.owner)
    url = reverse("budgets:members", kwargs={"slug": "acme"})
    member = team.membership(team.member)
    assert client.post(url, {"action": "budget", "membership": member.pk, "monthly_budget": "42"}).status_code == 302
    member.refresh_from_db()
    assert member.monthly_budget == credits(42)
    assert client.post(url, {"action": "role", "membership": member.pk, "role": "admin"}).status_code == 302
    member.refresh_from_db()
    assert member.role == "admin"
    # Adding someone sends an invitation (tests/accounts cover the link); a member cannot be invited again.
    assert client.post(url, {"action": "add", "email": "New@Acme.test", "role": "member"}).status_code == 302
    assert Invitation.objects.filter(workspace=team.workspace, email="new@acme.test", role="member").exists()
    response = client.post(url, {"action": "add", "email": team.member.email, "role": "member"})
    assert "already a member" in response.content.decode()
    owner = team.membership(team.owner)
    response = client.post(url, {"action": "role", "membership": owner.pk, "role": "member"})
    assert "cannot be changed" in response.content.decode()
    response = client.post(url, {"action": "budget", "membership": member.pk, "monthly_budget": "-1"})
    assert "greater than zero" in response.content.decode()
    assert client.post(url, {"action": "budget", "membership": member.pk, "monthly_budget": ""}).status_code == 302
    member.refresh_from_db()
    assert member.monthly_budget is None


@pytest.mark.django_db
def test_it_sets_the_same_settings_from_the_command_line(team, capsys):
    call_command("set_budget", "acme", "--monthly", "300", "--alert-webhook", "https://hooks.example.com/y")
    call_command("set_budget", "acme", "--agent", "writer", "--per-run", "2", "--per-day", "20", "--per-month", "200")
    call_command("set_budget", "acme", "--member", "member@acme.test", "--member-monthly", "75")
    budget = WorkspaceBudget.objects.get(workspace=team.workspace)
    assert budget.monthly_limit == credits(300) and budget.webhook_url == "https://hooks.example.com/y"
    agent = Agent.objects.get(workspace=team.workspace, name="writer")
    assert (agent.max_per_run, agent.max_per_day, agent.max_per_month) == (credits(2), credits(20), credits(200))
    assert team.membership(team.member).monthly_budget == credits(75)
    assert AuditEvent.objects.filter(action__in=["budget.set", "agent.budget_set", "member.budget_set"]).count() == 3
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--monthly"):
        call_command("set_budget", "acme", "--monthly", "lots")
    with pytest.raises(CommandError, match="No workspace"):
        call_command("set_budget", "nope", "--monthly", "1")


@pytest.mark.django_db
def test_it_lets_an_admin_budget_members_and_other_admins_but_never_the_owner(client, team):
    """An admin could set a member budget on the owner and so stop the owner's API runs (issue 25)."""
    from billing.services import member_add, user_get_or_create

    other_admin = member_add(workspace=team.workspace, user=user_get_or_create(email="second@acme.test"),
                             role="admin")
    _login(client, team.admin)
    url = reverse("budgets:members", kwargs={"slug": "acme"})
    owner, me = team.membership(team.owner), team.membership(team.admin)
    response = client.post(url, {"action": "budget", "membership": owner.pk, "monthly_budget": "1"})
    assert "The owner has no member budget" in response.content.decode()
    response = client.post(url, {"action": "budget", "membership": me.pk, "monthly_budget": "1000"})
    assert "Your own member budget is set by the owner or another admin" in response.content.decode()
    for target in (other_admin, team.membership(team.member)):
        assert client.post(url, {"action": "budget", "membership": target.pk, "monthly_budget": "5"}).status_code == 302
        target.refresh_from_db()
        assert target.monthly_budget == credits(5)
    owner.refresh_from_db()
    me.refresh_from_db()
    assert owner.monthly_budget is None and me.monthly_budget is None
    page = client.get(url).content.decode()
    assert f'aria-label="Monthly budget of {team.owner.email}"' not in page
    assert f'aria-label="Monthly budget of {team.member.email}"' in page


@pytest.mark.django_db
def test_a_budget_in_scientific_notation_is_a_form_error_and_changes_nothing(client, team):
    """Issue 30: "1e9" was saved as a one-billion-credit budget."""
    from budgets.models import WorkspaceBudget

    before = WorkspaceBudget.objects.get(workspace=team.workspace).monthly_limit
    client.login(email=team.owner.email, password="correct-horse-9")
    response = client.post("/w/acme/settings/billing/alerts/", {"action": "budget", "monthly_limit": "1e9",
                                                                "warning_enabled": "on"})
    assert response.status_code == 200
    assert "scientific notation" in response.content.decode()
    assert WorkspaceBudget.objects.get(workspace=team.workspace).monthly_limit == before
