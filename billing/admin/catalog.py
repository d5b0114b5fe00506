"""Plans and packs, importable and exportable."""

from django.contrib import admin
from import_export import fields, resources
from import_export.admin import ImportExportModelAdmin

from billing.models import CreditPack, Plan
from billing.money import cents_display as price_text  # money to the cent in every table

from .fields import IMPORT_EXPORT_FORMATS, CreditFieldsMixin, CreditsWidget, amount_cell, credits_column


class PlanResource(resources.ModelResource):
    monthly_credits = fields.Field(attribute="monthly_credits", column_name="monthly_credits", widget=CreditsWidget())

    class Meta:
        model = Plan
        fields = ("id", "name", "monthly_credits", "price_cents", "requests_per_minute", "concurrent_runs",
                  "max_members", "features", "stripe_price_id", "is_custom", "sort_order")
        import_id_fields = ("id",)
        skip_unchanged = True
        report_skipped = True


@admin.register(Plan)
class PlanAdmin(CreditFieldsMixin, ImportExportModelAdmin):
    resource_classes = [PlanResource]
    formats = IMPORT_EXPORT_FORMATS
    credit_fields = ("monthly_credits",)
    list_display = ("id", "name", "monthly_credits_display", "price_display", "requests_per_minute",
                    "concurrent_runs", "max_members", "is_custom", "sort_order")
    list_editable = ("sort_order",)

    def get_readonly_fields(self, request, obj=None):
        return ("id",) if obj else ()

    monthly_credits_display = credits_column("monthly_credits", "Monthly credits")

    @admin.display(description="Price / month")
    def price_display(self, obj):
        return amount_cell("contact sales" if obj.price_cents is None else price_text(obj.price_cents))


class CreditPackResource(resources.ModelResource):
    credits = fields.Field(attribute="credits", column_name="credits", widget=CreditsWidget())
    bonus = fields.Field(attribute="bonus", column_name="bonus", widget=CreditsWidget())

    class Meta:
        model = CreditPack
        fields = ("id", "name", "credits", "bonus", "price_cents", "stripe_price_id", "is_active", "sort_order")
        import_id_fields = ("id",)
        skip_unchanged = True
        report_skipped = True


@admin.register(CreditPack)
class CreditPackAdmin(CreditFieldsMixin, ImportExportModelAdmin):
    resource_classes = [CreditPackResource]
    formats = IMPORT_EXPORT_FORMATS
    credit_fields = ("credits", "bonus")
    list_display = ("id", "name", "credits_display", "bonus_display", "price_display", "is_active", "sort_order")

    def get_readonly_fields(self, request, obj=None):
        return ("id",) if obj else ()

    credits_display = credits_column("credits", "Credits")
    bonus_display = credits_column("bonus", "Bonus")

    @admin.display(description="Price")
    def price_display(self, obj):
        return amount_cell(price_text(obj.price_cents))
