"""Budget alerts: fired once per scope, level and period; resolved when usage falls below."""

from django.db import transaction


def alerts_check_later(*, workspace_id: int) -> None:
    """After a charge commits, check the workspace's thresholds in a Celery task."""
    from .tasks import check_alerts

    transaction.on_commit(lambda: check_alerts.delay(workspace_id))


def alerts_on_refusal(*, workspace, code: str, agent=None, membership=None) -> None:
    """A run refused at a hard limit raises the hard-limit alert (SPEC section 4)."""
    if code == "budget_exhausted":
        alerts_check_later(workspace_id=workspace.pk)


def alerts_check(*, workspace_id: int) -> list:
    """Fire and resolve alerts for every scope of the workspace. Filled in by the alerts work."""
    return []
