"""Request hardening that belongs to no app."""

# dj-stripe 2.11 lets an `X-Djstripe-Webhook-Secret` header replace the real signing secret when
# DEBUG is on (meant for the Stripe CLI). Anyone could then forge a paid checkout. Verification must
# never depend on DEBUG, so the header is dropped before any view sees it.
_STRIPE_SECRET_OVERRIDE = "HTTP_X_DJSTRIPE_WEBHOOK_SECRET"


def drop_stripe_secret_override(get_response):
    def middleware(request):
        request.META.pop(_STRIPE_SECRET_OVERRIDE, None)
        return get_response(request)

    return middleware
