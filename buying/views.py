import logging
from decimal import ROUND_HALF_UP, Decimal

import stripe
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from billing.edition import is_community
from billing.forms import digits_int
from billing.models import AutoRecharge, CreditPack, Plan, Purchase, Workspace
from billing.money import NANOS_PER_CREDIT, cents_display, price_display
from billing.members import member_cap, seats_over_cap, seats_taken
from billing.services import current_membership
from billing.tenancy import membership_for
from invoices.tax import TaxDecision, tax_preview, workspace_tax
from usage.forecast import credit_forecast

from . import stripe_client
from .activity import latest_ledger, ledger_csv_rows, ledger_page
from .auto_recharge import AutoRechargeError, auto_recharge_recent, auto_recharge_set, auto_recharge_test_card_set
from .forms import AutoRechargeForm, LedgerFilterForm
from .plans import (PlanError, is_upgrade, plan_change, plan_member_cap_check, plan_subscribe_test,
                    quote_confirmed_check, quote_invoice_lines, sales_contact_send)
from .prorations import plan_change_quote
from .purchases import PurchaseError, pack_purchase_fulfil, purchase_cancel, purchase_start

log = logging.getLogger(__name__)

NOT_CONFIGURED = ("Payments are not configured: nothing can be bought until the operator sets the Stripe keys "
                  "(or BILLING_TEST_CHECKOUT=true for a demo).")


@login_required
def home(request):
    """Where people land after login: the Overview of the workspace they used last (else their
    first); staff without a workspace go to the admin; anyone else sees how to get a workspace."""
    user = request.user
    membership = current_membership(user)
    if membership is not None:
        return redirect("billing:overview", slug=membership.workspace.slug)
    if user.is_staff:
        return redirect("admin:index")
    return render(request, "billing/no_workspace.html", {"signup_enabled": settings.SIGNUP_ENABLED})


@require_safe
@login_required
def overview(request, slug):
    membership = membership_for(request, slug)
    workspace = membership.workspace
    return render(request, "billing/overview.html", {
        "wallet": workspace.wallet,
        "ledger": latest_ledger(workspace=workspace),
        "auto": AutoRecharge.objects.select_related("pack").filter(pk=workspace.pk).first(),
        "forecast": credit_forecast(workspace=workspace),
    })


# --- Credit activity: every ledger entry (issue 10, section 4) ----------------------------------
# Owner and admins only: the ledger is the workspace's money history (purchases, refunds and staff
# adjustments, with who made them), like the invoices. Members see the Overview's latest rows.

@login_required
def activity(request, slug):
    membership = membership_for(request, slug, manage=True)
    workspace = membership.workspace
    form = LedgerFilterForm(request.GET)
    form.is_valid()  # an invalid field shows its error and is left out of the filters
    filters = form.filters()
    page = ledger_page(workspace=workspace, filters=filters, before=form.cleaned_data.get("before"),
                       after=form.cleaned_data.get("after"))
    return render(request, "billing/activity.html", {
        "form": form, "filters": filters, "query": filters.as_query(), "page": page, "wallet": workspace.wallet,
        "is_newest_page": page.newer is None,
    })


@login_required
def activity_csv(request, slug):
    membership = membership_for(request, slug, manage=True)
    form = LedgerFilterForm(request.GET)
    if not form.is_valid():
        problems = "; ".join(f"{name.rstrip('_')}: {' '.join(errors)}" for name, errors in form.errors.items())
        return HttpResponse(f"Invalid filters ({problems})\n", status=400, content_type="text/plain; charset=utf-8")
    workspace = membership.workspace
    response = StreamingHttpResponse(ledger_csv_rows(workspace=workspace, filters=form.filters()),
                                     content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="ledger-{workspace.slug}-{timezone.now():%Y%m%d}.csv"'
    response["Cache-Control"] = "no-store"
    return response


# --- Buying credits and plans (issue 5) ---------------------------------------------------------

class SalesContactForm(forms.Form):
    name = forms.CharField(max_length=120)
    email = forms.EmailField()
    message = forms.CharField(max_length=4000, widget=forms.Textarea(attrs={"rows": 4}),
                              help_text="Team size, expected monthly usage, SSO or SLA needs.")


def _price_per_credit(price_cents: int, nanos: int) -> str:
    """$ per credit to 4 decimals, exact Decimal arithmetic."""
    if not nanos:
        return "—"
    value = (Decimal(price_cents) / 100) / (Decimal(nanos) / NANOS_PER_CREDIT)
    return f"${value.quantize(Decimal('0.0001'), rounding=ROUND_HALF_UP)}"


def _community_page(request, title: str, status: int = 200):
    return render(request, "billing/cloud_only.html", {"title": title}, status=status)


@login_required
def buy(request, slug):
    membership = membership_for(request, slug, manage=True)
    workspace = membership.workspace
    if is_community():
        return _community_page(request, "Buy credits", status=403 if request.method == "POST" else 200)
    if request.method == "POST":
        if not stripe_client.payments_configured():
            messages.error(request, NOT_CONFIGURED)
            return redirect("billing:buy", slug=slug)
        source = Purchase.STRIPE if stripe_client.stripe_enabled() else Purchase.TEST
        try:
            purchase = purchase_start(workspace=workspace, pack_id=request.POST.get("pack", ""), actor=request.user,
                                      source=source)
        except PurchaseError as error:
            messages.error(request, str(error))
            return redirect("billing:buy", slug=slug)
        if source == Purchase.TEST:
            return redirect("billing:test_checkout", slug=slug, purchase_id=purchase.pk)
        try:
            session = stripe_client.checkout_session_for_purchase(purchase=purchase,
                                                                  save_card=request.POST.get("save_card") == "1")
        except stripe.StripeError as error:
            log.warning("Stripe Checkout Session for purchase %s failed: %s", purchase.pk, error)
            purchase_cancel(purchase=purchase, reason="Stripe could not start the checkout", actor=request.user)
            messages.error(request, "Stripe could not start the checkout. Nothing was charged; please try again.")
            return redirect("billing:buy", slug=slug)
        Purchase.objects.filter(pk=purchase.pk, stripe_checkout_session_id=None).update(
            stripe_checkout_session_id=session["id"])
        return redirect(session["url"])
    packs = [{"pack": pack, "total": pack.total_credits, "price": price_display(pack.price_cents),
              "per_credit": _price_per_credit(pack.price_cents, pack.total_credits)}
             for pack in CreditPack.objects.filter(is_active=True)]
    auto = AutoRecharge.objects.select_related("pack").filter(pk=workspace.pk).first()
    form = AutoRechargeForm(initial={"threshold": auto.threshold, "pack": auto.pack_id,
                                     "max_per_period": auto.max_per_period} if auto else {"pack": "builder"})
    return render(request, "billing/buy.html", {
        "packs": packs, "wallet": workspace.wallet, "test_mode": stripe_client.test_checkout_enabled(),
        "payments_off": not stripe_client.payments_configured(),
        "purchases": workspace.purchases.select_related("pack").order_by("-created_at")[:10],
        "auto": auto, "auto_form": form, "test_cards": AutoRecharge.TEST_CARDS,
        "auto_attempts": auto_recharge_recent(workspace=workspace),
        "tax_note": tax_preview(workspace=workspace, stripe=stripe_client.stripe_enabled()),
    })


@login_required
def auto_recharge(request, slug):
    """The Auto-recharge section of Buy Credits: save (turn on, or resume), turn off, the test card,
    or save a card with Stripe (Checkout in mode=setup)."""
    membership = membership_for(request, slug, manage=True)
    workspace = membership.workspace
    if is_community():
        return _community_page(request, "Buy credits", status=403)
    if request.method != "POST":
        return redirect(reverse("billing:buy", kwargs={"slug": slug}) + "#auto-recharge")
    action = request.POST.get("action", "")
    try:
        if action == "save":
            form = AutoRechargeForm(request.POST)
            if not form.is_valid():
                problems = " ".join(" ".join(errors) for errors in form.errors.values())
                raise AutoRechargeError(f"Auto-recharge was not changed: {problems}")
            data = form.cleaned_data
            auto_recharge_set(workspace=workspace, enabled=True, threshold=data["threshold"], pack_id=data["pack"].pk,
                              max_per_period=data["max_per_period"], actor=request.user)
            messages.success(request, "Auto-recharge is on.")
        elif action == "off":
            auto_recharge_set(workspace=workspace, enabled=False, actor=request.user)
            messages.success(request, "Auto-recharge is off.")
        elif action == "test_card":
            auto_recharge_test_card_set(workspace=workspace, mode=request.POST.get("mode", ""), actor=request.user)
            messages.success(request, "The test card on file was updated.")
        elif action == "stripe_card" and stripe_client.stripe_enabled():
            session = stripe_client.checkout_session_for_card_setup(workspace=workspace, actor_email=request.user.email)
            return redirect(session["url"])
        else:
            messages.error(request, "Unknown action.")
    except AutoRechargeError as error:
        messages.error(request, str(error))
    except stripe.StripeError as error:
        log.warning("Stripe card setup for %s failed: %s", slug, error)
        messages.error(request, "Stripe could not start saving a card. Nothing changed; please try again.")
    return redirect(reverse("billing:buy", kwargs={"slug": slug}) + "#auto-recharge")


def _purchase_for(membership, purchase_id) -> Purchase:
    return get_object_or_404(Purchase.objects.select_related("pack"), pk=purchase_id, workspace=membership.workspace)


@login_required
def test_checkout(request, slug, purchase_id):
    """The built-in checkout when Stripe is not configured: pays through pack_purchase_fulfil, the
    same service as Stripe's webhook."""
    membership = membership_for(request, slug, manage=True)
    purchase = _purchase_for(membership, purchase_id)
    if is_community():
        return _community_page(request, "Buy credits", status=403)
    if purchase.source != Purchase.TEST or not stripe_client.test_checkout_enabled():
        raise Http404("Not a test-mode purchase.")
    if request.method == "POST" and purchase.status == Purchase.PENDING:
        if request.POST.get("action") == "cancel":
            purchase_cancel(purchase=purchase, reason="left the checkout", actor=request.user)
            messages.info(request, "Checkout cancelled; nothing was charged.")
            return redirect("billing:buy", slug=slug)
        pack_purchase_fulfil(purchase=purchase)
        return redirect("billing:purchase_done", slug=slug, purchase_id=purchase.pk)
    if purchase.status != Purchase.PENDING:
        return redirect("billing:purchase_done", slug=slug, purchase_id=purchase.pk)
    return render(request, "billing/test_checkout.html", {
        "purchase": purchase, "price": price_display(purchase.amount_cents, purchase.currency),
        "total": purchase.credits + purchase.bonus, "tax": TaxDecision.from_json(purchase.tax_detail),
        "pay": price_display(purchase.total_cents, purchase.currency),
    })


@login_required
def checkout_cancelled(request, slug, purchase_id):
    """Where Stripe Checkout's cancel link returns (a GET, as Stripe sends it): the purchase shows as
    cancelled. Harmless if followed twice or by anyone of the workspace: only a pending purchase
    moves, and a payment that lands later still pays it."""
    membership = membership_for(request, slug, manage=True)
    purchase = _purchase_for(membership, purchase_id)
    purchase_cancel(purchase=purchase, reason="left the checkout", actor=request.user)
    if purchase.status == Purchase.CANCELLED:
        messages.info(request, "Checkout cancelled; nothing was charged.")
    return redirect("billing:buy", slug=slug)


@login_required
def purchase_done(request, slug, purchase_id):
    """Where Checkout returns: "payment received, credits added" once the webhook has landed;
    until then a pending state that refreshes itself."""
    membership = membership_for(request, slug, manage=True)
    purchase = _purchase_for(membership, purchase_id)
    wallet = membership.workspace.wallet
    wallet.refresh_from_db()
    return render(request, "billing/purchase_done.html", {
        "purchase": purchase, "pending": purchase.status == Purchase.PENDING, "wallet": wallet,
        "total": purchase.credits + purchase.bonus, "price": price_display(purchase.total_cents, purchase.currency),
    })


@login_required
def plans(request, slug):
    membership = membership_for(request, slug, manage=True)
    workspace = membership.workspace
    if is_community():
        return _community_page(request, "Plans", status=403 if request.method == "POST" else 200)
    if request.method == "POST":
        return _plans_post(request, membership)
    current = workspace.plan
    now = timezone.now()
    members = workspace.memberships.count()
    rows = []
    seats = seats_taken(workspace=workspace)  # members and pending invitations
    for plan in Plan.objects.all():
        if plan.pk == current.pk:
            action = "current"
        elif plan.is_custom:
            action = "contact"
        elif is_upgrade(current=current, new=plan):
            action = "upgrade"
        else:
            action = "downgrade"
        cap = member_cap(workspace=workspace, plan=plan)
        rows.append({"plan": plan, "action": action, "price": price_display(plan.price_cents) if plan.price_cents is not None else "Contact sales",
                     "scheduled": workspace.scheduled_plan_id == plan.pk or (plan.pk == "free" and workspace.cancel_at_period_end),
                     "cap": cap, "over_cap": bool(seats_over_cap(workspace=workspace, plan=plan, taken=seats)),
                     "features": _plan_features(workspace, plan, cap),
                     "quote": plan_change_quote(workspace=workspace, plan=plan, at=now) if action == "upgrade" else None})
    confirm = next((row for row in rows if row["action"] == "downgrade" and not row["scheduled"]
                    and not row["over_cap"] and row["plan"].pk == request.GET.get("confirm")), None)
    return render(request, "billing/plans.html", {
        "rows": rows, "test_mode": stripe_client.test_checkout_enabled(), "members": members, "confirm": confirm,
        "payments_off": not stripe_client.payments_configured(),
        "contact_form": SalesContactForm(initial={"name": request.user.display_name, "email": request.user.email}),
        "tax_note": tax_preview(workspace=workspace, stripe=stripe_client.stripe_enabled()),
    })


def _plan_features(workspace, plan, cap) -> list[str]:
    """The plan's feature phrases without their member claim: the card's member line says it, from
    the cap that applies to this workspace (a personal workspace holds one member whatever the plan
    says), so the two can never contradict each other. For the same reason a personal workspace's cards
    leave out "Team workspaces": upgrading it does not make it one (issue 30)."""
    claims = ("member",) + (("team workspace",) if workspace.kind == Workspace.PERSONAL else ())
    return [f.strip() for f in plan.features.split(",") if f.strip() and not any(c in f.lower() for c in claims)]


def _expected_cents(request) -> int | None:
    """The amount the person saw and confirmed (a check, never the price: the quote is recomputed)."""
    return digits_int(request.POST.get("expected_cents"), max_digits=11)


def _plans_post(request, membership):
    workspace, slug = membership.workspace, membership.workspace.slug
    action = request.POST.get("action", "")
    if action == "contact":
        form = SalesContactForm(request.POST)
        if form.is_valid():
            sales_contact_send(workspace=workspace, actor=request.user, **form.cleaned_data)
            messages.success(request, "Thanks: our sales team will reply by e-mail within one business day.")
        else:
            messages.error(request, "Please give your name, a valid e-mail address and a message.")
        return redirect("billing:plans", slug=slug)
    plan = Plan.objects.filter(pk=request.POST.get("plan", "")).first()
    if plan is None or (plan.is_custom and plan.pk != workspace.plan_id):
        messages.error(request, "Choose one of the plans below.")
        return redirect("billing:plans", slug=slug)
    try:
        if action == "upgrade" and is_upgrade(current=workspace.plan, new=plan):
            if not plan.price_cents:
                plan_change(workspace=workspace, plan_id=plan.pk, actor=request.user, at_period_end=False)
            elif not stripe_client.payments_configured():
                messages.error(request, NOT_CONFIGURED)
                return redirect("billing:plans", slug=slug)
            elif not stripe_client.stripe_enabled():
                return redirect("billing:plan_checkout", slug=slug, plan_id=plan.pk)
            elif not workspace.stripe_subscription_id:
                plan_member_cap_check(workspace=workspace, plan=plan)
                session = stripe_client.checkout_session_for_plan(workspace=workspace, plan=plan,
                                                                  actor_email=request.user.email)
                return redirect(session["url"])
            else:
                quote = plan_change_quote(workspace=workspace, plan=plan, at=timezone.now())
                quote_confirmed_check(quote=quote, expected_cents=_expected_cents(request))
                plan_change(workspace=workspace, plan_id=plan.pk, actor=request.user, at_period_end=False)
            messages.success(request, f"You are now on the {plan.name} plan.")
        elif action in ("downgrade", "cancel"):
            plan_change(workspace=workspace, plan_id=plan.pk, actor=request.user, at_period_end=True)
            messages.success(request, f"Your plan changes to {plan.name} on {workspace.period_end:%b %-d, %Y}; "
                                      f"until then nothing changes.")
        elif action == "keep":
            plan_change(workspace=workspace, plan_id=workspace.plan_id, actor=request.user, at_period_end=False)
            messages.success(request, f"You stay on the {workspace.plan.name} plan.")
        else:
            messages.error(request, "Unknown action.")
    except PlanError as error:
        messages.error(request, str(error))
    except stripe.StripeError as error:
        log.warning("Stripe plan change for %s failed: %s", slug, error)
        messages.error(request, "Stripe could not start the checkout. Nothing was charged; please try again.")
    return redirect("billing:plans", slug=slug)


@login_required
def plan_checkout(request, slug, plan_id):
    """The built-in test checkout for a paid plan (no Stripe keys)."""
    membership = membership_for(request, slug, manage=True)
    workspace = membership.workspace
    if is_community():
        return _community_page(request, "Plans", status=403)
    if not stripe_client.test_checkout_enabled():
        raise Http404("Checkout goes through Stripe, or payments are not configured.")
    plan = get_object_or_404(Plan, pk=plan_id, is_custom=False)
    if request.method == "POST":
        try:
            plan_subscribe_test(workspace=workspace, plan_id=plan.pk, actor=request.user,
                                expected_cents=_expected_cents(request))
        except PlanError as error:
            messages.error(request, str(error))
            return redirect("billing:plans", slug=slug)
        messages.success(request, f"Payment received: you are now on the {plan.name} plan.")
        return redirect("billing:plans", slug=slug)
    if workspace.plan_id == plan.pk or not is_upgrade(current=workspace.plan, new=plan):
        return redirect("billing:plans", slug=slug)
    quote = plan_change_quote(workspace=workspace, plan=plan, at=timezone.now())
    # The tax the invoice will carry: the table's, on the invoice's own lines.
    tax = workspace_tax(workspace=workspace, amounts=[line.amount_cents for line in quote_invoice_lines(quote)])
    return render(request, "billing/plan_checkout.html", {
        "plan": plan, "quote": quote, "tax": tax, "pay_cents": quote.amount_cents + tax.tax_cents})
