from django.urls import path

from . import views

app_name = "billing"
urlpatterns = [
    path("settings/billing/", views.overview, name="overview"),
]
