"""The run lifecycle: authorize (reserve), complete (charge exactly once), expire (release).

Each write is one short transaction under the workspace's wallet lock (billing.ledger.wallet_lock):
the budget checks, the reservation and the counters move together, so concurrent runs can never
together pass a limit, and a replayed completion finds the run already charged."""

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Subquery
from django.utils import timezone

from billing.ledger import charge_postings, post, wallet_lock
from billing.models import Membership
from billing.money import nanos_display
from billing.pricing import is_community, model_rates_at, price_node, rates_at
from billing.upsert import upsert_add
from budgets.counters import RunCounters, counters_add, counters_used

from .errors import ConcurrencyLimited, IdempotencyConflict, InvalidRequest, RunNotFound, RunRefused, UnknownModel
from .models import Agent, DailyUsage, Run, RunNode, Workflow

MAX_NODES = 1000
MAX_TOKENS = 10**12


def request_hash(body: dict) -> str:
    """A stable fingerprint of a request body, to tell a replay from a conflicting reuse of an id."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


@dataclass(frozen=True)
class NodeInput:
    name: str
    model: str
    input_tokens: int
    output_tokens: int
    tools: tuple[tuple[str, int], ...] = ()


@dataclass
class Authorization:
    run: Run
    replayed: bool


def _replay(run: Run, body_hash: str, field: str) -> Run:
    if getattr(run, field) != body_hash:
        raise IdempotencyConflict(f"Run id {run.public_id!r} was already used with a different request body.")
    return run


def _refusal_message(code: str, remaining: int) -> str:
    left = nanos_display(max(remaining, 0))
    return {
        "insufficient_credits": f"Not enough credits: {left} available. Buy credits or wait for the next period's grant.",
        "budget_exhausted": "The workspace's monthly budget is used up (hard limit at 100%). Raise the budget on Settings -> Billing -> Alerts.",
        "agent_daily_budget_exceeded": f"This agent's daily budget is used up ({left} left today, UTC).",
        "agent_monthly_budget_exceeded": f"This agent's budget for this billing period is used up ({left} left).",
        "member_budget_exceeded": f"Your member budget for this billing period is used up ({left} left).",
    }[code]


def max_output_tokens_for(*, reserved: int, rate, estimated_input_tokens: int, requested: int | None) -> int | None:
    """What the reservation can pay for at the model's output rate after the estimated input."""
    if rate.output_nanos_per_token == 0:
        return requested
    affordable = max(reserved - estimated_input_tokens * rate.input_nanos_per_token, 0) // rate.output_nanos_per_token
    return affordable if requested is None else min(requested, affordable)


def run_authorize(*, membership: Membership, workflow: str, agent: str, model: str, public_id: str | None = None,
                  estimated_input_tokens: int | None = None, max_output_tokens: int | None = None,
                  body_hash: str = "", now=None) -> Authorization:
    """Reserve credits for a run, or refuse it with the code of the limit that binds.

    The reservation is min(agent max per run, available, every remaining budget)."""
    workspace = membership.workspace
    now = now or timezone.now()
    rate = model_rates_at(at=now, model_ids=[model]).get(model)
    if rate is None:
        raise UnknownModel(f"No rate is set for model {model!r}; see GET /v1/billing/rates.")
    workflow_id, agent_obj = _workflow_and_agent(workspace=workspace, workflow=workflow, agent=agent)
    try:
        with transaction.atomic():
            wallet = wallet_lock(workspace.pk)
            # Every input of the limit decision is read now, under the lock: the period, the plan
            # caps, the budgets and the agent's limits may have changed while this request waited
            # (issue 9: a lowered budget or a period roll must bind a request already in flight).
            agent_obj = _limit_inputs(membership=membership, agent_id=agent_obj.pk)
            workspace = agent_obj.workspace
            counters = RunCounters.for_run(workspace_id=workspace.pk, agent_id=agent_obj.pk, member_id=membership.pk,
                                           day=now.date(), period_start=workspace.period_start)
            if is_community():
                reservation = 0  # no platform-credit charges, no plan limits
            else:
                if wallet.running_runs >= workspace.concurrent_runs:
                    raise ConcurrencyLimited(
                        f"{wallet.running_runs} runs are already running; your plan allows {workspace.concurrent_runs} at once.",
                        retry_after=1,
                    )
                reservation = _reservation(workspace, membership, agent_obj, wallet, counters)
            run = Run.objects.create(
                workspace=workspace, public_id=public_id or "run_" + secrets.token_urlsafe(12), workflow_id=workflow_id,
                agent=agent_obj, member=membership, model_id=model, reserved=reservation,
                estimated_input_tokens=estimated_input_tokens, day=now.date(), period_start=workspace.period_start,
                created_at=now, expires_at=now + timedelta(seconds=settings.RESERVATION_TTL_SECONDS),
                authorize_hash=body_hash,
                max_output_tokens=max_output_tokens_for(reserved=reservation, rate=rate,
                                                        estimated_input_tokens=estimated_input_tokens or 0,
                                                        requested=max_output_tokens),
            )
            wallet.reserved += reservation
            wallet.running_runs += 1
            wallet.save(update_fields=["reserved", "running_runs", "updated_at"])
            counters_add(workspace_id=workspace.pk, keys=counters.keys, reserved=reservation)
    except IntegrityError:
        # The client's id is taken (a replay, or a racing twin): answer as a replay of the first run.
        existing = _existing_run(workspace, public_id)
        if existing is None:
            raise
        return Authorization(_replay(existing, body_hash, "authorize_hash"), replayed=True)
    except (RunRefused, ConcurrencyLimited) as refusal:
        # A replay of a run authorized earlier gets its original answer, whatever the limits say now.
        existing = _existing_run(workspace, public_id)
        if existing is not None:
            return Authorization(_replay(existing, body_hash, "authorize_hash"), replayed=True)
        if isinstance(refusal, RunRefused):
            from budgets.alerts import alerts_on_refusal

            alerts_on_refusal(workspace=workspace, code=refusal.code, agent=agent_obj, membership=membership)
        raise
    return Authorization(run, replayed=False)


def _unique_or_none(queryset):
    """The one row of a lookup on a unique key, or None. Unlike .first(), no ORDER BY: the models'
    default orderings would make PostgreSQL sort and Django compile more on every hot-path request."""
    rows = list(queryset.order_by()[:1])
    return rows[0] if rows else None


def _existing_run(workspace, public_id: str | None) -> Run | None:
    return _unique_or_none(Run.objects.filter(workspace=workspace, public_id=public_id)) if public_id else None


def _workflow_and_agent(*, workspace, workflow: str, agent: str) -> tuple[int, Agent]:
    """The agent (with its budgets) and the workflow's id in one query; both are created on first use."""
    workflow_id = Workflow.objects.filter(workspace=workspace, name=workflow).values("id")[:1]
    agent_obj = _unique_or_none(
        Agent.objects.filter(workspace=workspace, name=agent).annotate(workflow_ref=Subquery(workflow_id)))
    if agent_obj is None:
        agent_obj, _ = Agent.objects.get_or_create(workspace=workspace, name=agent)
        agent_obj.workflow_ref = None
    if agent_obj.workflow_ref is None:
        agent_obj.workflow_ref = Workflow.objects.get_or_create(workspace=workspace, name=workflow)[0].pk
    return agent_obj.workflow_ref, agent_obj


def _limit_inputs(*, membership: Membership, agent_id: int) -> Agent:
    """The agent with its limits, its workspace (period, plan caps, budget) and the member's budget,
    read in one query. Call under the wallet lock: in READ COMMITTED each statement sees what was
    committed before it started, so nothing read here can be older than the lock."""
    member_budget = Membership.objects.filter(pk=membership.pk).values("monthly_budget")[:1]
    agent = (Agent.objects.select_related("workspace__plan", "workspace__budget")
             .annotate(member_monthly_budget=Subquery(member_budget)).order_by().get(pk=agent_id))
    membership.workspace = agent.workspace
    membership.monthly_budget = agent.member_monthly_budget
    return agent


def _reservation(workspace, membership, agent, wallet, counters: RunCounters) -> int:
    if wallet.available <= 0:
        raise RunRefused("insufficient_credits", _refusal_message("insufficient_credits", wallet.available))
    used = counters_used(workspace_id=workspace.pk, keys=counters.keys)
    limits = [("insufficient_credits", wallet.available)]
    budget = workspace.budget
    if budget.monthly_limit is not None and budget.hard_limit_enabled:
        limits.append(("budget_exhausted", budget.monthly_limit - used[counters.workspace_period]))
    if membership.monthly_budget is not None:
        limits.append(("member_budget_exceeded", membership.monthly_budget - used[counters.member_period]))
    limits.append(("agent_monthly_budget_exceeded", agent.max_per_month - used[counters.agent_period]))
    limits.append(("agent_daily_budget_exceeded", agent.max_per_day - used[counters.agent_day]))
    code, remaining = min(limits, key=lambda limit: limit[1])  # the first listed wins a tie
    if remaining <= 0:
        raise RunRefused(code, _refusal_message(code, remaining))
    return min(agent.max_per_run, remaining)


def run_complete(*, workspace, public_id: str, status: str, nodes: list[NodeInput], body_hash: str = "", now=None) -> Run:
    """Charge the actual cost exactly once and release the hold. The cost is always charged (the
    tokens were spent); above the reservation the run is flagged over_reservation."""
    now = now or timezone.now()
    # The rows the API answer names come in the same query (the queries bench counts statements).
    run = _unique_or_none(Run.objects.select_related("workflow", "agent", "member__user")
                          .filter(workspace=workspace, public_id=public_id))
    if run is None:
        raise RunNotFound(f"No run {public_id!r} in this workspace.")
    if run.completed_at:
        return _replay(run, body_hash, "complete_hash")
    if status not in Run.FINAL_STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(Run.FINAL_STATUSES)}.")
    if len(nodes) > MAX_NODES:
        raise InvalidRequest(f"A run has at most {MAX_NODES} nodes.")
    tool_names = {name for node in nodes for name, _ in node.tools}
    rates, tool_rates = rates_at(at=run.created_at, model_ids={node.model for node in nodes}, tools=tool_names)
    unknown = sorted({node.model for node in nodes} - rates.keys())
    if unknown:
        raise UnknownModel(f"No rate is set for model {unknown[0]!r}; see GET /v1/billing/rates.")
    node_rows = []
    for position, node in enumerate(nodes):
        rate = rates[node.model]
        price = price_node(rate=rate, input_tokens=node.input_tokens, output_tokens=node.output_tokens,
                           tool_calls=list(node.tools), tool_rates=tool_rates)
        node_rows.append(RunNode(
            run=run, position=position, name=node.name, model_id=node.model, input_tokens=node.input_tokens,
            output_tokens=node.output_tokens, input_nanos_per_token=rate.input_nanos_per_token,
            output_nanos_per_token=rate.output_nanos_per_token, token_credits=price.token_credits,
            tool_credits=price.tool_credits, credits=price.credits, tools=price.tools,
        ))
    cost = sum(row.credits for row in node_rows)
    input_tokens = sum(node.input_tokens for node in nodes)
    output_tokens = sum(node.output_tokens for node in nodes)
    changes = dict(status=status, credits=cost, completed_at=now, complete_hash=body_hash,
                   over_reservation=cost > run.reserved, input_tokens=input_tokens, output_tokens=output_tokens)
    with transaction.atomic():
        wallet = wallet_lock(workspace.pk)
        # Conditional updates under the lock: the first completion wins; a replay updates nothing.
        # A run the sweeper already expired has its hold released: it is charged but not released twice.
        was_open = Run.objects.filter(pk=run.pk, completed_at__isnull=True, released_at__isnull=True).update(
            released_at=now, **changes)
        if not was_open and not Run.objects.filter(pk=run.pk, completed_at__isnull=True).update(**changes):
            won = False
        else:
            won = True
            RunNode.objects.bulk_create(node_rows)
            if was_open:
                wallet.reserved -= run.reserved
                wallet.running_runs -= 1
            post(wallet=wallet, postings=charge_postings(wallet=wallet, cost=cost, key_prefix=f"run:{run.pk}:charge",
                                                         reason=f"Run {run.public_id}"), run=run, at=now)
            counters = RunCounters.for_run(workspace_id=workspace.pk, agent_id=run.agent_id, member_id=run.member_id,
                                           day=run.day, period_start=run.period_start)
            counters_add(workspace_id=workspace.pk, keys=counters.keys, charged=cost,
                         reserved=-run.reserved if was_open else 0)
            _rollup_add(run=run, node_rows=node_rows, day=now.date())
            from budgets.alerts import alerts_check_later

            alerts_check_later(workspace_id=workspace.pk)
    if not won:
        run.refresh_from_db()
        return _replay(run, body_hash, "complete_hash")
    # The winner knows every value it wrote: no re-read, and the nodes are served from memory.
    for name, value in changes.items():
        setattr(run, name, value)
    if was_open:
        run.released_at = now
    run._prefetched_objects_cache = {"nodes": node_rows}
    return run


def _rollup_add(*, run: Run, node_rows: list[RunNode], day) -> None:
    per_model: dict[str, dict] = {}
    for row in node_rows:
        totals = per_model.setdefault(row.model_id, {"credits": 0, "input_tokens": 0, "output_tokens": 0, "runs": 0})
        totals["credits"] += row.credits
        totals["input_tokens"] += row.input_tokens
        totals["output_tokens"] += row.output_tokens
    per_model.setdefault(run.model_id, {"credits": 0, "input_tokens": 0, "output_tokens": 0, "runs": 0})["runs"] = 1
    upsert_add(
        DailyUsage,
        [{"workspace": run.workspace_id, "day": day, "agent": run.agent_id, "model": model_id,
          "member": run.member_id, **totals} for model_id, totals in sorted(per_model.items())],
        unique=["workspace", "day", "agent", "model", "member"],
        add=["credits", "input_tokens", "output_tokens", "runs"],
    )


def run_expire(*, run: Run, now=None) -> bool:
    """Release the hold of a run not completed within its TTL. A late complete still charges."""
    now = now or timezone.now()
    with transaction.atomic():
        wallet = wallet_lock(run.workspace_id)
        released = Run.objects.filter(pk=run.pk, released_at__isnull=True, completed_at__isnull=True).update(
            status=Run.EXPIRED, released_at=now)
        if not released:
            return False
        wallet.reserved -= run.reserved
        wallet.running_runs -= 1
        wallet.save(update_fields=["reserved", "running_runs", "updated_at"])
        counters = RunCounters.for_run(workspace_id=run.workspace_id, agent_id=run.agent_id, member_id=run.member_id,
                                       day=run.day, period_start=run.period_start)
        counters_add(workspace_id=run.workspace_id, keys=counters.keys, reserved=-run.reserved)
    return True


def reservations_release_expired(*, now=None, batch: int = 500) -> int:
    """The sweeper: expire every run past its expires_at. Returns how many were released."""
    now = now or timezone.now()
    released = 0
    while True:
        due = list(Run.objects.filter(status=Run.RUNNING, released_at__isnull=True, expires_at__lt=now)
                   .only("id", "workspace_id", "agent_id", "member_id", "day", "period_start", "reserved")[:batch])
        if not due:
            return released
        released += sum(run_expire(run=run, now=now) for run in due)
        if len(due) < batch:
            return released

