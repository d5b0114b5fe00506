"""The admin's branding, and the dj-stripe models staff do not use, hidden.

dj-stripe registers about 40 models. Staff look at customers, subscriptions, checkout sessions,
payments, refunds and the webhook events when a payment did not turn into credits; everything else
(coupons, tax codes, payouts, transfers...) is Stripe's own business and only crowds the index. The
models stay synced by dj-stripe; they are only not listed. Stripe's own invoices are hidden too:
the invoices staff issue and refund are this project's (Invoices -> Invoices).
"""

from django.apps import apps
from django.contrib import admin

admin.site.site_header = "LenserFight Billing"
admin.site.site_title = "LenserFight Billing admin"
admin.site.index_title = "Run the business: workspaces, credits, rates, invoices"
admin.site.site_url = "/"
# No app list down the side of every page: it repeats the index and the breadcrumbs, and its ~290 px
# left the ledger's and the runs' changelists too narrow at 1280 px (their last columns were cut off).
admin.site.enable_nav_sidebar = False

STRIPE_MODELS_SHOWN = {"Customer", "Subscription", "Session", "PaymentIntent", "Charge", "Refund", "Event",
                       "WebhookEventTrigger", "WebhookEndpoint"}

if apps.is_installed("djstripe"):
    for model in list(admin.site._registry):
        if model._meta.app_label == "djstripe" and model.__name__ not in STRIPE_MODELS_SHOWN:
            admin.site.unregister(model)
