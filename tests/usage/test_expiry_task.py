from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Wallet
from usage.models import Run
from usage.tasks import release_expired_reservations

from .conftest import TWO_NODES, authorize


@pytest.mark.django_db
def test_the_beat_job_releases_expired_reservations_and_a_late_complete_charges_once(api, team, settings):
    assert "release-expired-reservations" in settings.CELERY_BEAT_SCHEDULE
    authorize(api, run_id="old")
    authorize(api, run_id="fresh")
    Run.objects.filter(public_id="old").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert release_expired_reservations.delay().get() == 1
    assert Run.objects.get(public_id="old").status == "expired"
    wallet = Wallet.objects.get(workspace=team.workspace)
    assert wallet.running_runs == 1 and wallet.reserved == 10 * 10**9
    assert api.get("/v1/runs/old").json()["status"] == "expired"
    body = api.post("/v1/runs/old/complete", TWO_NODES).json()
    assert body["status"] == "succeeded" and body["credits"] == "0.16956"
    assert release_expired_reservations.delay().get() == 0
