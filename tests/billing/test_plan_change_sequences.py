"""Any sequence of plan changes within one period, through the pages a person uses (the Plans page,
the test checkout, even a hand-made POST to the checkout of any plan) and staff's set_plan, bills
exactly what the quotes showed: one invoice per payment, equal to the quote confirmed; never a
500; the upgrade invoices carry the credits the ledger granted (issue 25, item 5)."""

import itertools
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings, strategies as st

from billing.models import LedgerEntry, Plan, Workspace
from billing.services import user_get_or_create
from budgets.workspaces import workspace_create
from buying.prorations import _prorate_cents, plan_change_quote
from invoices.models import Invoice

PLANS = ["free", "pro", "team"]
_numbers = itertools.count()

# One step: ("upgrade", plan) through the Plans page and its checkout, as a person clicks;
# ("checkout", plan) a POST straight to plans/<plan>/checkout/, whatever the plan;
# ("downgrade", plan) the Plans page's downgrade or cancel button, whatever the plan;
# ("keep", plan) "Keep plan"; ("staff", plan) manage.py set_plan, at once, no payment.
steps = st.lists(st.tuples(st.sampled_from(["upgrade", "checkout", "downgrade", "keep", "staff"]),
                           st.sampled_from(PLANS)), min_size=1, max_size=6)


class Person:
    """The owner of a personal Free workspace whose period started 20 days ago, at the pages."""

    def __init__(self):
        n = next(_numbers)
        owner = user_get_or_create(email=f"seq{n}@example.com", password="pw-seq-12345")
        self.workspace = workspace_create(slug=f"seq-{n}", name=f"Seq {n}", owner=owner, plan_id="free",
                                          kind=Workspace.PERSONAL, now=timezone.now() - timedelta(days=20, hours=1))
        self.client = Client()
        self.client.force_login(owner)
        self.slug = self.workspace.slug
        self.confirmed = []  # the quotes a person confirmed and was charged, in cents

    def fresh(self) -> Workspace:
        return Workspace.objects.select_related("plan").get(pk=self.workspace.pk)

    def request(self, method, url, data=None):
        response = getattr(self.client, method)(url, data or {})
        assert response.status_code in (200, 302), (method, url, data, response.status_code)
        return response

    def plans_url(self):
        return reverse("billing:plans", kwargs={"slug": self.slug})

    def checkout_url(self, plan):
        return reverse("billing:plan_checkout", kwargs={"slug": self.slug, "plan_id": plan})

    def upgrade(self, plan):
        page = self.request("get", self.plans_url())
        row = next(row for row in page.context["rows"] if row["plan"].pk == plan)
        if row["action"] != "upgrade":  # no button: post it anyway, it must change nothing
            self.request("post", self.plans_url(), {"plan": plan, "action": "upgrade"})
            return None
        shown = row["quote"].amount_cents
        response = self.request("post", self.plans_url(), {"plan": plan, "action": "upgrade",
                                                           "expected_cents": str(shown)})
        assert response.url == self.checkout_url(plan)
        checkout = self.request("get", response.url)
        assert checkout.context["quote"].amount_cents == shown  # the checkout repeats the page's figure
        self.request("post", response.url, {"expected_cents": str(shown)})
        return shown

    def checkout(self, plan):
        """A POST made by hand to the test checkout of any plan, with the amount its quote gives."""
        ws = self.fresh()
        quote = plan_change_quote(workspace=ws, plan=Plan.objects.get(pk=plan), at=timezone.now())
        self.request("post", self.checkout_url(plan), {"expected_cents": str(quote.amount_cents)})
        return quote.amount_cents if plan != ws.plan_id and quote.plan.sort_order > ws.plan.sort_order else None

    def downgrade(self, plan):
        self.request("post", self.plans_url(), {"plan": plan, "action": "cancel" if plan == "free" else "downgrade"})

    def keep(self, plan):
        self.request("post", self.plans_url(), {"plan": self.fresh().plan_id, "action": "keep"})


def _paid_plan_invoices(ws):
    return Invoice.objects.filter(workspace=ws, kind=Invoice.INVOICE, purchase__isnull=True)


def _check_one_step(person, kind, plan):
    before = person.fresh()
    invoices_before = set(_paid_plan_invoices(before).values_list("pk", flat=True))
    grants_before = set(LedgerEntry.objects.filter(workspace=before, kind="grant").values_list("pk", flat=True))
    if kind == "staff":
        call_command("set_plan", person.slug, plan)
        charged = None
    else:
        charged = getattr(person, kind)(plan)
    after = person.fresh()
    new_invoices = list(_paid_plan_invoices(after).exclude(pk__in=invoices_before))
    new_grants = list(LedgerEntry.objects.filter(workspace=after, kind="grant").exclude(pk__in=grants_before))
    assert (after.period_start, after.period_end) == (before.period_start, before.period_end)
    if charged is not None and after.plan_id == plan != before.plan_id:
        # Paid: one invoice, for the amount confirmed, with the credits the ledger granted.
        person.confirmed.append(charged)
        (invoice,) = new_invoices
        assert invoice.total_cents == charged > 0
        assert sum(line.credits for line in invoice.lines.all()) == sum(g.amount for g in new_grants)
    else:
        assert new_invoices == []
        if kind != "staff":  # nothing but staff moves a plan without a payment, and never down at once
            assert after.plan_id == before.plan_id
            assert new_grants == []


@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sequence=steps)
@example(sequence=[("upgrade", "pro"), ("checkout", "free"), ("upgrade", "team")])  # billed $29 too much
@example(sequence=[("upgrade", "pro"), ("checkout", "free"), ("upgrade", "pro")])  # IntegrityError, 500
@example(sequence=[("upgrade", "team"), ("staff", "pro"), ("upgrade", "team")])  # paid, no invoice
@example(sequence=[("upgrade", "pro"), ("staff", "free"), ("upgrade", "pro"), ("staff", "free"), ("upgrade", "team")])
@example(sequence=[("downgrade", "team"), ("checkout", "pro")])  # a "downgrade" to a higher plan
@example(sequence=[("upgrade", "pro"), ("downgrade", "free"), ("upgrade", "team"), ("downgrade", "pro"),
                   ("keep", "team"), ("checkout", "pro")])
@pytest.mark.django_db
def test_it_bills_every_sequence_of_plan_changes_in_a_period_exactly_as_quoted(sequence):
    person = Person()
    for kind, plan in sequence:
        _check_one_step(person, kind, plan)
    ws = person.fresh()
    invoices = _paid_plan_invoices(ws)
    assert invoices.count() == len(person.confirmed)  # every payment has its invoice, and only payments
    assert (invoices.aggregate(s=Sum("total_cents"))["s"] or 0) == sum(person.confirmed)
    allowances = [Plan.objects.get(pk=plan).monthly_credits for kind, plan in sequence] + [ws.plan.monthly_credits]
    assert LedgerEntry.objects.filter(workspace=ws, kind="grant").aggregate(s=Sum("amount"))["s"] <= max(allowances)
    if not any(kind == "staff" for kind, _ in sequence):  # staff's set_plan grants without an invoice
        period = ws.period_start.isoformat()
        granted = LedgerEntry.objects.filter(workspace=ws, kind="grant",
                                             idempotency_key__startswith=f"upgrade:{ws.pk}:{period}:")
        assert (sum(line.credits for invoice in invoices for line in invoice.lines.all())
                == (granted.aggregate(s=Sum("amount"))["s"] or 0))
        # Through the pages the plan only goes up within a period, each step paying the difference
        # for the days left: together, the plan reached for the days left, as if bought at once.
        quote = plan_change_quote(workspace=ws, plan=ws.plan, at=timezone.now())
        assert sum(person.confirmed) == _prorate_cents(ws.plan.price_cents, quote.days_left, quote.days_in_period)
