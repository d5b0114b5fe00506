from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import views

urlpatterns = [
    path("ping", views.PingView.as_view(), name="api-ping"),
    path("billing/balance", views.BalanceView.as_view(), name="api-balance"),
    path("billing/rates", views.RatesView.as_view(), name="api-rates"),
    path("runs", views.RunsView.as_view(), name="api-runs"),
    path("runs/<str:run_id>/complete", views.RunCompleteView.as_view(), name="api-run-complete"),
    path("runs/<str:run_id>/extend", views.RunExtendView.as_view(), name="api-run-extend"),
    path("runs/<str:run_id>", views.RunDetailView.as_view(), name="api-run"),
    path("usage", views.UsageView.as_view(), name="api-usage"),
    path("usage/export.csv", views.UsageExportView.as_view(), name="api-usage-export"),
    path("schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script under the CSP.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema", authentication_classes=[],
                                                 permission_classes=[]), name="api-docs"),
]
