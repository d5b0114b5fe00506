"""Template filters for money: {{ nanos|credits }}, {{ cents|usd }}, {{ nanos|credits_exact }}."""

from django import template

from billing.money import cents_display, nanos_display, nanos_to_str, rate_str

register = template.Library()


@register.filter
def credits(nanos):
    return "" if nanos is None else nanos_display(nanos)


@register.filter
def credits_exact(nanos):
    return "" if nanos is None else nanos_to_str(nanos)


@register.filter
def usd(cents):
    return "" if cents is None else cents_display(cents)


@register.filter
def rate(nanos_per_token):
    return rate_str(nanos_per_token)


@register.filter
def percent_of(part, whole):
    """Integer percent, for bars: 0 when there is no whole."""
    if not whole:
        return 0
    return max(0, min(100, int(part * 100 // whole)))
