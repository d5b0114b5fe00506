"""Workspaces, members and billing periods."""

from django.db import transaction
from django.utils import timezone

from budgets.models import WorkspaceBudget

from .ledger import monthly_rollover
from .models import AuditEvent, Membership, Plan, User, Wallet, Workspace
from .periods import monthly_period_containing


class MemberLimitReached(Exception):
    pass


def user_get_or_create(*, email: str, password: str | None = None, name: str = "") -> User:
    email = User.objects.normalize_email(email).strip().lower()
    user = User.objects.filter(email=email).first()
    if user is None:
        first, _, last = name.partition(" ")
        user = User.objects.create_user(email=email, password=password, first_name=first, last_name=last)
    elif password:
        user.set_password(password)
        user.save(update_fields=["password"])
    return user


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
        AuditEvent.objects.create(workspace=workspace, actor=actor or owner, action="workspace.create",
                                  detail={"plan": plan_id})
    monthly_rollover(workspace=workspace, old_period_start=None, new_period_start=start,
                     new_credits=workspace.monthly_credits, at=now)
    return workspace


def member_add(*, workspace: Workspace, user: User, role: str = Membership.MEMBER, actor=None) -> Membership:
    if role == Membership.OWNER:
        raise ValueError("A workspace has exactly one owner; add an admin or a member.")
    existing = workspace.memberships.filter(user=user).first()
    if existing:
        return existing
    cap = workspace.plan.max_members
    if workspace.kind == Workspace.PERSONAL:
        cap = 1
    if cap is not None and workspace.memberships.count() >= cap:
        raise MemberLimitReached(f"The {workspace.plan.name} plan allows {cap} member(s). Upgrade to add more.")
    with transaction.atomic():
        membership = Membership.objects.create(workspace=workspace, user=user, role=role)
        AuditEvent.objects.create(workspace=workspace, actor=actor, action="member.add",
                                  detail={"email": user.email, "role": role})
    return membership


def memberships_for(user: User):
    return Membership.objects.filter(user=user).select_related("workspace", "workspace__plan").order_by("workspace__name")
