"""The run lifecycle: authorize (reserve), extend (grow the hold), complete (charge exactly once),
expire (release).

Each phase's locked decision is ONE statement: a call of a PL/pgSQL function (usage/sql/runs.sql)
that locks the workspace's wallet row and, inside PostgreSQL, checks every limit, places or
releases the hold, moves the counters, writes the run, its nodes, the rollup and the ledger entries,
and watches the auto-recharge threshold (issue 26; docs/performance.md). Concurrent runs can never
together pass a limit, and a replayed completion finds the run already charged. That SQL is the only
implementation of those rules; this module validates the request, prices the nodes (billing.pricing,
from the rates the completion's one read returns), and turns what the database answered into the
run, a refusal or a replay, with the alerts and auto-recharge enqueued after commit."""

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from billing.edition import is_community
from billing.models import Membership, User, Workspace
from billing.money import NANOS_PER_CREDIT, nanos_display
from billing.pricing import TokenCounts, price_node, rates_from_rows
from billing.recharge_trigger import recharge_enqueue
from billing.sql import columns, instance_from_row, sql_row
from budgets.alerts import alerts_check_later, alerts_on_refusal
from budgets.limits import CONCURRENCY_LIMIT, REFUSAL_CODES, Refusal, refusal_from_database
from budgets.models import ALERT_FROM_PERCENT

from .errors import (ConcurrencyLimited, IdempotencyConflict, InvalidRequest, RunError, RunNotFound, RunNotRunning,
                     RunRefused, UnknownModel)
from .models import Agent, DeveloperToken, Run, RunKey, RunNode, Workflow

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


def _locked_call(sql: str, params: list) -> tuple:
    """One call of a run function. Outside a transaction (the API) the statement is its own
    transaction, and the wallet lock it takes lasts that statement only. Inside a caller's
    transaction (the demo seed, tests) a savepoint keeps an error of the call (a taken key) from
    aborting the caller's transaction, as the atomic block around the old code did."""
    if connection.in_atomic_block:
        with transaction.atomic():
            return sql_row(sql, params)
    return sql_row(sql, params)


class Authorized(NamedTuple):
    """A row of usage_run_authorize (usage/sql/runs.sql says what each outcome carries)."""
    outcome: str
    remaining: int | None
    running: int | None
    allowed: int | None
    run_id: int | None
    run_created_at: object
    reserved: int | None
    max_output_tokens: int | None
    period_start: object
    workflow_id: int | None
    agent_id: int | None
    recharge_key: str | None


AUTHORIZE = ("SELECT * FROM usage_run_authorize(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, "
             "%s, %s)")


def run_authorize(*, membership: Membership, workflow: str, agent: str, model: str, public_id: str | None = None,
                  estimated_input_tokens: int | None = None, max_output_tokens: int | None = None,
                  estimated_cached_input_tokens: int | None = None, token: DeveloperToken | None = None,
                  reserve: int | None = None, tags: dict | None = None, body_hash: str = "",
                  now=None) -> Authorization:
    """Reserve credits for a run, or refuse it with the code of the limit that binds.

    The reservation is min(reserve if given, agent and token max per run, available, every remaining
    budget); `token` is the developer token that authorizes the run (its limits apply, and the run
    counts in its counters); `tags` are the run's validated cost tags. The workflow and the agent are
    created on first use, but never for an unknown model (a refused request changes nothing)."""
    if estimated_cached_input_tokens and estimated_cached_input_tokens > (estimated_input_tokens or 0):
        raise InvalidRequest("estimated_cached_input_tokens is a part of estimated_input_tokens and cannot exceed it.")
    if reserve is not None and reserve <= 0:
        raise InvalidRequest("reserve must be more than 0 credits.")
    workspace = membership.workspace
    now = now or timezone.now()
    public_id = public_id or "run_" + secrets.token_urlsafe(12)
    tags = tags or {}
    params = [workspace.pk, membership.pk, token.pk if token is not None else None, workflow, agent, model, public_id,
              estimated_input_tokens, estimated_cached_input_tokens, max_output_tokens, reserve,
              json.dumps(tags), body_hash, now, now.date(), settings.RESERVATION_TTL_SECONDS, is_community()]
    refused_by_database = None
    try:
        answer = Authorized(*_locked_call(AUTHORIZE, params))
        if answer.outcome == "new_name":
            Agent.objects.get_or_create(workspace=workspace, name=agent)
            Workflow.objects.get_or_create(workspace=workspace, name=workflow)
            answer = Authorized(*_locked_call(AUTHORIZE, params))
    except IntegrityError as error:
        # The database's unique key on the client's id refused a twin the function did not see (it
        # looks the key up under the wallet lock first): answer as a replay of the first run.
        refused_by_database = error
        answer = Authorized("replay", *[None] * 11)
    if answer.outcome == "authorized":
        recharge_enqueue(answer.recharge_key)
        run = Run(
            id=answer.run_id, workspace_id=workspace.pk, public_id=public_id, workflow_id=answer.workflow_id,
            agent_id=answer.agent_id, member_id=membership.pk, token_id=token.pk if token is not None else None,
            model_id=model, status=Run.RUNNING, reserved=answer.reserved, estimated_input_tokens=estimated_input_tokens,
            estimated_cached_input_tokens=estimated_cached_input_tokens, requested_max_output_tokens=max_output_tokens,
            max_output_tokens=answer.max_output_tokens, tags=tags, day=now.date(), period_start=answer.period_start,
            created_at=now, expires_at=now + timedelta(seconds=settings.RESERVATION_TTL_SECONDS),
            authorize_hash=body_hash)
        run._state.adding = False
        return Authorization(run, replayed=False)
    if answer.outcome == "replay":
        existing = _run_by_public_id(workspace_id=workspace.pk, public_id=public_id)[0]
        if existing is None:
            if RunKey.objects.filter(workspace=workspace, public_id=public_id).exists():
                # The key outlives retention, so an old id is never charged again.
                raise IdempotencyConflict(f"Run id {public_id!r} belongs to a run older than the kept detail; "
                                          "use a new id.")
            raise refused_by_database or IntegrityError(f"No run has the id {public_id!r} its key names.")
        return Authorization(_replay(existing, body_hash, "authorize_hash"), replayed=True)
    if answer.outcome == "unknown_model":
        raise UnknownModel(f"No rate is set for model {model!r}; see GET /v1/billing/rates.")
    if answer.outcome not in REFUSAL_CODES:
        raise RuntimeError(f"usage_run_authorize answered {answer.outcome!r}")
    refusal = refusal_from_database(code=answer.outcome, remaining=answer.remaining, running=answer.running,
                                    allowed=answer.allowed, token=token, model=model)
    if refusal.code != CONCURRENCY_LIMIT:
        # Read again: the period may have rolled while the request waited for the lock.
        alerts_on_refusal(workspace=Workspace.objects.get(pk=workspace.pk), code=refusal.code,
                          agent_id=answer.agent_id, membership_id=membership.pk)
    raise _refusal_error(refusal)


@dataclass(frozen=True)
class Extension:
    """The answer to an extension: the run's hold after it (a replay repeats the first answer)."""

    run_id: str  # the run's client id
    key: str  # the extension key
    requested: int  # nanocredits asked for
    added: int  # nanocredits the hold grew by: at most requested, less when a limit leaves less
    reserved: int  # the run's hold after this extension
    max_output_tokens: int | None
    expires_at: object  # the run's new expiry
    replayed: bool


class Extended(NamedTuple):
    """A row of usage_run_extend (usage/sql/runs.sql says what each outcome carries)."""
    outcome: str
    remaining: int | None
    request_hash: str | None
    status: str | None
    added: int | None
    reserved: int | None
    max_output_tokens: int | None
    expires_at: object
    agent_id: int | None
    member_id: int | None
    token_id: int | None
    recharge_key: str | None


EXTEND = "SELECT * FROM usage_run_extend(%s, %s, %s, %s, %s, %s, %s, %s)"


def run_extend(*, workspace: Workspace, public_id: str, key: str, credits: int, body_hash: str = "",
               now=None) -> Extension:
    """Grow a running run's hold by up to `credits` nanocredits (issue 29), in the same locked
    decision as authorize, against every limit of the run (its agent's, member's and token's, the
    per-run maximums included) and in the windows it counts in. The hold grows by the smaller of
    `credits` and what the limits leave, or the extension is refused and the hold is unchanged.
    Exactly once per (run, key): the same key and body again changes nothing and answers the same;
    the same key with another body is an idempotency conflict. A finished or expired run cannot grow."""
    if credits <= 0:
        raise InvalidRequest("credits must be more than 0.")
    now = now or timezone.now()
    try:
        answer = Extended(*_locked_call(EXTEND, [workspace.pk, public_id, key, credits, body_hash, now,
                                                 settings.RESERVATION_TTL_SECONDS, is_community()]))
    except IntegrityError:
        # The unique key on (run, key) refused a twin the function did not see: read the winner's row.
        answer = Extended(*_locked_call(EXTEND, [workspace.pk, public_id, key, credits, body_hash, now,
                                                 settings.RESERVATION_TTL_SECONDS, is_community()]))
    if answer.outcome == "replay":
        if answer.request_hash != body_hash:
            raise IdempotencyConflict(f"Extension key {key!r} of run {public_id!r} was already used with a "
                                      "different request body.")
        return Extension(public_id, key, credits, answer.added, answer.reserved, answer.max_output_tokens,
                         answer.expires_at, replayed=True)
    if answer.outcome == "extended":
        recharge_enqueue(answer.recharge_key)
        return Extension(public_id, key, credits, answer.added, answer.reserved, answer.max_output_tokens,
                         answer.expires_at, replayed=False)
    if answer.outcome == "not_found":
        raise RunNotFound(f"No run {public_id!r} in this workspace.")
    if answer.outcome == "run_not_running":
        state = "completed" if answer.status in Run.FINAL_STATUSES else "expired"
        raise RunNotRunning(f"Run {public_id!r} is {state} ({answer.status}); only a running run's hold can grow. "
                            "Authorize a new run.")
    if answer.outcome not in REFUSAL_CODES:
        raise RuntimeError(f"usage_run_extend answered {answer.outcome!r}")
    token = DeveloperToken.objects.filter(pk=answer.token_id).first() if answer.token_id else None
    refusal = refusal_from_database(code=answer.outcome, remaining=answer.remaining, running=None, allowed=None,
                                    token=token)
    alerts_on_refusal(workspace=Workspace.objects.get(pk=workspace.pk), code=refusal.code,
                      agent_id=answer.agent_id, membership_id=answer.member_id)
    raise _refusal_error(refusal)


# The run a client's id names, with the names its answer shows and the rates in force when it was
# authorized, in one call (usage_run_for_completion, usage/sql/runs.sql). The run's columns are read
# in the order instance_from_row takes them.
RUN_BY_PUBLIC_ID = (f"SELECT {columns(Run, '(c.run)')}, c.workflow_name, c.agent_name, c.user_id, c.email, "
                    "c.model_rates, c.tool_rates FROM usage_run_for_completion(%s, %s, %s, %s) c")


def _run_by_public_id(*, workspace_id: int, public_id: str, models=(), tools=()) -> tuple[Run | None, list, list]:
    """The run (None if there is none), and the rows of the rates in force at its authorization
    for `models` and `tools` (billing.pricing.rates_from_rows reads them)."""
    row = sql_row(RUN_BY_PUBLIC_ID, [workspace_id, public_id, sorted(models), sorted(tools)])
    if row is None:
        return None, [], []
    run = instance_from_row(Run, row)
    workflow_name, agent_name, user_id, email, model_rows, tool_rows = row[-6:]
    run.workflow = Workflow.from_db(connection.alias, ["id", "name"], [run.workflow_id, workflow_name])
    run.agent = Agent.from_db(connection.alias, ["id", "name"], [run.agent_id, agent_name])
    run.member = Membership.from_db(connection.alias, ["id", "user_id"], [run.member_id, user_id])
    run.member.user = User.from_db(connection.alias, ["id", "email"], [user_id, email])
    return run, _json(model_rows), _json(tool_rows)


def _json(value) -> list:
    if value is None:
        return []
    return json.loads(value) if isinstance(value, str) else value


def _refusal_error(refusal: Refusal) -> RunError:
    if refusal.code == CONCURRENCY_LIMIT:
        return ConcurrencyLimited(refusal.message, retry_after=refusal.retry_after)
    return RunRefused(refusal.code, refusal.message, status=refusal.status,
                      detail={"limit": refusal.limit} if refusal.limit else None)


# The columns of a node the completion sends to PostgreSQL (usage_run_complete reads them by name),
# and cache_saving, which the rollup sums.
NODE_FIELDS = ("position", "name", "model_id", "input_tokens", "output_tokens", "cached_input_tokens",
               "cache_write_tokens", "reasoning_tokens", "input_nanos_per_token", "output_nanos_per_token",
               "cached_input_nanos_per_token", "cache_write_nanos_per_token", "reasoning_nanos_per_token",
               "token_credits", "tool_credits", "credits", "tools", "cache_saving")

COMPLETE = "SELECT * FROM usage_run_complete(%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s)"


def run_complete(*, workspace, public_id: str, status: str, nodes: list[NodeInput], body_hash: str = "", now=None) -> Run:
    """Charge the actual cost exactly once and release the hold. The cost is always charged (the
    tokens were spent); above the reservation the run is flagged over_reservation, and what would
    take the workspace below -OVERDRAFT_MAX_CREDITS is written off."""
    now = now or timezone.now()
    # The rows the API answer names, and the rates, come in the same query (the queries bench
    # counts statements).
    run, model_rows, tool_rows = _run_by_public_id(
        workspace_id=workspace.pk, public_id=public_id, models={node.model for node in nodes},
        tools={name for node in nodes for name, _ in node.tools})
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
    rates, tool_rates = rates_from_rows(model_rows=model_rows, tool_rows=tool_rows)
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
    nodes_json = json.dumps([{name: getattr(row, name) for name in NODE_FIELDS} for row in node_rows])
    outcome, released, recharge_key, alert_due = _locked_call(COMPLETE, [
        workspace.pk, run.pk, run.created_at, status, cost, input_tokens, output_tokens, nodes_json, body_hash, now,
        now.date(), settings.OVERDRAFT_MAX_CREDITS * NANOS_PER_CREDIT, ALERT_FROM_PERCENT])
    if outcome != "charged":
        run.refresh_from_db()
        return _replay(run, body_hash, "complete_hash")
    recharge_enqueue(recharge_key)
    if alert_due:  # below every alert threshold, before and after, no alert can change
        alerts_check_later(workspace_id=workspace.pk)
    # The winner knows every value it wrote: no re-read, and the nodes are served from memory.
    run.status, run.credits, run.completed_at, run.complete_hash = status, cost, now, body_hash
    run.over_reservation = cost > run.reserved
    run.input_tokens, run.output_tokens = input_tokens, output_tokens
    if released:
        run.released_at = now
    run._prefetched_objects_cache = {"nodes": node_rows}
    return run


EXPIRE = "SELECT * FROM usage_run_expire(%s, %s, %s, %s)"


def run_expire(*, run: Run, now=None) -> bool:
    """Release the hold of a run not completed within its TTL. A late complete still charges."""
    released, recharge_key = _locked_call(EXPIRE, [run.workspace_id, run.pk, run.created_at, now or timezone.now()])
    recharge_enqueue(recharge_key)
    return released


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

