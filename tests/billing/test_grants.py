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
def test_it_resumes_after_a_crash_between_two_chunks():
    first = free_workspace("c1", utc(2026, 1, 5))
    second = free_workspace("c2", utc(2026, 1, 5))
    third = free_workspace("c3", utc(2026, 1, 5))
    real = grants.access_versions_bump
    calls = []

    def crash_in_second_chunk(**kwargs):
        # The chunk's last step before its commit: every write of the chunk is already made.
        calls.append(kwargs.get("workspace_ids"))
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real(**kwargs)

    with mock.patch.object(grants, "access_versions_bump", crash_in_second_chunk), pytest.raises(RuntimeError):
        period_grants_run(now=utc(2026, 2, 5), chunk=2)
    assert calls == [[first.pk, second.pk], [third.pk]]
    assert len(grants_of(first)) == 2 and len(grants_of(second)) == 2 and len(grants_of(third)) == 1
    assert state(third).period_start == utc(2026, 1, 5)  # its chunk rolled back whole
    assert state(third).wallet.monthly == credits(50)
    report = period_grants_run(now=utc(2026, 2, 5), chunk=2)
    assert report.rolled == 1
    assert [len(grants_of(ws)) for ws in (first, second, third)] == [2, 2, 2]


@pytest.mark.django_db
def test_a_chunk_the_database_refuses_is_rolled_one_workspace_at_a_time():
    first = free_workspace("d1", utc(2026, 1, 5))
    second = free_workspace("d2", utc(2026, 1, 5))
    from django.db import OperationalError

    with mock.patch.object(grants, "period_chunk_roll", side_effect=OperationalError("deadlock detected")):
        report = period_grants_run(now=utc(2026, 2, 5))
    assert (report.due, report.rolled) == (2, 2)
    assert [len(grants_of(ws)) for ws in (first, second)] == [2, 2]
    assert period_grants_run(now=utc(2026, 2, 5)).rolled == 0


@pytest.mark.django_db
def test_a_chunk_writes_what_one_workspace_at_a_time_writes(team):
    """The set-based chunk and workspace_period_roll agree entry by entry, to the nanocredit."""
    from billing.ledger import Posting, credits_adjust, post, wallet_lock
    from buying.plans import plan_change
    from django.db import transaction

    def scenario(prefix):
        made = []
        for n, spent in enumerate((0, 20, 50)):
            ws = free_workspace(f"{prefix}{n}", utc(2026, 1, 1))
            credits_adjust(workspace=ws, amount=credits(3 + n), reason="gift", key=f"{prefix}{n}:gift")
            with transaction.atomic():
                wallet = wallet_lock(ws.pk)
                wallet.reserved = credits(n)  # an open hold does not expire
                post(wallet=wallet, postings=[Posting("charge", "monthly", -credits(spent), f"{prefix}{n}:c", "run")])
            made.append(ws)
        plan_change(workspace=made[2], plan_id="pro", actor=None, at_period_end=False)
        Workspace.objects.filter(pk=made[2].pk).update(scheduled_plan_id="free", custom_requests_per_minute=5)
        return made

    def entries(ws):
        return [(e.kind, e.bucket, e.amount, e.bucket_balance_after, e.balance_after, e.reason,
                 e.idempotency_key.replace(f":{ws.pk}:", ":<ws>:").replace(ws.slug, "<slug>"))
                for e in LedgerEntry.objects.filter(workspace=ws).order_by("id")]

    chunked = scenario("s")
    period_grants_run(now=utc(2026, 3, 1))
    single = scenario("o")
    for ws in single:
        grants.workspace_period_roll(workspace_id=ws.pk, now=utc(2026, 3, 1))
    for a, b in zip(chunked, single):
        a, b = state(a), state(b)
        assert entries(a) == entries(b)
        assert (a.wallet.monthly, a.wallet.purchased, a.wallet.reserved) == (b.wallet.monthly, b.wallet.purchased,
                                                                             b.wallet.reserved)
        assert (a.plan_id, a.scheduled_plan_id, a.custom_requests_per_minute, a.period_start, a.period_end) == (
            b.plan_id, b.scheduled_plan_id, b.custom_requests_per_minute, b.period_start, b.period_end)


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


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_grant_each_period_once():
    workspaces = [free_workspace(f"p{n}", utc(2026, 1, 1)) for n in range(12)]
    _, errors = run_at_once(lambda _: period_grants_run(now=utc(2026, 2, 1), chunk=3), 4)
    assert errors == []
    for ws in workspaces:
        assert len(grants_of(ws)) == 2
        assert state(ws).wallet.monthly == credits(50)


@pytest.mark.django_db
def test_a_chunk_arms_and_crosses_auto_recharge_as_one_workspace_at_a_time_does():
    """The set-based roll skipped the auto-recharge trigger: a wallet the grant lifted above its
    threshold stayed disarmed, and one the roll left below it never crossed (issue 25)."""
    from billing.models import Wallet

    def scenario(prefix):
        rearm, cross = free_workspace(f"{prefix}a", utc(2026, 1, 1)), free_workspace(f"{prefix}c", utc(2026, 1, 1))
        Wallet.objects.filter(workspace=rearm).update(auto_recharge_threshold=credits(40), auto_recharge_armed=False)
        Wallet.objects.filter(workspace=cross).update(auto_recharge_threshold=credits(60), auto_recharge_armed=True)
        return rearm, cross

    def trigger(ws):
        wallet = Wallet.objects.get(workspace=ws)
        return wallet.auto_recharge_armed, wallet.auto_recharge_crossings

    chunked = scenario("t")
    period_grants_run(now=utc(2026, 2, 1))
    single = scenario("u")
    for ws in single:
        grants.workspace_period_roll(workspace_id=ws.pk, now=utc(2026, 2, 1))
    assert [trigger(ws) for ws in single] == [(True, 0), (False, 1)]
    assert [trigger(ws) for ws in chunked] == [trigger(ws) for ws in single]
