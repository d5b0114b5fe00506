"""Reads for the billing pages and the API."""

from .models import LedgerEntry, Workspace


def recent_ledger(*, workspace: Workspace, limit: int = 20):
    return LedgerEntry.objects.filter(workspace=workspace).select_related("actor").order_by("-id")[:limit]
