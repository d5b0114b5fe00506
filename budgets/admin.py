"""Staff views of budgets. A budget edit goes through budgets.services.budget_set (audit row, alert
re-check); fired alerts and spend counters are written only by services, so they are read-only."""

from django.contrib import admin

from billing.admin import CreditFieldsMixin, ReadOnlyAdmin, amount_cell, credits_column
from billing.money import nanos_table

from .models import BudgetAlert, SpendCounter, WorkspaceBudget
from .services import budget_set


@admin.register(WorkspaceBudget)
class WorkspaceBudgetAdmin(CreditFieldsMixin, admin.ModelAdmin):
    credit_fields = ("monthly_limit",)
    list_display = ("workspace", "limit_display", "warning_enabled", "critical_enabled", "hard_limit_enabled",
                    "webhook_url")
    search_fields = ("workspace__slug", "workspace__name")
    list_select_related = ("workspace",)
    fields = ("workspace", "monthly_limit", "warning_enabled", "critical_enabled", "hard_limit_enabled", "webhook_url",
              "webhook_secret")
    readonly_fields = ("workspace", "webhook_secret")

    def has_add_permission(self, request):
        return False  # every workspace gets its budget row when it is created

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Monthly budget")
    def limit_display(self, obj):
        return amount_cell("-" if obj.monthly_limit is None else nanos_table(obj.monthly_limit))

    def save_model(self, request, obj, form, change):
        budget_set(workspace=obj.workspace, monthly_limit=obj.monthly_limit, warning=obj.warning_enabled,
                   critical=obj.critical_enabled, hard_limit=obj.hard_limit_enabled, webhook_url=obj.webhook_url,
                   actor=request.user)


@admin.register(BudgetAlert)
class BudgetAlertAdmin(ReadOnlyAdmin):
    list_display = ("workspace", "level", "scope", "scope_id", "threshold_percent", "used_display", "limit_display",
                    "period_start", "fired_at", "resolved_at")
    list_filter = ("level", "scope")
    search_fields = ("workspace__slug",)
    list_select_related = ("workspace",)

    used_display = credits_column("used", "Used")
    limit_display = credits_column("limit", "Limit")


@admin.register(SpendCounter)
class SpendCounterAdmin(ReadOnlyAdmin):
    list_display = ("workspace", "scope", "scope_id", "span", "span_start", "charged_display", "reserved_display")
    list_filter = ("scope", "span")
    search_fields = ("workspace__slug",)
    list_select_related = ("workspace",)

    charged_display = credits_column("charged", "Charged")
    reserved_display = credits_column("reserved", "Reserved")
