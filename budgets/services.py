"""Budget settings: the workspace budget and alert levels, agent budgets, member budgets and roles.

Each write is one transaction with an audit row (billing.audit) naming the actor; a budget change re-runs the
alert check in the same transaction, so raising a budget resolves alerts it no longer reaches
(their notifications go out on commit)."""

from django.db import transaction
from django.utils import timezone

from billing.access_versions import access_versions_bump
from billing.audit import audit_record
from billing.models import AuditEvent, Membership, User, Workspace, new_webhook_secret
from billing.money import nanos_to_str
from .models import Agent

from . import tasks  # a module import: the tasks import this module back (send_webhook_test)
from .alerts import alerts_check
from .models import WorkspaceBudget
from .webhooks import WebhookFailed, WebhookRefused, webhook_body, webhook_post, webhook_url_check


class BudgetInvalid(ValueError):
    """A setting that cannot be saved; `field` names the input at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _positive(field: str, value: int | None, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if value is None or value <= 0:
        raise BudgetInvalid(field, "Enter an amount of credits greater than zero.")


def _credits(value: int | None) -> str | None:
    return None if value is None else nanos_to_str(value)


def _budget_fields(budget: WorkspaceBudget) -> dict:
    return {"monthly_limit": _credits(budget.monthly_limit), "warning": budget.warning_enabled,
            "critical": budget.critical_enabled, "hard_limit": budget.hard_limit_enabled,
            "webhook_url": budget.webhook_url}


def budget_set(*, workspace: Workspace, monthly_limit: int | None, warning: bool, critical: bool, hard_limit: bool,
               webhook_url: str, actor: User | None) -> WorkspaceBudget:
    """The workspace's monthly budget (nanocredits, None for none), its three alert levels and the
    alert webhook URL."""
    _positive("monthly_limit", monthly_limit, optional=True)
    webhook_url = (webhook_url or "").strip()
    if webhook_url:
        try:
            webhook_url_check(webhook_url)  # before the HTTP stage too: a saved URL is one we may call
        except WebhookRefused as error:
            raise BudgetInvalid("webhook_url", str(error)) from None
    with transaction.atomic():
        budget = WorkspaceBudget.objects.select_for_update().get(workspace=workspace)
        before = _budget_fields(budget)
        budget.monthly_limit = monthly_limit
        budget.warning_enabled, budget.critical_enabled, budget.hard_limit_enabled = warning, critical, hard_limit
        budget.webhook_url = webhook_url
        budget.save()
        audit_record(workspace_id=workspace.pk, actor=actor, action="budget.set", before=before,
                     after=_budget_fields(budget))
        alerts_check(workspace_id=workspace.pk)
    return budget


def webhook_secret_rotate(*, workspace: Workspace, actor: User | None) -> WorkspaceBudget:
    """A new signing secret; deliveries from now on are signed with it."""
    with transaction.atomic():
        budget = WorkspaceBudget.objects.select_for_update().get(workspace=workspace)
        budget.webhook_secret = new_webhook_secret()
        budget.save(update_fields=["webhook_secret"])
        audit_record(workspace_id=workspace.pk, actor=actor, action="budget.webhook_secret_rotate",
                     before={"webhook_secret": True}, after={"webhook_secret": True})  # shown as "(changed)"
    return budget


def agent_budget_set(*, agent: Agent, max_per_run: int, max_per_day: int, max_per_month: int,
                     actor: User | None) -> Agent:
    """An agent's three budgets, in nanocredits (SPEC defaults 10 / 100 / 1,000 credits)."""
    _positive("max_per_run", max_per_run)
    _positive("max_per_day", max_per_day)
    _positive("max_per_month", max_per_month)
    with transaction.atomic():
        before = Agent.objects.select_for_update().values("max_per_run", "max_per_day", "max_per_month").get(pk=agent.pk)
        Agent.objects.filter(pk=agent.pk).update(max_per_run=max_per_run, max_per_day=max_per_day,
                                                 max_per_month=max_per_month)
        agent.max_per_run, agent.max_per_day, agent.max_per_month = max_per_run, max_per_day, max_per_month
        audit_record(workspace_id=agent.workspace_id, actor=actor, action="agent.budget_set",
                     before={"agent": agent.name, **{name: _credits(value) for name, value in before.items()}},
                     after={"agent": agent.name, "max_per_run": _credits(max_per_run),
                            "max_per_day": _credits(max_per_day), "max_per_month": _credits(max_per_month)})
        alerts_check(workspace_id=agent.workspace_id)
    return agent


def agent_for_budget(*, workspace: Workspace, name: str) -> Agent:
    """The agent of that name, created on first use like the API does."""
    agent, _ = Agent.objects.get_or_create(workspace=workspace, name=name)
    return agent


def member_budget_refusal(*, target: Membership, actor: Membership | None) -> str:
    """Why `actor` (the owner or an admin; None for staff and scripts) may not set `target`'s member
    budget, or "" when it may. The owner and admins budget admins and members; nobody budgets the
    owner (the workspace budget bounds the owner's runs, and an admin must not be able to stop the
    person who pays), and nobody budgets themselves (an admin could lift the owner's cap on them)."""
    if target.role == Membership.OWNER:
        return "The owner has no member budget: the workspace budget bounds the owner's runs."
    if actor is not None and actor.pk == target.pk:
        return "Your own member budget is set by the owner or another admin."
    return ""


def member_budget_set(*, membership: Membership, monthly_budget: int | None, actor: User | None) -> Membership:
    """A member's budget per billing period (nanocredits; None removes it). The roles are read under
    the row lock, so a role changed a moment ago is the one that counts."""
    _positive("monthly_budget", monthly_budget, optional=True)
    with transaction.atomic():
        target = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
        acting = Membership.objects.filter(workspace_id=target.workspace_id, user=actor).first() if actor else None
        refusal = member_budget_refusal(target=target, actor=acting)
        if refusal:
            raise BudgetInvalid("monthly_budget", refusal)
        Membership.objects.filter(pk=membership.pk).update(monthly_budget=monthly_budget)
        access_versions_bump(workspace_ids=[membership.workspace_id])  # cached API tokens carry the membership
        membership.monthly_budget = monthly_budget
        audit_record(workspace_id=membership.workspace_id, actor=actor, action="member.budget_set",
                     before={"email": target.user.email, "monthly_budget": _credits(target.monthly_budget)},
                     after={"email": target.user.email, "monthly_budget": _credits(monthly_budget)})
        alerts_check(workspace_id=membership.workspace_id)
    return membership


def webhook_test_send(*, workspace: Workspace, actor: User | None) -> str:
    """"Send test event" on the Alerts page: queue one signed `budget.test` delivery to the saved URL.
    The page request never waits on the receiver (a slow one would hold a web worker for the whole
    timeout): the worker delivers it (webhook_test_deliver) and the Alerts page shows the outcome.
    Not retried and nothing recorded but audit rows: it is a check, not an alert."""
    budget = WorkspaceBudget.objects.get(workspace=workspace)
    if not budget.webhook_url:
        return "No webhook URL is set: save one first."
    event = audit_record(workspace_id=workspace.pk, actor=actor, action="budget.webhook_test",
                         after={"webhook_url": budget.webhook_url})
    transaction.on_commit(lambda: tasks.send_webhook_test.delay(event.pk))
    return "Test event queued: its outcome shows below in a few seconds (reload the page)."


def webhook_test_deliver(*, request_id: int) -> str:
    """Deliver the test event asked for by the audit row `request_id`, and record the receiver's
    status (or why the URL was refused or unreachable) as a `budget.webhook_test_result` row."""
    request = AuditEvent.objects.select_related("workspace").get(pk=request_id, action="budget.webhook_test")
    workspace = request.workspace
    budget = WorkspaceBudget.objects.get(workspace=workspace)
    body = webhook_body({"event": "budget.test", "workspace": workspace.slug, "at": timezone.now().isoformat()})
    try:
        outcome = f"Test event sent: the receiver answered HTTP " \
                  f"{webhook_post(url=budget.webhook_url, secret=budget.webhook_secret, body=body)}."
    except WebhookRefused as error:
        outcome = f"Not sent: {error}"
    except WebhookFailed as error:
        outcome = f"The receiver could not be reached or failed: {error}"
    audit_record(workspace_id=workspace.pk, actor=None, action="budget.webhook_test_result",
                 after={"request": request_id, "outcome": outcome})
    return outcome


def webhook_test_last(*, workspace: Workspace) -> dict | None:
    """The latest test event for the Alerts page: when it was asked for and its outcome (None while queued)."""
    request = AuditEvent.objects.filter(workspace=workspace, action="budget.webhook_test").first()
    if request is None:
        return None
    result = AuditEvent.objects.filter(workspace=workspace, action="budget.webhook_test_result",
                                       detail__request=request.pk).first()
    return {"at": request.created_at, "outcome": result.detail["outcome"] if result else None}
