"""With a real broker, charges in quick succession share one delayed alert check."""

import pytest

from budgets import alerts
from usage.services import NodeInput, run_authorize, run_complete


def _charge(team, run_id):
    membership = team.membership(team.owner)
    run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o", public_id=run_id)
    run_complete(workspace=team.workspace, public_id=run_id, status="succeeded",
                 nodes=[NodeInput("n", "gpt-4o", 100_000, 10_000)])


@pytest.mark.django_db
def test_it_schedules_one_delayed_check_for_charges_in_quick_succession(team, monkeypatch,
                                                                         django_capture_on_commit_callbacks):
    from budgets.tasks import check_alerts

    scheduled = []
    monkeypatch.setitem(check_alerts.app.conf, "task_always_eager", False)
    monkeypatch.setattr(check_alerts, "apply_async", lambda args, countdown: scheduled.append((args, countdown)))
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            _charge(team, f"r{n}")
    assert scheduled == [((team.workspace.pk,), alerts.ALERT_CHECK_DELAY_SECONDS)]
