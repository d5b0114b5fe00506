"""Issue 11 end to end in headless Chromium against a live server: the owner invites a new address;
the invitee opens the link from the sent e-mail, sets a password and lands in the workspace as a
member; they create a token, run, and see their own usage and member budget; the owner removes
them and their token gets 401 at once."""

import json
import os
import re
import urllib.error
import urllib.request

import pytest
from django.core import mail

from billing.models import Membership
from tests.factories import PASSWORD

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

INVITEE = "newbie@example.com"
INVITEE_PASSWORD = "newbie-passphrase-2026"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _api(url, token, body=None) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_invited_person_joins_uses_the_team_and_is_removed(live_server, team, settings):
    from playwright.sync_api import sync_playwright

    settings.SITE_URL = live_server.url  # links in e-mails are absolute, built from SITE_URL
    members_url = f"{live_server.url}/w/acme/settings/members/"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        owner = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        owner.goto(live_server.url + "/accounts/login/")
        owner.fill("input[name=username]", team.owner.email)
        owner.fill("input[name=password]", PASSWORD)
        owner.click("button[type=submit]")
        owner.goto(members_url)
        owner.fill("input[name=email]", INVITEE)
        owner.select_option("select[name=role]", "member")
        owner.click("button:has-text('Send invitation')")
        assert owner.locator(f"tr[data-invitation='{INVITEE}']").count() == 1

        # The invitee opens the link from the e-mail that was sent.
        invitation_mail = [m for m in mail.outbox if m.to == [INVITEE]][-1]
        link = re.search(r"https?://\S+/invitations/\S+/", invitation_mail.body).group(0)
        assert link.startswith(live_server.url)
        invitee = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
        invitee.goto(link)
        invitee.fill("input[name=name]", "Nico Newbie")
        invitee.fill("input[name=password1]", INVITEE_PASSWORD)
        invitee.fill("input[name=password2]", INVITEE_PASSWORD)
        invitee.click("button:has-text('Set password and join')")
        invitee.wait_for_url(f"{live_server.url}/w/acme/settings/billing/")
        assert f"{INVITEE} · Member" in invitee.locator("header.top").inner_text()
        assert Membership.objects.get(workspace=team.workspace, user__email=INVITEE).role == "member"

        # The owner gives the new member a budget; the member makes a token and runs with it.
        owner.goto(members_url)
        owner.fill(f"input[aria-label='Monthly budget of {INVITEE}']", "40")
        owner.locator(f"tr[data-member='{INVITEE}'] form:has(input[name=monthly_budget]) button").click()
        invitee.goto(f"{live_server.url}/w/acme/settings/tokens/")
        invitee.fill("input[name=name]", "laptop")
        invitee.click("button:has-text('Create token')")
        token = invitee.locator("[data-testid=token-value]").inner_text().strip()
        assert _api(live_server.url + "/v1/runs", token, {"id": "newbie-1", "workflow": "support", "agent": "triage",
                                                           "model": "gpt-4o"}) == 201
        assert _api(live_server.url + "/v1/runs/newbie-1/complete", token, {"status": "succeeded", "nodes": [
            {"name": "answer", "model": "gpt-4o", "input_tokens": 200000, "output_tokens": 100000}]}) == 200
        # 0.2M * 5 + 0.1M * 15 = 2.5 credits, shown to the member against their 40-credit budget.
        invitee.goto(members_url)
        row = invitee.locator(f"tr[data-member='{INVITEE}']")
        assert "2.5 / 40" in row.locator("[data-testid=member-used]").inner_text()
        assert "40" in row.locator("[data-testid=member-budget]").inner_text()
        invitee.goto(f"{live_server.url}/w/acme/settings/billing/usage/")
        run_row = invitee.locator("tr:has(a:has-text('newbie-1'))")  # the usage page lists their run
        assert INVITEE in run_row.inner_text() and "2.5" in run_row.inner_text()

        # The owner removes them: the token stops at once, and so do the pages.
        owner.goto(members_url)
        owner.click(f"button[aria-label='Remove {INVITEE}']")
        assert owner.locator(f"tr[data-member='{INVITEE}']").count() == 0
        assert _api(live_server.url + "/v1/billing/balance", token) == 401
        response = invitee.goto(f"{live_server.url}/w/acme/settings/billing/")
        assert response.status == 404
        browser.close()
