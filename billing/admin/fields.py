"""Form fields, widgets and list cells that speak credits, shared by every app's admin."""

from django.contrib import admin
from django.utils.html import format_html
from import_export import widgets
from import_export.formats.base_formats import CSV, XLSX

from billing.forms import CreditsField, RateFormField  # noqa: F401  (re-exported for the admins)
from billing.money import credits_to_nanos, nanos_table, nanos_to_str, rate_str, rate_to_nanos_per_token

IMPORT_EXPORT_FORMATS = [CSV, XLSX]


def amount_cell(text: str, exact: str = ""):
    """A changelist cell holding an amount: the admin's stylesheet right-aligns it (admin/css/lenserfight.css);
    `exact`, when given, is the cell's tooltip."""
    if exact:
        return format_html('<span class="money" title="{}">{}</span>', exact, text)
    return format_html('<span class="money">{}</span>', text)


def credits_column(field: str, description: str, *, ordering: str | None = None):
    """A changelist column showing the nanocredits in `field` (a field or property) as credits,
    right-aligned. Assign it in a ModelAdmin body: `credits_display = credits_column("credits", "Credits")`."""

    @admin.display(description=description, ordering=ordering)
    def column(self, obj):
        nanos = getattr(obj, field)
        return amount_cell(nanos_table(nanos), f"{nanos_to_str(nanos)} credits") if nanos is not None else "–"

    return column


class CreditsWidget(widgets.Widget):
    """Import/export credits as exact decimal strings."""

    def clean(self, value, row=None, **kwargs):
        if value is None or str(value).strip() == "":
            return None
        if isinstance(value, float):  # spreadsheets hand numbers over as floats; go through their text
            value = repr(value)
        return credits_to_nanos(value)

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else nanos_to_str(value)


class RateWidget(widgets.Widget):
    """Import/export rates per 1M tokens as decimal strings (at most 3 decimals). `optional`: an
    empty cell is None (a token class priced at its parent's rate)."""

    def __init__(self, *args, optional: bool = False, **kwargs):
        self.optional = optional
        super().__init__(*args, **kwargs)

    def clean(self, value, row=None, **kwargs):
        if value is None or str(value).strip() == "":
            if self.optional:
                return None
            raise ValueError("A rate is required.")
        if isinstance(value, float):
            value = repr(value)
        return rate_to_nanos_per_token(str(value).strip())

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else rate_str(value)


class CreditFieldsMixin:
    """Model fields listed in `credit_fields` are edited as credits, not nanocredits."""

    credit_fields: tuple[str, ...] = ()

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name in self.credit_fields:
            return CreditsField(
                label=db_field.verbose_name.capitalize() + " (credits)", required=not db_field.null,
                help_text="In credits, up to 9 decimal places." + (" Empty: the plan's value." if db_field.null else ""),
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records that only services write: viewable, never added, edited or deleted here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
