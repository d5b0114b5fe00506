"""Look at the budget pages in headless Chromium (screenshots under var/screenshots/)."""

import os

import pytest

from billing.models import credits
from budgets.services import budget_set, member_budget_set
from tests.factories import PASSWORD
from usage.services import NodeInput, run_authorize, run_complete

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_it_renders_the_budget_pages(live_server, team, settings):
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    budget_set(workspace=team.workspace, monthly_limit=credits(100), warning=True, critical=True, hard_limit=True,
               webhook_url="https://hooks.example.com/lf", actor=team.owner)
    member_budget_set(membership=team.membership(team.member), monthly_budget=credits(50), actor=team.owner)
    auth = run_authorize(membership=team.membership(team.member), workflow="wf", agent="summarizer", model="gpt-4o")
    run_complete(workspace=team.workspace, public_id=auth.run.public_id, status="succeeded",
                 nodes=[NodeInput("n", "gpt-4o", 1_700_000, 0)])  # 8.5 credits
    run_authorize(membership=team.membership(team.owner), workflow="wf", agent="writer", model="gpt-4o")
    out = Path(settings.VAR_DIR) / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--headless=new"])
        for user, pages in [(team.owner, ["settings/billing/alerts/", "settings/billing/agents/", "settings/members/"]),
                            (team.member, ["settings/billing/alerts/"])]:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(live_server.url + "/accounts/login/")
            page.fill("input[name=username]", user.email)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            for path in pages:
                response = page.goto(f"{live_server.url}/w/acme/{path}")
                assert response.status == 200
                name = f"{user.email.split('@')[0]}-{path.strip('/').replace('/', '-')}.png"
                page.screenshot(path=str(out / name), full_page=True)
            if user == team.owner:
                page.goto(f"{live_server.url}/w/acme/settings/billing/agents/")
                page.click("td >> text=summarizer")
                page.screenshot(path=str(out / "owner-agent-budget.png"), full_page=True)
                assert ">8.5<" in page.content()
            page.close()
        browser.close()
