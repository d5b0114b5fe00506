import pytest
from django.urls import reverse

from billing.models import CreditPack, LedgerEntry, Purchase, credits
from buying.purchases import BillingUnavailable, pack_purchase_fulfil, purchase_record_manual, purchase_start
from tests.factories import PASSWORD

PACKS = [("starter", 100), ("builder", 525), ("pro", 2150), ("team", 11000)]


def login(client, user):
    assert client.login(email=user.email, password=PASSWORD)


def purchased(workspace):
    workspace.wallet.refresh_from_db()
    return workspace.wallet.purchased


@pytest.mark.django_db
@pytest.mark.parametrize("pack_id,total", PACKS)
def test_it_credits_each_pack_at_once_through_the_test_checkout(client, team, pack_id, total):
    login(client, team.owner)
    before = purchased(team.workspace)
    response = client.post(reverse("billing:buy", kwargs={"slug": "acme"}), {"pack": pack_id})
    purchase = Purchase.objects.get()
    assert response.url == reverse("billing:test_checkout", kwargs={"slug": "acme", "purchase_id": purchase.pk})
    page = client.get(response.url)
    assert b"Test mode: no card is charged" in page.content
    response = client.post(response.url, {"action": "pay"})
    assert purchased(team.workspace) - before == credits(total)
    page = client.get(response.url)
    assert b"Payment received, credits added" in page.content
    purchase.refresh_from_db()
    assert purchase.status == "paid" and purchase.source == "test"
    kinds = set(LedgerEntry.objects.filter(purchase=purchase).values_list("kind", flat=True))
    assert kinds == ({"purchase", "bonus"} if pack_id != "starter" else {"purchase"})


@pytest.mark.django_db
def test_it_pays_a_test_checkout_once_when_submitted_twice(client, team):
    login(client, team.admin)
    response = client.post(reverse("billing:buy", kwargs={"slug": "acme"}), {"pack": "builder"})
    client.post(response.url, {"action": "pay"})
    client.post(response.url, {"action": "pay"})
    assert purchased(team.workspace) == credits(525)
    assert LedgerEntry.objects.filter(kind__in=["purchase", "bonus"]).count() == 2


@pytest.mark.django_db
def test_it_shows_the_four_packs_with_price_per_credit(client, team):
    login(client, team.owner)
    page = client.get(reverse("billing:buy", kwargs={"slug": "acme"})).content.decode()
    for name in ("Starter", "Builder", "Pro", "Team"):
        assert f"Buy {name}" in page
    assert "$20" in page and "$0.0381 per credit" in page  # 20 / 525
    assert "+25 bonus" in page and "25.00" not in page
    assert "Test mode: no card is charged" in page


@pytest.mark.django_db
def test_it_refuses_members_and_hides_from_outsiders(client, team, outsider):
    login(client, team.member)
    assert client.get(reverse("billing:buy", kwargs={"slug": "acme"})).status_code == 403
    assert client.post(reverse("billing:buy", kwargs={"slug": "acme"}), {"pack": "pro"}).status_code == 403
    client.force_login(outsider)
    assert client.get(reverse("billing:buy", kwargs={"slug": "acme"})).status_code == 404
    assert Purchase.objects.count() == 0


@pytest.mark.django_db
def test_it_hides_another_workspaces_purchase(client, team, outsider):
    purchase = purchase_start(workspace=team.workspace, pack_id="pro", actor=team.owner)
    client.force_login(outsider)
    url = reverse("billing:test_checkout", kwargs={"slug": "elsewhere", "purchase_id": purchase.pk})
    assert client.post(url, {"action": "pay"}).status_code == 404
    assert purchased(team.workspace) == 0


@pytest.mark.django_db
def test_it_fulfils_exactly_once(team):
    purchase = purchase_start(workspace=team.workspace, pack_id="team", actor=team.owner)
    pack_purchase_fulfil(purchase=purchase)
    pack_purchase_fulfil(purchase=purchase)
    assert purchased(team.workspace) == credits(11000)
    entry = LedgerEntry.objects.filter(purchase=purchase, kind="bonus").get()
    assert entry.idempotency_key == f"purchase:{purchase.pk}:bonus" and entry.amount == credits(1000)


@pytest.mark.django_db
def test_it_snapshots_the_pack_price(team):
    purchase = purchase_start(workspace=team.workspace, pack_id="builder", actor=team.owner)
    CreditPack.objects.filter(pk="builder").update(price_cents=9999, credits=credits(1))
    pack_purchase_fulfil(purchase=purchase)
    assert purchased(team.workspace) == credits(525)


@pytest.mark.django_db
def test_it_records_a_manual_purchase_once_per_reference(team):
    first = purchase_record_manual(workspace=team.workspace, pack_id="pro", reference="BANK-42")
    second = purchase_record_manual(workspace=team.workspace, pack_id="pro", reference="BANK-42")
    assert first.pk == second.pk and first.status == "paid" and first.source == "manual"
    assert purchased(team.workspace) == credits(2150)


@pytest.mark.django_db
def test_record_purchase_command(team):
    from django.core.management import call_command

    call_command("record_purchase", "acme", "builder", "--reference", "SO-1")
    call_command("record_purchase", "acme", "builder", "--reference", "SO-1")
    assert purchased(team.workspace) == credits(525)


@pytest.mark.django_db
def test_it_refuses_unknown_packs(client, team):
    login(client, team.owner)
    client.post(reverse("billing:buy", kwargs={"slug": "acme"}), {"pack": "gold"})
    assert Purchase.objects.count() == 0


@pytest.mark.django_db
def test_it_sells_nothing_in_community_edition(settings, team):
    settings.BILLING_EDITION = "community"
    with pytest.raises(BillingUnavailable):
        purchase_start(workspace=team.workspace, pack_id="pro", actor=team.owner)


def _buy_page_statuses(client):
    page = client.get(reverse("billing:buy", kwargs={"slug": "acme"}))
    return [purchase.get_status_display() for purchase in page.context["purchases"]], page.content.decode()


@pytest.mark.django_db
def test_a_cancelled_test_checkout_shows_as_cancelled_and_can_no_longer_be_paid(client, team):
    login(client, team.owner)
    checkout = client.post(reverse("billing:buy", kwargs={"slug": "acme"}), {"pack": "builder"}).url
    response = client.post(checkout, {"action": "cancel"}, follow=True)
    assert "Checkout cancelled; nothing was charged." in response.content.decode()
    statuses, page = _buy_page_statuses(client)
    assert statuses == ["Cancelled"] and ">Pending<" not in page
    client.post(checkout, {"action": "pay"})
    assert purchased(team.workspace) == 0
    assert "Checkout cancelled" in client.get(checkout, follow=True).content.decode()


@pytest.mark.django_db
def test_leaving_stripe_checkout_shows_the_purchase_as_cancelled(client, team, outsider):
    purchase = purchase_start(workspace=team.workspace, pack_id="builder", actor=team.owner, source=Purchase.STRIPE)
    cancel_url = reverse("billing:checkout_cancelled", kwargs={"slug": "acme", "purchase_id": purchase.pk})
    client.force_login(outsider)
    assert client.get(cancel_url).status_code == 404  # not their workspace
    elsewhere = reverse("billing:checkout_cancelled", kwargs={"slug": "elsewhere", "purchase_id": purchase.pk})
    assert client.get(elsewhere).status_code == 404
    purchase.refresh_from_db()
    assert purchase.status == "pending"
    login(client, team.owner)
    response = client.get(cancel_url, follow=True)
    assert "Checkout cancelled; nothing was charged." in response.content.decode()
    assert _buy_page_statuses(client)[0] == ["Cancelled"]
    # A payment that lands afterwards still credits; the cancel link then changes nothing.
    pack_purchase_fulfil(purchase=purchase)
    client.get(cancel_url)
    purchase.refresh_from_db()
    assert purchase.status == "paid" and purchased(team.workspace) == credits(525)


@pytest.mark.django_db
def test_pending_checkouts_expire_after_a_day_but_auto_recharges_wait_for_their_attempt(team, settings):
    from datetime import timedelta

    from django.utils import timezone

    from billing.models import AutoRechargeAttempt
    from buying.purchases import purchases_expire_pending

    old, fresh, recharge = (purchase_start(workspace=team.workspace, pack_id="builder", source=Purchase.STRIPE)
                            for _ in range(3))
    Purchase.objects.filter(pk__in=[old.pk, recharge.pk]).update(created_at=timezone.now() - timedelta(hours=26))
    AutoRechargeAttempt.objects.create(workspace=team.workspace, key="auto-recharge:x:1", status="requires_action",
                                       period_start=team.workspace.period_start, available_at_trigger=0, threshold=1,
                                       pack_id="builder", purchase=recharge)
    assert purchases_expire_pending() == 1
    assert dict(Purchase.objects.values_list("pk", "status")) == {
        old.pk: "cancelled", fresh.pk: "pending", recharge.pk: "pending"}
    assert purchases_expire_pending() == 0
