"""The Activity page (every ledger entry, paged and filtered), its CSV, and the Overview's latest rows."""

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.ledger import credits_adjust
from billing.models import LedgerEntry, Wallet, credits
from buying import activity
from buying.purchases import purchase_record_manual
from tests.factories import PASSWORD
from usage.services import NodeInput, run_authorize, run_complete


def _run(team, user, public_id, *, workflow="Weekly report", agent="Data Analyst", tokens=100_000, now=None):
    auth = run_authorize(membership=team.membership(user), workflow=workflow, agent=agent, model="gpt-4o",
                         public_id=public_id, now=now)
    return run_complete(workspace=team.workspace, public_id=auth.run.public_id, status="succeeded", now=now,
                        nodes=[NodeInput(name="answer", model="gpt-4o", input_tokens=tokens, output_tokens=tokens)])


def _login(client, user):
    client.login(email=user.email, password=PASSWORD)


def _activity(team, **params):
    return reverse("billing:activity", kwargs={"slug": team.workspace.slug}), params


def _csv(client, team, **params):
    response = client.get(reverse("billing:activity_csv", kwargs={"slug": team.workspace.slug}), params)
    assert response.status_code == 200, response.content
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def history(team):
    """A grant (at creation), a purchase with its bonus, a staff adjustment and two members' runs."""
    purchase_record_manual(workspace=team.workspace, pack_id="builder", reference="BANK-1", actor=team.admin)
    credits_adjust(workspace=team.workspace, amount=credits(7), reason="=HYPERLINK(\"evil\")", actor=team.owner)
    _run(team, team.member, "run-member-1", workflow="Churn analysis", agent="Research Assistant")
    _run(team, team.admin, "run-admin-1")
    return team


@pytest.mark.django_db
def test_it_names_the_run_its_workflow_agent_and_member_on_the_overview(client, history):
    _login(client, history.member)
    body = client.get(reverse("billing:overview", kwargs={"slug": history.workspace.slug})).content.decode()
    run_url = reverse("usage:run", kwargs={"slug": history.workspace.slug, "run_id": "run-member-1"})
    assert f'href="{run_url}"' in body
    assert "Churn analysis · Research Assistant · Mia Member" in body
    # The real actor: the member whose run was charged, the admin who bought, the system's grant.
    assert "Adam Admin" in body and "Mia Member" in body and "System" in body
    assert "By: system" not in body


@pytest.mark.django_db
def test_it_lists_the_overview_rows_in_ledger_order_with_balances_that_follow(client, history):
    _login(client, history.owner)
    response = client.get(reverse("billing:overview", kwargs={"slug": history.workspace.slug}))
    rows = response.context["ledger"]
    assert [e.id for e in rows] == sorted((e.id for e in rows), reverse=True)
    for newer, older in zip(rows, rows[1:]):
        assert newer.balance_after == older.balance_after + newer.amount
    assert rows[0].balance_after == Wallet.objects.get(workspace=history.workspace).balance


@pytest.mark.django_db
def test_it_shows_every_entry_and_its_newest_balance_equals_the_wallet(client, history):
    _login(client, history.admin)
    url, params = _activity(history)
    response = client.get(url, params)
    assert response.status_code == 200
    entries = response.context["page"].entries
    assert len(entries) == LedgerEntry.objects.filter(workspace=history.workspace).count()
    wallet = Wallet.objects.get(workspace=history.workspace)
    assert entries[0].balance_after == wallet.balance
    body = response.content.decode()
    assert "Builder" in body and "LF-" in body  # the purchase links its invoice
    assert "=HYPERLINK" in body.replace("&quot;", '"')


@pytest.mark.django_db
@pytest.mark.parametrize("params, expected", [
    ({"kind": "charge"}, {("charge", "monthly")}),
    ({"bucket": "purchased"}, {("purchase", "purchased"), ("bonus", "purchased"), ("adjustment", "purchased")}),
    ({"kind": "grant", "bucket": "monthly"}, {("grant", "monthly")}),
])
def test_it_filters_by_kind_and_bucket(client, history, params, expected):
    _login(client, history.owner)
    url, _ = _activity(history)
    entries = client.get(url, params).context["page"].entries
    assert entries and {(e.kind, e.bucket) for e in entries} == expected
    assert {(row["kind"], row["bucket"]) for row in _csv(client, history, **params)} == expected


@pytest.mark.django_db
def test_it_filters_by_utc_days(client, team):
    now = timezone.now()
    _run(team, team.member, "old-run", now=now - timedelta(days=3))
    _run(team, team.member, "new-run", now=now)
    _login(client, team.owner)
    url, _ = _activity(team)
    day = (now - timedelta(days=3)).date().isoformat()
    entries = client.get(url, {"from": day, "to": day}).context["page"].entries
    assert [e.run.public_id for e in entries] == ["old-run"]
    assert [row["run"] for row in _csv(client, team, **{"from": day, "to": day})] == ["old-run"]


@pytest.mark.django_db
def test_it_pages_older_and_newer_without_losing_a_row(team):
    for i in range(7):
        credits_adjust(workspace=team.workspace, amount=credits(1), reason=f"gift {i}")
    all_ids = list(LedgerEntry.objects.filter(workspace=team.workspace).order_by("-id").values_list("id", flat=True))
    assert len(all_ids) == 8  # the grant and seven gifts
    pages, before = [], None
    while True:
        page = activity.ledger_page(workspace=team.workspace, filters=activity.LedgerFilters(), limit=3, before=before)
        pages.append([e.id for e in page.entries])
        if page.older is None:
            break
        before = page.older
    assert pages == [all_ids[0:3], all_ids[3:6], all_ids[6:8]]
    back = activity.ledger_page(workspace=team.workspace, filters=activity.LedgerFilters(), limit=3, after=page.newer)
    assert [e.id for e in back.entries] == all_ids[3:6]
    assert back.newer == all_ids[3] and back.older == all_ids[5]
    top = activity.ledger_page(workspace=team.workspace, filters=activity.LedgerFilters(), limit=3, after=back.newer)
    assert [e.id for e in top.entries] == all_ids[0:3] and top.newer is None


@pytest.mark.django_db
def test_it_links_older_and_newer_pages(client, team, monkeypatch):
    for i in range(4):
        credits_adjust(workspace=team.workspace, amount=credits(1), reason=f"gift {i}")
    monkeypatch.setattr(activity, "PAGE_SIZE", 2)
    _login(client, team.owner)
    url, _ = _activity(team)
    first = client.get(url)
    assert 'data-testid="older-page"' in first.content.decode()
    assert 'data-testid="newer-page"' not in first.content.decode()
    second = client.get(url, {"before": first.context["page"].older, "kind": "adjustment"})
    assert 'data-testid="newer-page"' in second.content.decode()
    assert "kind=adjustment&amp;after=" in second.content.decode()  # paging keeps the filters
    assert [e.kind for e in second.context["page"].entries] == ["adjustment", "adjustment"]


@pytest.mark.django_db
def test_it_exports_the_whole_ledger_oldest_first_with_exact_credits(client, history):
    _login(client, history.owner)
    rows = _csv(client, history)
    entries = list(LedgerEntry.objects.filter(workspace=history.workspace).order_by("id"))
    assert [int(r["id"]) for r in rows] == [e.id for e in entries]
    assert sum(credits(r["credits"]) for r in rows) == Wallet.objects.get(workspace=history.workspace).balance
    assert credits(rows[-1]["balance_after"]) == Wallet.objects.get(workspace=history.workspace).balance
    charge = next(r for r in rows if r["run"] == "run-member-1")
    assert (charge["workflow"], charge["agent"], charge["member"], charge["by"]) == (
        "Churn analysis", "Research Assistant", history.member.email, "Mia Member")
    adjustment = next(r for r in rows if r["kind"] == "adjustment")
    assert adjustment["reason"].startswith("'=HYPERLINK")  # neutralised for spreadsheets
    assert adjustment["by"] == "Olivia Owner"


@pytest.mark.django_db
@pytest.mark.parametrize("params", [{"from": "not-a-date"}, {"to": "9999-12-31"}, {"kind": "gift"}])
def test_it_refuses_bad_csv_filters_with_400_and_reports_them_on_the_page(client, team, params):
    _login(client, team.owner)
    response = client.get(reverse("billing:activity_csv", kwargs={"slug": team.workspace.slug}), params)
    assert response.status_code == 400
    url, _ = _activity(team)
    page = client.get(url, params)
    assert page.status_code == 200 and page.context["form"].errors


@pytest.mark.django_db
def test_it_ignores_a_bad_page_cursor(client, team):
    _login(client, team.owner)
    url, _ = _activity(team)
    assert client.get(url, {"before": "x' OR 1=1"}).status_code == 200
    assert client.get(url, {"after": "99999999999999999999999"}).status_code == 200


@pytest.mark.django_db
def test_it_keeps_the_ledger_from_members_and_outsiders(client, team, outsider):
    url, _ = _activity(team)
    csv_url = reverse("billing:activity_csv", kwargs={"slug": team.workspace.slug})
    _login(client, team.member)
    assert client.get(url).status_code == 403
    assert client.get(csv_url).status_code == 403
    assert "All activity" not in client.get(reverse("billing:overview", kwargs={"slug": team.workspace.slug})
                                            ).content.decode()
    client.logout()
    client.login(email=outsider.email, password="pw-outsider-1")
    assert client.get(url).status_code == 404
    assert client.get(csv_url).status_code == 404
