"""Stripe webhooks, verified by dj-stripe's endpoint and handled from the verified payload."""


def handle_verified_event(trigger, api_key=None, **kwargs):
    """DJSTRIPE_WEBHOOK_EVENT_CALLBACK: filled in by the purchases work."""
    trigger.processed = True
