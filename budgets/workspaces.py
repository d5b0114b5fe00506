"""Creating a workspace: its tenancy rows, wallet and budget settings, and its first period's grant.

It lives in budgets (the lowest layer that owns every row a new workspace needs) so that every layer
above, sign-up and the commands alike, can call it."""

from django.db import transaction
from django.utils import timezone

from billing.audit import audit_record
from billing.ledger import monthly_rollover
from billing.models import Membership, Plan, User, Wallet, Workspace
from billing.periods import monthly_period_containing

from .models import WorkspaceBudget


def workspace_create(*, slug: str, name: str, owner: User, plan_id: str = "free", kind: str = Workspace.TEAM,
                     now=None, actor=None) -> Workspace:
    """A workspace starts its first period at once and receives that period's credits."""
    now = now or timezone.now()
    plan = Plan.objects.get(pk=plan_id)
    start, end = monthly_period_containing(now, now)
    with transaction.atomic():
        workspace = Workspace.objects.create(slug=slug, name=name, kind=kind, plan=plan, created_at=now,
                                             period_start=start, period_end=end)
        Wallet.objects.create(workspace=workspace)
        WorkspaceBudget.objects.create(workspace=workspace)
        Membership.objects.create(workspace=workspace, user=owner, role=Membership.OWNER, created_at=now)
        audit_record(workspace_id=workspace.pk, actor=actor or owner, action="workspace.create",
                     after={"plan": plan_id, "owner": owner.email})
    monthly_rollover(workspace=workspace, old_period_start=None, new_period_start=start,
                     new_credits=workspace.monthly_credits, at=now)
    return workspace
