"""Create or update the local dj-stripe WebhookEndpoint row that verifies Stripe's deliveries at
/stripe/webhook/<STRIPE_WEBHOOK_UUID>/. No call to Stripe: the endpoint itself is registered in
Stripe's dashboard (or `stripe listen`), which gives the signing secret."""

import uuid

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from djstripe.enums import WebhookEndpointStatus
from djstripe.models import WebhookEndpoint
from djstripe.settings import djstripe_settings

from buying.stripe_webhooks import HANDLERS


class Command(BaseCommand):
    help = "Create the local dj-stripe webhook endpoint from STRIPE_WEBHOOK_UUID and STRIPE_WEBHOOK_SECRET."

    def add_arguments(self, parser):
        parser.add_argument("--quiet", action="store_true", help="Print nothing when there is nothing to do.")

    def handle(self, *args, quiet=False, **options):
        secret, endpoint_uuid = settings.STRIPE_WEBHOOK_SECRET, settings.STRIPE_WEBHOOK_UUID
        if not secret or not endpoint_uuid:
            if not quiet:
                self.stdout.write("STRIPE_WEBHOOK_SECRET / STRIPE_WEBHOOK_UUID are not set: no Stripe webhook endpoint "
                                  "(the built-in test checkout needs none).")
            return
        try:
            endpoint_uuid = uuid.UUID(endpoint_uuid)
        except ValueError:
            raise CommandError("STRIPE_WEBHOOK_UUID is not a UUID (e.g. python -c 'import uuid; print(uuid.uuid4())').")
        path = f"/stripe/webhook/{endpoint_uuid}/"
        endpoint, created = WebhookEndpoint.objects.update_or_create(
            djstripe_uuid=endpoint_uuid,
            defaults={
                "id": f"we_local_{endpoint_uuid.hex}", "livemode": settings.STRIPE_LIVE_MODE, "secret": secret,
                "djstripe_tolerance": settings.STRIPE_WEBHOOK_TOLERANCE, "url": settings.SITE_URL + path,
                # Every event a handler acts on, read from the handlers themselves: the list written
                # by hand left out the auto-recharge's payment_intent.* and setup_intent.succeeded.
                "enabled_events": sorted(HANDLERS),
                "status": WebhookEndpointStatus.enabled, "api_version": djstripe_settings.STRIPE_API_VERSION,
            },
        )
        if not quiet or created:
            self.stdout.write(f"Stripe webhook endpoint {'created' if created else 'updated'}: {settings.SITE_URL}{path}")
