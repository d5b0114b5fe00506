"""Users and members. Creating a workspace also creates its budget row, so it lives a layer up,
in budgets/workspaces.py."""

from django.db import transaction

from django.utils import timezone

from .models import AuditEvent, Invitation, Membership, Plan, User, Workspace


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


def member_count(*, workspace: Workspace, exclude_invitation: Invitation | None = None) -> int:
    """The seats taken against the member cap: members plus pending (open, unexpired) invitations.
    An invitation holds its seat until it is accepted, revoked or expires."""
    invitations = Invitation.objects.filter(workspace=workspace, accepted_at__isnull=True, revoked_at__isnull=True,
                                            expires_at__gt=timezone.now())
    if exclude_invitation is not None:
        invitations = invitations.exclude(pk=exclude_invitation.pk)
    return Membership.objects.filter(workspace=workspace).count() + invitations.count()


def member_cap_check(*, workspace: Workspace, adding: int = 1, exclude_invitation: Invitation | None = None) -> None:
    """Raise MemberLimitReached if `adding` more people would pass the cap. Call it with the
    workspace row locked, so that concurrent additions are counted one after the other."""
    cap = member_cap(workspace=workspace)
    if cap is None:
        return
    if member_count(workspace=workspace, exclude_invitation=exclude_invitation) + adding > cap:
        raise MemberLimitReached(
            f"The {workspace.plan.name} plan allows {cap} member{'s' if cap != 1 else ''} "
            f"(pending invitations count). Upgrade, or revoke an invitation, to add more.")


def member_add(*, workspace: Workspace, user: User, role: str = Membership.MEMBER, actor=None) -> Membership:
    """Add a person directly (scripts, the demo, staff): no invitation. The plan's member cap,
    pending invitations included, applies; a former member is re-activated on their old row."""
    if role == Membership.OWNER:
        raise ValueError("A workspace has exactly one owner; add an admin or a member.")
    with transaction.atomic():
        workspace = Workspace.objects.select_for_update(of=("self",)).select_related("plan").get(pk=workspace.pk)
        existing = Membership.all_objects.filter(workspace=workspace, user=user).first()
        if existing and existing.removed_at is None:
            return existing
        member_cap_check(workspace=workspace)
        if existing:
            existing.removed_at, existing.role, existing.monthly_budget = None, role, None
            existing.save(update_fields=["removed_at", "role", "monthly_budget"])
            membership = existing
        else:
            membership = Membership.objects.create(workspace=workspace, user=user, role=role)
        AuditEvent.objects.create(workspace=workspace, actor=actor, action="member.add",
                                  detail={"email": user.email, "role": role})
    return membership


def memberships_for(user: User):
    return Membership.objects.filter(user=user).select_related("workspace", "workspace__plan").order_by("workspace__name")
