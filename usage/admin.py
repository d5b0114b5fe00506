"""Staff views of runs, agents, workflows, tokens and rollups.

Runs, nodes and rollups are written only by the run services (exactly-once charging), so they are
read-only here; runs export through django-import-export with the same cells as the usage CSV
(exact credits, formula-safe text). Tokens show their prefix and hash only and can be revoked."""

from django.contrib import admin, messages
from import_export import fields, resources, widgets
from import_export.admin import ExportMixin, ImportExportModelAdmin
from import_export.formats.base_formats import CSV, XLSX

from billing.admin import CreditsWidget, credits_column

from .export import neutralise
from .models import Agent, DailyUsage, DeveloperToken, Run, RunNode, Workflow
from .tokens import token_revoke

FORMATS = [CSV, XLSX]


class SafeTextWidget(widgets.CharWidget):
    """User-supplied text, neutralised against spreadsheet formula injection on export."""

    def render(self, value, obj=None, **kwargs):
        return neutralise(super().render(value, obj, **kwargs) or "")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Runs ------------------------------------------------------------------------------------------

class RunResource(resources.ModelResource):
    id = fields.Field(attribute="public_id", column_name="id")
    workspace = fields.Field(attribute="workspace__slug", column_name="workspace")
    workflow = fields.Field(attribute="workflow__name", column_name="workflow", widget=SafeTextWidget())
    agent = fields.Field(attribute="agent__name", column_name="agent", widget=SafeTextWidget())
    member = fields.Field(attribute="member__user__email", column_name="member", widget=SafeTextWidget())
    model = fields.Field(attribute="model_id", column_name="model")
    reserved = fields.Field(attribute="reserved", column_name="reserved", widget=CreditsWidget())
    credits = fields.Field(attribute="credits", column_name="credits", widget=CreditsWidget())

    class Meta:
        model = Run
        fields = ("id", "workspace", "workflow", "agent", "member", "model", "status", "reserved", "credits",
                  "over_reservation", "input_tokens", "output_tokens", "created_at", "completed_at", "expires_at")
        export_order = fields

    def get_export_queryset(self, request=None, **kwargs):
        return super().get_export_queryset(request, **kwargs).select_related(
            "workspace", "workflow", "agent", "member__user")


class RunNodeInline(admin.TabularInline):
    model = RunNode
    extra = 0
    can_delete = False
    fields = ("position", "name", "model", "input_tokens", "cached_input_tokens", "cache_write_tokens",
              "output_tokens", "reasoning_tokens", "token_credits_display", "tool_credits_display", "credits_display",
              "tools")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    token_credits_display = credits_column("token_credits", "Token credits")
    tool_credits_display = credits_column("tool_credits", "Tool credits")
    credits_display = credits_column("credits", "Credits")


@admin.register(Run)
class RunAdmin(ExportMixin, ReadOnlyAdmin):
    resource_classes = [RunResource]
    formats = FORMATS
    list_display = ("public_id", "workspace", "workflow", "agent", "model", "status", "credits_display",
                    "over_reservation", "created_at", "completed_at")
    list_filter = ("status", "over_reservation", "model")
    search_fields = ("public_id", "workspace__slug", "workflow__name", "agent__name")
    list_select_related = ("workspace", "workflow", "agent", "model")
    date_hierarchy = "created_at"
    show_full_result_count = False  # no COUNT(*) over millions of runs
    inlines = [RunNodeInline]

    credits_display = credits_column("credits", "Credits", ordering="credits")


# --- Agents and workflows ----------------------------------------------------------------------------

class AgentResource(resources.ModelResource):
    workspace = fields.Field(attribute="workspace", column_name="workspace",
                             widget=widgets.ForeignKeyWidget("billing.Workspace", field="slug"))
    name = fields.Field(attribute="name", column_name="name", widget=SafeTextWidget())
    max_per_run = fields.Field(attribute="max_per_run", column_name="max_per_run", widget=CreditsWidget())
    max_per_day = fields.Field(attribute="max_per_day", column_name="max_per_day", widget=CreditsWidget())
    max_per_month = fields.Field(attribute="max_per_month", column_name="max_per_month", widget=CreditsWidget())

    class Meta:
        model = Agent
        fields = ("workspace", "name", "max_per_run", "max_per_day", "max_per_month")
        import_id_fields = ("workspace", "name")
        skip_unchanged = True
        report_skipped = True


@admin.register(Agent)
class AgentAdmin(ImportExportModelAdmin):
    resource_classes = [AgentResource]
    formats = FORMATS
    list_display = ("name", "workspace", "per_run", "per_day", "per_month", "created_at")
    search_fields = ("name", "workspace__slug")
    list_select_related = ("workspace",)
    readonly_fields = ("workspace", "created_at")

    per_run = credits_column("max_per_run", "Max per run")
    per_day = credits_column("max_per_day", "Max per day")
    per_month = credits_column("max_per_month", "Max per month")

    def has_add_permission(self, request):
        return False  # agents are created on first use by name

    def has_delete_permission(self, request, obj=None):
        return False  # runs refer to them


class WorkflowResource(resources.ModelResource):
    workspace = fields.Field(attribute="workspace__slug", column_name="workspace")
    name = fields.Field(attribute="name", column_name="name", widget=SafeTextWidget())

    class Meta:
        model = Workflow
        fields = ("workspace", "name", "created_at")


@admin.register(Workflow)
class WorkflowAdmin(ExportMixin, ReadOnlyAdmin):
    resource_classes = [WorkflowResource]
    formats = FORMATS
    list_display = ("name", "workspace", "created_at")
    search_fields = ("name", "workspace__slug")
    list_select_related = ("workspace",)


# --- Tokens and rollups --------------------------------------------------------------------------------

@admin.register(DeveloperToken)
class DeveloperTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "member", "workspace", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "membership__user__email", "membership__workspace__slug")
    list_select_related = ("membership__user", "membership__workspace")
    # Limits too: they are set through usage.tokens.token_limits_set (the Tokens page, create_token),
    # which keeps the admin ceiling and writes the audit row; an edit here would do neither.
    readonly_fields = ("membership", "name", "prefix", "token_hash", "created_at", "last_used_at", "revoked_at",
                       "max_credits_per_run", "max_credits_per_day", "max_credits_per_month", "allowed_models",
                       "expires_at", "admin_limits")
    actions = ["revoke"]

    @admin.display(description="Member")
    def member(self, obj):
        return obj.membership.user.email

    @admin.display(description="Workspace")
    def workspace(self, obj):
        return obj.membership.workspace.slug

    def has_add_permission(self, request):
        return False  # tokens are created by their member (page or create_token): shown once

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the audit trail keeps the row

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True).select_related("membership"):
            token_revoke(token=token, actor=request.user)
            revoked += 1
        messages.success(request, f"Revoked {revoked} token(s); they stopped working at once.")


class DailyUsageResource(resources.ModelResource):
    workspace = fields.Field(attribute="workspace__slug", column_name="workspace")
    agent = fields.Field(attribute="agent__name", column_name="agent", widget=SafeTextWidget())
    member = fields.Field(attribute="member__user__email", column_name="member")
    model = fields.Field(attribute="model_id", column_name="model")
    credits = fields.Field(attribute="credits", column_name="credits", widget=CreditsWidget())

    class Meta:
        model = DailyUsage
        fields = ("workspace", "day", "agent", "model", "member", "runs", "input_tokens", "output_tokens", "credits")
        export_order = fields


@admin.register(DailyUsage)
class DailyUsageAdmin(ExportMixin, ReadOnlyAdmin):
    resource_classes = [DailyUsageResource]
    formats = FORMATS
    list_display = ("day", "workspace", "agent", "model", "member", "runs", "credits_display")
    list_filter = ("model",)
    search_fields = ("workspace__slug", "agent__name")
    list_select_related = ("workspace", "agent", "model", "member__user")
    date_hierarchy = "day"
    show_full_result_count = False

    credits_display = credits_column("credits", "Credits", ordering="credits")
