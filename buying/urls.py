from django.urls import path

from . import views

app_name = "billing"
urlpatterns = [
    path("settings/billing/", views.overview, name="overview"),
    path("settings/billing/activity/", views.activity, name="activity"),
    path("settings/billing/activity/ledger.csv", views.activity_csv, name="activity_csv"),
    path("settings/billing/buy/", views.buy, name="buy"),
    path("settings/billing/buy/auto-recharge/", views.auto_recharge, name="auto_recharge"),
    path("settings/billing/buy/<int:purchase_id>/", views.purchase_done, name="purchase_done"),
    path("settings/billing/buy/<int:purchase_id>/checkout/", views.test_checkout, name="test_checkout"),
    path("settings/billing/buy/<int:purchase_id>/cancelled/", views.checkout_cancelled, name="checkout_cancelled"),
    path("settings/billing/plans/", views.plans, name="plans"),
    path("settings/billing/plans/<slug:plan_id>/checkout/", views.plan_checkout, name="plan_checkout"),
]
