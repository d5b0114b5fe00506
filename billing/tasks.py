from datetime import datetime

from celery import shared_task
from django.utils import timezone

from .grants import period_grants_run


@shared_task
def run_period_grants(now: str | None = None) -> dict:
    """Celery beat: roll every workspace whose billing period has ended (billing.grants)."""
    moment = datetime.fromisoformat(now) if now else timezone.now()
    report = period_grants_run(now=moment)
    return {"due": report.due, "rolled": report.rolled, "skipped": report.skipped}

