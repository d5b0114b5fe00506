"""Settings -> Audit log (issue 32, parts 3 and 4): owners and admins read who changed what, from
which address, before and after; members see nothing of it; nobody edits or deletes an entry; staff
changes show as "Staff"; the Enterprise values staff set are visible where the workspace reads its
limits."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.db import IntegrityError, InternalError, transaction
from django.urls import reverse
from django.utils import timezone

from billing.audit import audit_record
from billing.models import AuditEvent, Membership, User, Workspace
from budgets.models import WorkspaceBudget
from tests.factories import PASSWORD
from usage.tokens import token_create

IP = "203.0.113.7"


def _url(name, slug="acme"):
    return reverse(f"accounts:{name}", kwargs={"slug": slug})


def _csv(client, **query):
    response = client.get(_url("audit_log_csv"), query, REMOTE_ADDR=IP)
    assert response.status_code == 200, response.content
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def owner_client(client, team):
    client.login(email=team.owner.email, password=PASSWORD)
    return client


@pytest.mark.django_db
def test_the_csv_lists_a_budget_change_a_role_change_and_a_token_creation_with_actor_ip_before_and_after(
        owner_client, team):
    alerts = reverse("budgets:alerts", kwargs={"slug": "acme"})
    assert owner_client.post(alerts, {"monthly_limit": "2500", "warning_enabled": "on"}, REMOTE_ADDR=IP).status_code == 302
    members = reverse("budgets:members", kwargs={"slug": "acme"})
    target = team.membership(team.member)
    assert owner_client.post(members, {"action": "role", "membership": target.pk, "role": "admin"},
                             REMOTE_ADDR=IP).status_code == 302
    tokens = reverse("usage:tokens", kwargs={"slug": "acme"})
    assert owner_client.post(tokens, {"name": "CI deploy"}, REMOTE_ADDR=IP).status_code == 302

    rows = {row["action"]: row for row in _csv(owner_client)}
    budget, role, token = rows["budget.set"], rows["member.role_set"], rows["token.create"]
    for row in (budget, role, token):
        assert row["actor"] == "Olivia Owner" and row["actor_email"] == team.owner.email and row["ip"] == IP
    assert json.loads(budget["before"])["monthly_limit"] is None
    assert json.loads(budget["after"])["monthly_limit"] == "2500"
    assert json.loads(role["before"]) == {"email": team.member.email, "role": "member"}
    assert json.loads(role["after"]) == {"email": team.member.email, "role": "admin"}
    created = json.loads(token["after"])
    assert token["before"] == "" and created["name"] == "CI deploy" and created["member"] == team.owner.email
    # The page shows the same rows, newest first.
    page = owner_client.get(_url("audit_log")).content.decode()
    assert page.index("token.create") < page.index("member.role_set") < page.index("budget.set")
    assert IP in page


@pytest.mark.django_db
def test_members_see_nothing_of_it_and_outsiders_not_that_it_exists(client, team, outsider):
    client.login(email=team.member.email, password=PASSWORD)
    assert client.get(_url("audit_log")).status_code == 403
    assert client.get(_url("audit_log_csv")).status_code == 403
    assert "Audit log" not in client.get(reverse("billing:overview", kwargs={"slug": "acme"})).content.decode()
    client.login(email=outsider.email, password="pw-outsider-1")
    assert client.get(_url("audit_log")).status_code == 404
    assert client.get(_url("audit_log_csv")).status_code == 404


@pytest.mark.django_db
def test_secrets_never_appear(owner_client, team):
    alerts = reverse("budgets:alerts", kwargs={"slug": "acme"})
    owner_client.post(alerts, {"action": "rotate_secret"})
    secret = WorkspaceBudget.objects.get(workspace=team.workspace).webhook_secret
    raw = token_create(membership=team.membership(team.owner), name="leak check", actor=team.owner).raw
    body = json.dumps(list(AuditEvent.objects.values("before", "detail")))
    assert secret not in body and raw not in body
    assert '"webhook_secret": "(changed)"' in body
    page = owner_client.get(_url("audit_log")).content.decode()
    assert secret not in page and "(changed)" in page


@pytest.mark.django_db
def test_it_filters_by_actor_kind_and_date_and_pages_fifty_at_a_time(owner_client, team):
    ws = team.workspace
    for n in range(55):
        audit_record(workspace_id=ws.pk, actor=team.admin, action="budget.set", after={"n": n})
    audit_record(workspace_id=ws.pk, actor=None, action="plan.change", after={"plan": "free"})
    ten_days_ago = timezone.now() - timedelta(days=10)
    AuditEvent(workspace_id=ws.pk, actor=team.owner, actor_kind="user", action="token.create",
               detail={"name": "ten days ago"}, created_at=ten_days_ago).save(force_insert=True)
    audit_record(workspace_id=ws.pk, actor=team.owner, action="token.create", after={"name": "old"})

    assert {r["action"] for r in _csv(owner_client, actor="system")} == {"plan.change", "member.add"}  # the factory adds members as the system
    by_admin = _csv(owner_client, actor=f"user:{team.admin.pk}")
    assert len(by_admin) == 55 and {r["actor_email"] for r in by_admin} == {team.admin.email}
    tokens = _csv(owner_client, kind="token")
    assert [json.loads(r["after"])["name"] for r in tokens] == ["ten days ago", "old"]  # oldest first
    day = ten_days_ago.date().isoformat()
    assert [json.loads(r["after"])["name"] for r in _csv(owner_client, kind="token", **{"from": day, "to": day})] == [
        "ten days ago"]

    first = owner_client.get(_url("audit_log"), {"actor": f"user:{team.admin.pk}"})
    assert first.content.decode().count('data-testid="audit-row"') == 50
    older = first.context["page"].older
    second = owner_client.get(_url("audit_log"), {"actor": f"user:{team.admin.pk}", "before": older})
    assert second.content.decode().count('data-testid="audit-row"') == 5


@pytest.mark.django_db
@pytest.mark.parametrize("query", [{"actor": "user:999999"}, {"actor": "user:abc"}, {"kind": "ledger"},
                                   {"from": "1-01-01"}, {"from": "9999-12-31"}, {"before": "-1"}])
def test_bad_filters_are_a_form_error_on_the_page_and_a_400_for_the_csv(owner_client, team, outsider, query):
    page = owner_client.get(_url("audit_log"), query)
    assert page.status_code == 200 and "These filters were left out" in page.content.decode()
    assert owner_client.get(_url("audit_log_csv"), query).status_code == 400


@pytest.mark.django_db
def test_another_workspaces_people_cannot_be_named_as_actor(owner_client, team, outsider):
    """The actor filter offers only this workspace's log: an outsider's id is refused, not probed."""
    audit_record(workspace_id=Workspace.objects.get(slug="elsewhere").pk, actor=outsider, action="budget.set")
    assert owner_client.get(_url("audit_log_csv"), {"actor": f"user:{outsider.pk}"}).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_entries_are_append_only_in_the_database(team):
    event = audit_record(workspace_id=team.workspace.pk, actor=team.admin, action="budget.set",
                         before={"monthly_limit": None}, after={"monthly_limit": "10"})
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(detail={"monthly_limit": "99999"})
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    # A deleted account clears its name from the log, and nothing else changes.
    Membership.all_objects.filter(user=team.admin).delete()
    User.objects.filter(pk=team.admin.pk).delete()
    event.refresh_from_db()
    assert event.actor_id is None and event.detail == {"monthly_limit": "10"} and event.action == "budget.set"


@pytest.mark.django_db
def test_staff_changes_show_as_staff_and_custom_limits_are_visible_to_the_workspace(client, team):
    staff = User.objects.create_superuser(email="staff@lenserfight.test", password="pw-staff-123")
    Workspace.objects.filter(pk=team.workspace.pk).update(plan_id="enterprise")
    ws = Workspace.objects.select_related("plan").get(pk=team.workspace.pk)
    client.force_login(staff)
    change = reverse("admin:billing_workspace_change", args=[ws.pk])
    form = client.get(change).context["adminform"].form
    data = {name: form[name].value() if form[name].value() is not None else "" for name in form.fields}
    data.update({"custom_requests_per_minute": "4321", "custom_concurrent_runs": "77",
                 "custom_monthly_credits": "123456", "created_at_0": ws.created_at.strftime("%Y-%m-%d"),
                 "created_at_1": ws.created_at.strftime("%H:%M:%S"),
                 "period_start_0": ws.period_start.strftime("%Y-%m-%d"),
                 "period_start_1": ws.period_start.strftime("%H:%M:%S"),
                 "period_end_0": ws.period_end.strftime("%Y-%m-%d"), "period_end_1": ws.period_end.strftime("%H:%M:%S"),
                 "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"})
    response = client.post(change, data, REMOTE_ADDR=IP)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    event = AuditEvent.objects.get(workspace=ws, action="plan.custom_limits")
    assert event.actor == staff and event.actor_kind == "staff" and event.ip == IP
    assert event.before["custom_requests_per_minute"] is None and event.detail["custom_requests_per_minute"] == 4321
    assert f"by {staff.email}" in client.get(change).content.decode()  # the admin says when and by whom

    client.logout()
    client.login(email=team.owner.email, password=PASSWORD)
    rows = _csv(client, kind="plan")
    assert rows[-1]["actor"] == "Staff" and rows[-1]["actor_email"] == ""  # never which staff member
    plans = client.get(reverse("billing:plans", kwargs={"slug": "acme"})).content.decode()
    assert "4321 requests / minute · 77 concurrent runs" in plans and "123,456" in plans
    raw = token_create(membership=team.membership(team.owner)).raw
    balance = client.get("/v1/billing/balance", HTTP_AUTHORIZATION=f"Bearer {raw}").json()
    assert balance["rate_limit"] == {"requests_per_minute": 4321, "concurrent_runs": 77}
    assert balance["monthly_credits"] == "123456"
    assert set(balance["custom_limits"]) == {"monthly_credits", "requests_per_minute", "concurrent_runs"}
