"""E-mails of the accounts app that leave through the queue (accounts.tasks)."""

from urllib.parse import urlsplit

from django.conf import settings

from billing.emails import email_send

from .forms import PasswordResetForm
from .sso import REFUSED, sso_password_policy


def password_reset_email_send(*, email: str) -> int:
    """Send the reset link to the active account whose address is `email`; the number sent (0 or 1).
    Django's PasswordResetForm makes the one-time token; the link is absolute from SITE_URL.

    A member of a workspace that requires SSO for their domain gets no link: the e-mail points to
    SSO instead. The page answered alike for every address, so this says nothing to a stranger."""
    form = PasswordResetForm({"email": email})
    if not form.is_valid():
        return 0
    users = list(form.get_users(form.cleaned_data["email"]))
    for user in users:
        policy, connection = sso_password_policy(user)
        if policy == REFUSED:
            return email_send(template="password_reset_sso", to=[user.email], context={
                "email": user.email, "domain": user.email.rpartition("@")[2],
                "workspace_name": connection.workspace.name})
    site = urlsplit(settings.SITE_URL)
    form.save(domain_override=site.netloc, use_https=site.scheme == "https")
    return len(users)
