"""Under the Content-Security-Policy the portal, Swagger UI and the admin still work in a real
browser, with no CSP violation reported; the Alerts page's "Send test event" shows its outcome."""

import os

import pytest

from tests.factories import PASSWORD

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_pages_swagger_and_admin_work_under_the_csp(live_server, team, tmp_path):
    from playwright.sync_api import sync_playwright

    from billing.models import User

    User.objects.filter(pk=team.owner.pk).update(is_staff=True, is_superuser=True)
    violations = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
        page.goto(live_server.url + "/accounts/login/")
        page.fill("input[name=username]", team.owner.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        base = f"{live_server.url}/w/acme"

        # A confirm() that used to be an inline handler: dismissing it keeps the secret.
        page.goto(base + "/settings/billing/alerts/")
        secret = page.locator("[data-testid=webhook-secret]").inner_text()
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.click("button:has-text('Rotate secret')")
        assert page.locator("[data-testid=webhook-secret]").inner_text() == secret
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("button:has-text('Rotate secret')")
        page.wait_for_selector("text=A new webhook signing secret is in use")
        assert page.locator("[data-testid=webhook-secret]").inner_text() != secret

        # "Send test event" to a URL saved before the SSRF check: the reason is shown.
        from budgets.models import WorkspaceBudget

        WorkspaceBudget.objects.filter(workspace=team.workspace).update(webhook_url="http://127.0.0.1:9/hook")
        page.goto(base + "/settings/billing/alerts/")
        page.click("button:has-text('Send test event')")
        page.wait_for_selector("text=Not sent:")
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(tmp_path / f"alerts-{width}.png"), full_page=True)

        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(base + "/settings/billing/usage/")
        assert page.locator("h1").count() == 1

        page.goto(live_server.url + "/v1/docs/")
        page.wait_for_selector(".swagger-ui .info .title", timeout=15000)
        assert "LenserFight Billing API" in page.locator(".swagger-ui .info .title").inner_text()
        assert page.locator(".opblock").count() >= 5

        page.goto(live_server.url + "/admin/")
        assert page.locator("#site-name").count() == 1
        page.goto(live_server.url + "/admin/billing/workspace/")
        assert page.locator("#result_list").count() == 1
        browser.close()
    assert violations == []
