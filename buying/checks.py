"""System checks shown by `manage.py check --deploy`."""

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def test_checkout_in_production(app_configs=None, **kwargs):
    """The built-in test checkout credits purchases without a card: fine for `make run` and the tests,
    a giveaway anywhere else."""
    if settings.BILLING_TEST_CHECKOUT and not settings.DEBUG and not settings.STRIPE_SECRET_KEY:
        return [checks.Warning(
            "BILLING_TEST_CHECKOUT is on with DEBUG off: any owner or admin can buy credits and plans "
            "without paying.",
            hint="Unset BILLING_TEST_CHECKOUT in production and set STRIPE_SECRET_KEY.",
            id="buying.W001",
        )]
    return []
