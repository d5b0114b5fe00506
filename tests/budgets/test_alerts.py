"""Alerts fire once per scope, level and period, resolve when usage falls below, reach owner and
admins by e-mail and the signed webhook."""

import json
from datetime import timedelta

import pytest
from django.core import mail

from tests.concurrency import run_at_once
from billing.models import Workspace, credits
from budgets.alerts import alerts_check
from budgets.models import BudgetAlert, WorkspaceBudget
from budgets.selectors import active_alerts
from budgets.services import budget_set, member_budget_set
from budgets.webhooks import webhook_verify
from usage.errors import RunRefused
from usage.models import Agent
from usage.services import NodeInput, run_authorize, run_complete


class FakeResponse:
    status = 200

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture
def webhook_calls(monkeypatch):
    """The network edge: budgets.webhooks._send records each delivery instead of sending it."""
    calls = []

    def fake_send(delivery):
        calls.append(delivery)
        return FakeResponse.status

    monkeypatch.setattr("budgets.webhooks._send", fake_send)
    return calls


def _spend(team, amount_credits: str, *, user=None, agent="bot"):
    """One run charging exactly `amount_credits` (gpt-4o output at 15 per 1M: 1 credit = 66,666.67 tokens;
    gpt-4o input at 5 per 1M: 1 credit = 200,000 input tokens)."""
    membership = team.membership(user or team.owner)
    auth = run_authorize(membership=membership, workflow="wf", agent=agent, model="gpt-4o")
    tokens = int(credits(amount_credits) // 5000)
    return run_complete(workspace=team.workspace, public_id=auth.run.public_id, status="succeeded",
                        nodes=[NodeInput("n", "gpt-4o", tokens, 0)])


def _set_budget(team, limit_credits, **levels):
    budget = team.workspace.budget
    return budget_set(workspace=team.workspace, monthly_limit=credits(limit_credits) if limit_credits else None,
                      warning=levels.get("warning", True), critical=levels.get("critical", True),
                      hard_limit=levels.get("hard_limit", True), webhook_url=levels.get("webhook_url", budget.webhook_url),
                      actor=team.owner)


@pytest.mark.django_db(transaction=False)
def test_it_fires_warning_then_critical_once_each(team, django_capture_on_commit_callbacks):
    _set_budget(team, 100)
    with django_capture_on_commit_callbacks(execute=True):
        _spend(team, "8")
        _spend(team, "75")  # 83%: warning
    assert [m.subject for m in mail.outbox] == ["Warning: Workspace monthly budget at 80%. Acme Inc"]
    assert sorted(mail.outbox[0].to) == ["admin@acme.test", "owner@acme.test"]  # not the member
    assert "83 of 100 credits" in mail.outbox[0].body
    html = mail.outbox[0].alternatives[0][0]
    assert "Workspace monthly budget at 80%" in html
    with django_capture_on_commit_callbacks(execute=True):
        _spend(team, "1")  # 84%: nothing new
        _spend(team, "12")  # 96%: critical
        alerts_check(workspace_id=team.workspace.pk)
    assert len(mail.outbox) == 2 and mail.outbox[1].subject.startswith("Critical:")
    assert BudgetAlert.objects.filter(workspace=team.workspace).count() == 2
    banner = active_alerts(workspace=team.workspace)
    assert [(item.level, item.title) for item in banner] == [("critical", "96% of the workspace monthly budget used (critical at 95%).")]
    assert banner[0].message.startswith("96 charged + 0 held = 96 of 100 credits (96%) this billing period")


@pytest.mark.django_db
def test_it_respects_levels_switched_off(team, django_capture_on_commit_callbacks):
    _set_budget(team, 100, warning=False)
    with django_capture_on_commit_callbacks(execute=True):
        _spend(team, "85")
    assert mail.outbox == []
    assert not BudgetAlert.objects.exists()


@pytest.mark.django_db
def test_it_does_not_repeat_the_hard_limit_alert_on_a_refusal(team, django_capture_on_commit_callbacks):
    _set_budget(team, 20)
    with django_capture_on_commit_callbacks(execute=True):
        _spend(team, "10")
        _spend(team, "10")  # 100%: warning, critical and hard limit fire together
    assert {a.level for a in BudgetAlert.objects.all()} == {"warning", "critical", "hard_limit"}
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RunRefused) as refusal:
            run_authorize(membership=team.membership(team.member), workflow="wf", agent="bot", model="gpt-4o")
    assert refusal.value.code == "budget_exhausted"
    assert mail.outbox == []  # already fired this period: at most once


@pytest.mark.django_db
def test_it_fires_the_hard_limit_alert_on_a_refused_run(team, django_capture_on_commit_callbacks):
    _set_budget(team, 10)
    membership = team.membership(team.member)
    with django_capture_on_commit_callbacks(execute=True):
        run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o")  # holds 10: 100% used
        with pytest.raises(RunRefused):
            run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o")
    assert BudgetAlert.objects.filter(level="hard_limit", scope="workspace").count() == 1
    assert any(m.subject.startswith("Hard limit:") for m in mail.outbox)


@pytest.mark.django_db
def test_it_resolves_alerts_when_the_budget_is_raised(team, webhook_calls, django_capture_on_commit_callbacks):
    _set_budget(team, 100, webhook_url="https://hooks.example.com/lf")
    with django_capture_on_commit_callbacks(execute=True):
        _spend(team, "90")
    assert len(webhook_calls) == 1
    fired = webhook_calls[0]
    secret = WorkspaceBudget.objects.get(workspace=team.workspace).webhook_secret
    assert webhook_verify(secret=secret, body=fired.data, signature=fired.get_header("X-lf-signature"))
    payload = json.loads(fired.data)
    assert payload["state"] == "fired" and payload["level"] == "warning" and payload["scope"] == "workspace"
    with django_capture_on_commit_callbacks(execute=True):
        _set_budget(team, 200, webhook_url="https://hooks.example.com/lf")
    assert BudgetAlert.objects.get().resolved_at is not None
    resolved = json.loads(webhook_calls[1].data)
    assert resolved["state"] == "resolved" and resolved["used"] == "90" and resolved["limit"] == "200"
    assert mail.outbox[-1].subject.startswith("Resolved: Warning:")
    assert active_alerts(workspace=team.workspace) == []


@pytest.mark.django_db
def test_it_posts_the_webhook_payload_exactly_as_specified(team, webhook_calls, django_capture_on_commit_callbacks):
    Agent.objects.create(workspace=team.workspace, name="summarizer", max_per_month=credits(10))
    with django_capture_on_commit_callbacks(execute=True):
        _set_budget(team, None, webhook_url="https://hooks.example.com/lf")
        _spend(team, "9", agent="summarizer")  # 90% of the agent's period budget
    body = webhook_calls[0].data
    payload = json.loads(body)
    workspace = Workspace.objects.get(pk=team.workspace.pk)
    assert list(payload) == ["event", "state", "level", "scope", "workspace", "agent", "threshold_percent", "used",
                             "limit", "period", "at"]
    assert payload == {
        "event": "budget.alert", "state": "fired", "level": "warning", "scope": "agent", "workspace": "acme",
        "agent": "summarizer", "threshold_percent": 80, "used": "9", "limit": "10",
        "period": {"start": workspace.period_start.isoformat(), "end": workspace.period_end.isoformat()},
        "at": payload["at"],
    }
    # The documented recipe, verbatim from the Alerts page:
    import hashlib
    import hmac

    secret = WorkspaceBudget.objects.get(workspace=team.workspace).webhook_secret
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, webhook_calls[0].get_header("X-lf-signature"))
    assert webhook_calls[0].get_header("Content-type") == "application/json"


@pytest.mark.django_db
def test_it_alerts_on_a_member_budget(team, django_capture_on_commit_callbacks):
    membership = team.membership(team.member)
    member_budget_set(membership=membership, monthly_budget=credits(10), actor=team.owner)
    with django_capture_on_commit_callbacks(execute=True):
        _spend(team, "10", user=team.member)
    levels = set(BudgetAlert.objects.filter(scope="member", scope_id=membership.pk).values_list("level", flat=True))
    assert levels == {"warning", "critical", "hard_limit"}
    titles = [item.title for item in active_alerts(workspace=team.workspace)]
    assert titles == ["100% of the member budget of member@acme.test used (hard limit at 100%)."]


@pytest.mark.django_db
def test_it_resolves_alerts_in_a_new_period(team, django_capture_on_commit_callbacks):
    _set_budget(team, 100)
    with django_capture_on_commit_callbacks(execute=True):
        _spend(team, "96")
    assert BudgetAlert.objects.filter(resolved_at__isnull=True).count() == 2
    mail.outbox.clear()
    workspace = team.workspace
    # Time travel: the workspace moves into its next billing period.
    Workspace.objects.filter(pk=workspace.pk).update(period_start=workspace.period_end,
                                                     period_end=workspace.period_end + timedelta(days=30))
    with django_capture_on_commit_callbacks(execute=True):
        changes = alerts_check(workspace_id=workspace.pk)
        alerts_check(workspace_id=workspace.pk)  # again: nothing more
    assert {(c.state, c.alert.level) for c in changes} == {("resolved", "warning"), ("resolved", "critical")}
    assert not BudgetAlert.objects.filter(resolved_at__isnull=True).exists()
    assert len(mail.outbox) == 2 and all(m.subject.startswith("Resolved:") for m in mail.outbox)
    workspace.refresh_from_db()
    assert active_alerts(workspace=workspace) == []


@pytest.mark.django_db(transaction=True)
def test_it_sends_each_alert_once_under_concurrent_checks(team, webhook_calls):
    WorkspaceBudget.objects.filter(workspace=team.workspace).update(monthly_limit=credits(100),
                                                                    webhook_url="https://hooks.example.com/lf")
    _spend(team, "99")  # each check is enqueued on commit (eager Celery: runs here)
    BudgetAlert.objects.all().delete()
    mail.outbox.clear()
    webhook_calls.clear()
    _, errors = run_at_once(lambda _: alerts_check(workspace_id=team.workspace.pk), 12)
    assert errors == []
    for _ in range(3):
        alerts_check(workspace_id=team.workspace.pk)
    assert BudgetAlert.objects.count() == 2
    assert sorted(m.subject.split(":")[0] for m in mail.outbox) == ["Critical", "Warning"]
    assert len(webhook_calls) == 2


@pytest.mark.django_db
def test_it_retries_a_failing_webhook(team, monkeypatch, settings):
    import requests

    from budgets.tasks import deliver_alert_webhook
    from budgets.webhooks import WebhookFailed

    WorkspaceBudget.objects.filter(workspace=team.workspace).update(webhook_url="https://hooks.example.com/lf")

    def down(delivery):
        raise requests.ConnectionError("connection refused")

    monkeypatch.setattr("budgets.webhooks._send", down)
    assert WebhookFailed in deliver_alert_webhook.autoretry_for
    with pytest.raises((WebhookFailed, Exception)):
        deliver_alert_webhook.apply(args=(team.workspace.pk, "{}"), throw=True)
