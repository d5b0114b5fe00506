"""The one place where credits change representation.

Stored amounts are integer nanocredits (1 credit = 10**9). They leave the system as exact decimal
strings (API, CSV) and are shown rounded in pages. Prices are integer cents; Stripe gets minor units.
"""

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

NANOS_PER_CREDIT = 1_000_000_000
# Rates per 1M tokens have at most 3 decimals, so a per-token rate is a whole number of nanocredits:
# rate_per_million * 10**9 / 10**6 == rate_per_million * 1000.
NANOS_PER_TOKEN_PER_RATE_UNIT = 1000
MAX_CREDITS = 10**12  # anything above is refused as absurd input (SPEC section 10)


class InvalidAmount(ValueError):
    pass


# Digits with an optional sign and decimal point: what people type. Decimal() would also take "1e9"
# (a one-billion-credit budget typed by accident), "NaN" and "Infinity".
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def credits_to_nanos(value, *, max_decimals: int = 9) -> int:
    """Parse credits given as str/int/Decimal into nanocredits, refusing floats and excess precision."""
    if isinstance(value, float) or isinstance(value, bool):
        raise InvalidAmount("Credits must be given as a decimal string or an integer, not a float.")
    text = str(value).strip().replace(",", "")
    if re.fullmatch(r"[+-]?[\d.]*[eE][+-]?\d+", text):
        raise InvalidAmount(f"{value} is in scientific notation: write the number of credits in digits "
                            f"(e.g. 1000000000).")
    if not _PLAIN_NUMBER.fullmatch(text):
        raise InvalidAmount(f"{value!r} is not a number of credits.")
    try:
        amount = Decimal(text)
    except (InvalidOperation, ValueError):
        raise InvalidAmount(f"{value!r} is not a number of credits.") from None
    if not amount.is_finite():
        raise InvalidAmount(f"{value!r} is not a number of credits.")
    if abs(amount) > MAX_CREDITS:
        raise InvalidAmount(f"{value} is more than {MAX_CREDITS:,} credits.")
    if amount != amount.quantize(Decimal(1).scaleb(-max_decimals)):
        raise InvalidAmount(f"{value} has more than {max_decimals} decimal places.")
    return int(amount * NANOS_PER_CREDIT)


def nanos_to_decimal(nanos: int) -> Decimal:
    return Decimal(int(nanos)).scaleb(-9)


def nanos_to_str(nanos: int) -> str:
    """Exact decimal string without trailing zeros: 1500000000 -> '1.5', 0 -> '0'."""
    sign = "-" if nanos < 0 else ""
    whole, frac = divmod(abs(int(nanos)), NANOS_PER_CREDIT)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}." + f"{frac:09d}".rstrip("0")


def nanos_display(nanos: int, *, signed: bool = False) -> str:
    """Credits for people, one rule everywhere (pages, admin, e-mails, chart labels):

    - a whole amount shows no decimals: 2,000;
    - a fractional amount is rounded to 2 decimals and shows only the digits it needs: 12.6, 5,988.02;
    - a non-zero fraction that 2 decimals would hide gets the digits that show it, plus one more
      significant digit (0.0042, 3.0000005): a non-zero charge never reads as 0 or as a whole amount.

    ``signed`` puts "+" before positive amounts (ledger entries, bonuses, differences).
    """
    nanos = int(nanos)
    sign = "-" if nanos < 0 else ("+" if signed and nanos > 0 else "")
    whole, frac = divmod(abs(nanos), NANOS_PER_CREDIT)
    if not frac:
        return f"{sign}{whole:,}"
    value = nanos_to_decimal(abs(nanos))
    digits = 2
    while digits < 9 and value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP) == whole:
        digits += 1
    if digits > 2:
        digits = min(9, digits + 1)  # one more significant digit reads better: 0.0042 rather than 0.004
    rounded = value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    if rounded == rounded.to_integral_value():  # 0.999 rounds up to a whole 1
        return f"{sign}{int(rounded):,}"
    text = f"{rounded:,f}".rstrip("0")
    return sign + text


def nanos_table(nanos: int, *, signed: bool = False) -> str:
    """Credits in a table column: always two decimals (2,517.00 · 12.60 · -49.20), so a column's
    decimal points line up; the exact value goes in the cell's tooltip (see credits_cell). A non-zero
    amount that two decimals would show as 0.00 reads "<0.01" (or "-<0.01"): never as zero."""
    nanos = int(nanos)
    sign = "-" if nanos < 0 else ("+" if signed and nanos > 0 else "")
    if 0 < abs(nanos) < NANOS_PER_CREDIT // 200:  # under 0.005: 0.00 after rounding
        return f"{sign}<0.01"
    rounded = nanos_to_decimal(abs(nanos)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{sign}{rounded:,.2f}"


def rate_to_nanos_per_token(rate_per_million) -> int:
    """A rate in credits per 1M tokens (at most 3 decimals) as nanocredits per token."""
    if isinstance(rate_per_million, float):
        raise InvalidAmount("Rates must be decimal strings, not floats.")
    try:
        rate = Decimal(str(rate_per_million))
    except InvalidOperation:
        raise InvalidAmount(f"{rate_per_million!r} is not a rate.") from None
    if not rate.is_finite() or rate < 0:
        raise InvalidAmount("A rate must be zero or more.")
    scaled = rate * NANOS_PER_TOKEN_PER_RATE_UNIT
    if scaled != scaled.to_integral_value():
        raise InvalidAmount("A rate per 1M tokens has at most 3 decimal places.")
    return int(scaled)


def nanos_per_token_to_rate(nanos_per_token: int) -> Decimal:
    """Back to credits per 1M tokens, for display and the API."""
    return (Decimal(int(nanos_per_token)) / NANOS_PER_TOKEN_PER_RATE_UNIT).normalize()


def rate_str(nanos_per_token: int) -> str:
    return f"{nanos_per_token_to_rate(nanos_per_token):f}"


def cents_display(cents: int, currency: str = "usd") -> str:
    """Money to the cent, as accounting documents show it: invoices, credit notes, receipts ($20.00)."""
    symbol = "$" if currency.lower() == "usd" else currency.upper() + " "
    sign = "-" if cents < 0 else ""
    return f"{sign}{symbol}{abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def price_display(cents: int, currency: str = "usd") -> str:
    """A price on the portal's pages, by the credits rule: whole amounts without decimals ($29, $0),
    others to the cent ($0.0381 is per-credit maths and has its own place in the view)."""
    if cents % 100:
        return cents_display(cents, currency)
    symbol = "$" if currency.lower() == "usd" else currency.upper() + " "
    sign = "-" if cents < 0 else ""
    return f"{sign}{symbol}{abs(cents) // 100:,}"


def cents_to_stripe_minor_units(cents: int, currency: str = "usd") -> int:
    """Prices are stored in cents; Stripe's minor unit for USD is the cent."""
    if currency.lower() != "usd":
        raise ValueError(f"Unsupported currency {currency}")
    return int(cents)
