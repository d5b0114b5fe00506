"""Auto-recharge (issue 15, docs/auto-recharge.md): settings, the off-session payment of one
attempt, its outcomes, retries, and the owner's e-mails. The trigger is billing/recharge_trigger.py.

    auto_recharge_set(*, workspace, enabled, threshold, pack_id, max_per_period, actor)
    auto_recharge_test_card_set(*, workspace, mode, actor)
    auto_recharge_attempt_pay(*, key)                      # Celery: buying.tasks.auto_recharge_pay
    auto_recharge_payment_record(*, attempt, outcome, ...) # the sync answer and the webhook alike
    auto_recharge_retry_due(*, now)                        # Celery beat: retries, lost and stuck attempts

A success is fulfilled by pack_purchase_fulfil, the manual purchase's path: ledger entries, the
invoice and the receipt e-mail, exactly once however the sync answer and the webhook interleave."""

import logging
from dataclasses import dataclass
from datetime import timedelta

import stripe
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from billing.access_versions import access_versions_bump
from billing.edition import is_community
from billing.ledger import wallet_lock
from billing.audit import audit_record
from billing.models import AutoRecharge, AutoRechargeAttempt, CreditPack, Membership, Purchase, Workspace
from billing.money import MAX_CREDITS, NANOS_PER_CREDIT, nanos_to_str
from billing.recharge_trigger import wallet_watch
from invoices.tax import STRIPE, stripe_calculation_tax

from . import stripe_client
from .purchases import pack_purchase_fulfil, purchase_start

log = logging.getLogger(__name__)

# A declined card is tried again after these delays, then auto-recharge pauses: never blindly.
RETRY_DELAYS = (timedelta(minutes=5), timedelta(minutes=30))
MAX_TRIES = len(RETRY_DELAYS) + 1
# A started try whose outcome is not recorded after this (its worker died, its message was lost, or
# Stripe still says processing) is resumed by the sweep: looked up at Stripe, never paid anew. Longer
# than one try can take (the Stripe client's retries and timeouts).
TRY_LEASE = timedelta(minutes=10)
DEFAULT_CEILING = 3


class AutoRechargeError(ValueError):
    pass


@dataclass(frozen=True)
class PaymentOutcome:
    SUCCEEDED, DECLINED, REQUIRES_ACTION = "succeeded", "declined", "requires_action"
    PROCESSING = "processing"  # Stripe has not answered yet: the try stays open (webhook or sweep)

    status: str
    payment_intent_id: str = ""
    error: str = ""
    action_url: str = ""
    try_number: int = 0  # which try of the attempt it reports (0: unknown)


# --- Settings ----------------------------------------------------------------------------------

def _sync_wallet(workspace_id: int, row: AutoRecharge | None) -> None:
    """Copy the threshold onto the locked wallet (None while off or paused) and re-arm, then watch:
    a workspace already below the threshold is recharged at once."""
    wallet = wallet_lock(workspace_id)
    wallet.auto_recharge_threshold = row.threshold if row is not None and row.is_active else None
    wallet.auto_recharge_armed = True
    wallet.save(update_fields=["auto_recharge_threshold", "auto_recharge_armed", "updated_at"])
    wallet_watch(wallet)


def _settings(row: AutoRecharge) -> dict:
    """The auto-recharge settings as the audit log shows them (credits as decimals)."""
    return {"enabled": row.enabled, "threshold": nanos_to_str(row.threshold), "pack": row.pack_id,
            "max_per_period": row.max_per_period}


def auto_recharge_set(*, workspace: Workspace, enabled: bool, threshold: int | None = None, pack_id: str | None = None,
                      max_per_period: int | None = None, actor=None) -> AutoRecharge:
    """Turn auto-recharge on (with its threshold in nanocredits, pack and ceiling) or off. Turning
    it on also resumes it after a pause."""
    if enabled and is_community():
        raise AutoRechargeError("Billing is a Cloud-only feature: Community Edition buys no credits.")
    existing = AutoRecharge.objects.filter(pk=workspace.pk).first()
    threshold = threshold if threshold is not None else (existing.threshold if existing else None)
    pack_id = pack_id or (existing.pack_id if existing else None)
    ceiling = max_per_period if max_per_period is not None else (existing.max_per_period if existing else DEFAULT_CEILING)
    if enabled:
        if threshold is None or not 0 < threshold <= MAX_CREDITS * NANOS_PER_CREDIT:
            raise AutoRechargeError("Choose a threshold above zero credits.")
        if not pack_id or not CreditPack.objects.filter(pk=pack_id, is_active=True).exists():
            raise AutoRechargeError("Choose one of the credit packs for sale.")
        if not 1 <= ceiling <= 100:
            raise AutoRechargeError("The ceiling is between 1 and 100 auto-recharges per period.")
    with transaction.atomic():
        if existing is None:
            if not enabled:
                return AutoRecharge(workspace=workspace, threshold=threshold or 0, pack_id=pack_id or "starter")
            row = AutoRecharge(workspace=workspace, threshold=threshold, pack_id=pack_id, max_per_period=ceiling)
        else:
            row = AutoRecharge.objects.select_for_update().get(pk=workspace.pk)
        if enabled and not row.has_payment_method:
            raise AutoRechargeError("Add a payment method first.")
        before = _settings(row) if existing is not None else {}
        row.enabled = enabled
        if enabled:
            row.threshold, row.pack_id, row.max_per_period = threshold, pack_id, ceiling
            row.paused_reason, row.paused_at = "", None
        row.updated_by = actor
        row.save()
        audit_record(workspace_id=workspace.pk, actor=actor, action="auto_recharge.set", before=before,
                     after=_settings(row))
        _sync_wallet(workspace.pk, row)
    return row


def auto_recharge_test_card_set(*, workspace: Workspace, mode: str, actor=None) -> AutoRecharge:
    """Test-checkout mode only: put the built-in test card on file, answering as `mode` says
    (succeeds, declines, requires_action), or remove it (mode "")."""
    if not stripe_client.test_checkout_enabled():
        raise AutoRechargeError("The test card exists only in test-checkout mode (no Stripe keys and "
                                "BILLING_TEST_CHECKOUT=true).")
    if mode not in dict(AutoRecharge.TEST_CARDS) and mode != "":
        raise AutoRechargeError("Unknown test card behaviour.")
    with transaction.atomic():
        row, _ = AutoRecharge.objects.select_for_update().get_or_create(
            pk=workspace.pk, defaults={"threshold": 10 * NANOS_PER_CREDIT, "pack_id": _default_pack_id()})
        before = {"test_card": row.test_card}
        row.test_card = mode
        row.card_label = "Test card (no money moves)" if mode else ""
        if not mode and not row.stripe_payment_method_id:
            row.enabled = False
        row.updated_by = actor
        row.save()
        audit_record(workspace_id=workspace.pk, actor=actor, action="auto_recharge.test_card", before=before,
                     after={"test_card": mode})
        _sync_wallet(workspace.pk, row)
    return row


def _default_pack_id() -> str:
    return CreditPack.objects.filter(is_active=True).values_list("pk", flat=True).first() or "starter"


def auto_recharge_payment_method_record(*, workspace: Workspace, customer_id: str, payment_method_id: str,
                                        card_label: str = "") -> AutoRecharge:
    """Stripe: a payment method saved for off-session use (Checkout mode=setup, or a pack bought
    with setup_future_usage=off_session)."""
    with transaction.atomic():
        Workspace.objects.filter(pk=workspace.pk).update(stripe_customer_id=customer_id)
        access_versions_bump(workspace_ids=[workspace.pk])  # cached API tokens carry the workspace row
        row, _ = AutoRecharge.objects.select_for_update().get_or_create(
            pk=workspace.pk, defaults={"threshold": 10 * NANOS_PER_CREDIT, "pack_id": _default_pack_id()})
        row.stripe_payment_method_id, row.card_label = payment_method_id, card_label or "Card saved with Stripe"
        row.save()
    return row


# --- Paying one attempt --------------------------------------------------------------------------

def auto_recharge_attempt_pay(*, key: str, now=None) -> AutoRechargeAttempt:
    """Charge the saved payment method for one in-flight attempt (runs in Celery, outside any
    transaction: the HTTP call to Stripe must never hold a lock).

    Exactly one charge per try, however the task is delivered (acks late: a worker that dies is
    redelivered) and whether the sweep resumes it: a try starts (`tries` + 1, status pending, a
    lease in `next_try_at`) only when the previous try's decline was recorded. A pending attempt
    with tries > 0 is a started try whose outcome was never recorded: it is resumed with the same
    try number, so the same idempotency key and the PaymentIntent recorded before the charging
    call, which is looked up at Stripe before anything is confirmed."""
    now = now or timezone.now()
    attempt = AutoRechargeAttempt.objects.select_related("workspace", "pack").get(key=key)
    if attempt.status not in AutoRechargeAttempt.IN_FLIGHT:
        return attempt
    row = AutoRecharge.objects.get(pk=attempt.workspace_id)
    refusal = ("Auto-recharge was turned off before it was paid." if not row.enabled else
               # fail closed: a test card must not pay once the switch is off
               "Payments are not configured; nothing was charged." if not stripe_client.payments_configured() else "")
    if refusal and not _try_started(attempt):  # a started try may have charged the card: it is looked up first
        _finish(attempt, AutoRechargeAttempt.FAILED, refusal)
        return attempt
    with transaction.atomic():
        locked = AutoRechargeAttempt.objects.select_for_update().get(pk=attempt.pk)
        if locked.status not in AutoRechargeAttempt.IN_FLIGHT:
            return locked
        resumed = _try_started(locked)
        if refusal and not resumed:
            _finish(locked, AutoRechargeAttempt.FAILED, refusal)
            locked.refresh_from_db()
            return locked
        if locked.purchase_id is None:
            source = Purchase.STRIPE if stripe_client.stripe_enabled() else Purchase.TEST
            locked.purchase = purchase_start(workspace=attempt.workspace, pack_id=attempt.pack_id, source=source)
        if not resumed:
            locked.tries += 1
            locked.status = AutoRechargeAttempt.PENDING  # this try's result is not recorded yet
            locked.stripe_payment_intent_id = ""  # the new try's PaymentIntent is recorded once created
        locked.next_try_at = now + TRY_LEASE  # the sweep resumes it after this, should this worker die
        locked.save(update_fields=["purchase", "tries", "status", "stripe_payment_intent_id", "next_try_at"])
    attempt = locked
    if stripe_client.stripe_enabled():
        answer = _stripe_charge(attempt, row, resumed=resumed, may_confirm=not refusal)
        outcome = PaymentOutcome(**answer) if answer else None
    else:
        outcome = None if refusal else _test_card_charge(row, attempt)
    if outcome is None:  # a resumed try that never charged, and may not charge now
        _finish(attempt, AutoRechargeAttempt.FAILED, refusal)
        attempt.refresh_from_db()
        return attempt
    return auto_recharge_payment_record(attempt=attempt, outcome=outcome, now=now)


def _try_started(attempt: AutoRechargeAttempt) -> bool:
    """A try was started and its outcome never recorded (a recorded decline is `retrying`)."""
    return attempt.status == AutoRechargeAttempt.PENDING and attempt.tries > 0


def _stripe_charge(attempt: AutoRechargeAttempt, row: AutoRecharge, *, resumed: bool, may_confirm: bool) -> dict | None:
    """One try at Stripe: the PaymentIntent is created unconfirmed (idempotency key of the try) and
    its id committed before the confirmation that charges, so a resumed try finds it and asks
    Stripe what became of it instead of paying again. None: nothing was charged, and (not
    `may_confirm`: turned off meanwhile) nothing is."""
    intent_id = attempt.stripe_payment_intent_id
    if not intent_id and not may_confirm:
        return None  # without a recorded PaymentIntent, nothing was ever confirmed
    if not intent_id:  # never created, or created but not recorded: the same key answers the same one
        try:
            _stripe_tax_record(attempt)
        except stripe.InvalidRequestError as error:
            # Stripe refused to calculate the tax (Stripe Tax off, an address it cannot tax): no
            # PaymentIntent exists, nothing was charged. A failed try, retried and then paused like
            # a decline, rather than an error that leaves the attempt in flight and blocks the next.
            return {"status": PaymentOutcome.DECLINED, "error": ("Stripe could not calculate the tax, so nothing was "
                                                                 f"charged: {error.user_message or error}")[:300],
                    "try_number": attempt.tries}
        intent_id = stripe_client.auto_recharge_intent_create(
            purchase=attempt.purchase, attempt_key=attempt.key, try_number=attempt.tries,
            customer_id=attempt.workspace.stripe_customer_id, payment_method_id=row.stripe_payment_method_id)
        AutoRechargeAttempt.objects.filter(pk=attempt.pk, status=AutoRechargeAttempt.PENDING, tries=attempt.tries).update(
            stripe_payment_intent_id=intent_id)
        attempt.stripe_payment_intent_id = intent_id
    return stripe_client.auto_recharge_intent_settle(intent_id=intent_id, attempt_key=attempt.key,
                                                     try_number=attempt.tries, look_up_first=resumed,
                                                     may_confirm=may_confirm)


def _stripe_tax_record(attempt: AutoRechargeAttempt) -> None:
    """Stripe Tax's calculation for the pack, recorded on the pending purchase once, before its
    first PaymentIntent: every try then sends the same amount (price + tax) under its key."""
    purchase = attempt.purchase
    if (purchase.tax_detail or {}).get("source") == STRIPE:
        return
    tax = stripe_calculation_tax(stripe_client.auto_recharge_tax_calculate(
        purchase=purchase, customer_id=attempt.workspace.stripe_customer_id))
    Purchase.objects.filter(pk=purchase.pk, status=Purchase.PENDING).update(tax_cents=tax.tax_cents,
                                                                           tax_detail=tax.as_json())
    purchase.refresh_from_db()


def _test_card_charge(row: AutoRecharge, attempt: AutoRechargeAttempt) -> PaymentOutcome:
    intent, tries = f"test_pi_{attempt.pk}_{attempt.tries}", attempt.tries
    if row.test_card == AutoRecharge.TEST_CARD_OK:
        return PaymentOutcome(PaymentOutcome.SUCCEEDED, intent, try_number=tries)
    if row.test_card == AutoRecharge.TEST_CARD_AUTH:
        return PaymentOutcome(PaymentOutcome.REQUIRES_ACTION, intent, "The bank asks the cardholder to authenticate.",
                              _buy_url(attempt.workspace), try_number=tries)
    return PaymentOutcome(PaymentOutcome.DECLINED, intent, "The card was declined (test card set to decline).",
                          try_number=tries)


def _buy_url(workspace: Workspace) -> str:
    return settings.SITE_URL + reverse("billing:buy", kwargs={"slug": workspace.slug}) + "#auto-recharge"


def auto_recharge_payment_record(*, attempt: AutoRechargeAttempt, outcome: PaymentOutcome, now=None) -> AutoRechargeAttempt:
    """Apply a payment's outcome, whichever reports it first (the synchronous answer or Stripe's
    webhook): a success credits the pack once (pack_purchase_fulfil); a decline is retried with
    backoff, then pauses; requires_action pauses at once. A report about an older try, or one
    already applied, changes nothing."""
    now = now or timezone.now()
    if outcome.status == PaymentOutcome.SUCCEEDED:
        with transaction.atomic():
            pack_purchase_fulfil(purchase=attempt.purchase, paid_at=now,
                                 stripe_payment_intent_id=outcome.payment_intent_id or None)
            AutoRechargeAttempt.objects.filter(pk=attempt.pk).exclude(status=AutoRechargeAttempt.SUCCEEDED).update(
                status=AutoRechargeAttempt.SUCCEEDED, finished_at=now, last_error="", next_try_at=None,
                stripe_payment_intent_id=outcome.payment_intent_id)
            row = AutoRecharge.objects.select_for_update().get(pk=attempt.workspace_id)
            if row.paused_reason == AutoRecharge.PAUSED_ACTION:  # the owner authenticated: resume
                row.paused_reason, row.paused_at = "", None
                row.save(update_fields=["paused_reason", "paused_at", "updated_at"])
                _sync_wallet(attempt.workspace_id, row)
        attempt.refresh_from_db()
        return attempt
    if outcome.status == PaymentOutcome.PROCESSING:
        return attempt  # the try stays open: the webhook reports it, or the sweep looks it up again
    with transaction.atomic():
        locked = AutoRechargeAttempt.objects.select_for_update().get(pk=attempt.pk)
        # Apply a failure once per try: the current try's (the report names it, or is the only one
        # possible), and only while its result is not recorded yet (a started try is pending; a
        # recorded decline is retrying, and only a new try makes it pending again).
        current_try = outcome.try_number in (0, locked.tries)
        if not (current_try and _try_started(locked)):
            return locked
        locked.stripe_payment_intent_id = outcome.payment_intent_id
        locked.last_error = outcome.error[:300]
        if outcome.status == PaymentOutcome.DECLINED and locked.tries < MAX_TRIES:
            locked.status = AutoRechargeAttempt.RETRYING
            locked.next_try_at = now + RETRY_DELAYS[locked.tries - 1]
            locked.save(update_fields=["stripe_payment_intent_id", "last_error", "status", "next_try_at"])
            return locked
        requires_action = outcome.status == PaymentOutcome.REQUIRES_ACTION
        locked.status = AutoRechargeAttempt.REQUIRES_ACTION if requires_action else AutoRechargeAttempt.FAILED
        locked.action_url = outcome.action_url if requires_action else ""
        locked.finished_at, locked.next_try_at = now, None
        locked.save(update_fields=["stripe_payment_intent_id", "last_error", "status", "action_url", "finished_at",
                                   "next_try_at"])
        _pause(locked.workspace_id, AutoRecharge.PAUSED_ACTION if requires_action else AutoRecharge.PAUSED_DECLINED, now)
        attempt_id = locked.pk
        transaction.on_commit(lambda: auto_recharge_problem_email_send(attempt_id=attempt_id), robust=True)
    return locked


def _pause(workspace_id: int, reason: str, now) -> None:
    row = AutoRecharge.objects.select_for_update().get(pk=workspace_id)
    row.paused_reason, row.paused_at = reason, now
    row.save(update_fields=["paused_reason", "paused_at", "updated_at"])
    _sync_wallet(workspace_id, row)


def _finish(attempt: AutoRechargeAttempt, status: str, error: str) -> None:
    AutoRechargeAttempt.objects.filter(pk=attempt.pk, status__in=AutoRechargeAttempt.IN_FLIGHT).update(
        status=status, last_error=error, finished_at=timezone.now(), next_try_at=None)


def auto_recharge_retry_due(*, now=None) -> int:
    """Celery beat: pay the attempts whose backoff is over, any pending attempt whose enqueue was
    lost (the broker was down when its crossing committed), and resume any started try whose lease
    ran out (its worker died, or its message was lost, before the outcome was recorded): that one
    is looked up at Stripe, not paid again (auto_recharge_attempt_pay)."""
    now = now or timezone.now()
    due = list(AutoRechargeAttempt.objects.filter(status=AutoRechargeAttempt.RETRYING, next_try_at__lte=now)
               .values_list("key", flat=True)[:200])
    due += list(AutoRechargeAttempt.objects.filter(status=AutoRechargeAttempt.PENDING, tries=0,
                                                   created_at__lt=now - timedelta(minutes=2))
                .values_list("key", flat=True)[:200])
    due += list(AutoRechargeAttempt.objects.filter(status=AutoRechargeAttempt.PENDING, tries__gt=0, next_try_at__lte=now)
                .values_list("key", flat=True)[:200])
    for key in due:
        try:
            auto_recharge_attempt_pay(key=key, now=now)
        except Exception:  # noqa: BLE001 - one attempt Stripe cannot answer now must not hold up the others
            log.exception("Auto-recharge %s could not be paid now; the sweep tries again", key)
    return len(due)


def auto_recharge_attempt_for_intent(*, payment_intent_id: str, metadata: dict) -> AutoRechargeAttempt | None:
    """The attempt a Stripe PaymentIntent paid for (its metadata names it; the id is a fallback)."""
    key = (metadata or {}).get("auto_recharge", "")
    attempt = AutoRechargeAttempt.objects.select_related("purchase").filter(key=key).first() if key else None
    return attempt or AutoRechargeAttempt.objects.select_related("purchase").filter(
        stripe_payment_intent_id=payment_intent_id).first()


def auto_recharge_recent(*, workspace: Workspace, limit: int = 10) -> list[AutoRechargeAttempt]:
    """The latest attempts, with the purchase and its invoice (the Buy Credits page)."""
    attempts = list(AutoRechargeAttempt.objects.filter(workspace=workspace).select_related("pack", "purchase")
                    .prefetch_related("purchase__invoices").order_by("-id")[:limit])
    for attempt in attempts:
        invoices = [i for i in attempt.purchase.invoices.all() if i.kind == "invoice"] if attempt.purchase_id else []
        attempt.invoice = invoices[0] if invoices else None
    return attempts


# --- E-mail -------------------------------------------------------------------------------------

def auto_recharge_problem_email_send(*, attempt_id: int) -> int:
    """To the owner and admins: a paused auto-recharge, why, and where to act."""
    attempt = AutoRechargeAttempt.objects.select_related("workspace", "pack").get(pk=attempt_id)
    workspace = attempt.workspace
    recipients = list(Membership.objects.filter(workspace=workspace, role__in=[Membership.OWNER, Membership.ADMIN])
                      .order_by("created_at").values_list("user__email", flat=True))
    context = {"attempt": attempt, "workspace": workspace, "url": attempt.action_url or _buy_url(workspace),
               "requires_action": attempt.status == AutoRechargeAttempt.REQUIRES_ACTION}
    subject = " ".join(render_to_string("emails/auto_recharge_problem_subject.txt", context).split())
    return send_mail(subject, render_to_string("emails/auto_recharge_problem.txt", context),
                     settings.DEFAULT_FROM_EMAIL, recipients)
