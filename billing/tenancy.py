"""One way to load a workspace for a request: the membership decides, and outsiders get 404 so a
workspace's existence is never revealed (SPEC section 5)."""

from django.core.exceptions import PermissionDenied
from django.http import Http404

from .models import Membership, User


class TwoFactorRequired(PermissionDenied):
    """The workspace requires owners and admins to sign in with a second factor, and this session
    has not. accounts.middleware turns it into a redirect to the enrolment (or code) page."""

    def __init__(self, workspace):
        super().__init__(f"{workspace.name} requires two-factor authentication for owners and admins.")
        self.workspace = workspace


def membership_for(request, slug: str, *, manage: bool = False) -> Membership:
    """The signed-in user's membership of workspace `slug`, with the workspace, plan, wallet and
    budget loaded. `manage=True` requires owner or admin (403 for a member)."""
    membership = (
        Membership.objects.select_related("workspace__plan", "workspace__wallet", "workspace__budget", "user")
        .filter(workspace__slug=slug, user_id=request.user.pk)
        .first()
    )
    if membership is None:
        raise Http404("No such workspace.")
    request.membership = membership  # the navigation shows on the 403 page too
    user = request.user
    if user.last_workspace_id != membership.workspace_id:
        # Remembered for the landing page after the next login; written only when it changes.
        User.objects.filter(pk=user.pk).update(last_workspace=membership.workspace_id)
        user.last_workspace_id = membership.workspace_id
    if membership.workspace.two_factor_required and membership.can_manage_billing and not _verified(user):
        raise TwoFactorRequired(membership.workspace)
    if manage and not membership.can_manage_billing:
        raise PermissionDenied("Only the workspace owner and admins can do this.")
    return membership


def _verified(user) -> bool:
    """Whether this session passed a second factor (django-otp's middleware installs is_verified)."""
    is_verified = getattr(user, "is_verified", None)
    return bool(is_verified and is_verified())
