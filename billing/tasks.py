from celery import shared_task


@shared_task
def run_period_grants(now: str | None = None) -> dict:
    """Celery beat: roll every workspace whose billing period has ended (billing.grants)."""
    from datetime import datetime

    from django.utils import timezone

    from .grants import period_grants_run

    moment = datetime.fromisoformat(now) if now else timezone.now()
    report = period_grants_run(now=moment)
    return {"due": report.due, "rolled": report.rolled, "skipped": report.skipped}


@shared_task
def auto_recharge_pay(key: str) -> str:
    """Pay one auto-recharge attempt (enqueued after the crossing committed)."""
    from .auto_recharge import auto_recharge_attempt_pay

    return auto_recharge_attempt_pay(key=key).status


@shared_task
def auto_recharge_retry() -> int:
    """Celery beat: retries whose backoff is over, and attempts whose enqueue was lost."""
    from .auto_recharge import auto_recharge_retry_due

    return auto_recharge_retry_due()


@shared_task
def purchase_receipt_send(purchase_id: int) -> int:
    from .purchases import purchase_receipt_email_send

    return purchase_receipt_email_send(purchase_id=purchase_id)
