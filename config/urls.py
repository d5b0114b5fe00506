from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import urls as accounts_urls
from buying import views as buying_views
from usage import views as usage_views

workspace_patterns = [
    path("", include("buying.urls")),
    path("", include("usage.urls")),
    path("", include("budgets.urls")),
    path("", include("invoices.urls")),
]

urlpatterns = [
    path("", buying_views.home, name="home"),
    path("settings/tokens/", usage_views.tokens_current, name="tokens-current"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include(accounts_urls.auth)),
    path("", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("w/<slug:slug>/", include(workspace_patterns)),
    path("v1/", include("usage.api.urls")),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
]
