"""Users and members. Creating a workspace also creates its budget row, so it lives a layer up,
in budgets/workspaces.py."""

from django.db import transaction

from .models import AuditEvent, Membership, Plan, User, Workspace


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


def member_cap(*, workspace: Workspace, plan: Plan | None = None) -> int | None:
    """The most members `plan` (default: the workspace's own) allows; None for unlimited. A personal
    workspace has one member whatever its plan."""
    if workspace.kind == Workspace.PERSONAL:
        return 1
    return (plan or workspace.plan).max_members


def member_count(*, workspace: Workspace) -> int:
    """The seats taken against the member cap. The one place to extend what takes a seat (for
    example pending invitations)."""
    return workspace.memberships.count()


def member_add(*, workspace: Workspace, user: User, role: str = Membership.MEMBER, actor=None) -> Membership:
    if role == Membership.OWNER:
        raise ValueError("A workspace has exactly one owner; add an admin or a member.")
    existing = workspace.memberships.filter(user=user).first()
    if existing:
        return existing
    cap = member_cap(workspace=workspace)
    if cap is not None and member_count(workspace=workspace) >= cap:
        raise MemberLimitReached(f"The {workspace.plan.name} plan allows {cap} member(s). Upgrade to add more.")
    with transaction.atomic():
        membership = Membership.objects.create(workspace=workspace, user=user, role=role)
        AuditEvent.objects.create(workspace=workspace, actor=actor, action="member.add",
                                  detail={"email": user.email, "role": role})
    return membership


def memberships_for(user: User):
    return Membership.objects.filter(user=user).select_related("workspace", "workspace__plan").order_by("workspace__name")
