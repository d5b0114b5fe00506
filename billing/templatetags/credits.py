"""Template filters for money, all through billing/money.py: {{ nanos|credits }} (2,000 · 12.6),
{{ nanos|credits_cell }} in tables (2,000.00, exact in the tooltip),
{{ nanos|credits_signed }} (+150), {{ nanos|credits_exact }}, {{ cents|price }} ($29) and {{ cents|usd }} ($29.00,
invoices and credit notes)."""

from django import template
from django.utils.html import format_html

from billing.money import cents_display, nanos_display, nanos_table, nanos_to_str, price_display, rate_str

register = template.Library()


@register.filter
def credits(nanos):
    return "" if nanos is None else nanos_display(nanos)


@register.filter
def credits_signed(nanos):
    return "" if nanos is None else nanos_display(nanos, signed=True)


@register.filter
def credits_cell(nanos):
    """A table cell's credits: two decimals (columns line up), the exact amount in the tooltip."""
    if nanos is None:
        return ""
    return format_html('<span class="amount" title="{} credits">{}</span>', nanos_to_str(nanos), nanos_table(nanos))


@register.filter
def credits_cell_signed(nanos):
    if nanos is None:
        return ""
    return format_html('<span class="amount" title="{} credits">{}</span>', nanos_to_str(nanos),
                       nanos_table(nanos, signed=True))


@register.filter
def credits_exact(nanos):
    return "" if nanos is None else nanos_to_str(nanos)


@register.filter
def usd(cents):
    return "" if cents is None else cents_display(cents)


@register.filter
def price(cents):
    return "" if cents is None else price_display(cents)


@register.filter
def rate(nanos_per_token):
    return rate_str(nanos_per_token)


@register.filter
def percent_of(part, whole):
    """Integer percent, for bars: 0 when there is no whole."""
    if not whole:
        return 0
    return max(0, min(100, int(part * 100 // whole)))
