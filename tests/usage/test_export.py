"""The usage CSV of SPEC section 6."""

import csv
import io
from datetime import date, datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

import pytest
from django.http import StreamingHttpResponse

from billing.models import LedgerEntry
from billing.money import nanos_to_decimal, nanos_to_str
from billing.spreadsheet import neutralise
from usage.export import HEADER, _rows_queryset, csv_cell, export_rows
from usage.filters import RunFilter
from usage.services import NodeInput, run_authorize, run_complete

from tests.factories import PASSWORD


def make_run(team, public_id, *, when, workflow="wf", agent="bot", model="gpt-4o", nodes=None, status="succeeded"):
    membership = team.membership(team.member)
    run_authorize(membership=membership, workflow=workflow, agent=agent, model=model, public_id=public_id,
                  body_hash=public_id, now=when)
    return run_complete(workspace=team.workspace, public_id=public_id, status=status, body_hash="c",
                        now=when + timedelta(seconds=30),
                        nodes=nodes or [NodeInput("n", model, 1234, 567)])


def parse(chunks) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(chunks).decode())))


@pytest.fixture
def history(team):
    """Runs over three days, one with two models and a tool, names that look like formulas."""
    now = datetime.now(dt_timezone.utc).replace(microsecond=0)
    days = [now - timedelta(days=2), now - timedelta(days=1), now]
    make_run(team, "a", when=days[0], nodes=[
        NodeInput("plan", "gpt-4o-mini", 12000, 800), NodeInput("act", "gpt-4o", 20000, 3000, (("web_search", 2),)),
        NodeInput("check", "gpt-4o-mini", 1, 1)])
    make_run(team, "b", when=days[1], workflow="=HYPERLINK(\"http://evil\")", agent="+cmd", status="failed")
    make_run(team, "c", when=days[1], workflow="-minus", agent="@at", model="claude-sonnet-4")
    make_run(team, "d", when=days[2], workflow="\ttab", agent="\rcr", nodes=[NodeInput("n", "gpt-4o", 7, 3)])
    make_run(team, "e", when=days[2], workflow='comma, "quoted"\nnewline', agent="plain")
    run_authorize(membership=team.membership(team.member), workflow="wf", agent="bot", model="gpt-4o",
                  public_id="open", body_hash="x")  # running: not in the CSV
    return days


@pytest.mark.django_db
def test_it_writes_one_row_per_finished_run_and_model(team, history):
    rows = parse(export_rows(workspace=team.workspace, filters=RunFilter()))
    assert rows[0] == HEADER
    assert [(r[3], r[4], r[5], r[6], r[7]) for r in rows[1:3]] == [
        ("gpt-4o", "20000", "3000", "0.165", "succeeded"),  # tool charges in the node's model row
        ("gpt-4o-mini", "12001", "801", "0.0045615", "succeeded"),
    ]
    assert len(rows) == 1 + 6
    assert rows[1][0] == (history[0] + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.django_db
def test_it_neutralises_formula_cells(team, history):
    rows = parse(export_rows(workspace=team.workspace, filters=RunFilter()))
    cells = {cell for row in rows[1:] for cell in row[1:3]}
    assert "'=HYPERLINK(\"http://evil\")" in cells and "'+cmd" in cells
    assert "'-minus" in cells and "'@at" in cells and "'\ttab" in cells and "'\rcr" in cells
    assert 'comma, "quoted"\nnewline' in cells
    assert not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r") for row in rows[1:] for cell in row[1:4] + row[7:])


@pytest.mark.django_db
def test_its_credits_sum_exactly_to_the_ledger_charges(team, history):
    start, end = history[1].date(), history[2].date()
    rows = parse(export_rows(workspace=team.workspace, filters=RunFilter(start=start, end=end)))
    total = sum(Decimal(row[6]) for row in rows[1:])
    charged = LedgerEntry.objects.filter(
        workspace=team.workspace, kind="charge",
        created_at__gte=datetime.combine(start, datetime.min.time(), tzinfo=dt_timezone.utc),
        created_at__lt=datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=dt_timezone.utc))
    assert total == -nanos_to_decimal(sum(charged.values_list("amount", flat=True)))
    assert total > 0 and len(rows) == 1 + 4


@pytest.mark.django_db
def test_it_filters_like_the_page(team, history):
    def ids(**filters):
        return [(r[1], r[3]) for r in parse(export_rows(workspace=team.workspace, filters=RunFilter(**filters)))[1:]]

    assert ids(model="claude-sonnet-4") == [("'-minus", "claude-sonnet-4")]
    assert ids(status="failed") == [("'=HYPERLINK(\"http://evil\")", "gpt-4o")]
    assert ids(agent="bot") == [("wf", "gpt-4o"), ("wf", "gpt-4o-mini")]
    assert ids(start=date(2000, 1, 1), end=date(2000, 1, 2)) == []


def python_csv(workspace, filters) -> bytes:
    """The CSV's rows formatted in Python, cell by cell, from the same grouping query: the SQL that
    formats them for COPY must give these bytes."""
    lines = [",".join(HEADER)]
    for row in _rows_queryset(workspace, filters):
        lines.append(",".join((
            row["run__completed_at"].astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            csv_cell(neutralise(row["run__workflow__name"])), csv_cell(neutralise(row["run__agent__name"])),
            csv_cell(neutralise(row["model_id"])), str(row["input_tokens"]), str(row["output_tokens"]),
            nanos_to_str(row["credits"]), csv_cell(neutralise(row["run__status"])),
        )))
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.django_db
def test_the_copy_rows_are_formatted_as_python_formats_them(team, history):
    for filters in (RunFilter(), RunFilter(start=history[1].date()), RunFilter(agent="+cmd")):
        copied = b"".join(export_rows(workspace=team.workspace, filters=filters))
        assert copied == python_csv(team.workspace, filters)


@pytest.mark.django_db
def test_the_page_and_the_api_stream_the_same_csv(client, team, history):
    from usage.tokens import token_create

    from .conftest import Api

    client.login(email=team.member.email, password=PASSWORD)
    query = {"from": history[1].date().isoformat(), "to": history[2].date().isoformat()}
    page = client.get(f"/w/{team.workspace.slug}/settings/billing/usage/export.csv", query)
    api = Api(token_create(membership=team.membership(team.owner)).raw).get("/v1/usage/export.csv", query)
    assert isinstance(page, StreamingHttpResponse) and isinstance(api, StreamingHttpResponse)
    assert page["Content-Disposition"].startswith("attachment;")
    page_bytes, api_bytes = b"".join(page.streaming_content), b"".join(api.streaming_content)
    assert page_bytes == api_bytes and len(parse([page_bytes])) == 1 + 4


@pytest.mark.django_db
def test_it_hides_the_csv_from_outsiders(client, team, outsider):
    client.login(email=outsider.email, password="pw-outsider-1")
    assert client.get(f"/w/{team.workspace.slug}/settings/billing/usage/export.csv").status_code == 404


# --- The detailed export (issue 28)

def test_the_default_header_is_the_product_pages_eight_fields():
    assert HEADER == ["date", "workflow", "agent", "model", "input_tokens", "output_tokens", "credits", "status"]


@pytest.fixture
def cached_run(team, history):
    when = history[2] + timedelta(seconds=1)
    make_run(team, "f", when=when, model="claude-sonnet-4", nodes=[
        NodeInput("read", "claude-sonnet-4", 1_000_000, 2_000, (("web_search", 3),), cached_input_tokens=600_000,
                  cache_write_tokens=100_000, reasoning_tokens=500),
        NodeInput("think", "claude-sonnet-4", 10, 20, reasoning_tokens=20)])
    return "f"


@pytest.mark.django_db
def test_the_detailed_export_adds_the_run_member_classes_and_credit_split(team, cached_run):
    rows = parse(export_rows(workspace=team.workspace, filters=RunFilter(), detailed=True))
    assert rows[0] == HEADER + ["run_id", "member", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens",
                                "token_credits", "tool_credits", "tags"]
    row = dict(zip(rows[0], next(r for r in rows[1:] if r[8] == cached_run)))
    assert (row["member"], row["input_tokens"], row["cached_input_tokens"], row["cache_write_tokens"],
            row["reasoning_tokens"]) == (team.member.email, "1000010", "600000", "100000", "520")
    assert Decimal(row["token_credits"]) + Decimal(row["tool_credits"]) == Decimal(row["credits"])
    assert row["tool_credits"] == "0.03"
    # Every row's split adds up, and the credits column still sums to the ledger's charges.
    charges = -sum(entry.amount for entry in LedgerEntry.objects.filter(kind=LedgerEntry.CHARGE))
    assert sum(Decimal(r[6]) for r in rows[1:]) == nanos_to_decimal(charges)
    assert all(Decimal(r[13]) + Decimal(r[14]) == Decimal(r[6]) for r in rows[1:])


@pytest.mark.django_db
def test_the_page_and_the_api_stream_the_same_detailed_csv(client, team, cached_run):
    from usage.tokens import token_create

    from .conftest import Api

    client.login(email=team.member.email, password=PASSWORD)
    page = client.get(f"/w/{team.workspace.slug}/settings/billing/usage/export.csv", {"columns": "detailed"})
    api = Api(token_create(membership=team.membership(team.owner)).raw)
    answer = api.get("/v1/usage/export.csv", {"columns": "detailed"})
    page_bytes, api_bytes = b"".join(page.streaming_content), b"".join(answer.streaming_content)
    assert page_bytes == api_bytes and parse([page_bytes])[0][-1] == "tags"
    assert client.get(f"/w/{team.workspace.slug}/settings/billing/usage/export.csv",
                      {"columns": "everything"}).status_code == 400
    assert api.get("/v1/usage/export.csv", {"columns": "everything"}).status_code == 400


@pytest.mark.django_db
def test_the_file_name_names_the_days_and_the_filters(client, team):
    """Issue 30: every download was called usage-acme-<today>.csv whatever it held."""
    client.login(email=team.owner.email, password=PASSWORD)

    def name(**query):
        return client.get("/w/acme/settings/billing/usage/export.csv", query)["Content-Disposition"]

    assert name(**{"from": "2026-11-01", "to": "2026-11-30", "agent": "Code Reviewer", "status": "failed"}) == (
        'attachment; filename="usage-acme-2026-11-01-to-2026-11-30-agent-code-reviewer-status-failed.csv"')
    period = team.workspace.period_start.date().isoformat()
    assert name(period="current", model="gpt-4o", columns="detailed") == (
        f'attachment; filename="usage-acme-period-{period}-model-gpt-4o-detailed.csv"')
