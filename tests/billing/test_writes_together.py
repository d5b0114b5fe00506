"""billing.sql.writes_together: inside an atomic block on PostgreSQL the block's writes go as one
statement, and nothing about what the money path writes, reads or commits changes."""

from datetime import datetime, timezone

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from billing.ledger import Posting, post, wallet_lock
from billing.models import LedgerEntry, Wallet, credits
from billing.sql import writes_together
from budgets.counters import WORKSPACE, PERIOD, CounterKey, counters_add
from budgets.models import SpendCounter

PERIOD_START = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _key(team) -> CounterKey:
    return CounterKey(WORKSPACE, team.workspace.pk, PERIOD, PERIOD_START)


def _grant(wallet, key: str, amount: int = credits(5)):
    return post(wallet=wallet, postings=[Posting(LedgerEntry.ADJUSTMENT, LedgerEntry.PURCHASED, amount, key, "test")])


def _purchased(team) -> int:
    return Wallet.objects.get(workspace=team.workspace).purchased


def _counter(team) -> int | None:
    row = SpendCounter.objects.filter(workspace=team.workspace, scope_id=team.workspace.pk, span_start=PERIOD_START).first()
    return row.charged if row else None


@pytest.mark.django_db
def test_the_writes_of_a_block_go_as_one_statement_and_inserts_get_their_ids(team):
    before = _purchased(team)
    with transaction.atomic():
        wallet = wallet_lock(team.workspace.pk)
        with CaptureQueriesContext(connection) as captured:
            with writes_together():
                (entry,) = _grant(wallet, "together:1")
                counters_add(workspace_id=team.workspace.pk, keys=[_key(team)], charged=7)
                assert captured.captured_queries == []  # nothing sent yet
                assert entry.pk is None
    assert [q["sql"][:8] for q in captured.captured_queries] == ["WITH w0 "]
    assert LedgerEntry.objects.get(pk=entry.pk).idempotency_key == "together:1"
    assert _purchased(team) == before + credits(5)
    assert _counter(team) == 7


@pytest.mark.django_db
def test_a_statement_in_the_block_sees_the_writes_made_before_it(team):
    before = _purchased(team)
    with transaction.atomic():
        wallet = wallet_lock(team.workspace.pk)
        with writes_together():
            _grant(wallet, "together:2")
            # The ORM read is a statement of the connection: what waits is sent first.
            assert _purchased(team) == before + credits(5)
            assert LedgerEntry.objects.filter(idempotency_key="together:2").exists()


@pytest.mark.django_db
def test_two_writes_to_one_row_in_a_block_both_count(team):
    with transaction.atomic():
        wallet_lock(team.workspace.pk)
        with writes_together():
            counters_add(workspace_id=team.workspace.pk, keys=[_key(team)], charged=3)
            counters_add(workspace_id=team.workspace.pk, keys=[_key(team)], charged=4)
    assert _counter(team) == 7


@pytest.mark.django_db
def test_a_taken_key_raises_when_the_block_sends_and_nothing_of_the_transaction_stays(team):
    with transaction.atomic():
        _grant(wallet_lock(team.workspace.pk), "together:taken")
    before = _purchased(team)
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            wallet = wallet_lock(team.workspace.pk)
            counters_add(workspace_id=team.workspace.pk, keys=[_key(team)], charged=5)  # before the block
            with writes_together():
                _grant(wallet, "together:taken")
    assert _purchased(team) == before
    assert LedgerEntry.objects.filter(idempotency_key="together:taken").count() == 1
    assert _counter(team) is None


@pytest.mark.django_db
def test_a_block_ended_by_an_exception_lets_nothing_of_its_transaction_commit(team):
    """What waited is dropped; a caller that catches the exception inside the transaction must not
    commit what came before the block without it."""
    before = _purchased(team)
    with transaction.atomic():
        wallet = wallet_lock(team.workspace.pk)
        counters_add(workspace_id=team.workspace.pk, keys=[_key(team)], charged=5)  # sent at once
        try:
            with writes_together():
                _grant(wallet, "together:dropped")
                raise RuntimeError("the caller's own error")
        except RuntimeError:
            pass
    assert _counter(team) is None
    assert _purchased(team) == before
    assert not LedgerEntry.objects.filter(idempotency_key="together:dropped").exists()


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_each_write_goes_when_it_is_made(team):
    with CaptureQueriesContext(connection) as captured:
        with writes_together():
            counters_add(workspace_id=team.workspace.pk, keys=[_key(team)], charged=2)
            assert len(captured.captured_queries) == 1
    assert _counter(team) == 2
