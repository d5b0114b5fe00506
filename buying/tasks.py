"""Thin Celery tasks of the buying flow: load by key, call one service."""

from celery import shared_task

from .auto_recharge import auto_recharge_attempt_pay, auto_recharge_retry_due
from .purchases import purchases_expire_pending


@shared_task
def auto_recharge_pay(key: str) -> str:
    """Pay one auto-recharge attempt (enqueued by name after its crossing committed:
    billing.recharge_trigger)."""
    return auto_recharge_attempt_pay(key=key).status


@shared_task
def auto_recharge_retry() -> int:
    """Celery beat: retries whose backoff is over, attempts whose enqueue was lost, and started tries
    whose worker died or whose message was lost (looked up at Stripe, never paid anew)."""
    return auto_recharge_retry_due()


@shared_task
def expire_pending_purchases() -> int:
    """Celery beat: checkouts left pending past their lifetime show as cancelled."""
    return purchases_expire_pending()
