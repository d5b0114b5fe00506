"""Log in with headless Chromium and look at the Usage, run and token pages (screenshots under
var/screenshots/usage-*.png)."""

import os
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path

import pytest

from tests.factories import PASSWORD
from usage.services import NodeInput

from .test_export import make_run

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_it_shows_the_usage_page_and_a_run_page(live_server, team, settings):
    from playwright.sync_api import sync_playwright

    now = datetime.now(dt_timezone.utc).replace(microsecond=0)
    for day in range(8):
        when = max(team.workspace.period_start, now - timedelta(days=day, minutes=5))
        make_run(team, f"run-{day}", when=when, agent="triage" if day % 2 else "writer",
                 nodes=[NodeInput("plan", "gpt-4o-mini", 12000 * (day + 1), 800),
                        NodeInput("answer", "gpt-4o", 20000, 3000 * (day + 1), (("web_search", 2),))])
    out = Path(settings.VAR_DIR) / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--headless=new"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(live_server.url + "/accounts/login/")
        page.fill("input[name=username]", team.member.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        response = page.goto(f"{live_server.url}/w/acme/settings/billing/usage/")
        assert response.status == 200
        assert page.locator("svg.usage-chart rect").count() >= 1
        assert page.locator("[data-testid=savings]").is_visible()
        page.screenshot(path=str(out / "usage-page.png"), full_page=True)
        page.click("text=run-0")
        assert "/w/acme/runs/run-0/" in page.url
        assert "web_search × 2" in page.content()
        page.screenshot(path=str(out / "usage-run.png"), full_page=True)
        page.goto(f"{live_server.url}/w/acme/settings/tokens/")
        page.fill("input[name=name]", "laptop")
        page.click("button:has-text('Create token')")
        assert page.locator("[data-testid=token-value]").inner_text().startswith("lf_")
        page.screenshot(path=str(out / "usage-tokens.png"), full_page=True)
        docs = browser.new_page(viewport={"width": 1280, "height": 900})
        docs.goto(f"{live_server.url}/v1/docs/")
        docs.wait_for_selector("text=Authorize a run (reserve credits)", timeout=15000)
        docs.click("text=Authorize a run (reserve credits)")
        docs.wait_for_selector("text=run-2024-0001", timeout=5000)
        docs.screenshot(path=str(out / "usage-api-docs.png"), full_page=False)
        browser.close()
