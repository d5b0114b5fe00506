"""Sign-up, invitation and password forms. Passwords go through Django's AUTH_PASSWORD_VALIDATORS."""

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.forms import PasswordResetForm as DjangoPasswordResetForm

from billing.emails import email_send
from billing.forms import DayField
from billing.models import Membership, User, email_canonical, email_plain_check

from . import audit_log


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
