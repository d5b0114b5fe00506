"""Settings → Security of a workspace (single sign-on, the two-factor requirement) and a person's
own two-factor page. The owner changes the workspace's settings; admins see them; members get 403."""

import django_otp
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from billing.models import Membership
from billing.tenancy import membership_for

from .forms import OtpTokenForm, SsoSettingsForm, TwoFactorRequirementForm
from .models import SsoConnection
from .oidc import sso_redirect_uri
from .sign_in import safe_next
from .sso import SsoError, sso_available, sso_settings_set
from .two_factor import (TwoFactorError, recovery_codes_left, recovery_codes_regenerate, totp_enrolment_confirm,
                         totp_enrolment_start, totp_pending, totp_qr_data_uri, totp_secret_text, two_factor_enabled,
                         two_factor_remove, two_factor_requirement_set, two_factor_verify)


def _owner_only(membership: Membership) -> None:
    if membership.role != Membership.OWNER:
        raise PermissionDenied("Only the workspace owner can change its security settings.")


def _sso_initial(connection: SsoConnection | None) -> dict:
    if connection is None:
        return {"enabled": True, "default_role": Membership.MEMBER}
    return {"enabled": connection.enabled, "issuer": connection.issuer, "client_id": connection.client_id,
            "domains": ", ".join(connection.domain_names), "required": connection.required,
            "default_role": connection.default_role}


def _security_page(request, membership, *, sso_form=None, two_factor_form=None, status=200):
    workspace = membership.workspace
    connection = SsoConnection.objects.filter(workspace=workspace).prefetch_related("domains").first()
    return render(request, "accounts/security.html", {
        "connection": connection,
        "sso_form": sso_form or SsoSettingsForm(initial=_sso_initial(connection)),
        "two_factor_form": two_factor_form or TwoFactorRequirementForm(
            initial={"two_factor_required": workspace.two_factor_required}),
        "sso_available": sso_available(workspace),
        "is_owner": membership.role == Membership.OWNER,
        "redirect_uri": sso_redirect_uri(),
        "own_two_factor": two_factor_enabled(request.user),
    }, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def security_view(request, slug):
    """GET the page; POST the SSO settings (owner only)."""
    membership = membership_for(request, slug, manage=True)
    if request.method == "GET":
        return _security_page(request, membership)
    _owner_only(membership)
    form = SsoSettingsForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            sso_settings_set(workspace=membership.workspace, actor=request.user, issuer=data["issuer"],
                             client_id=data["client_id"], client_secret=data["client_secret"] or None,
                             domains=data["domains"], required=data["required"], default_role=data["default_role"],
                             enabled=data["enabled"])
        except SsoError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Single sign-on settings saved." if data["enabled"]
                             else "Single sign-on is off; its settings are kept.")
            return redirect("accounts:security", slug=slug)
    return _security_page(request, membership, sso_form=form, status=400)


@login_required
@require_POST
def security_two_factor_view(request, slug):
    """POST the workspace's two-factor requirement (owner only)."""
    membership = membership_for(request, slug, manage=True)
    _owner_only(membership)
    form = TwoFactorRequirementForm(request.POST)
    if form.is_valid():
        required = form.cleaned_data["two_factor_required"]
        try:
            two_factor_requirement_set(workspace=membership.workspace, required=required, actor=request.user)
        except TwoFactorError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Owners and admins now need two-factor authentication." if required
                             else "Two-factor authentication is no longer required.")
            return redirect("accounts:security", slug=slug)
    return _security_page(request, membership, two_factor_form=form, status=400)


# --- A person's own second factor --------------------------------------------------------------

def _two_factor_page(request, *, codes=None, form=None, status=200):
    pending = totp_pending(user=request.user)
    enabled = two_factor_enabled(request.user)
    verified = request.user.is_verified()
    return render(request, "accounts/two_factor.html", {
        "enabled": enabled, "verified": verified, "pending": pending,
        "qr": totp_qr_data_uri(pending) if pending and not enabled else "",
        "secret": totp_secret_text(pending) if pending and not enabled else "",
        "codes": codes, "codes_left": recovery_codes_left(request.user) if enabled else 0,
        "form": form or OtpTokenForm(), "next": safe_next(request, request.GET.get("next", "")),
    }, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def two_factor_view(request):
    """The person's two-factor page. POST action=start makes a new authenticator secret (QR code),
    action=confirm checks a code from it and shows the recovery codes once, action=verify proves a
    code for this session (an authenticator added elsewhere), action=codes makes new recovery codes,
    action=remove turns two-factor off (with a code)."""
    if request.method == "GET":
        return _two_factor_page(request)
    action = request.POST.get("action")
    form = OtpTokenForm(request.POST)
    try:
        if action == "start":
            totp_enrolment_start(user=request.user)
            return redirect(request.get_full_path())
        if action == "codes":
            return _two_factor_page(request, codes=recovery_codes_regenerate(user=request.user))
        if action not in ("confirm", "verify", "remove"):
            return _two_factor_page(request, status=400)
        if not form.is_valid():
            return _two_factor_page(request, form=form, status=400)
        token = form.cleaned_data["token"]
        if action == "confirm":
            device, codes = totp_enrolment_confirm(user=request.user, token=token)
            django_otp.login(request, device)  # the code just proved it: this session is verified
            messages.success(request, "Two-factor authentication is on. Keep the recovery codes below somewhere safe.")
            return _two_factor_page(request, codes=codes)
        if action == "verify":
            device = two_factor_verify(user=request.user, token=token)
            if device is None:
                raise TwoFactorError("That code is not valid. Enter the code your app shows now, or a recovery code.")
            django_otp.login(request, device)
            return redirect(safe_next(request, request.GET.get("next", "")))
        two_factor_remove(user=request.user, token=token)
        request.session.pop(django_otp.DEVICE_ID_SESSION_KEY, None)
        messages.success(request, "Two-factor authentication is off.")
        return redirect("accounts:two_factor")
    except TwoFactorError as error:
        form.add_error(None, str(error))
        return _two_factor_page(request, form=form, status=400)
