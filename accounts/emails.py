"""E-mails of the accounts app that leave through the queue (accounts.tasks)."""

from urllib.parse import urlsplit

from django.conf import settings

from .forms import PasswordResetForm


def password_reset_email_send(*, email: str) -> int:
    """Send the reset link to the active account whose address is `email`; the number sent (0 or 1).
    Django's PasswordResetForm makes the one-time token; the link is absolute from SITE_URL."""
    form = PasswordResetForm({"email": email})
    if not form.is_valid():
        return 0
    users = list(form.get_users(form.cleaned_data["email"]))
    site = urlsplit(settings.SITE_URL)
    form.save(domain_override=site.netloc, use_https=site.scheme == "https")
    return len(users)
