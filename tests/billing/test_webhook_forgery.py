"""A Stripe delivery is verified against the real signing secret whatever DEBUG says: dj-stripe's
X-Djstripe-Webhook-Secret override header (honoured under DEBUG) cannot credit a forged checkout."""

import json

import pytest
from django.core.management import call_command

from billing.models import Purchase
from buying.purchases import purchase_start
from tests.billing import stripe_payloads as sp


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
def test_a_forged_checkout_with_the_override_header_credits_nothing(client, team, settings, debug):
    settings.DEBUG = debug
    call_command("stripe_webhook_endpoint", "--quiet")
    purchase = purchase_start(workspace=team.workspace, pack_id="builder", actor=team.owner, source=Purchase.STRIPE)
    body = json.dumps(sp.checkout_session_completed(event_id="evt_forged", purchase=purchase))
    forged = sp.sign(body, secret="whsec_attacker")
    response = client.post(sp.webhook_url(), data=body, content_type="application/json",
                           HTTP_STRIPE_SIGNATURE=forged, HTTP_X_DJSTRIPE_WEBHOOK_SECRET="whsec_attacker")
    assert response.status_code == 400
    purchase.refresh_from_db()
    assert purchase.status == "pending"
    team.workspace.wallet.refresh_from_db()
    assert team.workspace.wallet.purchased == 0


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
def test_a_genuine_delivery_still_verifies(client, team, settings, debug):
    settings.DEBUG = debug
    call_command("stripe_webhook_endpoint", "--quiet")
    purchase = purchase_start(workspace=team.workspace, pack_id="builder", actor=team.owner, source=Purchase.STRIPE)
    response = sp.deliver(client, sp.checkout_session_completed(event_id="evt_1", purchase=purchase))
    assert response.status_code == 200
    purchase.refresh_from_db()
    assert purchase.status == "paid"
