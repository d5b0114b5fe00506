from django.conf import settings
from django.urls import NoReverseMatch, reverse

from .edition import is_community
from .services import memberships_for

# Settings -> Billing navigation, mirroring the product page. Only pages that exist are shown.
NAV = [
    ("Overview", "billing:overview", False),
    ("Buy Credits", "billing:buy", True),
    ("Plans", "billing:plans", True),
    ("Usage", "usage:usage", False),
    ("Alerts", "budgets:alerts", False),
    ("Agent budgets", "budgets:agents", False),
    ("History", "invoices:history", True),
    ("Billing details", "invoices:billing_details", True),
    ("Activity", "billing:activity", True),
    ("Members", "budgets:members", False),
    ("Developer tokens", "usage:tokens", False),
    ("Audit log", "accounts:audit_log", True),
    ("Security", "accounts:security", True),
]
# Pages outside the menu's paths, and the item they belong under: a run is part of Usage, an
# agent's budget of Agent budgets.
BELONGS_UNDER = {"usage:run": "usage:usage", "budgets:agent_budget": "budgets:agents"}


def billing(request):
    context = {"community_edition": is_community(), "signup_enabled": settings.SIGNUP_ENABLED}
    match = getattr(request, "resolver_match", None)
    membership = getattr(request, "membership", None)
    if not match or membership is None:
        return context
    items = []
    parent = BELONGS_UNDER.get(match.view_name)
    for label, name, manage_only in NAV:
        if manage_only and not membership.can_manage_billing:
            continue
        try:
            url = reverse(name, kwargs={"slug": membership.workspace.slug})
        except NoReverseMatch:
            continue
        items.append({"label": label, "url": url, "active": name == parent or request.path == url or (
            name != "billing:overview" and request.path.startswith(url))})
    context.update(nav_items=items, membership=membership, workspace=membership.workspace)
    if request.user.is_authenticated:
        context["switcher"] = memberships_for(request.user)
    return context
