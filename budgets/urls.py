from django.urls import path

from . import views

app_name = "budgets"
urlpatterns = [
    path("settings/billing/alerts/", views.alerts, name="alerts"),
    path("settings/billing/agents/", views.agents, name="agents"),
    path("agents/<int:agent_id>/settings/budget/", views.agent_budget, name="agent_budget"),
    path("settings/members/", views.members, name="members"),
]
