"""Every page, as each persona, at 1280 and 390 px in headless Chromium: no page scrolls sideways, no
table cell spills out of its table (a wide table scrolls inside its own box instead), no word is
broken inside itself across lines (a pill, a run id, an e-mail address), no form control is narrower
than what it holds or left unstyled, no admin changelist cuts a cell off at 1280 px, and axe-core
finds no serious or critical accessibility violation. Screenshots: var/screenshots/pages/.

To add a page, add a row to PAGES: its name, its path (formatted with the ids of the demo data
below) and who may see it. A page someone may not see is not visited as them (tenancy has its own tests).
"""

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path

import pytest

from billing.models import User, credits
from buying.purchases import pack_purchase_fulfil, purchase_start
from budgets.services import budget_set
from budgets.workspaces import workspace_create
from invoices.services import workspace_billing_details_update
from tests.factories import PASSWORD
from budgets.models import Agent
from usage.partitions import month_add, month_start, run_detail_retire
from usage.models import Run
from usage.services import NodeInput, run_authorize
from usage.tokens import TokenLimits, token_create

from tests.usage.test_export import make_run

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop

EVERYONE = ("owner", "admin", "member")
MANAGERS = ("owner", "admin")
STAFF = ("staff",)
WIDTHS = (1280, 390)


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    who: tuple[str, ...]
    wait_for: str = ""  # a selector that appears once a script-drawn page is ready
    status: int = 200  # a page that explains why there is nothing (a dropped run) answers 404


PAGES = [
    Page("login", "/accounts/login/", ("anonymous",)),
    Page("sign-up", "/accounts/signup/", ("anonymous",)),
    Page("password-reset", "/accounts/password_reset/", ("anonymous",)),
    Page("overview", "/w/{slug}/settings/billing/", EVERYONE),
    Page("buy", "/w/{slug}/settings/billing/buy/", MANAGERS),
    Page("purchase-done", "/w/{slug}/settings/billing/buy/{purchase}/", MANAGERS),
    Page("plans", "/w/{slug}/settings/billing/plans/", MANAGERS),
    Page("plans-quote", "/w/{pro_slug}/settings/billing/plans/", ("owner",)),  # an itemised upgrade quote
    Page("activity", "/w/{slug}/settings/billing/activity/", MANAGERS),
    Page("usage", "/w/{slug}/settings/billing/usage/", EVERYONE),
    Page("run-two-models", "/w/{slug}/runs/two-models/", EVERYONE),
    Page("run-over-reservation", "/w/{slug}/runs/over/", EVERYONE),
    Page("run-running", "/w/{slug}/runs/still-running/", EVERYONE),
    Page("run-dropped", "/w/{slug}/runs/long-ago/", EVERYONE, status=404),
    Page("alerts", "/w/{slug}/settings/billing/alerts/", EVERYONE),
    Page("agents", "/w/{slug}/settings/billing/agents/", EVERYONE),
    Page("agent-budget", "/w/{slug}/agents/{agent}/settings/budget/", EVERYONE),
    Page("members", "/w/{slug}/settings/members/", EVERYONE),
    Page("history", "/w/{slug}/settings/billing/history/", MANAGERS),
    Page("invoice", "/w/{slug}/settings/billing/history/{invoice}/", MANAGERS),
    Page("billing-details", "/w/{slug}/settings/billing/details/", MANAGERS),
    Page("tokens", "/w/{slug}/settings/tokens/", EVERYONE),
    Page("token-limits", "/w/{slug}/settings/tokens/{token}/limits/", EVERYONE),  # the member's own token
    Page("usage-by-tag", "/w/{slug}/settings/billing/usage/?by_tag=customer", EVERYONE),
    Page("audit-log", "/w/{slug}/settings/audit/", MANAGERS),
    Page("password-change", "/accounts/password_change/", EVERYONE),
    Page("security", "/w/{slug}/settings/security/", MANAGERS),
    Page("two-factor", "/accounts/two-factor/", EVERYONE),
    Page("sso-start", "/accounts/sso/", ("anonymous",)),
    Page("api-docs", "/v1/docs/", EVERYONE, wait_for=".opblock"),
    Page("admin-index", "/admin/", STAFF),
    Page("admin-workspaces", "/admin/billing/workspace/", STAFF),
    Page("admin-workspace", "/admin/billing/workspace/{workspace}/change/", STAFF),
    Page("admin-ledger", "/admin/billing/ledgerentry/", STAFF),
    Page("admin-purchases", "/admin/billing/purchase/", STAFF),
    Page("admin-invoices", "/admin/invoices/invoice/", STAFF),
    Page("admin-runs", "/admin/usage/run/", STAFF),
    Page("admin-rates", "/admin/billing/modelrate/", STAFF),
    Page("admin-audit", "/admin/billing/auditevent/", STAFF),
]

# Cells that spill out of their table, and tables wider than a box that does not scroll.
OVERFLOW_JS = """() => {
  const bad = [];
  for (const table of document.querySelectorAll("table")) {
    if (!table.offsetParent) continue;  // inside a closed <details>
    const box = table.getBoundingClientRect();
    for (const cell of table.querySelectorAll("th, td")) {
      // A header row clipped to 1px (a table shown as cards on a phone) is there for screen readers.
      if (cell.parentElement.getBoundingClientRect().width <= 1 || cell.closest("thead")?.getBoundingClientRect().width <= 1) continue;
      const r = cell.getBoundingClientRect();  // a 1px cell is visually hidden, for screen readers
      if (r.width > 1 && (r.right > box.right + 1 || cell.scrollWidth > cell.clientWidth + 1))
        bad.push("cell overflows: " + cell.textContent.trim().slice(0, 40));
    }
    const parent = table.parentElement, style = getComputedStyle(parent);
    if (box.width > parent.clientWidth + 1 && !["auto", "scroll"].includes(style.overflowX))
      bad.push("table wider than its box: " + (table.querySelector("th") || table).textContent.trim().slice(0, 40));
  }
  return bad.slice(0, 5);
}"""


# A word that wraps inside itself ("Ch/ar/ge", "owner@demo.tes/t", "(you/)", a run id over three
# lines). A word may still break after a hyphen, a slash or a dot-free path separator: those are
# places a reader expects a line to end. Code blocks that scroll (pre) and hidden text are left out.
BROKEN_WORDS_JS = r"""() => {
  const bad = [], range = document.createRange();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node && bad.length < 5; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || !el.getClientRects().length || el.closest("pre, script, style, svg, option, select, textarea, .sr-only, details:not([open])")) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden") continue;
    const pieces = /[^\s\-\/\u2013\u2014]+[\-\/\u2013\u2014]?/g;
    for (let m; (m = pieces.exec(node.textContent)); ) {
      if (m[0].length < 2) continue;
      range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
      const tops = new Set([...range.getClientRects()].filter(r => r.width > 0.5).map(r => Math.round(r.top)));
      if (tops.size > 1) { bad.push("word broken across lines: " + m[0].slice(0, 40)); break; }
    }
  }
  return bad;
}"""

# Controls narrower than their content (a pack select cut to "Builder: 525 credit"), buttons whose
# label spills, and text fields without the stylesheet's look (an input with no type is unstyled).
CONTROLS_JS = """() => {
  const bad = [], canvas = document.createElement("canvas").getContext("2d");
  for (const el of document.querySelectorAll("select, button, .btn, input, textarea")) {
    if (!el.getClientRects().length || el.closest("#changelist-filter, .sr-only") || el.type === "hidden") continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden") continue;
    const name = (el.id || el.name || el.textContent || el.value || el.tagName).trim().slice(0, 30);
    if (el.tagName === "SELECT") {
      const option = el.options[el.selectedIndex];
      if (!option) continue;
      canvas.font = style.font;
      const needed = canvas.measureText(option.text).width + parseFloat(style.paddingLeft) + parseFloat(style.paddingRight) + 16;
      if (needed > el.clientWidth + 1) bad.push(`select narrower than its choice: ${name} ("${option.text.slice(0, 40)}")`);
    } else if (el.scrollWidth > el.clientWidth + 1 && !["checkbox", "radio", "file"].includes(el.type)) {
      bad.push(`control narrower than its content: ${name}`);
    }
    if (el.tagName === "INPUT" && !["checkbox", "radio", "submit", "button", "file", "image", "search"].includes(el.type)
        && !document.querySelector("#site-name") && parseFloat(style.paddingLeft) < 4) {
      bad.push(`unstyled field (type "${el.getAttribute("type") || ""}"): ${name}`);
    }
  }
  return bad.slice(0, 5);
}"""

# The admin's changelists at 1280 px: every cell whole and inside the visible box (nothing cut
# mid-number by the box's edge, no column off-screen behind a scroll).
ADMIN_CLIPPED_JS = """() => {
  const bad = [], list = document.querySelector("#result_list");
  if (!list) return bad;
  const box = list.closest(".results") || list.parentElement, edge = box.getBoundingClientRect();
  for (const cell of list.querySelectorAll("th, td")) {
    const r = cell.getBoundingClientRect();
    if (r.right > edge.right + 1 || r.right > innerWidth + 1 || cell.scrollWidth > cell.clientWidth + 1)
      bad.push("changelist cell cut off: " + (list.querySelectorAll("thead th")[cell.cellIndex]?.textContent.trim() || "")
               + " / " + cell.textContent.trim().slice(0, 30));
    if (bad.length >= 3) break;
  }
  return bad;
}"""


@pytest.fixture
def demo(team):
    """A small Acme: runs over a week (one with two models and a tool, one over its reservation, one
    still running), a paid pack with its invoice, a budget past 80% so the banner shows, and staff."""
    now = datetime.now(dt_timezone.utc).replace(microsecond=0)
    for day in range(7):
        when = max(team.workspace.period_start, now - timedelta(days=day, hours=1))
        make_run(team, f"run-{day}", when=when, workflow="Market research", agent="Research Assistant",
                 model="claude-sonnet-4", nodes=[NodeInput("act", "claude-sonnet-4", 20000 * (day + 1), 3000)])
    make_run(team, "two-models", when=now - timedelta(minutes=30), workflow="Ticket routing", agent="Support Triage",
             model="gpt-4o", nodes=[NodeInput("plan", "gpt-4o-mini", 12000, 800),
                                    NodeInput("answer", "gpt-4o", 20000, 3000, (("web_search", 2),))])
    make_run(team, "over", when=now - timedelta(minutes=20), nodes=[NodeInput("write", "gpt-4o", 10_000, 1_000_000)])
    # A limited token of the member (issue 29) and cost tags, one long value among them.
    token = token_create(membership=team.membership(team.member), name="nightly research agent", admin_set=True,
                         limits=TokenLimits(max_credits_per_run=credits(2), max_credits_per_day=credits(5),
                                            max_credits_per_month=credits(50),
                                            allowed_models=("gpt-4o", "gpt-4o-mini", "claude-sonnet-4"),
                                            expires_at=now + timedelta(days=30))).token
    run_authorize(membership=team.membership(team.member), workflow="wf", agent="bot", model="gpt-4o",
                  public_id="still-running", token=token,
                  tags={"customer": "globex-international-holdings-emea-subsidiary", "ticket": "SUP-48213"})
    Run.objects.filter(public_id__in=["run-0", "run-1", "two-models"]).update(tags={"customer": "acme-corp"})
    Run.objects.filter(public_id="run-2").update(tags={"customer": "initech"})
    # A run from before the kept detail: retention dropped its month (the page says so).
    long_ago = datetime.combine(month_add(month_start(now.date()), -15), datetime.min.time(), tzinfo=dt_timezone.utc)
    make_run(team, "long-ago", when=long_ago + timedelta(days=3), nodes=[NodeInput("n", "gpt-4o-mini", 100, 10)])
    run_detail_retire()
    # A German buyer: the pack's invoice carries 19% VAT (the test settings' tax table).
    workspace_billing_details_update(workspace=team.workspace, actor=team.owner, billing_name="Acme GmbH",
                                     billing_address="Hauptstr. 1\n10115 Berlin", billing_country="DE")
    purchase = purchase_start(workspace=team.workspace, pack_id="builder", actor=team.owner)
    pack_purchase_fulfil(purchase=purchase)
    budget_set(workspace=team.workspace, monthly_limit=credits(30), warning=True, critical=True, hard_limit=False,
               webhook_url="", actor=team.owner)
    User.objects.create_user(email="staff@acme.test", password=PASSWORD, is_staff=True, is_superuser=True)
    # The owner's second workspace, on Pro: its Plans page quotes the upgrade to Team.
    workspace_create(slug="acme-labs", name="Acme Labs", owner=team.owner, plan_id="pro")
    return {"pro_slug": "acme-labs",
        "slug": team.workspace.slug, "workspace": team.workspace.pk, "purchase": purchase.pk,
        "invoice": purchase.invoices.get().number, "agent": Agent.objects.get(workspace=team.workspace, name="bot").pk,
        "token": token.pk,
    }


def _log_in(page, base, persona):
    if persona == "anonymous":
        return
    page.goto(base + "/accounts/login/")
    page.fill("input[name=username]", f"{persona}@acme.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def _check(page, axe, url, *, where, wait_for, status, screenshot) -> list[str]:
    response = page.goto(url)
    if response.status != status:
        return [f"{where}: HTTP {response.status}"]
    if wait_for:
        page.wait_for_selector(wait_for, timeout=15000)
    page.screenshot(path=str(screenshot), full_page=True)
    problems = []
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    if scroll_width > inner_width:
        problems.append(f"{where}: scrolls sideways ({scroll_width}px in {inner_width}px)")
    problems += [f"{where}: {issue}" for issue in page.evaluate(OVERFLOW_JS)]
    problems += [f"{where}: {issue}" for issue in page.evaluate(BROKEN_WORDS_JS)]
    problems += [f"{where}: {issue}" for issue in page.evaluate(CONTROLS_JS)]
    if page.viewport_size["width"] >= 1280:
        problems += [f"{where}: {issue}" for issue in page.evaluate(ADMIN_CLIPPED_JS)]
    for violation in axe.run(page).response["violations"]:
        if violation["impact"] in ("serious", "critical"):
            nodes = "; ".join(node["html"][:80] for node in violation["nodes"][:2])
            problems.append(f"{where}: axe {violation['impact']} {violation['id']}: {nodes}")
    return problems


PERSONAS = ("anonymous", "owner", "admin", "member", "staff")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_every_page_as_every_persona_fits_and_passes_axe_at_both_widths(live_server, demo, settings):
    """One demo, one browser, every (persona, width, page): the problems of all of them in one report."""
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import sync_playwright

    out = Path(settings.VAR_DIR) / "screenshots" / "pages"
    out.mkdir(parents=True, exist_ok=True)
    settings.SIGNUP_ENABLED = True  # the sign-up page exists only where sign-up is switched on
    axe, problems, visited = Axe(), [], set()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        for persona in PERSONAS:
            for width in WIDTHS:
                page = browser.new_page(viewport={"width": width, "height": 900})
                _log_in(page, live_server.url, persona)
                for spec in PAGES:
                    if persona in spec.who:
                        visited.add(spec.name)
                        problems += _check(page, axe, live_server.url + spec.path.format(**demo),
                                           where=f"{spec.name} as {persona} at {width}px", wait_for=spec.wait_for, status=spec.status,
                                           screenshot=out / f"{persona}-{width}-{spec.name}.png")
                page.close()
        browser.close()
    assert visited == {spec.name for spec in PAGES}
    assert not problems, "\n".join(problems)
