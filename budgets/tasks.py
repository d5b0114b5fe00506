"""Thin Celery tasks: load by id, call one function, retry transient failures with backoff."""

import logging

from celery import shared_task

from billing.models import Workspace

# alerts and services enqueue these tasks and these tasks run them: each side imports the other
# module (not names from it), which Python resolves whichever is imported first.
from . import alerts, services
from .emails import alert_email_send
from .models import WorkspaceBudget
from .webhooks import WebhookFailed, WebhookRefused, webhook_post

logger = logging.getLogger(__name__)


@shared_task
def check_alerts(workspace_id: int):
    alerts.alerts_check(workspace_id=workspace_id)


@shared_task
def check_due_alerts():
    alerts.alerts_check_due()


@shared_task
def sweep_alerts():
    """Periodic: catches what a lost check_alerts missed, and resolves alerts of ended periods."""
    for workspace_id in Workspace.objects.values_list("id", flat=True).iterator():
        alerts.alerts_check(workspace_id=workspace_id)


@shared_task
def send_webhook_test(request_id: int) -> str:
    """"Send test event" on the Alerts page, delivered here instead of in the page request."""
    return services.webhook_test_deliver(request_id=request_id)


@shared_task(autoretry_for=(OSError,), retry_backoff=30, retry_backoff_max=3600, retry_jitter=True, max_retries=8)
def send_alert_email(alert_id: int, state: str, used: int, limit: int):
    alert_email_send(alert_id=alert_id, state=state, used=used, limit=limit)


@shared_task(autoretry_for=(WebhookFailed,), retry_backoff=10, retry_backoff_max=3600, retry_jitter=True,
             max_retries=8)
def deliver_alert_webhook(workspace_id: int, body: str):
    """POST the signed body as built when the alert changed (the same bytes on every retry), to the
    URL and with the secret configured now."""
    budget = WorkspaceBudget.objects.filter(workspace_id=workspace_id).first()
    if budget is None or not budget.webhook_url:
        return None
    try:
        return webhook_post(url=budget.webhook_url, secret=budget.webhook_secret, body=body.encode())
    except WebhookRefused as error:
        logger.warning("Alert webhook of workspace %s not sent: %s", workspace_id, error)  # permanent: no retry
        return None
