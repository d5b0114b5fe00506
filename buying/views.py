import logging
from decimal import ROUND_HALF_UP, Decimal

import stripe
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render

from . import stripe_client
from billing.models import CreditPack, Plan, Purchase
from billing.money import NANOS_PER_CREDIT, cents_display
from billing.services import member_cap

from .plans import PlanError, _check_member_cap, is_upgrade, plan_change, plan_subscribe_test, sales_contact_send
from billing.edition import is_community
from .purchases import PurchaseError, pack_purchase_fulfil, purchase_start
from billing.selectors import recent_ledger
from billing.services import memberships_for
from billing.tenancy import membership_for

log = logging.getLogger(__name__)


@login_required
def home(request):
    """Straight to the first workspace's billing overview; a user with none sees an explanation."""
    membership = memberships_for(request.user).first()
    if membership is None:
        return render(request, "billing/no_workspace.html")
    return redirect("billing:overview", slug=membership.workspace.slug)


@login_required
def overview(request, slug):
    membership = membership_for(request, slug)
    workspace = membership.workspace
    return render(request, "billing/overview.html", {
        "wallet": workspace.wallet,
        "ledger": recent_ledger(workspace=workspace),
    })


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
            session = stripe_client.checkout_session_for_purchase(purchase=purchase)
        except stripe.StripeError as error:
            log.warning("Stripe Checkout Session for purchase %s failed: %s", purchase.pk, error)
            messages.error(request, "Stripe could not start the checkout. Nothing was charged; please try again.")
            return redirect("billing:buy", slug=slug)
        Purchase.objects.filter(pk=purchase.pk, stripe_checkout_session_id=None).update(
            stripe_checkout_session_id=session["id"])
        return redirect(session["url"])
    packs = [{"pack": pack, "total": pack.total_credits, "price": cents_display(pack.price_cents),
              "per_credit": _price_per_credit(pack.price_cents, pack.total_credits)}
             for pack in CreditPack.objects.filter(is_active=True)]
    return render(request, "billing/buy.html", {
        "packs": packs, "wallet": workspace.wallet, "test_mode": not stripe_client.stripe_enabled(),
        "purchases": workspace.purchases.select_related("pack").order_by("-created_at")[:10],
    })


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
    if purchase.source != Purchase.TEST:
        raise Http404("Not a test-mode purchase.")
    if request.method == "POST" and purchase.status == Purchase.PENDING:
        if request.POST.get("action") == "cancel":
            messages.info(request, "Checkout cancelled; nothing was charged.")
            return redirect("billing:buy", slug=slug)
        pack_purchase_fulfil(purchase=purchase)
        return redirect("billing:purchase_done", slug=slug, purchase_id=purchase.pk)
    if purchase.status != Purchase.PENDING:
        return redirect("billing:purchase_done", slug=slug, purchase_id=purchase.pk)
    return render(request, "billing/test_checkout.html", {
        "purchase": purchase, "price": cents_display(purchase.amount_cents, purchase.currency),
        "total": purchase.credits + purchase.bonus,
    })


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
        "total": purchase.credits + purchase.bonus, "price": cents_display(purchase.amount_cents, purchase.currency),
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
    rows = []
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
        rows.append({"plan": plan, "action": action, "price": cents_display(plan.price_cents) if plan.price_cents is not None else "Contact sales",
                     "scheduled": workspace.scheduled_plan_id == plan.pk or (plan.pk == "free" and workspace.cancel_at_period_end),
                     "cap": cap, "over_cap": cap is not None and workspace.memberships.count() > cap})
    return render(request, "billing/plans.html", {
        "rows": rows, "test_mode": not stripe_client.stripe_enabled(), "members": workspace.memberships.count(),
        "contact_form": SalesContactForm(initial={"name": request.user.display_name, "email": request.user.email}),
    })


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
            elif not stripe_client.stripe_enabled():
                return redirect("billing:plan_checkout", slug=slug, plan_id=plan.pk)
            elif not workspace.stripe_subscription_id:
                _check_cap(workspace, plan)
                session = stripe_client.checkout_session_for_plan(workspace=workspace, plan=plan,
                                                                  actor_email=request.user.email)
                return redirect(session["url"])
            else:
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


def _check_cap(workspace, plan):
    _check_member_cap(workspace, plan)


@login_required
def plan_checkout(request, slug, plan_id):
    """The built-in test checkout for a paid plan (no Stripe keys)."""
    membership = membership_for(request, slug, manage=True)
    workspace = membership.workspace
    if is_community():
        return _community_page(request, "Plans", status=403)
    if stripe_client.stripe_enabled():
        raise Http404("Checkout goes through Stripe.")
    plan = get_object_or_404(Plan, pk=plan_id, is_custom=False)
    if request.method == "POST":
        try:
            plan_subscribe_test(workspace=workspace, plan_id=plan.pk, actor=request.user)
        except PlanError as error:
            messages.error(request, str(error))
            return redirect("billing:plans", slug=slug)
        messages.success(request, f"Payment received: you are now on the {plan.name} plan.")
        return redirect("billing:plans", slug=slug)
    return render(request, "billing/plan_checkout.html", {"plan": plan, "price": cents_display(plan.price_cents or 0)})
