"""Period grants: once per workspace and period, whatever happens (twice, concurrently, after a crash)."""

from datetime import datetime, timezone
from unittest import mock

import pytest
from django.core.management import call_command

from tests.concurrency import run_at_once
from billing import grants
from billing.grants import period_grants_run
from billing.models import LedgerEntry, Workspace, credits
from billing.services import user_get_or_create
from budgets.workspaces import workspace_create


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def free_workspace(slug, created):
    owner = user_get_or_create(email=f"{slug}@example.com", password="pw-123456")
    return workspace_create(slug=slug, name=slug.title(), owner=owner, plan_id="free", kind="personal", now=created)


def grants_of(ws):
    return list(LedgerEntry.objects.filter(workspace=ws, kind="grant").order_by("id").values_list("amount", flat=True))


def state(ws):
    ws.refresh_from_db()
    ws.wallet.refresh_from_db()
    return ws


@pytest.mark.django_db
def test_it_grants_a_free_workspace_its_50_credits_each_period_once():
    ws = free_workspace("f1", utc(2026, 1, 15, 9))
    state(ws).wallet.monthly  # 50 from the creation
    period_grants_run(now=utc(2026, 2, 15, 9))
    period_grants_run(now=utc(2026, 2, 15, 10))
    ws = state(ws)
    assert grants_of(ws) == [credits(50), credits(50)]
    assert ws.wallet.monthly == credits(50)
    assert (ws.period_start, ws.period_end) == (utc(2026, 2, 15, 9), utc(2026, 3, 15, 9))


@pytest.mark.django_db
def test_the_remainder_expires_and_purchased_credits_stay():
    from billing.ledger import credits_adjust, post, wallet_lock, Posting
    from django.db import transaction

    ws = free_workspace("f2", utc(2026, 1, 1))
    credits_adjust(workspace=ws, amount=credits(7), reason="gift")
    with transaction.atomic():
        post(wallet=wallet_lock(ws.pk), postings=[Posting("charge", "monthly", -credits(20), "t:charge", "a run")])
    period_grants_run(now=utc(2026, 2, 1))
    ws = state(ws)
    expiry = LedgerEntry.objects.get(workspace=ws, kind="expiry")
    assert expiry.amount == -credits(30)
    assert ws.wallet.monthly == credits(50) and ws.wallet.purchased == credits(7)


@pytest.mark.django_db
def test_it_rolls_jan_31_to_feb_28_and_back_to_mar_31():
    ws = free_workspace("f3", utc(2026, 1, 31, 12))
    call_command("run_period_grants", "--now", "2026-02-28T12:00:00Z")
    assert (state(ws).period_start, ws.period_end) == (utc(2026, 2, 28, 12), utc(2026, 3, 31, 12))
    call_command("run_period_grants", "--now", "2026-03-31T12:00:00+00:00")
    assert (state(ws).period_start, ws.period_end) == (utc(2026, 3, 31, 12), utc(2026, 4, 30, 12))
    assert len(grants_of(ws)) == 3


@pytest.mark.django_db
def test_it_rolls_into_a_leap_february():
    ws = free_workspace("f4", utc(2027, 12, 31))
    period_grants_run(now=utc(2028, 1, 31))
    period_grants_run(now=utc(2028, 2, 29))
    ws = state(ws)
    assert (ws.period_start, ws.period_end) == (utc(2028, 2, 29), utc(2028, 3, 31))
    assert len(grants_of(ws)) == 3


@pytest.mark.django_db
def test_it_crosses_the_year_end():
    ws = free_workspace("f5", utc(2025, 12, 20))
    period_grants_run(now=utc(2026, 1, 20))
    ws = state(ws)
    assert (ws.period_start, ws.period_end) == (utc(2026, 1, 20), utc(2026, 2, 20))


@pytest.mark.django_db
def test_a_missed_month_grants_only_the_current_period():
    ws = free_workspace("f6", utc(2026, 1, 10))
    period_grants_run(now=utc(2026, 4, 11))
    ws = state(ws)
    assert (ws.period_start, ws.period_end) == (utc(2026, 4, 10), utc(2026, 5, 10))
    assert len(grants_of(ws)) == 2


@pytest.mark.django_db
def test_it_applies_a_scheduled_downgrade_at_the_period_end(team):
    from buying.plans import plan_change

    ws = team.workspace
    ws.memberships.filter(role="member").delete()
    plan_change(workspace=ws, plan_id="pro", actor=team.owner, at_period_end=True)
    assert state(ws).plan_id == "team" and ws.scheduled_plan_id == "pro"
    period_grants_run(now=ws.period_end)
    ws = state(ws)
    assert ws.plan_id == "pro" and ws.scheduled_plan_id is None
    assert ws.wallet.monthly == credits(1000) and ws.requests_per_minute == 60


@pytest.mark.django_db
def test_a_stripe_period_waits_for_invoice_paid_then_rolls_after_the_grace(team):
    ws = team.workspace
    Workspace.objects.filter(pk=ws.pk).update(stripe_subscription_id="sub_1")
    end = state(ws).period_end
    period_grants_run(now=end)
    assert state(ws).period_end == end
    period_grants_run(now=end + grants.STRIPE_GRACE)
    assert state(ws).period_start == end
    assert len(grants_of(ws)) == 2


@pytest.mark.django_db
def test_it_resumes_after_a_crash_between_two_workspaces():
    first = free_workspace("c1", utc(2026, 1, 5))
    second = free_workspace("c2", utc(2026, 1, 5))
    real = grants.monthly_rollover
    calls = []

    def crash_on_second(**kwargs):
        calls.append(kwargs["workspace"].pk)
        if kwargs["workspace"].pk == second.pk:
            raise RuntimeError("worker killed")
        return real(**kwargs)

    with mock.patch.object(grants, "monthly_rollover", crash_on_second), pytest.raises(RuntimeError):
        period_grants_run(now=utc(2026, 2, 5))
    assert len(grants_of(first)) == 2 and len(grants_of(second)) == 1
    assert state(second).period_start == utc(2026, 1, 5)  # its transaction rolled back whole
    report = period_grants_run(now=utc(2026, 2, 5))
    assert report.rolled == 1
    assert len(grants_of(first)) == 2 and len(grants_of(second)) == 2


@pytest.mark.django_db
def test_it_works_in_chunks_with_progress():
    for n in range(5):
        free_workspace(f"k{n}", utc(2026, 1, 1))
    lines = []
    report = period_grants_run(now=utc(2026, 2, 1), chunk=2, progress=lines.append)
    assert report.rolled == 5 and len(lines) == 3
    assert LedgerEntry.objects.filter(kind="grant", created_at__isnull=False).count() == 10


@pytest.mark.django_db
def test_the_celery_task_runs_the_same_job():
    from billing.tasks import run_period_grants

    ws = free_workspace("t1", utc(2026, 1, 1))
    result = run_period_grants.delay("2026-02-01T00:00:00+00:00").get()
    assert result == {"due": 1, "rolled": 1, "skipped": 0}
    assert len(grants_of(ws)) == 2


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_grant_each_period_once():
    workspaces = [free_workspace(f"p{n}", utc(2026, 1, 1)) for n in range(12)]
    _, errors = run_at_once(lambda _: period_grants_run(now=utc(2026, 2, 1), chunk=3), 4)
    assert errors == []
    for ws in workspaces:
        assert len(grants_of(ws)) == 2
        assert state(ws).wallet.monthly == credits(50)
