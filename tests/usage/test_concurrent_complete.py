
import pytest

from tests.concurrency import run_at_once
from billing.models import LedgerEntry, Wallet
from usage.models import DailyUsage

from .conftest import TWO_NODES, Api, authorize


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_replays_of_a_complete_charge_once_and_answer_alike(team):
    from usage.tokens import token_create

    api = Api(token_create(membership=team.membership(team.member)).raw)
    assert authorize(api).status_code == 201
    def complete(_):
        response = Api(api.token).post("/v1/runs/r-1/complete", TWO_NODES)
        return response.status_code, response.content

    answers, errors = run_at_once(complete, 10)
    assert errors == [] and len(answers) == 10
    assert {status for status, _ in answers} == {200}
    assert len({body for _, body in answers}) == 1
    charges = LedgerEntry.objects.filter(workspace=team.workspace, kind="charge")
    assert sum(charges.values_list("amount", flat=True)) == -169_560_000
    wallet = Wallet.objects.get(workspace=team.workspace)
    assert wallet.reserved == 0 and wallet.running_runs == 0
    assert sum(DailyUsage.objects.filter(workspace=team.workspace).values_list("credits", flat=True)) == 169_560_000
