"""The alert banner on every workspace page (the budgets layer adds it; billing's context processor
knows nothing of budgets)."""

from .selectors import active_alerts


def alert_banner(request):
    membership = getattr(request, "membership", None)
    if membership is None or not getattr(request, "resolver_match", None):
        return {}
    return {"alert_banner": active_alerts(workspace=membership.workspace)}
