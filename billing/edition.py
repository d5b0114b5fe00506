"""Which edition runs (SPEC section 9). Settings only, no models: the rate limiter imports it in
processes where Django's apps may not be loaded yet."""

from django.conf import settings


def is_community() -> bool:
    """Community Edition: no platform-credit charges, no purchases or plan limits."""
    return settings.BILLING_EDITION == "community"
