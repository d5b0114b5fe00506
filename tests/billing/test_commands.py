from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from billing.models import LedgerEntry, Membership, User, Workspace, credits
from operations.reconcile import reconcile_workspace
from usage.models import Run
from usage.services import NodeInput, run_authorize, run_complete


def call(*args):
    out = StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.mark.django_db
def test_it_creates_a_workspace_with_its_owner_and_first_grant():
    out = call("create_workspace", "newco", "--name", "New Co", "--owner", "Boss@Example.com",
               "--password", "pw-boss-123", "--plan", "pro")
    workspace = Workspace.objects.get(slug="newco")
    assert workspace.plan_id == "pro" and workspace.wallet.monthly == credits(1000)
    assert workspace.owner.email == "boss@example.com" and workspace.owner.check_password("pw-boss-123")
    assert "newco" in out and "1,000 credits" in out


@pytest.mark.django_db
@pytest.mark.parametrize("args, message", [
    (["acme", "--name", "X", "--owner", "a@example.com"], "already exists"),
    (["new co", "--name", "X", "--owner", "a@example.com"], "not a valid slug"),
    (["newco", "--name", "X", "--owner", "not-an-email"], "not a valid e-mail"),
    (["newco", "--name", "X", "--owner", "a@example.com", "--plan", "platinum"], "Unknown plan"),
])
def test_it_refuses_bad_workspace_input(team, args, message):
    with pytest.raises(CommandError, match=message):
        call("create_workspace", *args)


@pytest.mark.django_db
def test_it_adds_a_member_and_refuses_duplicates_and_unknown_workspaces(team):
    call("add_member", "acme", "new@example.com", "--role", "admin", "--password", "pw-new-1234")
    membership = Membership.objects.get(workspace=team.workspace, user__email="new@example.com")
    assert membership.role == "admin"
    with pytest.raises(CommandError, match="already admin"):
        call("add_member", "acme", "new@example.com", "--role", "member")
    with pytest.raises(CommandError, match="No workspace"):
        call("add_member", "nope", "x@example.com", "--role", "member")


@pytest.mark.django_db
def test_it_enforces_the_member_cap_of_a_personal_workspace(outsider):
    with pytest.raises(CommandError, match="allows 1 member"):
        call("add_member", "elsewhere", "friend@example.com", "--role", "member")


@pytest.mark.django_db
def test_it_grants_credits_into_the_purchased_bucket_with_a_reason(team):
    out = call("grant_credits", "acme", "12.5", "--reason", "Conference voucher")
    entry = LedgerEntry.objects.get(workspace=team.workspace, kind="adjustment")
    assert entry.amount == credits("12.5") and entry.bucket == "purchased" and entry.reason == "Conference voucher"
    assert "Granted 12.5 credits" in out


@pytest.mark.django_db
@pytest.mark.parametrize("amount, message", [
    ("abc", "not a number"), ("1.0000000001", "decimal places"), ("0", "must not be zero"),
    ("-5", "free to remove"), (str(10**13), "more than"),
])
def test_it_refuses_bad_credit_amounts(team, amount, message):
    with pytest.raises(CommandError, match=message):
        call("grant_credits", "acme", amount, "--reason", "x")
    assert not LedgerEntry.objects.filter(kind="adjustment").exists()


@pytest.mark.django_db
def test_it_requires_a_reason(team):
    with pytest.raises(CommandError, match="reason"):
        call("grant_credits", "acme", "5", "--reason", "  ")


@pytest.mark.django_db
def test_reconcile_passes_on_consistent_books(team, outsider):
    membership = team.membership(team.member)
    run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o", public_id="done")
    run_complete(workspace=team.workspace, public_id="done", status="succeeded",
                 nodes=[NodeInput("n", "gpt-4o", 1000, 1000)])
    run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o", public_id="open")
    out = call("reconcile")
    assert "every workspace agrees" in out


@pytest.mark.django_db
def test_reconcile_finds_a_wallet_changed_behind_the_ledger_and_names_the_workspace(team, outsider):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE billing_wallet SET purchased = purchased + 1 WHERE workspace_id = %s", [team.workspace.pk])
    with pytest.raises(CommandError, match="acme") as error:
        call("reconcile")
    assert "elsewhere" not in str(error.value)
    problems = reconcile_workspace(workspace=team.workspace)
    assert any("purchased bucket" in problem for problem in problems)


@pytest.mark.django_db
def test_reconcile_finds_a_hold_without_its_run(team):
    membership = team.membership(team.member)
    auth = run_authorize(membership=membership, workflow="wf", agent="bot", model="gpt-4o", public_id="r")
    Run.objects.filter(pk=auth.run.pk).update(released_at=auth.run.created_at)  # released behind the wallet's back
    problems = reconcile_workspace(workspace=team.workspace)
    assert any("open runs hold" in problem for problem in problems)
    assert any("running runs" in problem for problem in problems)
    assert any("spend counter" in problem for problem in problems)


@pytest.mark.django_db
def test_seed_demo_if_empty_does_nothing_when_a_workspace_exists(team):
    out = call("seed_demo", "--if-empty")
    assert "nothing to do" in out
    assert not User.objects.filter(email="owner@demo.test").exists()
