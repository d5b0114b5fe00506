"""The accountants' CSV of the History page: one row per invoice and credit note, oldest first,
with the buyer as each document was issued (its snapshot) and its net, tax and total as exact
decimal strings. Text cells are neutralised as the usage CSV's are (billing/spreadsheet.py)."""

from collections.abc import Iterator

from billing.models import Workspace
from billing.spreadsheet import neutralise

from .models import Invoice

ACCOUNTING_COLUMNS = ["date", "number", "buyer", "country", "tax_id", "net", "tax", "total", "currency"]


def cents_to_str(cents: int) -> str:
    """-2380 -> "-23.80": exact, no float."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def accounting_rows(*, workspace: Workspace) -> Iterator[list[str]]:
    documents = (Invoice.objects.filter(workspace=workspace).order_by("issued_at", "id")
                 .values_list("issued_at", "number", "buyer_name", "buyer_country", "buyer_tax_id", "subtotal_cents",
                              "tax_cents", "total_cents", "currency"))
    for issued_at, number, buyer, country, tax_id, net, tax, total, currency in documents.iterator(chunk_size=500):
        yield [issued_at.date().isoformat(), number, neutralise(buyer), country, neutralise(tax_id),
               cents_to_str(net), cents_to_str(tax), cents_to_str(total), currency.upper()]
