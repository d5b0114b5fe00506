"""Sign-in, sign-up, invitation, password, single sign-on and two-factor forms. Passwords go through
Django's AUTH_PASSWORD_VALIDATORS."""

from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.forms import PasswordResetForm as DjangoPasswordResetForm
from django.urls import reverse

from billing.emails import email_send
from billing.forms import DayField
from billing.models import Membership, User, email_canonical, email_plain_check

from . import audit_log
from .sso import BREAK_GLASS, REFUSED, SsoError, domains_parse, sso_password_policy


class NewPasswordMixin:
    """Two password fields, checked by the configured validators against the future user."""

    def _user_for_validation(self) -> User:
        return User(email=self.cleaned_data.get("email") or getattr(self, "email", ""),
                    first_name=(self.cleaned_data.get("name") or "").partition(" ")[0])

    def clean(self):
        data = super().clean()
        password1, password2 = data.get("password1"), data.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", "The two passwords differ.")
        elif password1:
            try:
                password_validation.validate_password(password1, self._user_for_validation())
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return data


class SignupForm(NewPasswordMixin, forms.Form):
    email = forms.EmailField(label="E-mail address", max_length=254, validators=[email_plain_check])
    name = forms.CharField(label="Your name", max_length=150, required=False)
    password1 = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
                                help_text=password_validation.password_validators_help_text_html())
    password2 = forms.CharField(label="Password again", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean_email(self):
        return email_canonical(self.cleaned_data["email"])


class InvitationSignupForm(NewPasswordMixin, forms.Form):
    """A new person accepts: the address is the invitation's, so only a name and a password."""

    name = forms.CharField(label="Your name", max_length=150, required=False)
    password1 = SignupForm.base_fields["password1"]
    password2 = SignupForm.base_fields["password2"]

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address", max_length=254, validators=[email_plain_check])
    role = forms.ChoiceField(choices=[(Membership.MEMBER, "Member"), (Membership.ADMIN, "Admin")])


class TransferForm(forms.Form):
    confirm = forms.BooleanField(label="I understand: the new owner is billed and can remove me.", required=True)


class PasswordResetForm(DjangoPasswordResetForm):
    """Django's form, with two changes: people who never set a password (added by a script before
    invitations existed) may set one through the reset, and the e-mail is our text+HTML pair with a
    link built from SITE_URL rather than the request's host. It runs in the worker
    (accounts.emails), never in the request.

    The account is found by its canonical address, compared exactly: Django's own get_users keeps a
    Unicode guard after a case-insensitive match, because the database's UPPER() maps a dotless
    "admın" to "ADMIN" and would mail admin@ a reset asked for a look-alike. Exact equality of the
    canonical forms is that guard."""

    def get_users(self, email):
        return User.objects.filter(email=email_canonical(email), is_active=True)

    def send_mail(self, subject_template_name, email_template_name, context, from_email, to_email,
                  html_email_template_name=None):
        email_send(template="password_reset", to=[to_email],
                   context={**context, "timeout_days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400)})


class AuditFilterForm(forms.Form):
    """The audit log's filters; the same names in its CSV link. Actors are those of the workspace's
    own log, so no other workspace's people can be named or probed."""

    actor = forms.ChoiceField(required=False)
    kind = forms.ChoiceField(required=False, choices=[("", "Every kind")] + audit_log.KINDS)
    from_ = DayField(label="From")
    to = DayField()
    before = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    after = forms.IntegerField(required=False, min_value=0, max_value=2**63 - 1)

    def __init__(self, data, *, actors: list[tuple[str, str]], **kwargs):
        data = data.copy()
        if "from" in data:
            data["from_"] = data.get("from")
        super().__init__(data, **kwargs)
        self.fields["actor"].choices = [("", "Everyone")] + actors

    def filters(self) -> audit_log.AuditFilters:
        """The valid filters (an invalid field is reported on the form and left out)."""
        data = self.cleaned_data if self.is_bound else {}
        start, end = data.get("from_"), data.get("to")
        if start and end and end < start:
            start, end = end, start
        return audit_log.AuditFilters(actor=data.get("actor") or "", kind=data.get("kind") or "", start=start, end=end)
class LoginForm(AuthenticationForm):
    """Django's sign-in form (through authenticate(), so django-axes counts failures), which then
    refuses the password of a member of a workspace that requires SSO for their domain. The check
    comes after the password, so the answer reveals nothing about an address to someone without
    its password. The owner may still sign in (break-glass): `break_glass` holds the connection."""

    break_glass = None
    sso_url = ""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        policy, connection = sso_password_policy(user)
        if policy == REFUSED:
            self.sso_url = reverse("accounts:sso") + "?" + urlencode({"email": user.email})
            raise forms.ValidationError(
                f"{connection.workspace.name} signs in people at {user.email.rpartition('@')[2]} through single "
                f"sign-on: use Continue with SSO. Passwords are turned off for its members.", code="sso_required")
        if policy == BREAK_GLASS:
            self.break_glass = connection


class SsoStartForm(forms.Form):
    email = forms.EmailField(label="Work e-mail address", max_length=254)


class SsoSettingsForm(forms.Form):
    enabled = forms.BooleanField(label="Single sign-on is on", required=False, initial=True)
    issuer = forms.URLField(label="Issuer URL", max_length=300, assume_scheme="https",
                            help_text="Exactly as your identity provider states it (its discovery document is read from "
                                      "ISSUER/.well-known/openid-configuration).")
    client_id = forms.CharField(label="Client id", max_length=255)
    client_secret = forms.CharField(label="Client secret", max_length=1000, required=False, strip=True,
                                    widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
                                    help_text="Stored encrypted and never shown again. Leave empty to keep the stored one.")
    domains = forms.CharField(label="E-mail domains", max_length=2000,
                              help_text="Comma-separated, like example.com, example.org. A domain belongs to one "
                                        "workspace only.")
    required = forms.BooleanField(label="SSO required: members at these domains cannot sign in with a password "
                                        "(the owner still can, and it is logged)", required=False)
    default_role = forms.ChoiceField(label="Role of people who arrive through SSO",
                                     choices=[(Membership.MEMBER, "Member"), (Membership.ADMIN, "Admin")])

    def clean_domains(self):
        try:
            return domains_parse(self.cleaned_data["domains"])
        except SsoError as error:
            raise forms.ValidationError(str(error)) from None


class TwoFactorRequirementForm(forms.Form):
    two_factor_required = forms.BooleanField(
        label="Require two-factor authentication for the owner and admins", required=False)


class OtpTokenForm(forms.Form):
    token = forms.CharField(label="Code", max_length=32, strip=True,
                            widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text",
                                                          "autocapitalize": "off", "spellcheck": "false"}))
