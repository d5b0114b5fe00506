"""Sign-up, invitation links, and the membership changes of the Members page (remove, leave,
transfer ownership, resend and revoke invitations). Workspace routes load the workspace through
billing.tenancy.membership_for: outsiders get 404, members 403 on manage actions."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.views.decorators.http import require_POST

from billing.members import (InvitationInvalid, MemberLimitReached, MembershipError, invitation_accept,
                             invitation_from_token, invitation_resend, invitation_revoke, ownership_transfer)
from billing.models import Invitation, Membership, User
from billing.tenancy import membership_for

from . import audit_log
from .forms import AuditFilterForm, InvitationSignupForm, PasswordResetForm, SignupForm, TransferForm
from .services import (EmailTaken, SignupThrottled, Throttled, account_signup, member_leave, member_remove,
                       password_reset_request, personal_workspace_create, signup_attempt_count)


def _client_ip(request) -> str:
    # REMOTE_ADDR: behind a proxy, the deployment sets it from the proxy's header (docs/teams.md).
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def signup(request):
    if not settings.SIGNUP_ENABLED:
        raise Http404("Sign-up is switched off.")
    if request.user.is_authenticated:
        # Someone signed in with no workspace left (they left or were removed) may start a personal one.
        if request.method == "POST" and not Membership.objects.filter(user=request.user).exists():
            workspace = personal_workspace_create(user=request.user)
            messages.success(request, f"{workspace.name} is ready with its Free credits.")
            return redirect("billing:overview", slug=workspace.slug)
        return redirect("home")
    form = SignupForm()
    if request.method == "POST":
        try:
            signup_attempt_count(ip=_client_ip(request), limit=settings.SIGNUP_ATTEMPTS_PER_HOUR)
        except SignupThrottled as error:
            response = render(request, "accounts/signup.html", {"form": form, "throttled": True}, status=429)
            response["Retry-After"] = str(error.retry_after)
            return response
        form = SignupForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                workspace = account_signup(email=data["email"], password=data["password1"], name=data["name"])
            except EmailTaken:
                form.add_error("email", "An account with this address exists. Sign in, or reset the password.")
            else:
                # Through Django's authentication (and any throttling backend configured there).
                user = authenticate(request, username=data["email"], password=data["password1"])
                if user is not None:
                    login(request, user)
                messages.success(request, f"Welcome! {workspace.name} is ready with its Free credits.")
                return redirect("billing:overview", slug=workspace.slug)
    return render(request, "accounts/signup.html", {"form": form})


def invitation(request, token):
    """Open an invitation link: a new person sets a password, a signed-in person with the invited
    address accepts, anyone else is asked to sign in. Invalid links answer 404 (never issued) or
    410 (used, revoked, superseded, expired)."""
    try:
        invite = invitation_from_token(token=token)
    except InvitationInvalid as error:
        return render(request, "accounts/invitation_invalid.html", {"message": error.message}, status=error.status)
    user = request.user if request.user.is_authenticated else None
    wrong_user = user is not None and user.email.lower() != invite.email
    has_account = user is None and User.objects.filter(email=invite.email).exists()
    form = InvitationSignupForm(email=invite.email) if user is None and not has_account else None
    context = {"invite": invite, "has_account": has_account, "wrong_user": wrong_user,
               "login_url": reverse("login") + "?" + urlencode({"next": request.path})}
    if request.method != "POST" or wrong_user or has_account:
        status = 403 if wrong_user and request.method == "POST" else 200
        return render(request, "accounts/invitation.html", {**context, "form": form}, status=status)
    if user is None:
        form = InvitationSignupForm(request.POST, email=invite.email)
        if not form.is_valid():
            return render(request, "accounts/invitation.html", {**context, "form": form})
    password = form.cleaned_data["password1"] if form else ""
    try:
        membership = invitation_accept(token=token, user=user, password=password,
                                       name=form.cleaned_data["name"] if form else "")
    except InvitationInvalid as error:
        return render(request, "accounts/invitation_invalid.html", {"message": error.message}, status=error.status)
    except MemberLimitReached as error:
        return render(request, "accounts/invitation_invalid.html", {"message": str(error)}, status=409)
    if user is None:
        # Signed in through Django's authentication, like the login form.
        user = authenticate(request, username=invite.email, password=password)
        if user is not None:
            login(request, user)
    messages.success(request, f"You joined {membership.workspace.name} as {membership.get_role_display().lower()}.")
    return redirect("billing:overview", slug=membership.workspace.slug)


# --- Members page actions (POST, then back to Members) ------------------------------------------

def _members(slug):
    return redirect("budgets:members", slug=slug)


@require_POST
@login_required
def invitation_resend_view(request, slug, invitation_id):
    membership = membership_for(request, slug, manage=True)
    invite = get_object_or_404(Invitation, pk=invitation_id, workspace=membership.workspace)
    try:
        invitation_resend(invitation=invite, actor=request.user)
    except (MembershipError, MemberLimitReached) as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Invitation sent again to {invite.email}; the previous link no longer works.")
    return _members(slug)


@require_POST
@login_required
def invitation_revoke_view(request, slug, invitation_id):
    membership = membership_for(request, slug, manage=True)
    invite = get_object_or_404(Invitation, pk=invitation_id, workspace=membership.workspace)
    invitation_revoke(invitation=invite, actor=request.user)
    messages.success(request, f"Invitation to {invite.email} revoked.")
    return _members(slug)


@require_POST
@login_required
def member_remove_view(request, slug, membership_id):
    membership = membership_for(request, slug, manage=True)
    target = get_object_or_404(Membership.objects.select_related("user"), pk=membership_id,
                               workspace=membership.workspace)
    try:
        member_remove(membership=target, actor=membership)
    except MembershipError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{target.user.email} was removed; their developer tokens no longer work.")
    return _members(slug)


@require_POST
@login_required
def member_leave_view(request, slug):
    membership = membership_for(request, slug)
    try:
        member_leave(membership=membership)
    except MembershipError as error:
        messages.error(request, str(error))
        return _members(slug)
    messages.success(request, f"You left {membership.workspace.name}.")
    return redirect("home")


@login_required
def ownership_transfer_view(request, slug, membership_id):
    membership = membership_for(request, slug, manage=True)
    target = get_object_or_404(Membership.objects.select_related("user"), pk=membership_id,
                               workspace=membership.workspace)
    if membership.role != Membership.OWNER:
        messages.error(request, "Only the owner can transfer ownership.")
        return _members(slug)
    form = TransferForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            ownership_transfer(workspace=membership.workspace, new_owner=target, actor=request.user)
        except MembershipError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, f"{target.user.email} now owns {membership.workspace.name}; you are an admin.")
        return _members(slug)
    return render(request, "accounts/transfer.html", {"target": target, "form": form},
                  status=400 if request.method == "POST" else 200)


# --- Password reset and change: Django's views with the portal's templates ----------------------

class PasswordResetView(auth_views.PasswordResetView):
    """Django's page; the e-mail is queued (accounts.services.password_reset_request), so a known and
    an unknown address get the same answer in the same time, also when the mail server is down."""

    form_class = PasswordResetForm
    template_name = "registration/password_reset_form.html"
    success_url = reverse_lazy("password_reset_done")

    def form_valid(self, form):
        try:
            password_reset_request(email=form.cleaned_data["email"], ip=_client_ip(self.request))
        except Throttled as error:
            response = self.render_to_response(self.get_context_data(form=form, throttled=True), status=429)
            response["Retry-After"] = str(error.retry_after)
            return response
        return redirect(self.success_url)


# --- Settings -> Audit log (issue 32): owners and admins read who changed what ---------------------

def _audit_form(request, workspace) -> AuditFilterForm:
    return AuditFilterForm(request.GET, actors=audit_log.audit_actors(workspace=workspace))


@login_required
def audit_log_page(request, slug):
    workspace = membership_for(request, slug, manage=True).workspace
    form = _audit_form(request, workspace)
    form.is_valid()  # an invalid field shows its error and is left out of the filters
    filters = form.filters()
    page = audit_log.audit_page(workspace=workspace, filters=filters, before=form.cleaned_data.get("before"),
                                after=form.cleaned_data.get("after"))
    return render(request, "accounts/audit_log.html", {"form": form, "filters": filters,
                                                       "query": filters.as_query(), "page": page})


@login_required
def audit_log_csv(request, slug):
    workspace = membership_for(request, slug, manage=True).workspace
    form = _audit_form(request, workspace)
    if not form.is_valid():
        problems = "; ".join(f"{name.rstrip('_')}: {' '.join(errors)}" for name, errors in form.errors.items())
        return HttpResponse(f"Invalid filters ({problems})\n", status=400, content_type="text/plain; charset=utf-8")
    response = StreamingHttpResponse(audit_log.audit_csv_rows(workspace=workspace, filters=form.filters()),
                                     content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="audit-{workspace.slug}-{timezone.now():%Y%m%d}.csv"'
    response["Cache-Control"] = "no-store"
    return response
