"""The demo tells one story whatever the day (issue 30): right after `seed_demo`, Acme has used about
85% of its monthly budget (the warning banner, not the hard-limit block), two runs are still
running, two expired, and `reconcile` agrees. Seeded on days that move the billing period around:
month ends, a leap day, just after midnight (no runs yet today) and late in the evening."""

from datetime import datetime, timezone as dt_timezone
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from billing.models import Workspace
from budgets.selectors import period_spend
from operations.management.commands.seed_demo import ACME_BUDGET
from operations.reconcile import reconcile_all
from usage.models import DeveloperToken, Run

DAYS = [datetime(2027, 1, 31, 0, 20), datetime(2027, 3, 20, 23, 40), datetime(2028, 2, 29, 12, 0),
        datetime(2027, 6, 1, 7, 5)]


def _seed(tmp_path) -> str:
    out = StringIO()
    call_command("seed_demo", "--days", "40", "--token-file", str(tmp_path / "demo_token"), stdout=out)
    return out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize("today", DAYS, ids=[f"{d:%Y-%m-%d-%H%M}" for d in DAYS])
def test_the_demo_is_past_the_warning_and_under_the_hard_limit_on_any_day(client, tmp_path, today):
    with time_machine.travel(today.replace(tzinfo=dt_timezone.utc), tick=True):
        out = _seed(tmp_path)
        acme = Workspace.objects.get(slug="acme")
        spend = period_spend(workspace=acme)
        used = (spend.charged + spend.held) * 100 / ACME_BUDGET
        assert 82 <= used <= 88, out
        assert "refused" not in out.split("seed_demo: ")[-1].replace("(0 refused", ""), out
        assert Run.objects.filter(workspace=acme, released_at__isnull=True).count() == 2
        assert Run.objects.filter(workspace=acme, status="expired").count() == 2
        assert (timezone.now() - acme.period_start).days >= 19

        assert client.login(email="owner@demo.test", password="demo12345")
        page = client.get("/w/acme/settings/billing/").content.decode()
        assert "workspace monthly budget used (warning at 80%)" in page and "New runs are refused" not in page
        assert reconcile_all() == {}
        # One developer token, printed once by make run's banner (read from the file), not by the seed.
        raw = (tmp_path / "demo_token").read_text().strip()
        assert raw.startswith("lf_") and raw not in out
        assert DeveloperToken.objects.filter(revoked_at__isnull=True).count() == 1
        assert (tmp_path / "demo_token").stat().st_mode & 0o777 == 0o600

