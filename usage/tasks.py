from celery import shared_task

from .partitions import partitions_create_ahead, run_detail_retire
from .services import reservations_release_expired


@shared_task
def release_expired_reservations():
    return reservations_release_expired()


@shared_task
def create_run_partitions():
    """Daily: this month's and the next months' run and node partitions (PostgreSQL)."""
    return partitions_create_ahead()


@shared_task
def retire_old_run_detail():
    """Daily: drop whole run and node months past RUN_DETAIL_RETENTION_MONTHS once complete."""
    return [retired.month.isoformat() for retired in run_detail_retire()]
