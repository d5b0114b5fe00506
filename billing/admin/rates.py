"""Rates: append-only versions. A change here or an import is a new version effective now."""

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.utils import timezone
from import_export import fields, resources, widgets
from import_export.admin import ImportExportModelAdmin

from billing.models import AIModel, ModelRate, ToolRate
from billing.money import nanos_to_str, rate_str
from billing.rates import CLASS_FIELDS, model_rate_current, model_rate_set, tool_rate_current, tool_rate_set

from .fields import IMPORT_EXPORT_FORMATS, CreditsField, CreditsWidget, RateFormField, RateWidget


class ModelRateInline(admin.TabularInline):
    model = ModelRate
    extra = 0
    can_delete = False
    fields = ("effective_from", "input_rate", "output_rate", "cached_input_rate", "cache_write_rate",
              "reasoning_rate", "created_by")
    readonly_fields = fields
    ordering = ("-effective_from",)
    verbose_name = "rate version"
    verbose_name_plural = "rate history (a change above adds a new version; old versions keep pricing older runs)"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Input credits / 1M tokens")
    def input_rate(self, obj):
        return rate_str(obj.input_nanos_per_token)

    @admin.display(description="Output credits / 1M tokens")
    def output_rate(self, obj):
        return rate_str(obj.output_nanos_per_token)

    @admin.display(description="Cached input / 1M")
    def cached_input_rate(self, obj):
        return class_rate_str(obj.cached_input_nanos_per_token, "input")

    @admin.display(description="Cache write / 1M")
    def cache_write_rate(self, obj):
        return class_rate_str(obj.cache_write_nanos_per_token, "input")

    @admin.display(description="Reasoning / 1M")
    def reasoning_rate(self, obj):
        return class_rate_str(obj.reasoning_nanos_per_token, "output")


def class_rate_str(nanos: int | None, parent: str) -> str:
    """A token class's rate, or what prices the class without one (billing.pricing.Rate)."""
    return f"= {parent} rate" if nanos is None else rate_str(nanos)


def class_rate_field(label: str, parent: str) -> RateFormField:
    """An optional token-class rate (issue 28): empty prices the class at its parent's rate."""
    return RateFormField(label=f"{label} rate (credits per 1M tokens)", required=False,
                         help_text=f"At most 3 decimal places. Empty: priced at the {parent} rate.")


class AIModelForm(forms.ModelForm):
    input_rate = RateFormField(label="Input rate (credits per 1M tokens)", help_text="At most 3 decimal places.")
    output_rate = RateFormField(label="Output rate (credits per 1M tokens)", help_text="At most 3 decimal places.")
    cached_input_nanos_per_token = class_rate_field("Cached input", "input")
    cache_write_nanos_per_token = class_rate_field("Cache write", "input")
    reasoning_nanos_per_token = class_rate_field("Reasoning", "output")

    class Meta:
        model = AIModel
        fields = ("id", "name", "sort_order")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = model_rate_current(model=self.instance) if self.instance.pk else None
        if current:
            self.initial.setdefault("input_rate", rate_str(current.input_nanos_per_token))
            self.initial.setdefault("output_rate", rate_str(current.output_nanos_per_token))
            for name in CLASS_FIELDS:
                if getattr(current, name) is not None:
                    self.initial.setdefault(name, rate_str(getattr(current, name)))


@admin.register(AIModel)
class AIModelAdmin(admin.ModelAdmin):
    form = AIModelForm
    inlines = [ModelRateInline]
    list_display = ("id", "name", "input_rate", "output_rate", "rate_since", "sort_order")
    search_fields = ("id", "name")

    def get_readonly_fields(self, request, obj=None):
        return ("id",) if obj else ()

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("rates")

    def _current(self, obj):
        now = timezone.now()
        versions = [rate for rate in obj.rates.all() if rate.effective_from <= now]
        return max(versions, key=lambda rate: rate.effective_from, default=None)

    @admin.display(description="Input / 1M")
    def input_rate(self, obj):
        current = self._current(obj)
        return rate_str(current.input_nanos_per_token) if current else "no rate"

    @admin.display(description="Output / 1M")
    def output_rate(self, obj):
        current = self._current(obj)
        return rate_str(current.output_nanos_per_token) if current else "no rate"

    @admin.display(description="In force since")
    def rate_since(self, obj):
        current = self._current(obj)
        return current.effective_from if current else "-"

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            wanted = (form.cleaned_data["input_rate"], form.cleaned_data["output_rate"])
            if model_rate_set(model=obj, input_nanos_per_token=wanted[0], output_nanos_per_token=wanted[1],
                              actor=request.user, **{name: form.cleaned_data.get(name) for name in CLASS_FIELDS}):
                messages.info(request, f"New rate version for {obj.id}: {rate_str(wanted[0])} in / "
                                       f"{rate_str(wanted[1])} out per 1M tokens, effective now.")


class VersionOnlyResourceMixin:
    """Imports only ever add versions: an id column is ignored, a row equal to the rate in force is
    skipped, and every new version is effective from the moment of the import."""

    def get_or_init_instance(self, instance_loader, row):
        return self.init_instance(row), True

    def before_save_instance(self, instance, row, **kwargs):
        instance.pk = None
        instance.effective_from = timezone.now()
        user = kwargs.get("user")
        if user is not None and getattr(user, "pk", None):
            instance.created_by = user


class ModelRateResource(VersionOnlyResourceMixin, resources.ModelResource):
    model = fields.Field(attribute="model", column_name="model",
                         widget=widgets.ForeignKeyWidget(AIModel, field="id"))
    input_rate_per_million = fields.Field(attribute="input_nanos_per_token", column_name="input_rate_per_million",
                                          widget=RateWidget())
    output_rate_per_million = fields.Field(attribute="output_nanos_per_token", column_name="output_rate_per_million",
                                           widget=RateWidget())
    # Token classes (issue 28): an empty cell prices the class at its parent's rate.
    cached_input_rate_per_million = fields.Field(attribute="cached_input_nanos_per_token",
                                                 column_name="cached_input_rate_per_million",
                                                 widget=RateWidget(optional=True))
    cache_write_rate_per_million = fields.Field(attribute="cache_write_nanos_per_token",
                                                column_name="cache_write_rate_per_million",
                                                widget=RateWidget(optional=True))
    reasoning_rate_per_million = fields.Field(attribute="reasoning_nanos_per_token",
                                              column_name="reasoning_rate_per_million",
                                              widget=RateWidget(optional=True))
    effective_from = fields.Field(attribute="effective_from", column_name="effective_from", readonly=True,
                                  widget=widgets.DateTimeWidget())

    class Meta:
        model = ModelRate
        fields = ("model", "input_rate_per_million", "output_rate_per_million", "cached_input_rate_per_million",
                  "cache_write_rate_per_million", "reasoning_rate_per_million", "effective_from")
        export_order = fields
        report_skipped = True

    CLASS_COLUMNS = {"cached_input_rate_per_million": "cached_input_nanos_per_token",
                     "cache_write_rate_per_million": "cache_write_nanos_per_token",
                     "reasoning_rate_per_million": "reasoning_nanos_per_token"}

    def skip_row(self, instance, original, row, import_validation_errors=None):
        if import_validation_errors:
            return False
        current = model_rate_current(model=instance.model)
        # A file without a class column (one written before token classes) keeps the class rates
        # in force; an empty cell in a present column prices the class at its parent's rate.
        for column, attribute in self.CLASS_COLUMNS.items():
            if column not in row and current is not None:
                setattr(instance, attribute, getattr(current, attribute))
        compared = ("input_nanos_per_token", "output_nanos_per_token", *CLASS_FIELDS)
        return current is not None and all(getattr(current, name) == getattr(instance, name) for name in compared)


@admin.register(ModelRate)
class ModelRateAdmin(ImportExportModelAdmin):
    """Every version ever in force. Add (or import) a version; versions are never edited or deleted."""

    resource_classes = [ModelRateResource]
    formats = IMPORT_EXPORT_FORMATS
    list_display = ("model", "input_rate", "output_rate", "cached_input_rate", "cache_write_rate", "reasoning_rate",
                    "effective_from", "created_by")
    list_filter = ("model",)
    date_hierarchy = "effective_from"

    def get_form(self, request, obj=None, **kwargs):
        class ModelRateForm(forms.ModelForm):
            input_nanos_per_token = RateFormField(label="Input rate (credits per 1M tokens)")
            output_nanos_per_token = RateFormField(label="Output rate (credits per 1M tokens)")
            cached_input_nanos_per_token = class_rate_field("Cached input", "input")
            cache_write_nanos_per_token = class_rate_field("Cache write", "input")
            reasoning_nanos_per_token = class_rate_field("Reasoning", "output")

            class Meta:
                model = ModelRate
                fields = ("model", "input_nanos_per_token", "output_nanos_per_token", *CLASS_FIELDS)

        kwargs["form"] = ModelRateForm
        kwargs["fields"] = ("model", "input_nanos_per_token", "output_nanos_per_token", *CLASS_FIELDS)
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj:
            return self.READ_FIELDS
        return ("model", "input_nanos_per_token", "output_nanos_per_token", *CLASS_FIELDS)

    READ_FIELDS = ("model", "input_rate", "output_rate", "cached_input_rate", "cache_write_rate", "reasoning_rate",
                   "effective_from", "created_by")

    def get_readonly_fields(self, request, obj=None):
        return self.READ_FIELDS if obj else ()

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        version = model_rate_set(model=obj.model, input_nanos_per_token=obj.input_nanos_per_token,
                                 output_nanos_per_token=obj.output_nanos_per_token, actor=request.user,
                                 **{name: getattr(obj, name) for name in CLASS_FIELDS})
        if version is None:
            messages.info(request, f"These are already the rates in force for {obj.model_id}; nothing changed.")
            version = model_rate_current(model=obj.model)
        obj.pk, obj.effective_from = version.pk, version.effective_from

    @admin.display(description="Input / 1M")
    def input_rate(self, obj):
        return rate_str(obj.input_nanos_per_token)

    @admin.display(description="Output / 1M")
    def output_rate(self, obj):
        return rate_str(obj.output_nanos_per_token)

    cached_input_rate = ModelRateInline.cached_input_rate
    cache_write_rate = ModelRateInline.cache_write_rate
    reasoning_rate = ModelRateInline.reasoning_rate


class ToolRateResource(VersionOnlyResourceMixin, resources.ModelResource):
    tool = fields.Field(attribute="tool", column_name="tool")
    credits_per_call = fields.Field(attribute="nanos_per_call", column_name="credits_per_call", widget=CreditsWidget())
    effective_from = fields.Field(attribute="effective_from", column_name="effective_from", readonly=True,
                                  widget=widgets.DateTimeWidget())

    class Meta:
        model = ToolRate
        fields = ("tool", "credits_per_call", "effective_from")
        export_order = fields
        report_skipped = True

    def before_import_row(self, row, **kwargs):
        tool = str(row.get("tool") or "").strip()
        if not tool:
            raise ValueError("Each row needs a tool name.")
        if row.get("credits_per_call") in (None, ""):
            raise ValueError(f"Tool {tool}: credits_per_call is required.")

    def skip_row(self, instance, original, row, import_validation_errors=None):
        if import_validation_errors:
            return False
        current = tool_rate_current(tool=instance.tool)
        return current is not None and current.nanos_per_call == instance.nanos_per_call


class ToolRateForm(forms.ModelForm):
    nanos_per_call = CreditsField(label="Credits per call", help_text="Up to 9 decimal places.")

    class Meta:
        model = ToolRate
        fields = ("tool", "nanos_per_call")


@admin.register(ToolRate)
class ToolRateAdmin(ImportExportModelAdmin):
    """Saving a tool rate, new or changed, adds a version effective now; the old version stays."""

    resource_classes = [ToolRateResource]
    formats = IMPORT_EXPORT_FORMATS
    form = ToolRateForm
    list_display = ("tool", "credits_per_call", "effective_from", "created_by", "in_force")
    list_filter = ("tool",)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return ("effective_from", "created_by") if obj else ()

    def save_model(self, request, obj, form, change):
        # A change never edits the stored version: it is saved as a new row effective now.
        version = tool_rate_set(tool=obj.tool, nanos_per_call=obj.nanos_per_call, actor=request.user)
        if version is None:
            messages.info(request, f"{obj.tool} already costs {nanos_to_str(obj.nanos_per_call)} per call; nothing changed.")
            version = tool_rate_current(tool=obj.tool)
        elif change:
            messages.info(request, f"Saved as a new version of {obj.tool}, effective now; the previous version is kept.")
        obj.pk, obj.effective_from = version.pk, version.effective_from  # the redirect shows the version in force

    @admin.display(description="Credits / call")
    def credits_per_call(self, obj):
        return nanos_to_str(obj.nanos_per_call)

    @admin.display(description="In force", boolean=True)
    def in_force(self, obj):
        current = ToolRate.objects.filter(tool=obj.tool, effective_from__lte=timezone.now()) \
            .order_by("-effective_from").values_list("pk", flat=True).first()
        return current == obj.pk
