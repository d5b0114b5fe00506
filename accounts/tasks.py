"""Thin Celery tasks of the accounts app: load by key, call one function."""

from celery import shared_task

from .emails import password_reset_email_send


@shared_task
def send_password_reset(email: str) -> int:
    """The reset e-mail of one address, queued by accounts.services.password_reset_request: the
    look-up and the mail server stay out of the request. Sends nothing for an unknown address."""
    return password_reset_email_send(email=email)
