"""A stateful property test of the money core: random grants (period rollovers), adjustments,
reservations, completions and expiries, with every invariant checked after every step."""

import itertools

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from billing.ledger import LedgerError, credits_adjust, monthly_rollover
from billing.models import LedgerEntry, Membership, Wallet, Workspace, credits
from billing.periods import add_months
from operations.reconcile import reconcile_workspace
from billing.services import user_get_or_create
from budgets.workspaces import workspace_create
from usage.errors import RunError
from usage.models import Run
from usage.services import NodeInput, run_authorize, run_complete, run_expire

_slugs = itertools.count()
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-opus-4", "ollama"]


class LedgerMachine(RuleBasedStateMachine):
    @initialize(plan=st.sampled_from(["free", "pro", "team"]))
    def start(self, plan):
        n = next(_slugs)
        owner = user_get_or_create(email=f"prop{n}@example.com", password="pw-prop-123")
        self.workspace = workspace_create(slug=f"prop-{n}", name=f"Prop {n}", owner=owner, plan_id=plan)
        self.membership = Membership.objects.select_related("workspace__plan", "workspace__budget").get(
            workspace=self.workspace, user=owner)
        self.membership.workspace = self.workspace
        self.open_runs: list[str] = []
        self.expired_runs: list[str] = []
        # The documented ways the balance may go below zero: a run charged above its reservation
        # (by the excess), and holds whose credits left the wallet meanwhile (a period's monthly
        # remainder expiring, or a staff adjustment removing purchased credits that were reserved).
        self.slack = 0

    def wallet(self) -> Wallet:
        return Wallet.objects.get(workspace=self.workspace)

    @rule(new_credits=st.integers(0, 2000))
    def grant(self, new_credits):
        old_start = self.workspace.period_start
        new_start, new_end = self.workspace.period_end, add_months(self.workspace.period_end, 1)
        self.slack += self.wallet().reserved
        Workspace.objects.filter(pk=self.workspace.pk).update(period_start=new_start, period_end=new_end)
        self.workspace.period_start, self.workspace.period_end = new_start, new_end
        entries = monthly_rollover(workspace=self.workspace, old_period_start=old_start, new_period_start=new_start,
                                   new_credits=credits(new_credits))
        assert entries[-1].kind == LedgerEntry.GRANT and entries[-1].amount == credits(new_credits)
        assert monthly_rollover(workspace=self.workspace, old_period_start=old_start, new_period_start=new_start,
                                new_credits=credits(new_credits)) == []  # once per period

    @rule(amount=st.integers(-300, 500).filter(bool), cents=st.integers(0, 99))
    def adjust(self, amount, cents):
        nanos = credits(amount) + (credits(cents) // 100) * (1 if amount > 0 else -1)
        before = self.wallet()
        try:
            credits_adjust(workspace=self.workspace, amount=nanos, reason="property test", key=None)
        except LedgerError:
            assert before.purchased + nanos < 0
        else:
            if nanos < 0:
                self.slack += before.reserved
            assert self.wallet().purchased == before.purchased + nanos

    @rule(model=st.sampled_from(MODELS), agent=st.sampled_from(["a", "b"]))
    def authorize(self, model, agent):
        before = self.wallet()
        try:
            auth = run_authorize(membership=self.membership, workflow="wf", agent=agent, model=model)
        except RunError:
            return
        assert before.available > 0, "no run is authorized while available <= 0"
        assert 0 < auth.run.reserved <= before.available
        self.open_runs.append(auth.run.public_id)

    @rule(data=st.data(), status=st.sampled_from(["succeeded", "failed", "cancelled"]),
          input_tokens=st.integers(0, 3_000_000), output_tokens=st.integers(0, 500_000),
          searches=st.integers(0, 5))
    def complete(self, data, status, input_tokens, output_tokens, searches):
        candidates = self.open_runs + self.expired_runs
        if not candidates:
            return
        public_id = data.draw(st.sampled_from(candidates))
        run = Run.objects.get(workspace=self.workspace, public_id=public_id)
        nodes = [NodeInput("n1", run.model_id, input_tokens, output_tokens, (("web_search", searches),) if searches else ())]
        done = run_complete(workspace=self.workspace, public_id=public_id, status=status, nodes=nodes)
        again = run_complete(workspace=self.workspace, public_id=public_id, status=status, nodes=nodes)
        assert done.credits == again.credits
        assert LedgerEntry.objects.filter(run=done).count() in (0, 1, 2)
        assert -sum(LedgerEntry.objects.filter(run=done).values_list("amount", flat=True)) == done.credits
        if public_id in self.open_runs:
            self.open_runs.remove(public_id)
            self.slack += max(done.credits - run.reserved, 0)
        else:
            self.expired_runs.remove(public_id)
            self.slack += done.credits  # its hold was released by the sweeper: all of it is overrun

    @rule(data=st.data())
    def expire(self, data):
        if not self.open_runs:
            return
        public_id = data.draw(st.sampled_from(self.open_runs))
        run = Run.objects.get(workspace=self.workspace, public_id=public_id)
        assert run_expire(run=run)
        assert not run_expire(run=run)  # released once
        self.open_runs.remove(public_id)
        self.expired_runs.append(public_id)

    @invariant()
    def books_balance(self):
        if not hasattr(self, "workspace"):
            return
        wallet = self.wallet()
        for bucket, held in ((LedgerEntry.MONTHLY, wallet.monthly), (LedgerEntry.PURCHASED, wallet.purchased)):
            assert held == sum(LedgerEntry.objects.filter(workspace=self.workspace, bucket=bucket)
                               .values_list("amount", flat=True))
        assert wallet.available == wallet.balance - wallet.reserved
        assert wallet.monthly >= 0 and wallet.reserved >= 0 and wallet.running_runs >= 0
        assert wallet.running_runs == len(self.open_runs)
        assert wallet.purchased >= -self.slack
        assert wallet.available >= -self.slack
        assert reconcile_workspace(workspace=self.workspace) == []


@pytest.mark.django_db
def test_it_keeps_every_invariant_under_random_operations():
    run_state_machine_as_test(LedgerMachine, settings=settings(max_examples=25, stateful_step_count=15, deadline=None))
