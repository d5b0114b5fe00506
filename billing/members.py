"""Who belongs to a workspace: invitations, the member cap, removal, leaving and ownership transfer.

Every change is one short transaction on the locked workspace row (so two invitations cannot
together pass the plan's member cap, and an ownership transfer cannot race a second one) that also
writes an audit row naming the actor (billing.audit). E-mail goes out after commit (billing.emails).

Invitation links carry the invitation's id and nonce, signed and timestamped with Django's
`signing` (salted, keyed with SECRET_KEY): a tampered link fails the signature, a link older than
7 days fails the timestamp and `expires_at`, a used or revoked one fails its row, and a resend draws
a new nonce so only the newest link works.
"""

import secrets
from collections.abc import Callable

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from .access_versions import access_versions_bump
from .audit import audit_record
from .emails import email_send
from .models import (INVITATION_TTL, Invitation, Membership, User, Workspace, email_canonical,
                     email_plain_check, invitation_expiry)

INVITATION_SALT = "billing.invitation"
INVITABLE_ROLES = (Membership.ADMIN, Membership.MEMBER)


class MemberLimitReached(Exception):
    pass


class MembershipError(ValueError):
    """A membership change that is not allowed; the message is shown to the user."""


class InvitationInvalid(Exception):
    """An invitation link that cannot be used. `status` is what the page answers: 404 for a link we
    never issued (tampered), 410 for one that was ours but is used, revoked, superseded or expired."""

    def __init__(self, message: str, status: int = 410):
        super().__init__(message)
        self.message = message
        self.status = status


# --- The member cap ------------------------------------------------------------------------------

def member_cap(*, workspace: Workspace, plan=None) -> int | None:
    """How many people the workspace may hold: 1 for a personal workspace, else the plan's cap
    (None: unlimited)."""
    if workspace.kind == Workspace.PERSONAL:
        return 1
    return (plan or workspace.plan).max_members


def seats_taken(*, workspace: Workspace, now=None, exclude_invitation: Invitation | None = None) -> int:
    """Members plus pending (open, unexpired) invitations: an invitation holds its seat until it is
    accepted, revoked or expires."""
    now = now or timezone.now()
    invitations = Invitation.objects.filter(workspace=workspace, accepted_at__isnull=True, revoked_at__isnull=True,
                                            expires_at__gt=now)
    if exclude_invitation is not None:
        invitations = invitations.exclude(pk=exclude_invitation.pk)
    return Membership.objects.filter(workspace=workspace).count() + invitations.count()


def seats_over_cap(*, workspace: Workspace, plan=None, adding: int = 0, taken: int | None = None,
                   exclude_invitation: Invitation | None = None) -> int:
    """How many seats the workspace would be past the cap of `plan` (default: its own) with `adding`
    more people: 0 when it fits. `taken` is seats_taken() when the caller already counted it."""
    cap = member_cap(workspace=workspace, plan=plan)
    if cap is None:
        return 0
    if taken is None:
        taken = seats_taken(workspace=workspace, exclude_invitation=exclude_invitation)
    return max(taken + adding - cap, 0)


def member_cap_check(*, workspace: Workspace, adding: int = 1, exclude_invitation: Invitation | None = None) -> None:
    """Raise MemberLimitReached if `adding` more people would pass the cap. Call it with the
    workspace row locked so that concurrent additions are counted one after the other."""
    if seats_over_cap(workspace=workspace, adding=adding, exclude_invitation=exclude_invitation):
        cap = member_cap(workspace=workspace)
        raise MemberLimitReached(
            f"The {workspace.plan.name} plan allows {cap} member{'s' if cap != 1 else ''} "
            f"(pending invitations count). Upgrade, or revoke an invitation, to add more.")


def _lock(workspace: Workspace) -> Workspace:
    return Workspace.objects.select_for_update(of=("self",)).select_related("plan").get(pk=workspace.pk)


# --- Invitations ---------------------------------------------------------------------------------

def invitation_token(*, invitation: Invitation) -> str:
    return signing.dumps({"i": invitation.pk, "n": invitation.nonce}, salt=INVITATION_SALT)


def invitation_url(*, invitation: Invitation) -> str:
    return settings.SITE_URL + reverse("accounts:invitation", kwargs={"token": invitation_token(invitation=invitation)})


def _invitation_email_schedule(invitation: Invitation) -> None:
    invitation_id = invitation.pk
    transaction.on_commit(lambda: invitation_email_send(invitation_id=invitation_id), robust=True)


def invitation_email_send(*, invitation_id: int) -> int:
    invitation = Invitation.objects.select_related("workspace", "invited_by").filter(pk=invitation_id).first()
    if invitation is None or not invitation.is_open:
        return 0
    inviter = invitation.invited_by
    return email_send(template="invitation", to=[invitation.email], context={
        "invitation": invitation, "workspace": invitation.workspace, "role": invitation.get_role_display(),
        "inviter": inviter.display_name if inviter else "LenserFight", "url": invitation_url(invitation=invitation),
        "expires_at": invitation.expires_at, "existing_account": User.objects.filter(email=invitation.email).exists(),
    })


def invitation_create(*, workspace: Workspace, email: str, role: str, actor: User | None) -> Invitation:
    """Invite `email` with `role` and e-mail the link. Inviting an address that already has an open
    invitation sends it again (with the new role)."""
    if role not in INVITABLE_ROLES:
        raise MembershipError("Choose admin or member.")
    email = email_canonical(email)
    if not email:
        raise MembershipError("Enter an e-mail address.")
    try:
        email_plain_check(email)
    except ValidationError as error:
        raise MembershipError(error.messages[0]) from None
    now = timezone.now()
    with transaction.atomic():
        workspace = _lock(workspace)
        if Membership.objects.filter(workspace=workspace, user__email=email).exists():
            raise MembershipError(f"{email} is already a member of this workspace.")
        existing = Invitation.objects.select_for_update().filter(
            workspace=workspace, email=email, accepted_at__isnull=True, revoked_at__isnull=True).first()
        member_cap_check(workspace=workspace, exclude_invitation=existing)
        if existing:
            existing.role, existing.nonce, existing.sent_at, existing.expires_at = (
                role, secrets.token_hex(16), now, invitation_expiry(now))
            existing.invited_by = actor
            existing.save(update_fields=["role", "nonce", "sent_at", "expires_at", "invited_by"])
            invitation = existing
        else:
            invitation = Invitation.objects.create(workspace=workspace, email=email, role=role, invited_by=actor,
                                                   nonce=secrets.token_hex(16), created_at=now, sent_at=now,
                                                   expires_at=invitation_expiry(now))
        audit_record(workspace_id=workspace.pk, actor=actor, action="invitation.create",
                     after={"email": email, "role": role, "invitation_id": invitation.pk})
        _invitation_email_schedule(invitation)
    return invitation


def invitation_resend(*, invitation: Invitation, actor: User | None) -> Invitation:
    """A new link (new nonce, 7 more days); the previous link stops working."""
    now = timezone.now()
    with transaction.atomic():
        workspace = _lock(invitation.workspace)
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if not invitation.is_open:
            raise MembershipError("This invitation was already accepted or revoked.")
        if invitation.expires_at <= now:
            # An expired invitation gave its seat back: taking it again must fit the cap.
            member_cap_check(workspace=workspace, exclude_invitation=invitation)
        invitation.nonce, invitation.sent_at, invitation.expires_at = secrets.token_hex(16), now, invitation_expiry(now)
        invitation.save(update_fields=["nonce", "sent_at", "expires_at"])
        audit_record(workspace_id=invitation.workspace_id, actor=actor, action="invitation.resend",
                     after={"email": invitation.email, "invitation_id": invitation.pk})
        _invitation_email_schedule(invitation)
    return invitation


def invitation_revoke(*, invitation: Invitation, actor: User | None) -> Invitation:
    with transaction.atomic():
        changed = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True,
                                            revoked_at__isnull=True).update(revoked_at=timezone.now())
        if changed:
            audit_record(workspace_id=invitation.workspace_id, actor=actor, action="invitation.revoke",
                         after={"email": invitation.email, "invitation_id": invitation.pk})
    invitation.refresh_from_db()
    return invitation


def invitation_from_token(*, token: str, now=None) -> Invitation:
    """The open invitation a link stands for, or InvitationInvalid saying why not."""
    now = now or timezone.now()
    try:
        data = signing.loads(token, salt=INVITATION_SALT, max_age=INVITATION_TTL)
    except signing.SignatureExpired:
        raise InvitationInvalid("This invitation has expired. Ask the workspace owner to send it again.") from None
    except signing.BadSignature:
        raise InvitationInvalid("This invitation link is not valid. Check that you copied all of it.", 404) from None
    if not isinstance(data, dict) or not isinstance(data.get("i"), int) or not isinstance(data.get("n"), str):
        raise InvitationInvalid("This invitation link is not valid.", 404)
    invitation = Invitation.objects.select_related("workspace", "workspace__plan").filter(pk=data["i"]).first()
    if invitation is None or invitation.revoked_at is not None:
        raise InvitationInvalid("This invitation was withdrawn.")
    if invitation.accepted_at is not None:
        raise InvitationInvalid("This invitation was already used. Sign in to reach the workspace.")
    if not secrets.compare_digest(invitation.nonce, data["n"]):
        raise InvitationInvalid("A newer invitation was sent to this address; use the link in the latest e-mail.")
    if invitation.expires_at <= now:
        raise InvitationInvalid("This invitation has expired. Ask the workspace owner to send it again.")
    return invitation


def invitation_accept(*, token: str, user: User | None = None, email: str = "", password: str = "",
                      name: str = "") -> Membership:
    """Use an invitation link once: `user` (signed in, with the invited address) joins, or a new
    account is created for the invited address with `password` (already validated by the form).
    The used-once rule is a conditional UPDATE, so two tabs submitting at once make one membership."""
    invitation = invitation_from_token(token=token)
    now = timezone.now()
    with transaction.atomic():
        workspace = _lock(invitation.workspace)
        if user is None:
            if User.objects.filter(email=invitation.email).exists():
                raise InvitationInvalid("An account with this address exists: sign in to accept.", 409)
            first, _, last = (name or "").strip().partition(" ")
            user = User.objects.create_user(email=invitation.email, password=password, first_name=first[:150],
                                            last_name=last[:150])
        elif user.email.lower() != invitation.email:
            raise InvitationInvalid(f"This invitation is for {invitation.email}; you are signed in as {user.email}.", 403)
        if not Invitation.objects.filter(pk=invitation.pk, nonce=invitation.nonce, accepted_at__isnull=True,
                                         revoked_at__isnull=True).update(accepted_at=now, accepted_by=user):
            raise InvitationInvalid("This invitation was already used. Sign in to reach the workspace.")
        membership = Membership.all_objects.filter(workspace=workspace, user=user).first()
        if membership is not None and membership.removed_at is None:
            return membership  # already a member (joined another way meanwhile): nothing to add
        member_cap_check(workspace=workspace, adding=1, exclude_invitation=invitation)
        if membership is not None:  # a former member comes back: their history stays on the same row
            membership.removed_at, membership.role, membership.monthly_budget = None, invitation.role, None
            membership.save(update_fields=["removed_at", "role", "monthly_budget"])
        else:
            membership = Membership.objects.create(workspace=workspace, user=user, role=invitation.role, created_at=now)
        audit_record(workspace_id=workspace.pk, actor=user, action="invitation.accept",
                     after={"email": user.email, "role": invitation.role, "invitation_id": invitation.pk,
                            "invited_by": invitation.invited_by.email if invitation.invited_by else None})
    return membership


def invitations_pending(*, workspace: Workspace):
    """Open invitations, newest first (expired ones too: they can be resent)."""
    return Invitation.objects.filter(workspace=workspace, accepted_at__isnull=True, revoked_at__isnull=True) \
        .select_related("invited_by").order_by("-sent_at")


# --- Membership changes --------------------------------------------------------------------------

def _current(membership_id: int) -> Membership | None:
    """A membership as it is now (None once ended). Read under the workspace lock: a role checked on
    a row loaded before the lock may have changed meanwhile (a demoted admin, a promoted member)."""
    return Membership.objects.select_related("user").filter(pk=membership_id).first()


def _locked_target(membership: Membership) -> Membership:
    """Lock the workspace (inside the caller's transaction), then read `membership` as it is now."""
    _lock(membership.workspace)
    target = _current(membership.pk)
    if target is None:
        raise MembershipError("That person is no longer a member of this workspace.")
    return target


def _membership_end(*, membership: Membership, actor: User | None, action: str,
                    refusal: Callable[[Membership], str] = lambda target: "") -> Membership:
    """Mark the membership removed, when `refusal` (given the target as it is under the workspace
    lock) has no objection. Pages, the API and caps stop seeing it at once (the default manager
    hides it; token authentication refuses tokens of an ended membership). The caller in
    accounts.services also revokes the member's tokens in the same transaction."""
    now = timezone.now()
    with transaction.atomic():
        target = _locked_target(membership)
        if target.role == Membership.OWNER:
            raise MembershipError("The owner cannot leave or be removed; transfer ownership first.")
        reason = refusal(target)
        if reason:
            raise MembershipError(reason)
        Membership.objects.filter(pk=target.pk).update(removed_at=now)
        audit_record(workspace_id=membership.workspace_id, actor=actor, action=action,
                     before={"email": target.user.email, "role": target.role},
                     after={"email": target.user.email, "removed": True})
    membership.removed_at = now
    return membership


def member_remove(*, membership: Membership, actor: Membership) -> Membership:
    """The owner removes anyone else; an admin removes members (not other admins, not the owner).
    Both roles are read under the workspace lock."""
    if membership.pk == actor.pk:
        raise MembershipError("To leave the workspace, use Leave.")

    def refusal(target: Membership) -> str:
        acting = _current(actor.pk)
        if acting is None or acting.role not in (Membership.OWNER, Membership.ADMIN):
            return "Only the owner and admins can remove members."
        if acting.role == Membership.ADMIN and target.role == Membership.ADMIN:
            return "Only the owner can remove an admin."
        return ""

    return _membership_end(membership=membership, actor=actor.user, action="member.remove", refusal=refusal)


def member_leave(*, membership: Membership) -> Membership:
    if membership.role == Membership.OWNER:
        raise MembershipError("The owner cannot leave; transfer ownership to another member first.")
    return _membership_end(membership=membership, actor=membership.user, action="member.leave")


def member_role_set(*, membership: Membership, role: str, actor: User | None) -> Membership:
    """Make a member an admin or back. The owner changes anyone's role but their own (one owner per
    workspace: ownership moves by transfer); an admin changes members' roles only; `actor` None is
    staff or a script. The roles are read under the workspace lock."""
    if role not in INVITABLE_ROLES:
        raise MembershipError("Choose admin or member.")
    with transaction.atomic():
        target = _locked_target(membership)
        if target.role == Membership.OWNER:
            raise MembershipError("The owner's role cannot be changed.")
        if actor is not None:
            acting = Membership.objects.filter(workspace_id=target.workspace_id, user=actor).first()
            if acting is None or acting.role not in (Membership.OWNER, Membership.ADMIN):
                raise MembershipError("Only the owner and admins can change roles.")
            if acting.role != Membership.OWNER and target.role == Membership.ADMIN:
                raise MembershipError("Only the owner can change an admin's role.")
        Membership.objects.filter(pk=target.pk).update(role=role)
        access_versions_bump(workspace_ids=[target.workspace_id])  # cached API tokens carry the roles
        audit_record(workspace_id=target.workspace_id, actor=actor, action="member.role_set",
                     before={"email": target.user.email, "role": target.role},
                     after={"email": target.user.email, "role": role})
    membership.role = role
    return membership


def ownership_transfer(*, workspace: Workspace, new_owner: Membership, actor: User) -> Membership:
    """The owner hands the workspace to another member, who becomes owner; the former owner becomes
    an admin. The one-owner constraint holds at every statement: the old owner steps down first."""
    with transaction.atomic():
        _lock(workspace)
        current = Membership.objects.select_for_update().filter(workspace=workspace, role=Membership.OWNER).first()
        if current is None or current.user_id != actor.pk:
            raise MembershipError("Only the owner can transfer ownership.")
        target = Membership.objects.select_for_update().filter(pk=new_owner.pk, workspace=workspace).first()
        if target is None:
            raise MembershipError("That person is not a member of this workspace.")
        if target.pk == current.pk:
            raise MembershipError("You already own this workspace.")
        Membership.objects.filter(pk=current.pk).update(role=Membership.ADMIN)
        Membership.objects.filter(pk=target.pk).update(role=Membership.OWNER)
        access_versions_bump(workspace_ids=[workspace.pk])  # cached API tokens carry the roles
        audit_record(workspace_id=workspace.pk, actor=actor, action="workspace.ownership_transfer",
                     before={"owner": current.user.email, "new_owner_role": target.role},
                     after={"owner": target.user.email, "previous_owner_role": Membership.ADMIN})
    target.role = Membership.OWNER
    return target
