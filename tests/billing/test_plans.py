import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse

from billing.models import LedgerEntry, Workspace, credits
from buying.plans import MemberCapExceeded, plan_change
from tests.factories import PASSWORD


def login(client, user):
    assert client.login(email=user.email, password=PASSWORD)


def fresh(ws):
    ws = Workspace.objects.select_related("plan", "wallet").get(pk=ws.pk)
    return ws


@pytest.mark.django_db
def test_switching_team_to_pro_changes_the_rate_limits(team):
    team.workspace.memberships.filter(role="member").delete()
    call_command("set_plan", "acme", "pro")
    ws = fresh(team.workspace)
    assert ws.plan_id == "pro" and ws.requests_per_minute == 60 and ws.concurrent_runs == 5


@pytest.mark.django_db
def test_set_plan_sets_enterprise_values(team):
    call_command("set_plan", "acme", "enterprise", "--requests-per-minute", "1000", "--concurrent-runs", "50",
                 "--monthly-credits", "20000")
    ws = fresh(team.workspace)
    assert (ws.plan_id, ws.requests_per_minute, ws.concurrent_runs, ws.monthly_credits) == (
        "enterprise", 1000, 50, credits(20000))
    # the difference to Team's 5,000 is granted for this period
    assert ws.wallet.monthly == credits(20000)


@pytest.mark.django_db
def test_an_upgrade_is_immediate_and_grants_the_difference_once(team):
    ws = team.workspace
    ws.memberships.filter(role="member").delete()
    plan_change(workspace=ws, plan_id="pro", actor=team.owner)  # Team -> Pro at once (staff, set_plan)
    plan_change(workspace=ws, plan_id="team", actor=team.owner)  # back: Team's 5,000 were granted already
    assert LedgerEntry.objects.filter(workspace=ws, kind="grant").count() == 1
    plan_change(workspace=ws, plan_id="enterprise", actor=team.owner, monthly_credits=credits(8000))
    plan_change(workspace=ws, plan_id="pro", actor=team.owner)
    plan_change(workspace=ws, plan_id="enterprise", actor=team.owner, monthly_credits=credits(8000))
    assert list(LedgerEntry.objects.filter(workspace=ws, kind="grant").order_by("id").values_list("amount", flat=True)) == [
        credits(5000), credits(3000)]
    assert fresh(ws).wallet.monthly == credits(8000)


@pytest.mark.django_db
def test_a_downgrade_waits_for_the_period_end(client, team):
    team.workspace.memberships.filter(role="member").delete()
    login(client, team.owner)
    client.post(reverse("billing:plans", kwargs={"slug": "acme"}), {"plan": "pro", "action": "downgrade"})
    ws = fresh(team.workspace)
    assert ws.plan_id == "team" and ws.scheduled_plan_id == "pro" and ws.requests_per_minute == 300
    page = client.get(reverse("billing:plans", kwargs={"slug": "acme"})).content.decode()
    assert "Your plan changes to <strong>Pro</strong>" in page
    client.post(reverse("billing:plans", kwargs={"slug": "acme"}), {"plan": "team", "action": "keep"})
    assert fresh(team.workspace).scheduled_plan_id is None


@pytest.mark.django_db
def test_it_refuses_a_downgrade_below_the_member_count(client, team):
    from billing.services import member_add, user_get_or_create

    plan_change(workspace=team.workspace, plan_id="team", actor=None)
    for n in range(8):
        member_add(workspace=team.workspace, user=user_get_or_create(email=f"m{n}@acme.test"), role="member")
    with pytest.raises(MemberCapExceeded, match="allows 10 members; this workspace has 11"):
        plan_change(workspace=team.workspace, plan_id="pro", actor=team.owner, at_period_end=True)
    login(client, team.owner)
    response = client.post(reverse("billing:plans", kwargs={"slug": "acme"}), {"plan": "free", "action": "cancel"},
                           follow=True)
    assert "Remove 10 members first" in response.content.decode()
    assert fresh(team.workspace).cancel_at_period_end is False


@pytest.mark.django_db
def test_a_free_workspace_subscribes_through_the_test_checkout(client, outsider):
    client.force_login(outsider)
    response = client.post(reverse("billing:plans", kwargs={"slug": "elsewhere"}), {"plan": "pro", "action": "upgrade"})
    assert response.url == reverse("billing:plan_checkout", kwargs={"slug": "elsewhere", "plan_id": "pro"})
    checkout = client.get(response.url)
    assert b"Test mode: no card is charged" in checkout.content
    confirmed = {"expected_cents": str(checkout.context["quote"].amount_cents)}  # the amount the page showed
    client.post(response.url, confirmed)
    client.post(response.url, confirmed)
    ws = Workspace.objects.get(slug="elsewhere")
    assert ws.plan_id == "pro" and ws.requests_per_minute == 60
    ws.wallet.refresh_from_db()
    assert ws.wallet.monthly == credits(1000)


@pytest.mark.django_db
def test_the_plans_page_lists_the_four_plans(client, team):
    login(client, team.admin)
    page = client.get(reverse("billing:plans", kwargs={"slug": "acme"})).content.decode()
    for name in ("Free", "Pro", "Team", "Enterprise"):
        assert f'data-plan="{name.lower()}"' in page
    assert "Current plan" in page and "Contact sales" in page


@pytest.mark.django_db
def test_members_cannot_change_plans(client, team, outsider):
    login(client, team.member)
    url = reverse("billing:plans", kwargs={"slug": "acme"})
    assert client.get(url).status_code == 403
    assert client.post(url, {"plan": "free", "action": "cancel"}).status_code == 403
    client.force_login(outsider)
    assert client.get(url).status_code == 404


@pytest.mark.django_db(transaction=False)
def test_contact_sales_emails_the_sales_team(client, team, settings, django_capture_on_commit_callbacks):
    settings.SALES_EMAIL = "sales@example.com"
    login(client, team.owner)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("billing:plans", kwargs={"slug": "acme"}),
                    {"action": "contact", "name": "Olivia", "email": "olivia@acme.test", "message": "<b>200 seats</b>"})
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["sales@example.com"] and "200 seats" in mail.outbox[0].body


@pytest.mark.django_db
def test_with_stripe_keys_buying_redirects_to_checkout(client, team, settings, monkeypatch):
    from buying import stripe_client

    settings.STRIPE_SECRET_KEY = "sk_test_123"
    seen = {}

    def fake_session(*, purchase, **options):
        seen["purchase"] = purchase
        return {"id": "cs_test_x", "url": "https://checkout.stripe.com/c/pay/cs_test_x"}

    monkeypatch.setattr(stripe_client, "checkout_session_for_purchase", fake_session)
    login(client, team.owner)
    response = client.post(reverse("billing:buy", kwargs={"slug": "acme"}), {"pack": "builder"})
    assert response.url == "https://checkout.stripe.com/c/pay/cs_test_x"
    purchase = seen["purchase"]
    purchase.refresh_from_db()
    assert purchase.stripe_checkout_session_id == "cs_test_x" and purchase.status == "pending"
    page = client.get(reverse("billing:purchase_done", kwargs={"slug": "acme", "purchase_id": purchase.pk}))
    assert b'http-equiv="refresh"' in page.content and b"Waiting for the payment confirmation" in page.content


@pytest.mark.django_db
def test_the_checkout_session_parameters_reach_stripe_http_edge(team, settings, monkeypatch):
    """Stubbed at stripe's HTTP client: the request Stripe would receive."""
    import stripe

    from buying import stripe_client
    from buying.purchases import purchase_start

    settings.STRIPE_SECRET_KEY = "sk_test_123"
    captured = {}

    def fake_request(self, method, url, headers, post_data=None, **kwargs):
        captured.update(method=method, url=url, body=post_data)
        return ('{"id": "cs_test_y", "object": "checkout.session", "url": "https://checkout.stripe.com/y"}', 200, {})

    monkeypatch.setattr(stripe.RequestsClient, "request", fake_request, raising=False)
    monkeypatch.setattr(stripe._http_client, "new_default_http_client",
                        lambda *a, **k: stripe.RequestsClient(), raising=False)
    purchase = purchase_start(workspace=team.workspace, pack_id="pro", actor=team.owner, source="stripe")
    session = stripe_client.checkout_session_for_purchase(purchase=purchase)
    assert session["url"] == "https://checkout.stripe.com/y"
    body = captured["body"].decode() if isinstance(captured["body"], bytes) else captured["body"]
    assert captured["url"].endswith("/v1/checkout/sessions") and "mode=payment" in body
    assert f"client_reference_id={purchase.pk}" in body and "metadata[pack]=pro" in body.replace("%5B", "[").replace("%5D", "]")


@pytest.mark.django_db
def test_the_plans_page_itemises_the_quote_as_stripe_does(client):
    """Issue 30: the quote was one sentence. Now: the unused time on the old plan, the remaining time
    on the new one, what is due today, the credits granted now with the unused monthly credits
    counted against them, and the next invoice."""
    import re
    from html import unescape

    from billing.models import Plan
    from buying.prorations import plan_change_quote
    from django.utils import timezone
    from tests.factories import PASSWORD, make_workspace

    solo = make_workspace(slug="solo", plan="pro")
    client.login(email=solo.owner.email, password=PASSWORD)
    page = client.get("/w/solo/settings/billing/plans/").content.decode()
    quote = plan_change_quote(workspace=solo.workspace, plan=Plan.objects.get(pk="team"), at=timezone.now())
    table = page[page.index('data-testid="quote-lines-team"'):]
    rows = [(unescape(a), unescape(b)) for a, b in re.findall(r'<th scope="row">([^<]+)</th><td class="num">([^<]+)</td>',
                                                          table[:table.index("</table>")])]
    assert rows == quote.lines()
    labels = [label for label, _ in rows]
    assert labels[0].startswith("Team, ") and labels[1] == "Unused time on Pro"
    assert "Due today" in labels and "Less unused Pro credits" in labels and labels[-1] == "Credits now"
    assert unescape(re.search(r'data-testid="quote-next-team">([^<]+)<', page).group(1)) == quote.next_invoice()
    assert quote.charge_cents - quote.credit_cents == quote.amount_cents > 0
    assert quote.new_credits_for_days - quote.old_credits_for_days == quote.credits_now > 0
    assert dict(rows)["Due today"] == f"${quote.amount_cents // 100}.{quote.amount_cents % 100:02d}"


@pytest.mark.django_db
def test_a_personal_workspaces_pro_card_does_not_promise_team_workspaces(client, outsider):
    """Issue 30: the card said both "Up to 1 member" and "Team workspaces"."""
    import re

    client.login(email="outsider@example.com", password="pw-outsider-1")
    page = client.get("/w/elsewhere/settings/billing/plans/").content.decode()
    card = page[page.index('data-plan="pro"'):page.index('data-plan="team"')]
    assert "Up to 1 member (personal workspace)" in card and "priority support" in card
    assert "Team workspaces" not in card
    assert not re.search(r"Team workspaces", page[:page.index('data-plan="pro"')])
