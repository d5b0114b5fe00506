from django.urls import path

from . import views

app_name = "invoices"
urlpatterns = [
    path("settings/billing/history/", views.history, name="history"),
    path("settings/billing/history.csv", views.export, name="export"),
    path("settings/billing/details/", views.billing_details, name="billing_details"),
    # Numbers look like LF-2026-000001: a slug, so ".pdf" never becomes part of one.
    path("settings/billing/history/<slug:number>.pdf", views.pdf, name="pdf"),
    path("settings/billing/history/<slug:number>/", views.detail, name="detail"),
]
