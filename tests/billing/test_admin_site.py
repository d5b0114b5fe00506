"""The admin staff see: branded, without the dj-stripe models nobody uses, amounts right-aligned, and
a workspace page with the figures a support person needs."""

import re

import pytest
from django.urls import reverse

from billing.ledger import credits_adjust
from billing.models import User, credits
from budgets.models import WorkspaceBudget


@pytest.fixture
def staff_client(client, db):
    client.force_login(User.objects.create_user(email="staff@example.com", password="pw-staff-123",
                                                is_staff=True, is_superuser=True))
    return client


@pytest.mark.django_db
def test_it_is_branded_and_lists_only_the_stripe_models_staff_use(staff_client):
    page = staff_client.get(reverse("admin:index")).content.decode()
    assert "LenserFight Billing" in page and "Django administration" not in page
    stripe_models = set(re.findall(r'href="/admin/djstripe/(\w+)/"', page))
    assert stripe_models and len(stripe_models) <= 10
    assert "coupon" not in stripe_models and "taxcode" not in stripe_models and "event" in stripe_models


@pytest.mark.django_db
def test_amounts_in_changelists_are_marked_for_right_alignment(staff_client, team):
    page = staff_client.get(reverse("admin:billing_ledgerentry_changelist")).content.decode()
    assert '<span class="money" title="5000 credits">+5,000.00</span>' in page


@pytest.mark.django_db
def test_the_workspace_page_shows_wallet_plan_period_budget_and_recent_ledger(staff_client, team):
    WorkspaceBudget.objects.update_or_create(workspace=team.workspace, defaults={"monthly_limit": credits(6000)})
    credits_adjust(workspace=team.workspace, amount=credits("12.5"), reason="Goodwill after outage", actor=None)
    page = staff_client.get(reverse("admin:billing_workspace_change", args=[team.workspace.pk])).content.decode()
    summary = page[page.index('data-testid="support-summary"'):page.index('<fieldset')]
    assert "5,012.5" in summary  # the wallet
    assert "Team" in summary and "300" in summary  # the plan and its requests per minute
    assert team.workspace.period_end.strftime("%b %-d") in summary.replace("&nbsp;", " ")
    assert "6,000" in summary  # the budget
    assert "Goodwill after outage" in summary and "+12.5" in summary  # the latest ledger entry


@pytest.mark.django_db
def test_the_invoice_admin_is_read_only(staff_client, team):
    assert staff_client.get(reverse("admin:invoices_invoice_add")).status_code == 403
