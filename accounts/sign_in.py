"""The ways in: the password form, single sign-on (start and callback), and the second-factor step
that follows either when the person has an authenticator (docs/security.md).

Every way ends in sign_in_complete: a person with an authenticator is not signed in yet, only
remembered in the session for a few minutes while they enter a code; then Django's login() and
django_otp.login() mark the session signed in and verified."""

import time

import django_otp
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_otp.plugins.otp_static.models import StaticDevice

from billing.models import User

from .forms import LoginForm, OtpTokenForm, SsoStartForm
from .models import SsoConnection
from .oidc import SsoFailed, sso_authorization_redirect, sso_callback_verify
from .sso import SsoError, sso_break_glass_record, sso_connection_for_email, sso_member_sign_in
from .two_factor import two_factor_enabled, two_factor_throttled, two_factor_verify

PENDING_KEY = "two_factor_pending"
PENDING_SECONDS = 300
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def safe_next(request, next_url: str) -> str:
    if next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                                    require_https=request.is_secure()):
        return next_url
    return reverse("home")


def sign_in_complete(request, *, user: User, backend: str, next_url: str,
                     break_glass: SsoConnection | None = None) -> HttpResponseRedirect:
    """Sign `user` in, or first ask for their second factor when they have one."""
    next_url = safe_next(request, next_url)
    if two_factor_enabled(user):
        request.session[PENDING_KEY] = {"user_id": user.pk, "backend": backend, "next": next_url,
                                        "expires": time.time() + PENDING_SECONDS,
                                        "break_glass": break_glass.pk if break_glass else None}
        return redirect("accounts:two_factor_verify")
    login(request, user, backend=backend)
    if break_glass is not None:
        sso_break_glass_record(connection=break_glass, user=user, ip=_client_ip(request))
    return HttpResponseRedirect(next_url)


class LoginView(auth_views.LoginView):
    """Django's sign-in page with the SSO rules (accounts.forms.LoginForm) and the second factor."""

    form_class = LoginForm

    def form_valid(self, form):
        user = form.get_user()
        return sign_in_complete(self.request, user=user, backend=getattr(user, "backend", MODEL_BACKEND),
                                next_url=self.get_success_url(), break_glass=form.break_glass)


def _sso_error(request, message: str, status: int = 400):
    return render(request, "accounts/sso_error.html", {"message": message}, status=status)


def _sso_form(request, form, next_url: str, status: int = 200):
    """The page asking for the address. Its form is answered by a redirect to the provider, which
    browsers check against the page's CSP form-action: any https origin may receive it here (and
    loopback http where SSO_ALLOW_LOOPBACK allows such a provider)."""
    response = render(request, "accounts/sso_start.html", {"form": form, "next": next_url}, status=status)
    targets = ["https:"]
    if settings.SSO_ALLOW_LOOPBACK:
        targets += ["http://127.0.0.1:*", "http://localhost:*"]
    response._csp_update = {"form-action": targets}
    return response


@require_http_methods(["GET", "POST"])
def sso_start(request):
    """/accounts/sso/?email=… (GET or POST): the workspace that owns the address's domain sends the
    browser to its provider. Without an address: the form asking for it."""
    data = request.POST if request.method == "POST" else request.GET
    next_url = data.get("next", "")[:2000]
    if "email" not in data:
        return _sso_form(request, SsoStartForm(), next_url)
    form = SsoStartForm(data)
    if not form.is_valid():
        return _sso_form(request, form, next_url, status=400)
    email = form.cleaned_data["email"]
    connection = sso_connection_for_email(email)
    if connection is None:
        form.add_error("email", f"No workspace signs in addresses at {email.rpartition('@')[2]} through single "
                                f"sign-on. Sign in with your password instead.")
        return _sso_form(request, form, next_url, status=400)
    try:
        return sso_authorization_redirect(request, connection=connection, email=email,
                                          next_url=safe_next(request, next_url) if next_url else "")
    except SsoFailed as error:
        return _sso_error(request, error.message, error.status)


@require_http_methods(["GET"])
def sso_callback(request):
    """The provider sends the browser back here with a code (or an error). Any failure is a page
    naming the problem, and nobody is signed in."""
    try:
        identity = sso_callback_verify(request)
        membership = sso_member_sign_in(identity=identity)
    except SsoFailed as error:
        return _sso_error(request, error.message, error.status)
    except SsoError as error:
        return _sso_error(request, str(error), 403)
    if request.user.is_authenticated and request.user.pk != membership.user_id:
        logout(request)  # someone else was signed in in this browser: their session ends first
    next_url = identity.next_url or reverse("billing:overview", kwargs={"slug": membership.workspace.slug})
    return sign_in_complete(request, user=membership.user, backend=MODEL_BACKEND, next_url=next_url)


def _pending(request) -> tuple[User | None, dict]:
    pending = request.session.get(PENDING_KEY)
    if not isinstance(pending, dict) or pending.get("expires", 0) < time.time():
        request.session.pop(PENDING_KEY, None)
        return None, {}
    user = User.objects.filter(pk=pending.get("user_id"), is_active=True).first()
    return user, pending


@require_http_methods(["GET", "POST"])
def two_factor_verify_view(request):
    """The second step of a sign-in: a code from the authenticator app, or a recovery code."""
    user, pending = _pending(request)
    if user is None:
        messages.error(request, "Your sign-in took too long. Please sign in again.")
        return redirect("login")
    form = OtpTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = two_factor_verify(user=user, token=form.cleaned_data["token"])
        if device is not None:
            request.session.pop(PENDING_KEY, None)
            login(request, user, backend=pending["backend"])
            django_otp.login(request, device)
            if pending.get("break_glass"):
                connection = SsoConnection.objects.filter(pk=pending["break_glass"]).first()
                if connection is not None:
                    sso_break_glass_record(connection=connection, user=user, ip=_client_ip(request))
            if isinstance(device, StaticDevice):
                messages.info(request, "You used a recovery code; each works once. Make new ones under "
                                       "Two-factor authentication when few are left.")
            return HttpResponseRedirect(pending["next"])
        if two_factor_throttled(user):
            form.add_error("token", "Too many wrong codes: wait a few seconds, then enter the newest code.")
        else:
            form.add_error("token", "That code is not valid. Enter the 6-digit code your app shows now, or a "
                                    "recovery code.")
    return render(request, "accounts/two_factor_verify.html", {"form": form, "email": user.email},
                  status=400 if form.errors else 200)
