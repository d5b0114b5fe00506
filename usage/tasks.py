from celery import shared_task

from .services import reservations_release_expired


@shared_task
def release_expired_reservations():
    return reservations_release_expired()
