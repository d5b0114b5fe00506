from celery import shared_task


@shared_task
def release_expired_reservations():
    from .services import reservations_release_expired

    return reservations_release_expired()
