from django.urls import path

from . import views

app_name = "usage"
urlpatterns = [
    path("settings/billing/usage/", views.usage, name="usage"),
    path("settings/billing/usage/export.csv", views.export_csv, name="export"),
    path("runs/<str:run_id>/", views.run, name="run"),
    path("settings/tokens/", views.tokens, name="tokens"),
    path("settings/tokens/<int:token_id>/revoke/", views.token_revoke_view, name="token_revoke"),
    path("settings/tokens/<int:token_id>/limits/", views.token_limits, name="token_limits"),
]
