"""Checks every money invariant of a workspace against the ledger and the runs.

The services keep these true inside one transaction each; reconcile proves it after the fact (a
bug, a hand-made SQL UPDATE, a restored backup). It only reads, and reports problems as sentences
that name the workspace and both figures."""

from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, time, timezone as dt_timezone

from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from billing.models import AutoRechargeAttempt, LedgerEntry, Purchase, Wallet, Workspace
from billing.money import nanos_to_str
from budgets.counters import AGENT, DAY, MEMBER, PERIOD, TOKEN, WORKSPACE, day_start
from budgets.models import SpendCounter
from invoices.models import Invoice, InvoiceLine, InvoiceTax
from usage.models import Run
from usage.selectors import detail_kept_from


def _credits(nanos: int) -> str:
    return nanos_to_str(nanos) + " credits"


def reconcile_workspace(*, workspace: Workspace) -> list[str]:
    """The problems found in one workspace (empty when everything agrees).

    The wallet row is locked (FOR UPDATE, like every writer takes it) for the few reads, so no
    reservation or charge can land between reading the wallet and summing its ledger and runs."""
    problems: list[str] = []
    label = f"workspace {workspace.slug}"
    with transaction.atomic():
        wallet = Wallet.objects.select_for_update().filter(workspace_id=workspace.pk).first()
        if wallet is None:
            return [f"{label}: has no wallet"]

        sums = dict(LedgerEntry.objects.filter(workspace_id=workspace.pk).values_list("bucket")
                    .annotate(total=Sum("amount")).values_list("bucket", "total"))
        for bucket, held in ((LedgerEntry.MONTHLY, wallet.monthly), (LedgerEntry.PURCHASED, wallet.purchased)):
            total = sums.get(bucket) or 0
            if total != held:
                problems.append(f"{label}: {bucket} bucket is {_credits(held)} but its ledger entries sum to {_credits(total)}")

        last = LedgerEntry.objects.filter(workspace_id=workspace.pk).order_by("-id").first()
        if last is not None and last.balance_after != wallet.balance:
            problems.append(f"{label}: the last ledger entry (#{last.pk}) says the balance is {_credits(last.balance_after)} "
                            f"but the wallet holds {_credits(wallet.balance)}")
        for bucket, held in ((LedgerEntry.MONTHLY, wallet.monthly), (LedgerEntry.PURCHASED, wallet.purchased)):
            last_in_bucket = LedgerEntry.objects.filter(workspace_id=workspace.pk, bucket=bucket).order_by("-id").first()
            if last_in_bucket is not None and last_in_bucket.bucket_balance_after != held:
                problems.append(f"{label}: the last {bucket} entry (#{last_in_bucket.pk}) says the bucket is "
                                f"{_credits(last_in_bucket.bucket_balance_after)} but it holds {_credits(held)}")

        if wallet.monthly < 0:
            problems.append(f"{label}: monthly bucket is negative ({_credits(wallet.monthly)})")
        if wallet.purchased < 0 and not Run.objects.filter(workspace_id=workspace.pk, over_reservation=True).exists() \
                and not LedgerEntry.objects.filter(workspace_id=workspace.pk, kind=LedgerEntry.REFUND).exists():
            # Below zero is allowed only by the documented overrun of a run charged above its reservation,
            # or by a refund of credits already spent (docs/refunds.md).
            problems.append(f"{label}: purchased bucket is negative ({_credits(wallet.purchased)}) "
                            "without any over-reservation run to explain it")

        open_runs = Run.objects.filter(workspace_id=workspace.pk, released_at__isnull=True)
        held = open_runs.aggregate(reserved=Sum("reserved"), count=Count("id"))
        if (held["reserved"] or 0) != wallet.reserved:
            problems.append(f"{label}: wallet reserves {_credits(wallet.reserved)} but its open runs hold "
                            f"{_credits(held['reserved'] or 0)}")
        if held["count"] != wallet.running_runs:
            problems.append(f"{label}: wallet counts {wallet.running_runs} running runs but {held['count']} are open")
        if wallet.reserved < 0 or wallet.running_runs < 0:
            problems.append(f"{label}: reserved ({_credits(wallet.reserved)}) or running runs ({wallet.running_runs}) is negative")

        # Only charges of runs still kept: retention drops old months of runs, never their ledger entries.
        charged = LedgerEntry.objects.filter(workspace_id=workspace.pk, kind=LedgerEntry.CHARGE,
                                             run__completed_at__isnull=False).aggregate(t=Sum("amount"))["t"] or 0
        run_credits = Run.objects.filter(workspace_id=workspace.pk, completed_at__isnull=False).aggregate(t=Sum("credits"))["t"] or 0
        if -charged != run_credits:
            problems.append(f"{label}: charge entries total {_credits(-charged)} but completed runs cost {_credits(run_credits)}")

        problems += _write_off_problems(workspace, label)
        problems += _counter_problems(workspace, label)
        problems += _run_period_problems(workspace, label)
        problems += _auto_recharge_problems(workspace, label)
        problems += _invoice_problems(workspace, label)
    return problems


def _summed(model, field: str):
    """The sum of `field` over an invoice's rows of `model`, as a subquery (0 when none)."""
    return Coalesce(Subquery(model.objects.filter(invoice=OuterRef("pk")).values("invoice")
                             .annotate(total=Sum(field)).values("total")), 0)


def _invoice_problems(workspace: Workspace, label: str) -> list[str]:
    """Every invoice and credit note: total = subtotal + tax (also a database constraint), the
    subtotal is its lines', the tax its tax lines'; a credit pack's invoice bills what the buyer
    paid (price and tax) and delivers the credits its ledger entries credited."""
    problems = []
    ledger = dict(LedgerEntry.objects.filter(workspace_id=workspace.pk, purchase__isnull=False,
                                             kind__in=[LedgerEntry.PURCHASE, LedgerEntry.BONUS])
                  .values_list("purchase_id").annotate(total=Sum("amount")).values_list("purchase_id", "total"))
    paid = {pk: amount + tax for pk, amount, tax in Purchase.objects.filter(workspace_id=workspace.pk)
            .values_list("pk", "amount_cents", "tax_cents")}
    invoices = (Invoice.objects.filter(workspace_id=workspace.pk)
                .annotate(lines_total=_summed(InvoiceLine, "amount_cents"), taxes_total=_summed(InvoiceTax, "amount_cents"),
                          credits_total=_summed(InvoiceLine, "credits"))
                .values_list("number", "kind", "purchase_id", "subtotal_cents", "tax_cents", "total_cents",
                             "lines_total", "taxes_total", "credits_total"))
    for number, kind, purchase_id, subtotal, tax, total, lines, taxes, credits in invoices:
        if total != subtotal + tax:
            problems.append(f"{label}: {number} totals {total} cents but its subtotal {subtotal} plus tax {tax} is "
                            f"{subtotal + tax}")
        if lines != subtotal:
            problems.append(f"{label}: {number} has a subtotal of {subtotal} cents but its lines sum to {lines}")
        if taxes != tax:
            problems.append(f"{label}: {number} has {tax} cents of tax but its tax lines sum to {taxes}")
        if kind == Invoice.INVOICE and purchase_id is not None:
            if credits != ledger.get(purchase_id, 0):
                problems.append(f"{label}: {number} delivers {_credits(credits)} but the ledger credited "
                                f"{_credits(ledger.get(purchase_id, 0))} for its purchase")
            if total != paid.get(purchase_id):
                problems.append(f"{label}: {number} totals {total} cents but its purchase was paid "
                                f"{paid.get(purchase_id)} cents")
    return problems


def _run_period_problems(workspace: Workspace, label: str) -> list[str]:
    """A run's counters belong to the period that contained its authorization. The periods are the
    ones the ledger granted (key grant:<workspace>:<period start>). A run stamped with a period is
    wrong when it was authorized after the next period had both started and been granted: its hold
    and charge then sit in an ended period's counters, and "used this period" misses them (issue 9).
    A run authorized after a period's end but before the grant job rolled it still belongs to the
    period the workspace was in, so it is not reported."""
    prefix = f"grant:{workspace.pk}:"
    grants = LedgerEntry.objects.filter(workspace_id=workspace.pk, kind=LedgerEntry.GRANT,
                                        idempotency_key__startswith=prefix)
    periods = sorted((datetime.fromisoformat(key[len(prefix):]), posted_at)
                     for key, posted_at in grants.values_list("idempotency_key", "created_at"))
    if not periods:
        return []
    starts = {start for start, _ in periods} | {workspace.period_start}
    runs = Run.objects.filter(workspace_id=workspace.pk)
    wrong = Q(~Q(period_start__in=starts))
    for (start, _), (next_start, next_posted) in zip(periods, periods[1:]):
        wrong |= Q(period_start=start, created_at__gte=max(next_start, next_posted))
    problems = []
    for public_id, period_start, created_at in runs.filter(wrong).values_list("public_id", "period_start", "created_at")[:20]:
        problems.append(f"{label}: run {public_id} authorized at {created_at:%Y-%m-%d %H:%M:%S} is counted in the period "
                        f"from {period_start:%Y-%m-%d %H:%M:%S}, not in the period that contained its authorization")
    return problems


def _auto_recharge_problems(workspace: Workspace, label: str) -> list[str]:
    """Every auto-recharge that succeeded bought one paid, invoiced purchase; none bought twice."""
    problems = []
    succeeded = AutoRechargeAttempt.objects.filter(workspace_id=workspace.pk, status=AutoRechargeAttempt.SUCCEEDED)
    for attempt in succeeded.select_related("purchase"):
        purchase = attempt.purchase
        if purchase is None or purchase.status in Purchase.UNPAID:
            problems.append(f"{label}: auto-recharge {attempt.key} succeeded without a paid purchase")
        elif not purchase.invoices.exists():
            problems.append(f"{label}: auto-recharge {attempt.key} has no invoice")
    return problems


def _write_off_problems(workspace: Workspace, label: str) -> list[str]:
    """A write-off (the debt bound, docs/usage-and-api.md) gives back part of one run's charge: it
    names a charged run of this workspace and is more than zero and at most what that run was charged."""
    charged = dict(LedgerEntry.objects.filter(workspace_id=workspace.pk, kind=LedgerEntry.CHARGE, run_id__isnull=False)
                   .values("run_id").annotate(total=Sum("amount")).values_list("run_id", "total"))
    problems = []
    for entry_id, run_id, amount in (LedgerEntry.objects.filter(workspace_id=workspace.pk, kind=LedgerEntry.WRITE_OFF)
                                     .values_list("id", "run_id", "amount")):
        if not 0 < amount <= -charged.get(run_id, 0):
            problems.append(f"{label}: write-off #{entry_id} of {_credits(amount)} is not part of a run's charge "
                            f"(run {run_id} was charged {_credits(-charged.get(run_id, 0))})")
    return problems


def _counter_problems(workspace: Workspace, label: str) -> list[str]:
    """Each spend counter's reserved equals the holds of the open runs counted in it, and its charged
    equals the cost of the completed runs counted in it (a run's counters are fixed when it is
    authorized: its UTC day and its billing period). Token counters (issue 29) are checked alike: a
    token's day and period counters against the runs that token authorized."""
    expected_reserved: dict[tuple, int] = defaultdict(int)
    expected_charged: dict[tuple, int] = defaultdict(int)
    runs = (Run.objects.filter(workspace_id=workspace.pk)
            .filter(Q(released_at__isnull=True) | Q(completed_at__isnull=False))
            .values("agent_id", "member_id", "token_id", "day", "period_start")
            .annotate(open_reserved=Sum("reserved", filter=Q(released_at__isnull=True)),
                      charged=Sum("credits", filter=Q(completed_at__isnull=False))))
    for row in runs:
        for identity in _run_counter_keys(workspace_id=workspace.pk, row=row):
            expected_reserved[identity] += row["open_reserved"] or 0
            expected_charged[identity] += row["charged"] or 0

    problems = []
    seen = set()
    # Counters of spans that began before the kept run detail are checked no more: retention
    # dropped some of their runs (usage/partitions.py); their ledger entries and rollups stay.
    kept_from = detail_kept_from()
    counters = SpendCounter.objects.filter(workspace_id=workspace.pk)
    if kept_from:
        counters = counters.filter(span_start__gte=datetime.combine(kept_from, time.min, tzinfo=dt_timezone.utc))
    for counter in counters:
        identity = (counter.scope, counter.scope_id, counter.span, counter.span_start)
        seen.add(identity)
        name = f"{counter.scope} {counter.scope_id} {counter.span} from {counter.span_start:%Y-%m-%d}"
        if counter.reserved < 0:
            problems.append(f"{label}: spend counter {name} has negative reserved ({_credits(counter.reserved)})")
        if counter.reserved != expected_reserved.get(identity, 0):
            problems.append(f"{label}: spend counter {name} reserves {_credits(counter.reserved)} but its open runs "
                            f"hold {_credits(expected_reserved.get(identity, 0))}")
        if counter.charged != expected_charged.get(identity, 0):
            problems.append(f"{label}: spend counter {name} has charged {_credits(counter.charged)} but its runs "
                            f"cost {_credits(expected_charged.get(identity, 0))}")
    for identity in set(expected_reserved) | set(expected_charged):
        if identity not in seen and (expected_reserved.get(identity) or expected_charged.get(identity)) and not (
                kept_from and _span_date(identity[3]) < kept_from):
            problems.append(f"{label}: spend counter {identity[0]} {identity[1]} {identity[2]} from "
                            f"{identity[3]:%Y-%m-%d} is missing")
    return problems


def _run_counter_keys(*, workspace_id: int, row: dict) -> list[tuple]:
    """The counters a run counts in, restated here from SPEC section 4 and issue 29 rather than taken
    from the charge path (budgets_run_counters_add, budgets/sql/limits.sql), so reconcile checks the
    rule instead of repeating it: the workspace's period, the agent's UTC day, the agent's period, the
    member's period, and for a run authorized with a developer token that token's UTC day and period,
    all fixed when the run was authorized."""
    period = row["period_start"]
    keys = [(WORKSPACE, workspace_id, PERIOD, period), (AGENT, row["agent_id"], DAY, day_start(row["day"])),
            (AGENT, row["agent_id"], PERIOD, period), (MEMBER, row["member_id"], PERIOD, period)]
    if row["token_id"] is not None:
        keys += [(TOKEN, row["token_id"], DAY, day_start(row["day"])), (TOKEN, row["token_id"], PERIOD, period)]
    return keys


def _span_date(span_start):
    return span_start.date() if hasattr(span_start, "date") else span_start


def duplicate_idempotency_keys() -> list[str]:
    """The database enforces uniqueness; this proves the constraint is in place and holding."""
    duplicates = (LedgerEntry.objects.values("idempotency_key").annotate(n=Count("id")).filter(n__gt=1)
                  .values_list("idempotency_key", flat=True)[:20])
    return [f"ledger: idempotency key {key!r} is used more than once" for key in duplicates]


def reconcile_all(*, progress: Callable[[int, int, Workspace, list[str]], None] | None = None) -> dict[str, list[str]]:
    """Problems by workspace slug ("" for checks that span workspaces). Calls `progress(done, total,
    workspace, problems)` after each workspace."""
    results: dict[str, list[str]] = {}
    total = Workspace.objects.count()
    for done, workspace in enumerate(_workspaces(), start=1):
        problems = reconcile_workspace(workspace=workspace)
        if problems:
            results[workspace.slug] = problems
        if progress:
            progress(done, total, workspace, problems)
    global_problems = duplicate_idempotency_keys()
    if global_problems:
        results[""] = global_problems
    return results


def _workspaces() -> Iterator[Workspace]:
    last_id = 0
    while True:
        batch = list(Workspace.objects.filter(pk__gt=last_id).order_by("pk").only("id", "slug")[:500])
        if not batch:
            return
        yield from batch
        last_id = batch[-1].pk

