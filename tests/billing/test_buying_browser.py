"""In headless Chromium: turn auto-recharge on in test mode and watch the balance refill after a run;
look at the Activity, Plans and Buy Credits pages at 1280 and 390 px (screenshots under var/screenshots/)."""

import os
import re
from pathlib import Path

import pytest

from billing.models import AutoRechargeAttempt, Wallet, credits
from budgets.models import Agent
from tests.factories import PASSWORD
from usage.tokens import token_create

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]


def _login(page, base, user):
    page.goto(base + "/accounts/login/")
    page.fill("input[name=username]", user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_owner_turns_on_auto_recharge_and_sees_the_balance_refill_after_a_run(live_server, team, settings):
    from playwright.sync_api import sync_playwright

    Agent.objects.create(workspace=team.workspace, name="bulk", max_per_run=credits(10),
                         max_per_day=credits(10_000), max_per_month=credits(10_000))
    token = token_create(membership=team.membership(team.owner), name="engine").raw
    out = Path(settings.VAR_DIR) / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    base = live_server.url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        _login(page, base, team.owner)
        page.goto(f"{base}/w/acme/settings/billing/buy/#auto-recharge")
        assert page.get_by_test_id("auto-state").inner_text() == "Off"
        page.select_option("#ar-card", "succeeds")
        page.click("text=Save test card")
        assert "Test card (no money moves)" in page.get_by_test_id("card-label").inner_text()
        page.fill("#ar-threshold", "4995")
        page.select_option("#ar-pack", "builder")
        page.click("[data-testid=auto-save]")
        assert page.get_by_test_id("auto-state").inner_text() == "On"
        assert Wallet.objects.get(workspace=team.workspace).auto_recharge_threshold == credits(4995)

        # The engine runs something: the hold takes available below 4,995 and the pack arrives.
        headers = {"Authorization": f"Bearer {token}"}
        run = page.request.post(f"{base}/v1/runs", headers=headers, data={
            "id": "browser-run", "workflow": "wf", "agent": "bulk", "model": "gpt-4o"})
        assert run.status == 201, run.text()
        done = page.request.post(f"{base}/v1/runs/browser-run/complete", headers=headers, data={
            "status": "succeeded", "nodes": [{"name": "n", "model": "gpt-4o", "input_tokens": 200000,
                                              "output_tokens": 200000}]})
        assert done.status == 200, done.text()
        page.goto(f"{base}/w/acme/settings/billing/")
        assert page.get_by_test_id("available").inner_text() == "5,521"  # 5,000 - 4 + 525
        assert "Builder pack" in page.content()
        page.screenshot(path=str(out / "overview-after-auto-recharge-1280.png"), full_page=True)
        page.goto(f"{base}/w/acme/settings/billing/buy/#auto-recharge")
        attempts = page.get_by_test_id("auto-attempts").inner_text()
        assert "Succeeded" in attempts and re.search(r"LF-\d{4}-\d{6}", attempts)
        assert AutoRechargeAttempt.objects.get(workspace=team.workspace).status == "succeeded"
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            for name, path in (("buy", "settings/billing/buy/"), ("activity", "settings/billing/activity/"),
                               ("plans", "settings/billing/plans/"), ("overview", "settings/billing/")):
                page.goto(f"{base}/w/acme/{path}")
                page.screenshot(path=str(out / f"buying-{name}-{width}.png"), full_page=True)
                if width == 390:  # no sideways scrolling
                    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), name
        browser.close()
