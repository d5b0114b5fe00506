"""The product page's promises, end to end in headless Chromium against a live server: an owner buys
the Builder pack through the test checkout and sees 525 more credits at once, finds its invoice
on History and downloads the PDF; a developer's run, authorized and completed over HTTP with a
token, shows the same credits on the run page and in the CSV."""

import json
import os
import urllib.request
from decimal import Decimal

import pytest

from billing.money import nanos_to_decimal
from tests.factories import PASSWORD
from usage.tokens import token_create

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop


def _api(url, token, body=None):
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def _figure(page, testid) -> Decimal:
    return Decimal(page.locator(f"[data-testid={testid}]").inner_text().replace(",", ""))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_it_buys_a_pack_invoices_it_and_prices_a_run_the_same_everywhere(live_server, team):
    from playwright.sync_api import sync_playwright

    base = f"{live_server.url}/w/{team.workspace.slug}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--headless=new"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(live_server.url + "/accounts/login/")
        page.fill("input[name=username]", team.owner.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(base + "/settings/billing/")
        purchased_before = _figure(page, "purchased")

        page.goto(base + "/settings/billing/buy/")
        assert page.locator("text=Test mode: no card is charged").count() >= 1
        page.click("button:has-text('Buy Builder')")
        page.click("button:has-text('Pay')")
        page.goto(base + "/settings/billing/")
        assert _figure(page, "purchased") - purchased_before == Decimal(525)

        page.goto(base + "/settings/billing/history/")
        number = page.locator("a:has-text('LF-')").first.inner_text().strip()
        assert page.locator("text=Builder credit pack").count() >= 1
        pdf = page.request.get(f"{base}/settings/billing/history/{number}.pdf")
        assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.body().startswith(b"%PDF")

        token = token_create(membership=team.membership(team.owner), name="engine").raw
        status, _ = _api(live_server.url + "/v1/runs", token, {
            "id": "journey-1", "workflow": "support", "agent": "triage", "model": "gpt-4o",
            "estimated_input_tokens": 2000, "max_output_tokens": 1000})
        assert status == 201
        status, body = _api(live_server.url + "/v1/runs/journey-1/complete", token, {
            "status": "succeeded", "nodes": [
                {"name": "classify", "model": "gpt-4o-mini", "input_tokens": 12000, "output_tokens": 800},
                {"name": "answer", "model": "gpt-4o", "input_tokens": 20000, "output_tokens": 3000,
                 "tools": [{"name": "web_search", "calls": 2}]}]})
        charged = Decimal(json.loads(body)["credits"])
        # 12000*0.3 + 800*1.2 + 20000*5 + 3000*15 per 1M tokens, plus 2 web searches at 0.01
        assert charged == Decimal("0.00456") + Decimal("0.145") + Decimal("0.02")

        page.goto(f"{base}/runs/journey-1/")
        assert page.locator("text=web_search").count() >= 1
        _, csv_body = _api(live_server.url + "/v1/usage/export.csv", token)
        rows = [line.split(",") for line in csv_body.decode().splitlines()[1:]]
        assert sum(Decimal(row[6]) for row in rows if row[1] == "support") == charged
        browser.close()
    wallet = team.workspace.wallet
    wallet.refresh_from_db()
    assert wallet.reserved == 0 and nanos_to_decimal(wallet.purchased) >= 525
