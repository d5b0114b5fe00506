"""Reads for the billing pages and the API. The ledger as people read it (Overview, Activity page,
ledger CSV) is buying/activity.py."""
