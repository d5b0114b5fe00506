"""The soak's verdict (bench/soak.py): what must hold once the load stopped and the sweeps ran.

- `reconcile` is clean (operations.reconcile, the same code as `manage.py reconcile`);
- every accepted request's effect is present exactly once: each authorize answered 2xx has its run;
  each complete answered 2xx is charged once (its charge entries sum to the run's cost); each paid
  Checkout Session credited its purchase once (two ledger entries, one invoice), and an unpaid one
  credited nothing;
- no card was charged twice: at most one succeeded PaymentIntent at the Stripe double per intended
  payment (an auto-recharge attempt, a Checkout Session), and every one that succeeded was credited;
- no hold is left, and no auto-recharge attempt is left in flight.

Each check returns sentences, one per violation, naming the object."""

from django.db import connection

from billing.models import AutoRechargeAttempt, LedgerEntry, Purchase, Wallet
from operations.reconcile import reconcile_all


def violations(*, record, double) -> dict[str, list[str]]:
    return {
        "reconcile": reconcile_problems(),
        "accepted runs present once": runs_problems(authorized=record.authorized, completed=record.completed),
        "paid purchases credited once": purchase_problems(sessions=double.sessions, paid=record.sessions),
        "cards charged once": charge_problems(intents=list(double.intents.values())),
        "holds left": hold_problems(),
        "auto-recharges left in flight": in_flight_problems(),
    }


def reconcile_problems() -> list[str]:
    return [problem for problems in reconcile_all().values() for problem in problems]


def runs_problems(*, authorized: dict[str, str], completed: dict[str, str]) -> list[str]:
    """Every authorized run exists once; every completed one is final and charged its cost once."""
    problems = []
    found = _runs(list(authorized))
    for run_id in authorized:
        rows = found.get(run_id, [])
        if len(rows) != 1:
            problems.append(f"run {run_id}: authorize answered 2xx but {len(rows)} runs have this id")
    for run_id in completed:
        rows = found.get(run_id, [])
        if len(rows) != 1:
            continue  # already reported above
        status, credits, charged, entries = rows[0]
        if status != "succeeded":
            problems.append(f"run {run_id}: complete answered 200 but the run is {status}")
        elif -charged != credits or entries > 2:
            problems.append(f"run {run_id}: costs {credits} nanocredits but {entries} charge entries sum to {-charged}")
    return problems


def _runs(run_ids: list[str]) -> dict[str, list[tuple]]:
    found: dict[str, list[tuple]] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(run_ids), 5000):
            cursor.execute("""
                SELECT r.public_id, r.status, r.credits, COALESCE(sum(e.amount), 0), count(e.id)
                FROM usage_run r LEFT JOIN billing_ledgerentry e ON e.run_id = r.id AND e.kind = 'charge'
                WHERE r.public_id = ANY(%s) GROUP BY r.id, r.public_id, r.status, r.credits
            """, [run_ids[start:start + 5000]])
            for public_id, *rest in cursor.fetchall():
                found.setdefault(public_id, []).append(tuple(rest))
    return found


def purchase_problems(*, sessions: dict[str, dict], paid: dict[str, dict]) -> list[str]:
    """Each Checkout Session the customer paid credited its purchase exactly once; an unpaid one
    (the customer left, or Stripe refused to start it) credited nothing."""
    problems = []
    for session_id, session in sessions.items():
        purchase_id = int(session["metadata"].get("purchase") or 0)
        purchase = Purchase.objects.filter(pk=purchase_id).first()
        if purchase is None:
            problems.append(f"{session_id}: its purchase {purchase_id} does not exist")
            continue
        entries = LedgerEntry.objects.filter(purchase=purchase, kind__in=[LedgerEntry.PURCHASE, LedgerEntry.BONUS])
        invoices = purchase.invoices.filter(kind="invoice").count()
        if session["payment_status"] == "paid":
            if purchase.status != Purchase.PAID or entries.filter(kind=LedgerEntry.PURCHASE).count() != 1 \
                    or invoices != 1:
                problems.append(f"purchase {purchase_id} ({session_id}, paid at Stripe): {purchase.status}, "
                                f"{entries.count()} ledger entries, {invoices} invoices")
        elif purchase.status != Purchase.PENDING or entries.exists():
            problems.append(f"purchase {purchase_id} ({session_id}, not paid at Stripe) is {purchase.status} with "
                            f"{entries.count()} ledger entries")
    for session_id in paid:
        if session_id not in sessions:
            problems.append(f"{session_id}: the client paid a session the double does not know")
    return problems


def charge_problems(*, intents: list[dict]) -> list[str]:
    """No two succeeded PaymentIntents for one intended payment; each succeeded one credited."""
    problems, charged = [], {}
    for intent in intents:
        if intent["status"] != "succeeded":
            continue
        meta = intent["metadata"]
        payment = (f"auto-recharge {meta['auto_recharge']}" if meta.get("auto_recharge")
                   else f"checkout {intent.get('checkout_session') or meta.get('purchase')}")
        charged.setdefault(payment, []).append(intent["id"])
    for payment, ids in sorted(charged.items()):
        if len(ids) > 1:
            problems.append(f"{payment}: the card was charged {len(ids)} times ({', '.join(ids)})")
        if payment.startswith("auto-recharge "):
            attempt = AutoRechargeAttempt.objects.select_related("purchase").filter(
                key=payment.removeprefix("auto-recharge ")).first()
            if attempt is None or attempt.purchase is None or attempt.purchase.status != Purchase.PAID:
                problems.append(f"{payment}: charged at Stripe but its purchase was not credited "
                                f"({attempt.status if attempt else 'no attempt'})")
    return problems


def hold_problems() -> list[str]:
    problems = [f"workspace {slug}: {reserved} nanocredits and {running} runs still held"
                for slug, reserved, running in Wallet.objects.exclude(reserved=0, running_runs=0)
                .values_list("workspace__slug", "reserved", "running_runs")]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM usage_run WHERE released_at IS NULL")
        (open_runs,) = cursor.fetchone()
    if open_runs:
        problems.append(f"{open_runs} runs still hold credits after the sweep")
    return problems


def in_flight_problems() -> list[str]:
    """A pending attempt after the drain is stuck (its message was lost and no sweep takes it), and
    so is a retry whose time came more than two sweeps ago. A retry still waiting for its backoff is
    not (the soak lists it in its figures)."""
    from datetime import timedelta

    from django.utils import timezone

    overdue = timezone.now() - timedelta(minutes=2)
    attempts = AutoRechargeAttempt.objects.filter(status__in=AutoRechargeAttempt.IN_FLIGHT)
    return [f"auto-recharge {key}: still {status} after {tries} tries" + (f" (due {due:%H:%M:%S})" if due else "")
            for key, status, tries, due in attempts.values_list("key", "status", "tries", "next_try_at")
            if status == AutoRechargeAttempt.PENDING or due is None or due < overdue]
