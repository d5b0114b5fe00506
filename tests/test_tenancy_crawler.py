"""The tenancy crawler: every URL pattern Django resolves, pages and API alike, requested by people
who must not reach another workspace's data, with real object ids from a second workspace.

- anonymous: a page redirects to the login, the API answers 401;
- an outsider (signed in, member of another workspace) on the second workspace's URLs: 404;
- a member of the first workspace, with the second workspace's object ids: 404 (403 on manage
  pages); on their own workspace's manage pages: 403, unless MEMBER_MAY lets them;
- the first workspace's API token on the second workspace's run ids: 404, and no list answer
  names the second workspace's objects;
- after all of it, nothing of the second workspace changed and no row appeared anywhere.

Covering a new route is one line: its kwargs in OBJECT_IDS (how to get a real id from the second
workspace), and, when members may use it, its name in MEMBER_MAY; a route outside /w/<slug>/ and
/v1/ goes in PUBLIC_ROUTES with the reason anyone may call it. An uncovered route fails
test_every_route_is_covered with the line to add."""

import hashlib
import re

import pytest
from django.apps import apps
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from billing.models import Purchase
from tests.factories import make_workspace

# kwarg name -> a real value from the second workspace (`victim`, a tests.factories.Team with
# objects made by _victim below). Add a line here when a route has a new kwarg; the function may
# create the object (they all run once, before the crawl's "nothing written" snapshot).
OBJECT_IDS = {
    "invitation_id": lambda victim: _invitation(victim).pk,
    "membership_id": lambda victim: victim.membership(victim.member).pk,
    "purchase_id": lambda victim: victim.purchase.pk,
    "run_id": lambda victim: victim.run.public_id,
    "token_id": lambda victim: victim.token_id,
    "agent_id": lambda victim: victim.run.agent_id,
    "number": lambda victim: victim.invoice.number,
    "plan_id": lambda victim: "pro",  # plans are global: the slug decides the workspace
}

# The body each API route is POSTed with by another workspace's token: a valid one, so that only the
# object's workspace can refuse it (a completion's, unless the route takes another shape).
API_BODIES = {
    "api-run-extend": {"id": "crawler-extension", "credits": "1"},
}
DEFAULT_API_BODY = {"status": "succeeded", "nodes": []}

# Workspace pages a plain member may use: "GET", "POST" or both. Everything else under
# /w/<slug>/ is for owners and admins only (403 for a member).
MEMBER_MAY = {
    "billing:overview": {"GET"},
    "usage:usage": {"GET"}, "usage:export": {"GET"}, "usage:run": {"GET"},
    "usage:tokens": {"GET", "POST"},  # members create and revoke their own tokens
    "usage:token_revoke": {"POST"},
    "usage:token_limits": {"GET", "POST"},  # members set limits on their own tokens, below an admin's
    "budgets:alerts": {"GET"}, "budgets:agents": {"GET"}, "budgets:agent_budget": {"GET"},
    "budgets:members": {"GET"},
    "accounts:member_leave": {"GET", "POST"},  # a member leaves the workspace themselves
}

# Routes outside /w/<slug>/ and /v1/ (and the admin, staff only), with why anyone may call them.
PUBLIC_ROUTES = {
    "home": "redirects a signed-in user to their own first workspace",
    "tokens-current": "redirects a signed-in user to the Tokens page of their own workspace (the API docs link)",
    "login": "the sign-in page (throttled: tests/test_login_throttling.py)",
    "logout": "ends the caller's own session",
    "api-schema": "the public OpenAPI schema",
    "api-docs": "Swagger UI for the public schema",
    "password_reset": "asks for a reset e-mail; answers alike whether or not the address exists",
    "password_reset_done": "a static confirmation",
    "password_reset_confirm": "the signed link from the e-mail is the permission",
    "password_reset_complete": "a static confirmation",
    "password_change": "changes the signed-in user's own password",
    "password_change_done": "a static confirmation",
    "accounts:signup": "self-service sign-up (SIGNUP_ENABLED), throttled per IP",
    "accounts:invitation": "an invitation link: the signed token in it is the permission",
    "accounts:sso": "starts single sign-on for an address: only sends the browser to its domain's provider",
    "accounts:sso_callback": "the provider's answer: the state kept in this browser's session is the permission "
                             "(tests/accounts/test_sso.py)",
    "accounts:two_factor_verify": "the second step of a sign-in: the pending sign-in in this session is the permission",
    "accounts:two_factor": "the signed-in user's own second factor (login required)",
    "djstripe:djstripe_webhook_by_uuid": "Stripe's deliveries, verified by signature (tests/billing/test_webhook_forgery.py)",
}

# Admin kwargs: the admin is staff-only as a whole; any value shows that a non-staff user is refused.
ADMIN_KWARGS = {"object_id": "1", "app_label": "billing", "content_type_id": "1", "url": "x", "id": "1"}


def routes():
    """(route, name, kwarg names) for every URL pattern, from Django's resolver."""
    def walk(patterns, prefix="", namespace=None):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = ":".join(part for part in (namespace, pattern.namespace) if part) or None
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
            elif isinstance(pattern, URLPattern):
                name = f"{namespace}:{pattern.name}" if namespace else pattern.name
                yield prefix + str(pattern.pattern), name, _kwarg_names(prefix, pattern)

    return list(walk(get_resolver().url_patterns))


def _kwarg_names(prefix: str, pattern: URLPattern) -> list[str]:
    names = re.findall(r"<(?:\w+:)?(\w+)>", prefix + str(pattern.pattern))
    names += [name for name in pattern.pattern.regex.groupindex if name not in names]
    return names


def _kind(route: str, name: str | None) -> str:
    if route.startswith("admin/"):
        return "admin"
    if name in PUBLIC_ROUTES:
        return "public"
    if route.startswith("w/<slug:slug>/"):
        return "workspace"
    if route.startswith("v1/"):
        return "api"
    return "unknown"


def test_every_route_is_covered():
    problems = []
    for route, name, kwargs in routes():
        kind = _kind(route, name)
        if name is None:
            problems.append(f"{route!r} has no name: name it, so the crawler can reverse it")
        elif kind == "unknown":
            problems.append(f"{route!r} ({name}) is outside /w/<slug>/ and /v1/: add "
                            f"{name!r}: '<why anyone may call it>' to PUBLIC_ROUTES in tests/test_tenancy_crawler.py")
        elif kind in ("workspace", "api"):
            for kwarg in kwargs:
                if kwarg != "slug" and kwarg not in OBJECT_IDS:
                    problems.append(f"{route!r} ({name}) has kwarg {kwarg!r}: add {kwarg!r}: lambda victim: "
                                    f"<a real id from the second workspace> to OBJECT_IDS in tests/test_tenancy_crawler.py")
    assert not problems, "Routes the tenancy crawler cannot cover:\n" + "\n".join(problems)


def _victim():
    """A second workspace with one of each object the routes name."""
    from accounts.sso import sso_settings_set
    from buying.purchases import pack_purchase_fulfil, purchase_start
    from invoices.models import Invoice
    from usage.services import NodeInput, run_authorize, run_complete
    from usage.tokens import token_create

    victim = make_workspace(slug="victim")
    victim.purchase = purchase_start(workspace=victim.workspace, pack_id="builder", actor=victim.owner,
                                     source=Purchase.TEST)
    other = purchase_start(workspace=victim.workspace, pack_id="builder", actor=victim.owner, source=Purchase.TEST)
    pack_purchase_fulfil(purchase=other)
    victim.invoice = Invoice.objects.get(workspace=victim.workspace)
    membership = victim.membership(victim.owner)
    run = run_authorize(membership=membership, workflow="wf", agent="secret-agent", model="gpt-4o",
                        public_id="victim-run-1").run
    victim.run = run_complete(workspace=victim.workspace, public_id=run.public_id, status="succeeded",
                              nodes=[NodeInput("n", "gpt-4o", 1000, 100)])
    victim.token_id = token_create(membership=membership, name="victim token").token.pk
    sso_settings_set(workspace=victim.workspace, actor=None, issuer="https://idp.victim.test", client_id="victim",
                     client_secret="victim-secret", domains=["victim.test"], required=True, enabled=False)
    return victim


def _invitation(victim):
    from billing.members import invitation_create

    return invitation_create(workspace=victim.workspace, email="invitee@victim.test", role="member",
                             actor=victim.owner)


def _snapshot(victim) -> tuple:
    """Every row of the second workspace (all fields), and how many rows each table has."""
    victim_rows, counts = [], []
    for model in apps.get_models():
        if model._meta.app_label not in ("billing", "usage", "budgets", "invoices", "accounts"):
            continue
        counts.append((model._meta.label, model.objects.count()))
        field_names = {field.name for field in model._meta.concrete_fields}
        if model._meta.label == "billing.Workspace":
            rows = model.objects.filter(pk=victim.workspace.pk)
        elif "workspace" in field_names:
            rows = model.objects.filter(workspace=victim.workspace)
        else:
            continue
        victim_rows.append((model._meta.label, hashlib.sha256(repr(list(rows.order_by("pk").values_list())).encode())
                            .hexdigest()))
    return tuple(victim_rows), tuple(counts)


def _url(name, kwargs, ids, slug):
    values = {kwarg: (slug if kwarg == "slug" else ids[kwarg]) for kwarg in kwargs}
    return reverse(name, kwargs=values)


def _client(user=None) -> Client:
    client = Client(raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.django_db
def test_no_one_reaches_another_workspace(team, outsider):
    from usage.tokens import token_create

    victim = _victim()
    ids = {kwarg: make(victim) for kwarg, make in OBJECT_IDS.items()}
    api_token = token_create(membership=team.membership(team.owner), name="crawler").raw
    anonymous, stranger, member = _client(), _client(outsider), _client(team.member)
    before = _snapshot(victim)
    failures = []

    def expect(response, allowed, what):
        if response.status_code not in allowed:
            failures.append(f"{what}: {response.status_code}, expected {' or '.join(map(str, sorted(allowed)))}")
        return response

    crawled = 0
    for route, name, kwargs in routes():
        kind = _kind(route, name)
        if kind in ("workspace", "api") and not set(kwargs) <= {"slug", *ids}:
            continue  # uncovered: test_every_route_is_covered says what to add
        if kind == "workspace":
            crawled += 1
            theirs = _url(name, kwargs, ids, victim.workspace.slug)
            for method in ("get", "post"):
                response = expect(getattr(anonymous, method)(theirs), {302, 405}, f"anonymous {method.upper()} {theirs}")
                if response.status_code == 302 and not response["Location"].startswith("/accounts/login/"):
                    failures.append(f"anonymous {method.upper()} {theirs}: redirected to {response['Location']}")
                expect(getattr(stranger, method)(theirs), {404, 405}, f"outsider {method.upper()} {theirs}")
            objects = [kwarg for kwarg in kwargs if kwarg not in ("slug", "plan_id")]
            mine = _url(name, kwargs, ids, team.workspace.slug)
            for method in ("GET", "POST"):
                call = getattr(member, method.lower())
                if objects:  # their object ids under my workspace's URL
                    expect(call(mine), {403, 404, 405}, f"member {method} {mine}")
                elif method not in MEMBER_MAY.get(name, set()):
                    expect(call(mine), {403, 405}, f"member {method} {mine} (a manage page; or add it to MEMBER_MAY)")
        elif kind == "api":
            crawled += 1
            url = _url(name, kwargs, ids, None)
            for method in ("get", "post"):
                expect(getattr(anonymous, method)(url, content_type="application/json"), {401, 405},
                       f"API without a token {method.upper()} {url}")
                response = getattr(anonymous, method)(url, data=API_BODIES.get(name, DEFAULT_API_BODY),
                                                      content_type="application/json",
                                                      HTTP_AUTHORIZATION=f"Bearer {api_token}")
                if [kwarg for kwarg in kwargs if kwarg != "plan_id"]:
                    expect(response, {404, 405}, f"another workspace's token {method.upper()} {url}")
                elif response.status_code == 200 and not getattr(response, "streaming", False):
                    body = response.content.decode()
                    for secret in (victim.workspace.slug, victim.run.public_id, "secret-agent"):
                        if secret in body:
                            failures.append(f"another workspace's token GET {url}: the answer names {secret!r}")
        elif kind == "admin":
            crawled += 1
            values = {kwarg: ADMIN_KWARGS.get(kwarg, "1") for kwarg in kwargs}
            try:
                if name.endswith(":None"):  # the admin's unnamed redirects: fill the route itself
                    url = "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], route)
                else:
                    url = reverse(name, kwargs=values)
            except Exception as error:  # noqa: BLE001  (a pattern we cannot reverse is a coverage gap)
                failures.append(f"admin route {route!r} ({name}) cannot be reversed: {error}")
                continue
            if name in ("admin:login", "admin:logout"):
                continue
            response = expect(stranger.get(url), {302}, f"non-staff GET {url}")
            if response.status_code == 302 and "/admin/login/" not in response["Location"]:
                failures.append(f"non-staff GET {url}: redirected to {response['Location']}")
    assert crawled > 100
    after = _snapshot(victim)
    for kind_, old, new in (("the second workspace's rows in", before[0], after[0]), ("the row count of", before[1], after[1])):
        changed = sorted(label for (label, value), (_, again) in zip(old, new) if value != again)
        if changed:
            failures.append(f"the crawl changed {kind_} {', '.join(changed)}")
    assert not failures, "Tenancy failures:\n" + "\n".join(failures)
