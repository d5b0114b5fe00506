"""The built-in test checkout is an explicit switch (BILLING_TEST_CHECKOUT): without Stripe keys and
without it, nothing can be bought for free, and `check --deploy` warns when it is on in production."""

import pytest
from django.core.management import call_command

from billing.models import Purchase
from tests.factories import PASSWORD


@pytest.fixture
def owner_client(client, team, settings):
    settings.STRIPE_SECRET_KEY = ""
    client.login(email=team.owner.email, password=PASSWORD)
    return client


@pytest.mark.django_db
def test_without_keys_and_switch_buy_says_payments_are_not_configured(owner_client, team, settings):
    settings.BILLING_TEST_CHECKOUT = False
    page = owner_client.get("/w/acme/settings/billing/buy/").content.decode()
    assert "Payments are not configured" in page and "Test mode" not in page
    response = owner_client.post("/w/acme/settings/billing/buy/", {"pack": "builder"}, follow=True)
    assert response.redirect_chain[-1][0] == "/w/acme/settings/billing/buy/"
    assert "Payments are not configured" in response.content.decode()
    assert not Purchase.objects.exists()
    team.workspace.wallet.refresh_from_db()
    assert team.workspace.wallet.purchased == 0


@pytest.mark.django_db
def test_without_keys_and_switch_a_pending_test_purchase_cannot_be_paid(owner_client, team, settings):
    from buying.purchases import purchase_start

    purchase = purchase_start(workspace=team.workspace, pack_id="builder", actor=team.owner, source=Purchase.TEST)
    settings.BILLING_TEST_CHECKOUT = False
    url = f"/w/acme/settings/billing/buy/{purchase.pk}/checkout/"
    assert owner_client.post(url, {"action": "pay"}).status_code == 404
    purchase.refresh_from_db()
    assert purchase.status == Purchase.PENDING


@pytest.mark.django_db
def test_without_keys_and_switch_plans_refuse_a_paid_upgrade(owner_client, team, settings):
    from billing.models import Workspace

    Workspace.objects.filter(pk=team.workspace.pk).update(plan_id="free")
    settings.BILLING_TEST_CHECKOUT = False
    assert "Payments are not configured" in owner_client.get("/w/acme/settings/billing/plans/").content.decode()
    response = owner_client.post("/w/acme/settings/billing/plans/", {"plan": "pro", "action": "upgrade"}, follow=True)
    assert "Payments are not configured" in response.content.decode()
    assert owner_client.post("/w/acme/settings/billing/plans/pro/checkout/").status_code == 404
    assert Workspace.objects.get(pk=team.workspace.pk).plan_id == "free"


@pytest.mark.django_db
def test_with_the_switch_the_test_checkout_works(owner_client, team, settings):
    settings.BILLING_TEST_CHECKOUT = True
    response = owner_client.post("/w/acme/settings/billing/buy/", {"pack": "builder"})
    assert "/checkout/" in response["Location"]


@pytest.mark.django_db
@pytest.mark.parametrize("debug, switch, warned", [(False, True, True), (True, True, False), (False, False, False)])
def test_check_deploy_warns_when_the_switch_is_on_without_debug(settings, debug, switch, warned):
    from django.core.management.base import SystemCheckError

    from buying.checks import test_checkout_in_production

    settings.DEBUG, settings.BILLING_TEST_CHECKOUT, settings.STRIPE_SECRET_KEY = debug, switch, ""
    assert [m.id for m in test_checkout_in_production()] == (["buying.W001"] if warned else [])
    settings.DEBUG, settings.BILLING_TEST_CHECKOUT = False, True
    with pytest.raises(SystemCheckError, match="buying.W001"):
        call_command("check", "--deploy", "--fail-level", "WARNING")


@pytest.mark.django_db
def test_without_the_switch_the_auto_recharge_test_card_cannot_be_set_nor_pay(team, settings):
    from billing.models import AutoRecharge, AutoRechargeAttempt, credits
    from buying.auto_recharge import (AutoRechargeError, auto_recharge_attempt_pay, auto_recharge_set,
                                      auto_recharge_test_card_set)

    settings.STRIPE_SECRET_KEY = ""
    settings.BILLING_TEST_CHECKOUT = False
    with pytest.raises(AutoRechargeError, match="test-checkout mode"):
        auto_recharge_test_card_set(workspace=team.workspace, mode=AutoRecharge.TEST_CARD_OK)
    # A test card put on file while the switch was on pays nothing once it is off.
    settings.BILLING_TEST_CHECKOUT = True
    auto_recharge_test_card_set(workspace=team.workspace, mode=AutoRecharge.TEST_CARD_OK)
    auto_recharge_set(workspace=team.workspace, enabled=True, threshold=credits(6000), pack_id="builder",
                      max_per_period=3)
    attempt = AutoRechargeAttempt.objects.get(workspace=team.workspace)  # pending: paid by Celery on commit
    settings.BILLING_TEST_CHECKOUT = False
    attempt = auto_recharge_attempt_pay(key=attempt.key)
    attempt.refresh_from_db()
    assert attempt.status == "failed" and "not configured" in attempt.last_error
    team.workspace.wallet.refresh_from_db()
    assert team.workspace.wallet.purchased == 0
