"""Tax on invoices: the one home of the tax rules (docs/tax.md).

- Tax ids are checked offline for the buyer's country with python-stdnum (format and check digit,
  not registration): `tax_id_normalise` returns the stored form or raises TaxIdError naming the
  expected format.
- The tax table (the test checkout, payments recorded outside Stripe): `tax_decide`. A buyer with
  a valid VAT or GST id in a country other than SELLER_COUNTRY pays none (reverse charge);
  otherwise BILLING_TAX_RATES' rate for the buyer's country applies on top of the price (a country
  not listed: none). It is a table for tests and demos, not tax advice: production uses Stripe Tax.
- Stripe payments: Stripe Tax computed the tax; `stripe_session_tax` and `stripe_invoice_tax` read
  what Stripe sent and compute nothing.
- Credit notes carry the tax back in the refund's proportion: `tax_refund_share`.

Money is integer cents. A line's tax is its amount × rate / 100, rounded half up (away from zero),
once per invoice line; an invoice's tax is the sum of its lines' taxes.
"""

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import stdnum
from django.conf import settings
from django_countries import countries
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumError

TABLE, STRIPE = "table", "stripe"
REVERSE_CHARGE_NOTE = "Reverse charge: VAT to be accounted for by the recipient"

# The python-stdnum module that checks a country's VAT or GST registration number, where it is not
# the country's `vat` module. An id these accept is a "VAT or GST id" for the reverse charge.
VAT_ID_MODULES = {"AU": "abn", "CA": "bn", "IN": "gstin", "NO": "mva", "NZ": "ird", "SG": "uen"}
GST_COUNTRIES = {"AU", "CA", "IN", "NZ", "SG"}
# Other tax ids python-stdnum can check: validated, but not a VAT/GST id (no reverse charge).
OTHER_TAX_ID_MODULES = {"US": "ein"}
EU_MEMBERS = {code.upper() for code in eu_vat.MEMBER_STATES if code != "xi"}
TAX_ID_MAX = 64


class TaxIdError(ValueError):
    """A tax id that is not valid for its country; the message names the expected format."""


def _module(country: str, name: str):
    return stdnum.get_cc_module(country.lower(), name) if country else None


def vat_module(country: str):
    """python-stdnum's checker of `country`'s VAT/GST ids, or None."""
    return _module(country, VAT_ID_MODULES.get(country, "vat"))


def _describe(module) -> tuple[str, str]:
    """The id's name and its format, from the module's own documentation (first two paragraphs)."""
    paragraphs = [" ".join(p.split()) for p in (module.__doc__ or "").strip().split("\n\n")]
    name = paragraphs[0].rstrip(".") if paragraphs else "tax id"
    form = paragraphs[1] if len(paragraphs) > 1 else ""
    if len(form) > 240:
        form = form[:240].rsplit(" ", 1)[0] + " …"
    return name, form


def tax_id_normalise(*, country: str, tax_id: str) -> str:
    """The tax id as stored and printed (spaces and punctuation removed; EU VAT ids with their
    country prefix), or TaxIdError. Empty stays empty. A country python-stdnum has no checker for
    keeps the id as typed (it is printed, and never counts as a VAT/GST id)."""
    text = " ".join((tax_id or "").split())
    if not text:
        return ""
    if len(text) > TAX_ID_MAX:
        raise TaxIdError(f"A tax id has at most {TAX_ID_MAX} characters.")
    if not country:
        raise TaxIdError("Choose the country the tax id belongs to.")
    module = vat_module(country) or _module(country, OTHER_TAX_ID_MODULES.get(country, ""))
    if module is None:
        return text
    name, form = _describe(module)
    try:
        if country in EU_MEMBERS:
            prefix = "EL" if country == "GR" else country
            compact = eu_vat.compact(text if text[:2].isalpha() else prefix + text)
            if compact[:2] != prefix:
                raise TaxIdError(f"{text} starts with {compact[:2]}, but a VAT number of {countries.name(country)} "
                                 f"starts with {prefix}.")
            return eu_vat.validate(compact)
        compact = module.validate(text)
        if country == "GB":
            return f"GB{compact}"
        # A VAT/GST id is stored compact (as VIES and Stripe write it); another id as its country writes it.
        return compact if vat_module(country) or not hasattr(module, "format") else module.format(compact)
    except StdnumError as error:
        expected = f" Expected format: {form}" if form else ""
        raise TaxIdError(f"{text} is not a valid {name}: {error}{expected}") from None


def is_vat_id(*, country: str, tax_id: str) -> bool:
    """A VAT or GST id valid for `country` (format and check digit)."""
    if not tax_id or vat_module(country) is None:
        return False
    try:
        tax_id_normalise(country=country, tax_id=tax_id)
    except TaxIdError:
        return False
    return True


def tax_label(country: str) -> str:
    if country in GST_COUNTRIES:
        return "GST"
    return "VAT" if vat_module(country) is not None else "Tax"


def table_rate(country: str) -> Decimal:
    """The configured rate in percent for `country` (BILLING_TAX_RATES); 0 when not listed."""
    return Decimal(settings.BILLING_TAX_RATES.get(country, "0")) if country else Decimal(0)


def round_half_up(value: Decimal) -> int:
    """The one rounding of tax money: to a whole cent, halves away from zero."""
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def line_tax(amount_cents: int, rate: Decimal) -> int:
    """The tax of one invoice line: amount × rate / 100, rounded half up."""
    return round_half_up(Decimal(amount_cents) * rate / 100)


@dataclass(frozen=True)
class TaxLine:
    label: str  # VAT, GST, Tax
    jurisdiction: str  # a country code, or Stripe's jurisdiction
    rate: Decimal  # percent
    taxable_cents: int
    amount_cents: int

    @property
    def rate_text(self) -> str:
        return f"{self.rate.normalize():f}%"

    @property
    def text(self) -> str:
        """"VAT 19% (Germany)": the invoice's tax line."""
        place = countries.name(self.jurisdiction) if len(self.jurisdiction) == 2 else ""
        return f"{self.label} {self.rate_text} ({place or self.jurisdiction})"


@dataclass(frozen=True)
class TaxDecision:
    """The tax of one invoice: its lines (one per tax), whether the buyer reverse-charges it, and
    where it came from (the table, or Stripe Tax)."""

    source: str = TABLE
    lines: tuple[TaxLine, ...] = field(default_factory=tuple)
    reverse_charge: bool = False
    calculation: str = ""  # the Stripe Tax calculation it came from (an auto-recharge), if any

    @property
    def tax_cents(self) -> int:
        return sum(line.amount_cents for line in self.lines)

    def as_json(self) -> dict:
        return {"source": self.source, "reverse_charge": self.reverse_charge, "calculation": self.calculation, "lines": [
            {"label": line.label, "jurisdiction": line.jurisdiction, "rate": str(line.rate),
             "taxable_cents": line.taxable_cents, "amount_cents": line.amount_cents} for line in self.lines]}

    @classmethod
    def from_json(cls, data: dict | None) -> "TaxDecision":
        data = data or {}
        return cls(source=data.get("source", TABLE), reverse_charge=bool(data.get("reverse_charge")),
                   calculation=data.get("calculation", ""), lines=tuple(
            TaxLine(line["label"], line["jurisdiction"], Decimal(line["rate"]), int(line["taxable_cents"]),
                    int(line["amount_cents"])) for line in data.get("lines", [])))


def tax_decide(*, country: str, tax_id: str, amounts: list[int]) -> TaxDecision:
    """The tax table's decision for a buyer in `country` with `tax_id`, on invoice lines of
    `amounts` cents (each taxed and rounded on its own)."""
    if country and country != settings.SELLER["country"] and is_vat_id(country=country, tax_id=tax_id):
        return TaxDecision(TABLE, (), reverse_charge=True)
    rate = table_rate(country)
    if not rate:
        return TaxDecision(TABLE, ())
    tax = sum(line_tax(amount, rate) for amount in amounts)
    return TaxDecision(TABLE, (TaxLine(tax_label(country), country, rate, sum(amounts), tax),))


def workspace_tax(*, workspace, amounts: list[int]) -> TaxDecision:
    """The table's decision for `workspace`'s billing details as they are now."""
    return tax_decide(country=workspace.billing_country.code or "", tax_id=workspace.tax_id, amounts=amounts)


def tax_preview(*, workspace, stripe: bool) -> str:
    """What Buy Credits and Plans say about tax before paying, for this workspace (`stripe`: the
    payment goes through Stripe, whose Stripe Tax decides at checkout)."""
    if stripe:
        return "Prices exclude tax: Stripe adds the tax due for your billing address at checkout."
    country = workspace.billing_country.code or ""
    decision = tax_decide(country=country, tax_id=workspace.tax_id, amounts=[10000])
    if decision.reverse_charge:
        return f"No tax is added: reverse charge with your VAT id {workspace.tax_id}."
    if decision.lines:
        return f"Prices exclude tax: {decision.lines[0].text} is added at checkout."
    if not country:
        return "Prices exclude tax. Set your country in Billing details to see the tax that applies."
    return f"No tax is added for {countries.name(country)}."


def _percent(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.0001"))


def _effective_rate(tax: int, taxable: int) -> Decimal:
    """The rate Stripe charged, from its own amounts (used only when it sent no rate)."""
    return (Decimal(tax) * 100 / taxable).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) if taxable else Decimal(0)


def stripe_session_tax(session: dict) -> TaxDecision:
    """What Stripe Tax computed for a Checkout Session: one line per entry of
    total_details.breakdown.taxes when Stripe sent it (it does when the session is expanded), else
    one line for the buyer's country from total_details.amount_tax at the rate it amounts to."""
    totals = session.get("total_details") or {}
    subtotal = int(session.get("amount_subtotal") or 0)
    breakdown = ((totals.get("breakdown") or {}).get("taxes")) or []
    lines, reverse = [], (session.get("customer_details") or {}).get("tax_exempt") == "reverse"
    for entry in breakdown:
        rate = entry.get("rate") or {}
        reverse = reverse or entry.get("taxability_reason") == "reverse_charge"
        if not int(entry.get("amount") or 0):
            continue
        jurisdiction = rate.get("jurisdiction") or rate.get("country") or ""
        lines.append(TaxLine(rate.get("display_name") or "Tax", str(jurisdiction)[:64],
                             _percent(rate.get("percentage") or 0), int(entry.get("taxable_amount") or subtotal),
                             int(entry["amount"])))
    tax = int(totals.get("amount_tax") or 0)
    if not breakdown and tax:
        country = (((session.get("customer_details") or {}).get("address")) or {}).get("country") or ""
        lines.append(TaxLine(tax_label(country), country, _effective_rate(tax, subtotal), subtotal, tax))
    return TaxDecision(STRIPE, tuple(lines), reverse_charge=reverse and not lines)


def stripe_invoice_tax(invoice: dict, *, taxable_cents: int) -> TaxDecision:
    """What Stripe Tax computed for a subscription invoice: `total_taxes` (API 2025-03-31 and
    later) or `total_tax_amounts` (before). Their rates are ids only, so each line shows the rate
    its amounts come to, in the buyer's country from the invoice's customer_address."""
    country = ((invoice.get("customer_address") or {}).get("country")) or ""
    entries = invoice.get("total_taxes")
    if entries is None:
        entries = [{"amount": e.get("amount"), "taxable_amount": taxable_cents} for e in invoice.get("total_tax_amounts") or []]
    lines, reverse = [], False
    for entry in entries or []:
        reverse = reverse or entry.get("taxability_reason") == "reverse_charge"
        amount = int(entry.get("amount") or 0)
        if amount:
            taxable = int(entry.get("taxable_amount") or taxable_cents)
            lines.append(TaxLine(tax_label(country), country, _effective_rate(amount, taxable), taxable, amount))
    return TaxDecision(STRIPE, tuple(lines), reverse_charge=reverse and not lines)


STRIPE_TAX_TYPES = {"vat": "VAT", "gst": "GST", "hst": "HST", "pst": "PST", "qst": "QST", "sales_tax": "Sales tax"}


def stripe_calculation_tax(calculation: dict) -> TaxDecision:
    """What a Stripe Tax calculation (tax.calculation) computed: one line per tax_breakdown entry."""
    lines, reverse = [], False
    for entry in calculation.get("tax_breakdown") or []:
        details = entry.get("tax_rate_details") or {}
        reverse = reverse or entry.get("taxability_reason") == "reverse_charge"
        if not int(entry.get("amount") or 0):
            continue
        place = "-".join(part for part in (details.get("country"), details.get("state")) if part)
        label = details.get("display_name") or STRIPE_TAX_TYPES.get(details.get("tax_type") or "", "Tax")
        lines.append(TaxLine(label, place, _percent(details.get("percentage_decimal") or 0),
                             int(entry.get("taxable_amount") or 0), int(entry["amount"])))
    return TaxDecision(STRIPE, tuple(lines), reverse_charge=reverse and not lines,
                       calculation=str(calculation.get("id") or ""))


def tax_refund_share(*, lines: list[tuple[int, int]], total_cents: int, refunded_before: int,
                     refunded_now: int) -> list[tuple[int, int]]:
    """The (taxable, tax) cents each of an invoice's tax `lines` (taxable, tax) gives back when
    `refunded_now` more cents of its `total_cents` are refunded after `refunded_before`. Shares are
    cumulative (share of everything refunded so far, less the share already given back), so
    partial refunds add up exactly to the invoice's tax when the whole total is refunded."""
    def share(part: int, refunded: int) -> int:
        return round_half_up(Decimal(part) * refunded / total_cents) if total_cents else 0

    after = refunded_before + refunded_now
    return [(share(taxable, after) - share(taxable, refunded_before), share(tax, after) - share(tax, refunded_before))
            for taxable, tax in lines]
