"""Plan changes, plan payments and Stripe subscription state (SPEC section 3, docs/plans.md).

- An upgrade takes effect at once: rate limits follow immediately and the difference between the
  new and the old plan's monthly credits is granted for the rest of the current period (once per
  upgrade, never above the new plan's allowance for the period).
- A downgrade or a cancellation takes effect at the period end (`scheduled_plan`,
  `cancel_at_period_end`); `billing.grants` applies it when the period rolls.
- `plan_payment_record` (Stripe's invoice.paid) grants the plan's credits for the paid period,
  exactly once per workspace and period: the grant's ledger key is the period start, and Stripe's
  periods are contiguous, so the period job and the webhook compute the same key.
"""

from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from billing.access_versions import access_versions_bump
from billing.ledger import MONTHLY, Posting, monthly_rollover, post, wallet_lock
from billing.members import member_cap, seats_over_cap, seats_taken
from billing.audit import audit_record
from billing.models import LedgerEntry, Plan, Workspace
from billing.money import nanos_display
from invoices import services as invoice_services
from invoices.models import Invoice
from invoices.tax import TaxDecision

from . import stripe_client
from .prorations import PlanChangeQuote, plan_change_quote


class PlanError(Exception):
    pass


class MemberCapExceeded(PlanError):
    pass


def plan_member_cap_check(*, workspace: Workspace, plan: Plan) -> None:
    """Refuse a plan whose member cap (billing/members.py) the workspace is already over."""
    members = seats_taken(workspace=workspace)  # members and pending invitations
    over = seats_over_cap(workspace=workspace, plan=plan, taken=members)
    if over:
        cap = member_cap(workspace=workspace, plan=plan)
        raise MemberCapExceeded(
            f"The {plan.name} plan allows {cap} member{'s' if cap != 1 else ''}; this workspace has {members}. "
            f"Remove {over} member{'s' if over != 1 else ''} first, then change the plan "
            f"(pending invitations count as members)."
        )


def is_upgrade(*, current: Plan, new: Plan) -> bool:
    return new.sort_order > current.sort_order


def _lock_workspace(workspace_id: int) -> Workspace:
    return Workspace.objects.select_for_update(of=("self",)).select_related("plan", "scheduled_plan").get(pk=workspace_id)


def plan_change(*, workspace: Workspace, plan_id: str, actor=None, at_period_end: bool = False,
                requests_per_minute: int | None = None, concurrent_runs: int | None = None,
                monthly_credits: int | None = None, sync_stripe: bool = True, now=None) -> Workspace:
    """Change the plan now, or schedule it for the period end (`at_period_end`, for downgrades and
    cancellations; an upgrade is always immediate). The Enterprise values (`requests_per_minute`,
    `concurrent_runs`, `monthly_credits` in nanocredits) override the plan's for this workspace.

    Refuses (MemberCapExceeded) a plan whose member cap the workspace is over."""
    now = now or timezone.now()
    plan = Plan.objects.filter(pk=plan_id).first()
    if plan is None:
        raise PlanError(f"There is no plan {plan_id!r}; choose free, pro, team or enterprise.")
    for name, value in (("requests per minute", requests_per_minute), ("concurrent runs", concurrent_runs),
                        ("monthly credits", monthly_credits)):
        if value is not None and value < 0:
            raise PlanError(f"The {name} cannot be negative.")
    stripe_actions = []  # mirrored to the subscription after commit, in order
    with transaction.atomic():
        ws = _lock_workspace(workspace.pk)
        old_plan, old_monthly = ws.plan, ws.monthly_credits
        before = {"plan": old_plan.pk, "requests_per_minute": ws.requests_per_minute,
                  "concurrent_runs": ws.concurrent_runs, "monthly_credits": old_monthly}
        upgrade = is_upgrade(current=old_plan, new=plan)
        if at_period_end and upgrade:
            # Only a downgrade waits; an upgrade is paid for through the checkout (or Stripe) first.
            raise PlanError(f"{plan.name} is an upgrade from {old_plan.name}: upgrade through the checkout.")
        plan_member_cap_check(workspace=ws, plan=plan)
        if at_period_end and not upgrade and plan.pk != old_plan.pk:
            # Downgrade or cancel: nothing changes until the period rolls (billing.grants).
            if plan.pk == "free":
                ws.cancel_at_period_end, ws.scheduled_plan = True, None
                stripe_actions.append(("cancel", None, None))
            else:
                if ws.cancel_at_period_end:  # a downgrade instead of the cancellation: the subscription goes on
                    stripe_actions.append(("resume", None, None))
                ws.cancel_at_period_end, ws.scheduled_plan = False, plan
                stripe_actions.append(("price", plan, None))
            ws.save(update_fields=["cancel_at_period_end", "scheduled_plan"])
            audit_record(workspace_id=ws.pk, actor=actor, action="plan.schedule", before={"plan": old_plan.pk},
                         after={"plan": plan.pk, "at": ws.period_end.isoformat()})
        else:
            if ws.cancel_at_period_end and ws.stripe_subscription_id:
                stripe_actions.append(("resume", None, None))
            if plan.pk != old_plan.pk and ws.stripe_subscription_id:
                # Stripe prorates from the same instant as our quote: the start of the days left.
                stripe_actions.append(
                    ("price_now", plan, plan_change_quote(workspace=ws, plan=plan, at=now).service_start))
            elif ws.scheduled_plan_id and ws.stripe_subscription_id:
                # "Keep plan": the scheduled downgrade already put its price on the subscription
                # (without proration); the kept plan's price goes back the same way.
                stripe_actions.append(("price", plan, None))
            ws.plan_switch(plan, requests_per_minute=requests_per_minute, concurrent_runs=concurrent_runs,
                           monthly_credits=monthly_credits)
            ws.scheduled_plan, ws.cancel_at_period_end = None, False
            ws.save(update_fields=["plan", "scheduled_plan", "cancel_at_period_end", "custom_requests_per_minute",
                                   "custom_concurrent_runs", "custom_monthly_credits"])
            if ws.monthly_credits > old_monthly:
                # The days left of this period at the new plan's allowance (buying/prorations.py):
                # the same quote the Plans page showed and the invoice bills. It counts what this
                # period already granted, so switching back and forth never mints credits.
                quote = plan_change_quote(workspace=ws, plan=plan, at=now, monthly_credits=ws.monthly_credits,
                                          old_plan=old_plan, old_monthly_credits=old_monthly)
                wallet = wallet_lock(ws.pk)
                if quote.credits_now:
                    post(wallet=wallet, actor=actor, at=now, postings=[Posting(
                        LedgerEntry.GRANT, MONTHLY, quote.credits_now, _upgrade_grant_key(ws),
                        f"Upgrade from {old_plan.name} to {plan.name}: {quote.days_left} of "
                        f"{quote.days_in_period} days left in this period")])
            audit_record(workspace_id=ws.pk, actor=actor, action="plan.change", before=before, after={
                "plan": plan.pk, "requests_per_minute": ws.requests_per_minute,
                "concurrent_runs": ws.concurrent_runs, "monthly_credits": ws.monthly_credits})
        if sync_stripe and stripe_actions and ws.stripe_subscription_id:
            subscription_id = ws.stripe_subscription_id
            transaction.on_commit(lambda: _mirror_to_stripe(subscription_id, stripe_actions))
    workspace.refresh_from_db()
    return workspace


def _period_number(queryset, prefix: str) -> str:
    """`prefix` + the number of this change among the period's changes of its kind (1, 2, ...).

    A plan can be left at once and bought again within one period (a downgrade made in Stripe and
    synced, staff's set_plan), so a key per plan or per allowance repeats; one per change does not.
    The caller holds the workspace lock, which serialises plan changes, and the key stays
    DB-unique."""
    return f"{prefix}#{queryset.filter(idempotency_key__startswith=prefix).count() + 1}"


def _upgrade_grant_key(ws: Workspace) -> str:
    """upgrade:<workspace>:<period start>:#<n>, the n-th upgrade grant of the period."""
    return _period_number(LedgerEntry.objects.filter(workspace_id=ws.pk),
                          f"upgrade:{ws.pk}:{ws.period_start.isoformat()}:")


def _mirror_to_stripe(subscription_id: str, actions) -> None:
    """Every action of one change (e.g. an upgrade after a scheduled cancellation: resume, then
    the new price), so the subscription never keeps a cancellation or a price we no longer have."""
    if not stripe_client.stripe_enabled():
        return
    for kind, plan, proration_date in actions:
        if kind == "cancel":
            stripe_client.subscription_cancel_at_period_end(subscription_id=subscription_id, cancel=True)
        elif kind == "resume":
            stripe_client.subscription_cancel_at_period_end(subscription_id=subscription_id, cancel=False)
        elif plan is not None and plan.pk != "free":
            stripe_client.subscription_price_change(subscription_id=subscription_id, plan=plan,
                                                    prorate=kind == "price_now", proration_date=proration_date)


def plan_payment_record(*, workspace: Workspace, plan: Plan, amount_cents: int, period_start: datetime,
                        period_end: datetime, stripe_invoice_id: str, grant: bool = True,
                        stripe_subscription_id: str = "", stripe_customer_id: str = "", paid_at=None,
                        stripe_lines: list[tuple[str, int, datetime, datetime]] | None = None,
                        tax: TaxDecision | None = None):
    """A paid plan invoice (invoice.paid): the plan's credits for that period, once, and the invoice.

    A period starting at or after the current one becomes the current period (the monthly remainder
    expires and the plan's credits are granted; keyed by the period start). A payment for an older
    period (a late, out-of-order delivery) is invoiced but grants nothing and moves nothing back.
    `grant=False` for proration invoices of a mid-period upgrade (plan_change grants that difference).
    With `stripe_lines` (description, amount in cents, period start, end), a proration invoice, or a
    first invoice anchored at our period end, is billed with Stripe's own lines (Stripe's proration),
    and the upgrade's credits are those of the quote (buying/prorations.py). `amount_cents` is before
    tax; `tax` is what Stripe Tax charged on the invoice (None: the tax table's)."""
    with transaction.atomic():
        ws = _lock_workspace(workspace.pk)
        if stripe_subscription_id and not ws.stripe_subscription_id:
            ws.stripe_subscription_id = stripe_subscription_id
        if stripe_customer_id and not ws.stripe_customer_id:
            ws.stripe_customer_id = stripe_customer_id
        # A subscription started mid-period through Checkout is anchored at our period end
        # (stripe_client.checkout_session_for_plan): its first invoice is prorated, like an upgrade.
        started_mid_period = grant and period_start > ws.period_start and abs(
            (period_end - ws.period_end).total_seconds()) < 1
        if stripe_lines is not None and (started_mid_period or not grant):
            ws.save(update_fields=["stripe_subscription_id", "stripe_customer_id"])
            if ws.plan_id != plan.pk and is_upgrade(current=ws.plan, new=plan):
                plan_change(workspace=ws, plan_id=plan.pk, at_period_end=False, sync_stripe=False, now=period_start)
            return _stripe_upgrade_invoice(ws, plan, stripe_invoice_id, stripe_lines, paid_at, tax)
        if grant and period_start >= ws.period_start:
            old_start = ws.period_start
            if period_start > ws.period_start:
                ws.plan, ws.scheduled_plan = plan, None
                ws.period_start, ws.period_end = period_start, period_end
            elif period_end > ws.period_end:
                ws.period_end = period_end
            ws.save()
            if period_start != old_start:
                monthly_rollover(workspace=ws, old_period_start=old_start, new_period_start=period_start,
                                 new_credits=ws.monthly_credits, at=paid_at)
        else:
            ws.save(update_fields=["stripe_subscription_id", "stripe_customer_id"])
        invoice = invoice_services.invoice_issue_for_plan_payment(
            workspace=ws, plan=plan, amount_cents=amount_cents, period_start=period_start, period_end=period_end,
            stripe_invoice_id=stripe_invoice_id, paid_at=paid_at, tax=tax)
    return invoice


def _stripe_upgrade_invoice(ws: Workspace, plan: Plan, stripe_invoice_id: str, stripe_lines, paid_at, tax=None):
    """Stripe's proration lines as our invoice; the new plan's charge line carries the credits the
    upgrade granted this period (the ledger entry, so the invoice equals what the ledger did)."""
    grant = LedgerEntry.objects.filter(
        workspace_id=ws.pk, kind=LedgerEntry.GRANT,
        idempotency_key__startswith=f"upgrade:{ws.pk}:{ws.period_start.isoformat()}:").order_by("-id").first()
    lines, credited = [], False
    for description, amount, _start, _end in stripe_lines:
        credits_here = grant.amount if grant and amount > 0 and not credited else 0
        credited = credited or bool(credits_here)
        lines.append(invoice_services.LineInput(description or f"{plan.name} plan", unit_cents=amount,
                                                credits=credits_here))
    starts = [start for _, _, start, _ in stripe_lines if start] or [ws.period_start]
    ends = [end for _, _, _, end in stripe_lines if end] or [ws.period_end]
    return invoice_services.invoice_issue_for_plan_change(
        workspace=ws, plan=plan, lines=lines, period_start=min(starts), period_end=max(ends),
        key=f"plan:{stripe_invoice_id}", stripe_invoice_id=stripe_invoice_id, paid_at=paid_at, tax=tax)


def subscription_checkout_record(*, workspace: Workspace, subscription_id: str, customer_id: str) -> Workspace:
    """checkout.session.completed for mode=subscription: remember the subscription. The plan and its
    credits arrive with invoice.paid (whichever of the two comes first)."""
    Workspace.objects.filter(pk=workspace.pk).update(stripe_subscription_id=subscription_id,
                                                     stripe_customer_id=customer_id or workspace.stripe_customer_id)
    access_versions_bump(workspace_ids=[workspace.pk])  # cached API tokens carry the workspace row
    workspace.refresh_from_db()
    return workspace


def subscription_sync(*, workspace: Workspace, plan: Plan | None, status: str, cancel_at_period_end: bool,
                      subscription_id: str, customer_id: str) -> Workspace:
    """customer.subscription.updated: the plan and cancellation flag follow Stripe. A price that is
    the plan already scheduled for the period end stays scheduled (our downgrade, mirrored)."""
    with transaction.atomic():
        ws = _lock_workspace(workspace.pk)
        ws.stripe_subscription_id = subscription_id
        ws.stripe_customer_id = customer_id or ws.stripe_customer_id
        ws.cancel_at_period_end = cancel_at_period_end
        ws.save(update_fields=["stripe_subscription_id", "stripe_customer_id", "cancel_at_period_end"])
    if status in ("active", "trialing", "past_due") and plan is not None and plan.pk != workspace.plan_id:
        if not (ws.scheduled_plan_id == plan.pk):
            plan_change(workspace=ws, plan_id=plan.pk, actor=None, at_period_end=False, sync_stripe=False)
            if cancel_at_period_end:
                Workspace.objects.filter(pk=ws.pk).update(cancel_at_period_end=True)
                access_versions_bump(workspace_ids=[ws.pk])
    workspace.refresh_from_db()
    return workspace


def subscription_end(*, workspace: Workspace, subscription_id: str) -> Workspace:
    """customer.subscription.deleted: back to Free at once. The period job then rolls the workspace
    onto Free's monthly periods. A deletion of a subscription that is not the workspace's current
    one (an old one) changes nothing."""
    with transaction.atomic():
        ws = _lock_workspace(workspace.pk)
        if ws.stripe_subscription_id and ws.stripe_subscription_id != subscription_id:
            return ws
        old_plan_id = ws.plan_id
        ws.plan_switch(Plan.objects.get(pk="free"))
        ws.stripe_subscription_id, ws.scheduled_plan, ws.cancel_at_period_end = "", None, False
        ws.save()
        audit_record(workspace_id=ws.pk, actor=None, action="plan.change", before={"plan": old_plan_id},
                     after={"plan": "free", "reason": "subscription ended"})
    workspace.refresh_from_db()
    return workspace


def quote_confirmed_check(*, quote, expected_cents: int | None) -> None:
    """A paid plan change charges only the amount the person saw and confirmed: none confirmed (a
    hand-made request) or a quote that moved since (midnight UTC passed) is a PlanError, and nothing
    is charged."""
    if expected_cents is None:
        raise PlanError(f"Confirm the amount first: {quote.sentence()} Nothing was charged.")
    if expected_cents != quote.amount_cents:
        raise PlanError(f"The price changed since you looked: {quote.sentence()} Please confirm again.")


def plan_subscribe_test(*, workspace: Workspace, plan_id: str, expected_cents: int | None, actor=None,
                        now=None) -> Workspace:
    """The built-in test checkout for a plan (no Stripe keys): the quote the page showed is charged
    and invoiced, and plan_change grants its credits, in one transaction. `expected_cents` is the
    amount the person confirmed, and nothing is paid without it; if the quote moved since (midnight
    UTC passed), or no amount was confirmed, nothing happens and they are asked to confirm. A double submit bills once (under the workspace
    lock, the second finds the plan bought); each paid change has its own invoice
    (plan-change:<workspace>:<period start>:#<n>), a plan bought again in the period included. Only
    an upgrade is sold here (PlanError otherwise)."""
    now = now or timezone.now()
    plan = Plan.objects.filter(pk=plan_id, is_custom=False).first()
    if plan is None:
        raise PlanError(f"There is no plan {plan_id!r} to subscribe to.")
    with transaction.atomic():
        ws = _lock_workspace(workspace.pk)
        if ws.plan_id == plan.pk:
            return ws  # already on it: a second submit of the same checkout
        if not is_upgrade(current=ws.plan, new=plan):
            # A downgrade waits for the period end and is chosen on the Plans page; paying here
            # would switch at once without a refund.
            raise PlanError(f"{plan.name} is not an upgrade from {ws.plan.name}: a downgrade takes effect at "
                            f"the period end; choose it on the Plans page. Nothing was charged.")
        quote = plan_change_quote(workspace=ws, plan=plan, at=now)
        quote_confirmed_check(quote=quote, expected_cents=expected_cents)
        plan_change(workspace=ws, plan_id=plan.pk, actor=actor, at_period_end=False, now=now)
        if plan.price_cents:
            invoice_services.invoice_issue_for_plan_change(
                workspace=ws, plan=plan, lines=quote_invoice_lines(quote), period_start=quote.service_start,
                period_end=quote.period_end, paid_at=now, key=_period_number(
                    Invoice.objects.filter(workspace_id=ws.pk), f"plan-change:{ws.pk}:{ws.period_start.isoformat()}:"))
    workspace.refresh_from_db()
    return workspace


def quote_invoice_lines(quote: PlanChangeQuote) -> list:
    """The invoice lines of an upgrade paid through the test checkout: the new plan for the days
    left (with the credits granted now), less the unused part of the old plan."""
    period = invoice_services.period_text(quote.service_start, quote.period_end)
    days = f"{quote.days_left} of {quote.days_in_period} days"
    lines = [invoice_services.LineInput(
        f"{quote.plan.name} plan, {period} ({days}): {nanos_display(quote.credits_now)} credits now",
        unit_cents=quote.charge_cents, credits=quote.credits_now)]
    if quote.credit_cents:
        lines.append(invoice_services.LineInput(f"Unused {quote.old_plan.name} plan, {period} ({days})",
                                                unit_cents=-quote.credit_cents))
    return lines


def sales_contact_send(*, workspace: Workspace, actor, name: str, email: str, message: str) -> None:
    """The Enterprise contact-sales form: an e-mail to settings.SALES_EMAIL, sent after commit."""
    subject = f"Enterprise enquiry from {workspace.name}"
    body = (f"Workspace: {workspace.name} ({workspace.slug}), plan {workspace.plan.name}\n"
            f"From: {name} <{email}> (signed in as {getattr(actor, 'email', 'unknown')})\n\n{message}\n")
    audit_record(workspace_id=workspace.pk, actor=actor, action="sales.contact", after={"email": email})
    transaction.on_commit(lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [settings.SALES_EMAIL],
                                            fail_silently=False))

