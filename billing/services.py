"""Users and members. Creating a workspace also creates its budget row, so it lives a layer up,
in budgets/workspaces.py."""

from django.db import transaction

from .audit import audit_record
from .members import MemberLimitReached, member_cap_check
from .models import Membership, User, Workspace, email_canonical

__all__ = ["MemberLimitReached", "member_add", "memberships_for", "user_get_or_create"]


def user_get_or_create(*, email: str, password: str | None = None, name: str = "") -> User:
    email = email_canonical(email)
    user = User.objects.filter(email=email).first()
    if user is None:
        first, _, last = name.partition(" ")
        user = User.objects.create_user(email=email, password=password, first_name=first, last_name=last)
    elif password:
        user.set_password(password)
        user.save(update_fields=["password"])
    return user


def member_add(*, workspace: Workspace, user: User, role: str = Membership.MEMBER, actor=None,
               via: str = "") -> Membership:
    """Add a person directly (scripts, the demo, staff, a first single sign-on): no invitation. The
    plan's member cap, pending invitations included, applies; a former member is re-activated on
    their old row. `via` names the way in for the audit log ("sso")."""
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
        audit_record(workspace_id=workspace.pk, actor=actor, action="member.add",
                     after={"email": user.email, "role": role, **({"via": via} if via else {})})
    return membership


def memberships_for(user: User):
    return Membership.objects.filter(user=user).select_related("workspace", "workspace__plan").order_by("workspace__name")


def current_membership(user: User) -> Membership | None:
    """The workspace a signed-in person is in: the one they used last, else their first."""
    memberships = memberships_for(user)
    membership = None
    if user.last_workspace_id:
        membership = memberships.filter(workspace_id=user.last_workspace_id).first()
    return membership or memberships.first()
