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
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from billing.ledger import hold_place, hold_release, run_charge_post, wallet_lock
from billing.models import Membership, User, Workspace
from billing.edition import is_community
from billing.money import NANOS_PER_CREDIT, nanos_display
from billing.pricing import Rate, TokenCounts, model_rate_sql, price_node, rate_from_columns, rates_at
from billing.sql import columns, instance_from_row, rows_insert, sql_execute, sql_row, writes_together
from billing.upsert import upsert_add
from budgets.alerts import alerts_check_later, alerts_on_refusal
from budgets.counters import RunCounters, counters_add
from budgets.limits import CONCURRENCY_LIMIT, Refusal, run_reservation_decide

from .errors import (ConcurrencyLimited, IdempotencyConflict, InvalidRequest, RunError, RunNotFound, RunRefused,
                     UnknownModel)
from .models import Agent, DailyUsage, Run, RunKey, RunNode, Workflow

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
    # Token classes (issue 28): parts of input_tokens (cached, cache write) and of output_tokens.
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def counts(self) -> TokenCounts:
        return TokenCounts(self.input_tokens, self.output_tokens, self.cached_input_tokens, self.cache_write_tokens,
                           self.reasoning_tokens)


@dataclass
class Authorization:
    run: Run
    replayed: bool


def _replay(run: Run, body_hash: str, field: str) -> Run:
    if getattr(run, field) != body_hash:
        raise IdempotencyConflict(f"Run id {run.public_id!r} was already used with a different request body.")
    return run


def max_output_tokens_for(*, reserved: int, rate, estimated_input_tokens: int, requested: int | None,
                          estimated_cached_input_tokens: int = 0) -> int | None:
    """What the reservation can pay for at the model's output rate after the estimated input, of
    which estimated_cached_input_tokens at the cached input rate."""
    if rate.output_nanos_per_token == 0:
        return requested
    input_cost = ((estimated_input_tokens - estimated_cached_input_tokens) * rate.input_nanos_per_token
                  + estimated_cached_input_tokens * rate.cached_input_nanos_per_token)
    affordable = max(reserved - input_cost, 0) // rate.output_nanos_per_token
    return affordable if requested is None else min(requested, affordable)


def run_authorize(*, membership: Membership, workflow: str, agent: str, model: str, public_id: str | None = None,
                  estimated_input_tokens: int | None = None, max_output_tokens: int | None = None,
                  estimated_cached_input_tokens: int | None = None, body_hash: str = "", now=None) -> Authorization:
    """Reserve credits for a run, or refuse it with the code of the limit that binds.

    The reservation is min(agent max per run, available, every remaining budget)."""
    if estimated_cached_input_tokens and estimated_cached_input_tokens > (estimated_input_tokens or 0):
        raise InvalidRequest("estimated_cached_input_tokens is a part of estimated_input_tokens and cannot exceed it.")
    workspace = membership.workspace
    now = now or timezone.now()
    workflow_id, agent_id, rate = _workflow_agent_and_rate(workspace=workspace, workflow=workflow, agent=agent,
                                                           model=model, at=now)
    try:
        with transaction.atomic():
            wallet = wallet_lock(workspace.pk)
            # budgets.limits reads every input of the decision now, under the lock (issue 9).
            decision = run_reservation_decide(wallet=wallet, membership=membership, agent_id=agent_id,
                                              day=now.date(), enforce=not is_community())
            if isinstance(decision, Refusal):
                raise _refusal_error(decision)
            reservation = decision.amount
            run = Run(
                workspace_id=workspace.pk, public_id=public_id or "run_" + secrets.token_urlsafe(12),
                workflow_id=workflow_id, agent_id=agent_id, member_id=membership.pk, model_id=model,
                reserved=reservation, estimated_input_tokens=estimated_input_tokens, day=now.date(),
                period_start=decision.period_start, created_at=now,
                expires_at=now + timedelta(seconds=settings.RESERVATION_TTL_SECONDS), authorize_hash=body_hash,
                max_output_tokens=max_output_tokens_for(reserved=reservation, rate=rate,
                                                        estimated_input_tokens=estimated_input_tokens or 0,
                                                        estimated_cached_input_tokens=estimated_cached_input_tokens or 0,
                                                        requested=max_output_tokens),
            )
            rows_insert(Run, [run])
            with writes_together():  # one statement on PostgreSQL (billing.sql)
                # The exactly-once guard for the client's id, in the run's transaction (see RunKey). A
                # taken id raises IntegrityError when the block sends its writes, as it did before.
                rows_insert(RunKey, [RunKey(workspace_id=workspace.pk, public_id=run.public_id, run_id=run.pk,
                                            run_created_at=now)])
                hold_place(wallet=wallet, amount=reservation)
                counters_add(workspace_id=workspace.pk, keys=decision.counters.keys, reserved=reservation)
    except IntegrityError:
        # The client's id is taken (a replay, or a racing twin): answer as a replay of the first run.
        existing = _existing_run(workspace, public_id)
        if existing is None:
            if public_id and RunKey.objects.filter(workspace=workspace, public_id=public_id).exists():
                # The key outlives retention, so an old id is never charged again.
                raise IdempotencyConflict(f"Run id {public_id!r} belongs to a run older than the kept detail; "
                                          "use a new id.") from None
            raise
        return Authorization(_replay(existing, body_hash, "authorize_hash"), replayed=True)
    except (RunRefused, ConcurrencyLimited) as refusal:
        # A replay of a run authorized earlier gets its original answer, whatever the limits say now.
        existing = _existing_run(workspace, public_id)
        if existing is not None:
            return Authorization(_replay(existing, body_hash, "authorize_hash"), replayed=True)
        if isinstance(refusal, RunRefused):
            # Read again: the period may have rolled while the request waited for the lock.
            alerts_on_refusal(workspace=Workspace.objects.get(pk=workspace.pk), code=refusal.code, agent_id=agent_id,
                              membership_id=membership.pk)
        raise
    return Authorization(run, replayed=False)


def _existing_run(workspace, public_id: str | None) -> Run | None:
    return _run_by_public_id(workspace_id=workspace.pk, public_id=public_id) if public_id else None


# One statement of fixed text (billing.sql): the agent's and the workflow's ids (NULL until first
# use) and the model's rate in force. The one-row FROM keeps the rate when the agent is new.
AGENT_WORKFLOW_RATE = f"""
    SELECT a.id, (SELECT f.id FROM usage_workflow f WHERE f.workspace_id = %s AND f.name = %s),
           {model_rate_sql("input_nanos_per_token")}, {model_rate_sql("output_nanos_per_token")},
           {model_rate_sql("cached_input_nanos_per_token")}
    FROM (SELECT 1 AS one) AS one LEFT JOIN usage_agent a ON a.workspace_id = %s AND a.name = %s"""


def _workflow_agent_and_rate(*, workspace, workflow: str, agent: str, model: str, at) -> tuple[int, int, Rate]:
    """The workflow's and the agent's ids and the model's rate in force at `at`, in one query. The
    workflow and agent are created on first use, but never for an unknown model: a refused request
    changes nothing."""
    agent_id, workflow_id, rate_in, rate_out, cached_in = sql_row(
        AGENT_WORKFLOW_RATE, [workspace.pk, workflow, model, at, model, at, model, at, workspace.pk, agent])
    rate = rate_from_columns(model_id=model, rate_in=rate_in, rate_out=rate_out, cached_in=cached_in)
    if rate is None:
        raise UnknownModel(f"No rate is set for model {model!r}; see GET /v1/billing/rates.")
    if agent_id is None:
        agent_id = Agent.objects.get_or_create(workspace=workspace, name=agent)[0].pk
    if workflow_id is None:
        workflow_id = Workflow.objects.get_or_create(workspace=workspace, name=workflow)[0].pk
    return workflow_id, agent_id, rate


# The run a client's id names (a completion, a replayed authorize), with the names its API answer
# shows, in one statement of fixed text (billing.sql). Found through RunKey, as Run.objects.for_public_id does: the key's run_created_at
# prunes the other month partitions at execution time.
RUN_BY_PUBLIC_ID = f"""
    SELECT {columns(Run, "r")}, f.name, a.name, m.user_id, u.email
    FROM usage_run r
    JOIN usage_workflow f ON f.id = r.workflow_id
    JOIN usage_agent a ON a.id = r.agent_id
    JOIN billing_membership m ON m.id = r.member_id
    JOIN billing_user u ON u.id = m.user_id
    WHERE r.workspace_id = %s
      AND r.id = (SELECT k.run_id FROM usage_runkey k WHERE k.workspace_id = %s AND k.public_id = %s)
      AND r.created_at = (SELECT k.run_created_at FROM usage_runkey k WHERE k.workspace_id = %s AND k.public_id = %s)"""


def _run_by_public_id(*, workspace_id: int, public_id: str) -> Run | None:
    row = sql_row(RUN_BY_PUBLIC_ID, [workspace_id, workspace_id, public_id, workspace_id, public_id])
    if row is None:
        return None
    run = instance_from_row(Run, row)
    workflow_name, agent_name, user_id, email = row[-4:]
    run.workflow = Workflow.from_db(connection.alias, ["id", "name"], [run.workflow_id, workflow_name])
    run.agent = Agent.from_db(connection.alias, ["id", "name"], [run.agent_id, agent_name])
    run.member = Membership.from_db(connection.alias, ["id", "user_id"], [run.member_id, user_id])
    run.member.user = User.from_db(connection.alias, ["id", "email"], [user_id, email])
    return run


def _refusal_error(refusal: Refusal) -> RunError:
    if refusal.code == CONCURRENCY_LIMIT:
        return ConcurrencyLimited(refusal.message, retry_after=refusal.retry_after)
    return RunRefused(refusal.code, refusal.message)


def run_complete(*, workspace, public_id: str, status: str, nodes: list[NodeInput], body_hash: str = "", now=None) -> Run:
    """Charge the actual cost exactly once and release the hold. The cost is always charged (the
    tokens were spent); above the reservation the run is flagged over_reservation."""
    now = now or timezone.now()
    # The rows the API answer names come in the same query (the queries bench counts statements).
    run = _run_by_public_id(workspace_id=workspace.pk, public_id=public_id)
    if run is None:
        raise RunNotFound(f"No run {public_id!r} in this workspace.")
    if run.completed_at:
        return _replay(run, body_hash, "complete_hash")
    if status not in Run.FINAL_STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(Run.FINAL_STATUSES)}.")
    if len(nodes) > MAX_NODES:
        raise InvalidRequest(f"A run has at most {MAX_NODES} nodes.")
    for position, node in enumerate(nodes):
        broken = node.counts.check()
        if broken:  # refused before anything is priced or written (issue 28)
            raise InvalidRequest(f"nodes.{position}: {broken}")
    tool_names = {name for node in nodes for name, _ in node.tools}
    rates, tool_rates = rates_at(at=run.created_at, model_ids={node.model for node in nodes}, tools=tool_names)
    unknown = sorted({node.model for node in nodes} - rates.keys())
    if unknown:
        raise UnknownModel(f"No rate is set for model {unknown[0]!r}; see GET /v1/billing/rates.")
    node_rows = []
    for position, node in enumerate(nodes):
        rate = rates[node.model]
        price = price_node(rate=rate, input_tokens=node.input_tokens, output_tokens=node.output_tokens,
                           cached_input_tokens=node.cached_input_tokens, cache_write_tokens=node.cache_write_tokens,
                           reasoning_tokens=node.reasoning_tokens, tool_calls=list(node.tools), tool_rates=tool_rates)
        node_rows.append(RunNode(
            run=run, run_created_at=run.created_at, position=position, name=node.name, model_id=node.model,
            input_tokens=node.input_tokens, output_tokens=node.output_tokens, input_nanos_per_token=rate.input_nanos_per_token,
            output_nanos_per_token=rate.output_nanos_per_token, cached_input_tokens=node.cached_input_tokens,
            cache_write_tokens=node.cache_write_tokens, reasoning_tokens=node.reasoning_tokens,
            cached_input_nanos_per_token=rate.cached_input_nanos_per_token,
            cache_write_nanos_per_token=rate.cache_write_nanos_per_token,
            reasoning_nanos_per_token=rate.reasoning_nanos_per_token, token_credits=price.token_credits,
            tool_credits=price.tool_credits, credits=price.credits, tools=price.tools,
        ))
    cost = sum(row.credits for row in node_rows)
    if cost > settings.RUN_MAX_CREDITS * NANOS_PER_CREDIT:
        # Refused before anything is written: the run stays open (a correct completion or the
        # sweeper closes it), and over_reservation stays a bounded overrun, never an unbounded debt.
        raise InvalidRequest(f"This completion costs {nanos_display(cost)} credits; a run costs at most "
                             f"{settings.RUN_MAX_CREDITS:,} credits. Check the token and tool-call counts.")
    input_tokens = sum(node.input_tokens for node in nodes)
    output_tokens = sum(node.output_tokens for node in nodes)
    changes = dict(status=status, credits=cost, completed_at=now, complete_hash=body_hash,
                   over_reservation=cost > run.reserved, input_tokens=input_tokens, output_tokens=output_tokens)
    with transaction.atomic():
        wallet = wallet_lock(workspace.pk)
        # Conditional updates under the lock: the first completion wins; a replay updates nothing.
        # A run the sweeper already expired has its hold released: it is charged but not released twice.
        was_open = _run_finish(run=run, changes={"released_at": now, **changes}, only_open=True)
        if not was_open and not _run_finish(run=run, changes=changes, only_open=False):
            won = False
        else:
            won = True
            with writes_together():  # the nodes, entries, wallet, counters and rollup: one statement
                rows_insert(RunNode, node_rows)
                run_charge_post(wallet=wallet, run=run, cost=cost, release_hold=was_open, at=now)
                counters = RunCounters.for_run(workspace_id=workspace.pk, agent_id=run.agent_id,
                                               member_id=run.member_id, day=run.day, period_start=run.period_start)
                counters_add(workspace_id=workspace.pk, keys=counters.keys, charged=cost,
                             reserved=-run.reserved if was_open else 0)
                _rollup_add(run=run, node_rows=node_rows, day=now.date())
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


def _run_finish(*, run: Run, changes: dict, only_open: bool) -> bool:
    """Write a completion's `changes` if the run is not completed yet (and, with `only_open`, still
    holds its reservation). Conditional, under the wallet lock: the first completion wins and a
    replay changes nothing. created_at names the run's partition (PostgreSQL reads one month)."""
    assignments = ", ".join(f"{Run._meta.get_field(name).column} = %s" for name in changes)
    condition = " AND released_at IS NULL" if only_open else ""
    return bool(sql_execute(
        f"UPDATE usage_run SET {assignments} WHERE id = %s AND created_at = %s AND completed_at IS NULL{condition}",
        [*changes.values(), run.pk, run.created_at]))


ROLLUP_SUMS = ("credits", "input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens",
               "reasoning_tokens", "cache_saving")


def _rollup_add(*, run: Run, node_rows: list[RunNode], day) -> None:
    per_model: dict[str, dict] = {}
    for row in node_rows:
        totals = per_model.setdefault(row.model_id, dict.fromkeys(ROLLUP_SUMS + ("runs",), 0))
        for name in ROLLUP_SUMS:
            totals[name] += getattr(row, name)
    per_model.setdefault(run.model_id, dict.fromkeys(ROLLUP_SUMS + ("runs",), 0))["runs"] = 1
    upsert_add(
        DailyUsage,
        [{"workspace": run.workspace_id, "day": day, "agent": run.agent_id, "model": model_id,
          "member": run.member_id, "period_start": run.period_start, **totals}
         for model_id, totals in sorted(per_model.items())],
        unique=["workspace", "day", "agent", "model", "member", "period_start"],
        add=[*ROLLUP_SUMS, "runs"],
    )


def run_expire(*, run: Run, now=None) -> bool:
    """Release the hold of a run not completed within its TTL. A late complete still charges."""
    now = now or timezone.now()
    with transaction.atomic():
        wallet = wallet_lock(run.workspace_id)
        released = Run.objects.filter(pk=run.pk, created_at=run.created_at, released_at__isnull=True,
                                      completed_at__isnull=True).update(
            status=Run.EXPIRED, released_at=now)
        if not released:
            return False
        hold_release(wallet=wallet, amount=run.reserved)
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
                   .only("id", "created_at", "workspace_id", "agent_id", "member_id", "day", "period_start",
                         "reserved")[:batch])
        if not due:
            return released
        released += sum(run_expire(run=run, now=now) for run in due)
        if len(due) < batch:
            return released

