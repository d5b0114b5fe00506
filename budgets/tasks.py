from celery import shared_task


@shared_task
def check_alerts(workspace_id: int):
    from .alerts import alerts_check

    alerts_check(workspace_id=workspace_id)


@shared_task
def sweep_alerts():
    from billing.models import Workspace

    from .alerts import alerts_check

    for workspace_id in Workspace.objects.values_list("id", flat=True).iterator():
        alerts_check(workspace_id=workspace_id)
