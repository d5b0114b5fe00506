"""The Django admin that staff use to run the business.

Money is edited and shown in credits (never raw nanocredits alone). Rates are append-only: a
change in the admin or an import creates a new version effective now, so a run authorized
earlier is still priced with the version it was authorized under. The ledger, purchases and the
audit trail are read-only here; a credit correction goes through the "adjust credits" form, which
calls billing.ledger.credits_adjust with the staff user as the actor.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from import_export import fields, resources, widgets
from import_export.admin import ExportMixin, ImportExportModelAdmin
from import_export.formats.base_formats import CSV, XLSX

from .ledger import LedgerError, credits_adjust
from .models import (
    AIModel, AuditEvent, CreditPack, LedgerEntry, Membership, ModelRate, Plan, Purchase, ToolRate, User, Wallet,
    Workspace,
)
from .forms import CreditsField, RateFormField
from .money import (
    cents_display, credits_to_nanos, nanos_display, nanos_to_str, rate_str, rate_to_nanos_per_token,
)
from .rates import model_rate_current, model_rate_set, tool_rate_current, tool_rate_set

IMPORT_EXPORT_FORMATS = [CSV, XLSX]


# --- Form fields and widgets that speak credits ---------------------------------------------------

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
    """Import/export rates per 1M tokens as decimal strings (at most 3 decimals)."""

    def clean(self, value, row=None, **kwargs):
        if value is None or str(value).strip() == "":
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


# --- Users ----------------------------------------------------------------------------------------

class EmailUserCreationForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class EmailUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class MembershipOfUserInline(admin.TabularInline):
    model = Membership
    fk_name = "user"
    extra = 0
    fields = ("workspace", "role", "created_at")
    readonly_fields = ("workspace", "role", "created_at")
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = EmailUserChangeForm
    add_form = EmailUserCreationForm
    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "is_staff", "is_active", "date_joined")
    search_fields = ("email", "first_name", "last_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    inlines = [MembershipOfUserInline]


# --- Plans and packs (import/export) --------------------------------------------------------------

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

    @admin.display(description="Monthly credits")
    def monthly_credits_display(self, obj):
        return nanos_display(obj.monthly_credits)

    @admin.display(description="Price / month")
    def price_display(self, obj):
        return "contact sales" if obj.price_cents is None else cents_display(obj.price_cents)


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

    @admin.display(description="Credits")
    def credits_display(self, obj):
        return nanos_display(obj.credits)

    @admin.display(description="Bonus")
    def bonus_display(self, obj):
        return nanos_display(obj.bonus)

    @admin.display(description="Price")
    def price_display(self, obj):
        return cents_display(obj.price_cents)


# --- Rates: append-only versions ------------------------------------------------------------------

class ModelRateInline(admin.TabularInline):
    model = ModelRate
    extra = 0
    can_delete = False
    fields = ("effective_from", "input_rate", "output_rate", "created_by")
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


class AIModelForm(forms.ModelForm):
    input_rate = RateFormField(label="Input rate (credits per 1M tokens)", help_text="At most 3 decimal places.")
    output_rate = RateFormField(label="Output rate (credits per 1M tokens)", help_text="At most 3 decimal places.")

    class Meta:
        model = AIModel
        fields = ("id", "name", "sort_order")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = model_rate_current(model=self.instance) if self.instance.pk else None
        if current:
            self.initial.setdefault("input_rate", rate_str(current.input_nanos_per_token))
            self.initial.setdefault("output_rate", rate_str(current.output_nanos_per_token))


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
                              actor=request.user):
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
    effective_from = fields.Field(attribute="effective_from", column_name="effective_from", readonly=True,
                                  widget=widgets.DateTimeWidget())

    class Meta:
        model = ModelRate
        fields = ("model", "input_rate_per_million", "output_rate_per_million", "effective_from")
        export_order = fields
        report_skipped = True

    def skip_row(self, instance, original, row, import_validation_errors=None):
        if import_validation_errors:
            return False
        current = model_rate_current(model=instance.model)
        return current is not None and (current.input_nanos_per_token, current.output_nanos_per_token) == (
            instance.input_nanos_per_token, instance.output_nanos_per_token)


@admin.register(ModelRate)
class ModelRateAdmin(ImportExportModelAdmin):
    """Every version ever in force. Add (or import) a version; versions are never edited or deleted."""

    resource_classes = [ModelRateResource]
    formats = IMPORT_EXPORT_FORMATS
    list_display = ("model", "input_rate", "output_rate", "effective_from", "created_by")
    list_filter = ("model",)
    date_hierarchy = "effective_from"

    def get_form(self, request, obj=None, **kwargs):
        class ModelRateForm(forms.ModelForm):
            input_nanos_per_token = RateFormField(label="Input rate (credits per 1M tokens)")
            output_nanos_per_token = RateFormField(label="Output rate (credits per 1M tokens)")

            class Meta:
                model = ModelRate
                fields = ("model", "input_nanos_per_token", "output_nanos_per_token")

        kwargs["form"] = ModelRateForm
        kwargs["fields"] = ("model", "input_nanos_per_token", "output_nanos_per_token")
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj:
            return ("model", "input_rate", "output_rate", "effective_from", "created_by")
        return ("model", "input_nanos_per_token", "output_nanos_per_token")

    def get_readonly_fields(self, request, obj=None):
        return ("model", "input_rate", "output_rate", "effective_from", "created_by") if obj else ()

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        version = model_rate_set(model=obj.model, input_nanos_per_token=obj.input_nanos_per_token,
                                 output_nanos_per_token=obj.output_nanos_per_token, actor=request.user)
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


# --- Workspaces, wallets, memberships -------------------------------------------------------------

class MembershipInline(CreditFieldsMixin, admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "monthly_budget", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("user",)
    credit_fields = ("monthly_budget",)


class AdjustCreditsForm(forms.Form):
    amount = CreditsField(
        allow_negative=True, label="Credits",
        help_text="Added to the purchased bucket (negative to remove). Up to 9 decimal places.",
    )
    reason = forms.CharField(max_length=300, help_text="Shown in the workspace's ledger. Required.")

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if not amount:
            raise ValidationError("Enter a non-zero number of credits.")
        return amount

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise ValidationError("A reason is required.")
        return reason


@admin.register(Workspace)
class WorkspaceAdmin(CreditFieldsMixin, admin.ModelAdmin):
    credit_fields = ("custom_monthly_credits",)
    list_display = ("slug", "name", "kind", "plan", "wallet_balance", "wallet_available", "period_end", "created_at")
    list_filter = ("plan", "kind")
    search_fields = ("slug", "name", "memberships__user__email")
    inlines = [MembershipInline]
    actions = ["adjust_credits"]
    readonly_fields = ("wallet_monthly", "wallet_purchased", "wallet_balance", "wallet_reserved", "wallet_available",
                       "wallet_running_runs", "adjust_link", "created_at")
    fieldsets = (
        (None, {"fields": ("slug", "name", "kind", "plan", "created_at")}),
        ("Wallet (read-only: change it with 'Adjust credits')", {"fields": (
            "wallet_monthly", "wallet_purchased", "wallet_balance", "wallet_reserved", "wallet_available",
            "wallet_running_runs", "adjust_link")}),
        ("Billing period", {"fields": ("period_start", "period_end", "cancel_at_period_end", "scheduled_plan")}),
        ("Enterprise values (empty: the plan's)", {"fields": (
            "custom_monthly_credits", "custom_requests_per_minute", "custom_concurrent_runs")}),
        ("Stripe", {"fields": ("stripe_customer_id", "stripe_subscription_id")}),
        ("Invoicing", {"fields": ("billing_name", "billing_address", "tax_id")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("plan", "wallet")

    def get_urls(self):
        return [
            path("<int:workspace_id>/adjust-credits/", self.admin_site.admin_view(self.adjust_credits_view),
                 name="billing_workspace_adjust_credits"),
        ] + super().get_urls()

    def _wallet(self, obj):
        return getattr(obj, "wallet", None) if obj and obj.pk else None

    def _figure(self, obj, attribute):
        wallet = self._wallet(obj)
        return "-" if wallet is None else nanos_display(getattr(wallet, attribute))

    @admin.display(description="Monthly bucket")
    def wallet_monthly(self, obj):
        return self._figure(obj, "monthly")

    @admin.display(description="Purchased bucket")
    def wallet_purchased(self, obj):
        return self._figure(obj, "purchased")

    @admin.display(description="Balance")
    def wallet_balance(self, obj):
        return self._figure(obj, "balance")

    @admin.display(description="Reserved by running runs")
    def wallet_reserved(self, obj):
        return self._figure(obj, "reserved")

    @admin.display(description="Available")
    def wallet_available(self, obj):
        return self._figure(obj, "available")

    @admin.display(description="Running runs")
    def wallet_running_runs(self, obj):
        wallet = self._wallet(obj)
        return "-" if wallet is None else wallet.running_runs

    @admin.display(description="")
    def adjust_link(self, obj):
        if not obj or not obj.pk:
            return "-"
        ledger = reverse("admin:billing_ledgerentry_changelist") + f"?workspace__id__exact={obj.pk}"
        return format_html('<a class="button" href="{}">Adjust credits</a> &nbsp; <a href="{}">Ledger</a>',
                           reverse("admin:billing_workspace_adjust_credits", args=[obj.pk]), ledger)

    @admin.action(description="Adjust credits (with a reason)", permissions=["change"])
    def adjust_credits(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one workspace to adjust.", level=messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:billing_workspace_adjust_credits", args=[queryset.get().pk]))

    def adjust_credits_view(self, request, workspace_id):
        workspace = get_object_or_404(Workspace.objects.select_related("wallet", "plan"), pk=workspace_id)
        if not self.has_change_permission(request, workspace):
            raise PermissionDenied
        form = AdjustCreditsForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                entry = credits_adjust(workspace=workspace, amount=form.cleaned_data["amount"],
                                       reason=form.cleaned_data["reason"], actor=request.user)
            except LedgerError as error:
                form.add_error("amount", str(error))
            else:
                self.message_user(request, f"Adjusted {workspace.slug} by {nanos_display(entry.amount)} credits "
                                           f"(balance now {nanos_display(entry.balance_after)}).", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:billing_workspace_change", args=[workspace.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": workspace,
            "workspace": workspace,
            "wallet": workspace.wallet,
            "form": form,
            "title": f"Adjust credits of {workspace.name}",
        }
        return TemplateResponse(request, "admin/billing/workspace/adjust_credits.html", context)


@admin.register(Membership)
class MembershipAdmin(CreditFieldsMixin, admin.ModelAdmin):
    credit_fields = ("monthly_budget",)
    list_display = ("user", "workspace", "role", "budget_display", "created_at")
    list_filter = ("role", "workspace")
    search_fields = ("user__email", "workspace__slug")
    autocomplete_fields = ("user", "workspace")

    @admin.display(description="Monthly budget")
    def budget_display(self, obj):
        return "-" if obj.monthly_budget is None else nanos_display(obj.monthly_budget)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records that only services write: viewable, never added, edited or deleted here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ("workspace", "monthly_display", "purchased_display", "reserved_display", "available_display",
                    "running_runs", "updated_at")
    search_fields = ("workspace__slug", "workspace__name")

    @admin.display(description="Monthly")
    def monthly_display(self, obj):
        return nanos_display(obj.monthly)

    @admin.display(description="Purchased")
    def purchased_display(self, obj):
        return nanos_display(obj.purchased)

    @admin.display(description="Reserved")
    def reserved_display(self, obj):
        return nanos_display(obj.reserved)

    @admin.display(description="Available")
    def available_display(self, obj):
        return nanos_display(obj.available)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ExportMixin, ReadOnlyAdmin):
    """The append-only ledger. Corrections are new entries (Workspaces -> Adjust credits)."""

    formats = IMPORT_EXPORT_FORMATS
    list_display = ("created_at", "workspace", "kind", "bucket", "amount_display", "bucket_balance_display",
                    "balance_after_display", "actor_display", "reason")
    list_filter = ("kind", "bucket", "workspace")
    search_fields = ("reason", "idempotency_key")
    list_select_related = ("workspace", "actor")
    date_hierarchy = "created_at"
    readonly_fields = ("workspace", "kind", "bucket", "amount_display", "amount_exact", "bucket_balance_display",
                       "balance_after_display", "actor_display", "reason", "idempotency_key", "run", "purchase",
                       "created_at")
    fields = readonly_fields

    @admin.display(description="Credits", ordering="amount")
    def amount_display(self, obj):
        return ("+" if obj.amount > 0 else "") + nanos_display(obj.amount)

    @admin.display(description="Exact credits")
    def amount_exact(self, obj):
        return nanos_to_str(obj.amount)

    @admin.display(description="Bucket after")
    def bucket_balance_display(self, obj):
        return nanos_display(obj.bucket_balance_after)

    @admin.display(description="Balance after")
    def balance_after_display(self, obj):
        return nanos_display(obj.balance_after)

    @admin.display(description="By")
    def actor_display(self, obj):
        return obj.actor_label


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "workspace", "pack", "status", "source", "credits_display", "bonus_display",
                    "amount_display", "refunded_display", "reference")
    list_filter = ("status", "source", "pack")
    search_fields = ("workspace__slug", "reference", "stripe_checkout_session_id", "stripe_payment_intent_id")
    list_select_related = ("workspace", "pack")

    @admin.display(description="Credits")
    def credits_display(self, obj):
        return nanos_display(obj.credits)

    @admin.display(description="Bonus")
    def bonus_display(self, obj):
        return nanos_display(obj.bonus)

    @admin.display(description="Amount")
    def amount_display(self, obj):
        return cents_display(obj.amount_cents, obj.currency)

    @admin.display(description="Refunded")
    def refunded_display(self, obj):
        return cents_display(obj.refunded_cents, obj.currency)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "workspace", "actor", "action", "detail")
    list_filter = ("action",)
    search_fields = ("action", "workspace__slug", "actor__email")
    list_select_related = ("workspace", "actor")
