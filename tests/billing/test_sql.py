"""The charge path's fixed SQL (billing/sql.py) on PostgreSQL: each statement is prepared once per
connection and then only executed, the money stays right across the rollbacks that make psycopg
forget its prepared statements, and DATABASE_PREPARE turns preparing off."""

import pytest
from django.db import connection
from django.test import override_settings

from billing.models import Wallet, credits
from budgets.services import budget_set
from usage.errors import RunRefused
from usage.services import NodeInput, run_authorize, run_complete

NODE = [NodeInput(name="n", model="gpt-4o", input_tokens=100_000, output_tokens=0)]  # 0.5 credits


def _prepared() -> dict[str, int]:
    """This connection's prepared statements: their text, and how often each has been executed."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        return dict(cursor.fetchall())


def _charge(team, run_id):
    run_authorize(membership=team.membership(team.owner), workflow="wf", agent="bot", model="gpt-4o",
                  public_id=run_id)
    return run_complete(workspace=team.workspace, public_id=run_id, status="succeeded", nodes=NODE)


@pytest.mark.django_db(transaction=True)
def test_each_statement_is_prepared_once_and_then_only_executed(team):
    connection.close()  # a new connection: nothing prepared yet
    _charge(team, "first")
    after_one = _prepared()
    _charge(team, "second")
    after_two = _prepared()
    wallet_lock = [text for text in after_two if text.startswith("SELECT w.") and "FOR UPDATE" in text]
    assert len(wallet_lock) == 1  # the wallet lock is one prepared statement, used by both phases
    assert after_one[wallet_lock[0]] == 2 and after_two[wallet_lock[0]] == 4
    assert after_two.keys() == after_one.keys()  # the second charge prepared nothing new
    # Each phase's writes go as one statement (billing.sql.writes_together), prepared like the rest.
    batches = [text for text in after_two if text.startswith("WITH w0 AS (INSERT")]
    assert len(batches) == 2 and all(after_two[text] == 2 for text in batches)
    assert len(after_two) >= 10


@pytest.mark.django_db(transaction=True)
def test_a_refusal_between_two_charges_leaves_the_money_right(team):
    """A refusal rolls back, and psycopg then drops every prepared statement of the connection: the
    next charge prepares them again and charges exactly what it should."""
    connection.close()
    _charge(team, "first")
    budget_set(workspace=team.workspace, monthly_limit=credits("0.5"), warning=True, critical=True, hard_limit=True,
               webhook_url="", actor=team.owner)
    with pytest.raises(RunRefused):
        _charge(team, "refused")
    budget_set(workspace=team.workspace, monthly_limit=credits(100), warning=True, critical=True, hard_limit=True,
               webhook_url="", actor=team.owner)
    before = Wallet.objects.get(workspace=team.workspace)
    run = _charge(team, "after")
    wallet = Wallet.objects.get(workspace=team.workspace)
    assert run.credits == credits("0.5")
    assert before.balance - wallet.balance == credits("0.5")
    assert wallet.reserved == 0 and wallet.running_runs == 0
    assert _prepared()  # prepared again


@pytest.mark.django_db(transaction=True)
def test_nothing_is_prepared_with_DATABASE_PREPARE_off(team):
    connection.close()
    with override_settings(DATABASE_PREPARE=False):
        run = _charge(team, "first")
    assert run.credits == credits("0.5")
    assert _prepared() == {}


@pytest.mark.django_db
def test_a_literal_percent_and_the_placeholders_read_as_the_orm_reads_them():
    """The fixed statements number their %s placeholders themselves (billing.sql); %% stays a
    literal percent sign, as in the ORM's statements."""
    from billing.sql import sql_row

    assert sql_row("SELECT %s || '%%' || %s", ["50", "!"]) == ("50%!",)
