"""Workspaces with the figures a support person needs on one page, memberships, and the
"adjust credits" form (billing.ledger.credits_adjust with the staff user as the actor)."""

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Sum
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from billing.access_versions import access_versions_bump
from billing.ledger import LedgerError, credits_adjust
from billing.audit import audit_record
from billing.models import LedgerEntry, Membership, Workspace
from billing.services import member_add
from billing.money import nanos_display, nanos_table, nanos_to_str

from .fields import CreditFieldsMixin, CreditsField, amount_cell


class MembershipAdminForm(forms.ModelForm):
    """A person removed from a workspace keeps their membership row (removed_at set), and Django's
    unique check reads the active members only: adding them again here reached the database's
    one-membership-per-person constraint as a server error. Now it is a form error that says how."""

    def clean(self):
        cleaned = super().clean()
        workspace = cleaned.get("workspace")
        workspace_id = workspace.pk if workspace else self.instance.workspace_id  # inline: the parent
        user = cleaned.get("user")  # absent when the field itself is invalid: its error is enough
        if workspace_id and user:
            removed = (Membership.all_objects.filter(workspace_id=workspace_id, user=user, removed_at__isnull=False)
                       .exclude(pk=self.instance.pk).first())
            if removed:
                raise ValidationError(
                    f"{user.email} was removed from this workspace on {removed.removed_at:%Y-%m-%d}. To bring "
                    "them back, invite them again from Settings -> Members: accepting restores their membership.")
        return cleaned


def membership_staff_save(*, membership: Membership, form: forms.ModelForm, actor) -> Membership:
    """A membership added or changed by staff in the admin, audited like every other change: a new
    one goes through member_add (the plan's member cap, a `member.add` row); a change records the
    fields before and after (`member.staff_change`) and moves the access version, since cached API
    tokens carry the role and the budget."""
    fields = [name for name in form.changed_data if name in ("role", "monthly_budget")]
    if membership.pk is None:
        membership.pk = member_add(workspace=membership.workspace, user=membership.user, role=membership.role,
                                   actor=actor).pk
        fields = ["monthly_budget"] if membership.monthly_budget is not None else []
    if fields:
        before = Membership.objects.values(*fields).get(pk=membership.pk)
        membership.save(update_fields=fields)
        access_versions_bump(workspace_ids=[membership.workspace_id])
        audit_record(workspace_id=membership.workspace_id, actor=actor, action="member.staff_change",
                     before=before, after={"email": membership.user.email,
                                           **{name: getattr(membership, name) for name in fields}})
    return membership


class MembershipInline(CreditFieldsMixin, admin.TabularInline):
    model = Membership
    form = MembershipAdminForm
    extra = 0
    can_delete = False  # a membership ends on Settings -> Members (its tokens are revoked, its history kept)
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


CUSTOM_LIMITS = ("custom_monthly_credits", "custom_requests_per_minute", "custom_concurrent_runs")


def _audit_value(value):
    return value if value is None or isinstance(value, (bool, int, str)) else str(value)


def workspace_staff_save(*, workspace: Workspace, form: forms.ModelForm, actor) -> Workspace:
    """A workspace changed by staff in the admin: the changed fields before and after are audited
    (`workspace.staff_change`; `plan.custom_limits` for the Enterprise values, which the workspace's
    Plans page and API show), and the access version moves, since cached API tokens carry the
    workspace's limits."""
    fields = list(form.changed_data)
    if not fields:
        return workspace
    with transaction.atomic():
        before = Workspace.objects.select_for_update().values(*[Workspace._meta.get_field(f).attname for f in fields]
                                                              ).get(pk=workspace.pk)
        workspace.save(update_fields=fields)
        access_versions_bump(workspace_ids=[workspace.pk])
        for action, names in (("plan.custom_limits", [f for f in fields if f in CUSTOM_LIMITS]),
                              ("workspace.staff_change", [f for f in fields if f not in CUSTOM_LIMITS])):
            if names:
                attnames = [Workspace._meta.get_field(f).attname for f in names]
                audit_record(workspace_id=workspace.pk, actor=actor, action=action,
                             before={a: _audit_value(before[a]) for a in attnames},
                             after={a: _audit_value(getattr(workspace, a)) for a in attnames})
    return workspace


def workspace_support_summary(workspace: Workspace) -> dict:
    """What a support person needs on one screen: the wallet, the plan and its limits, the period,
    the budget and the latest ledger entries. Budgets sit in an app above this one, so their figures
    are read through the workspace's relations (``workspace.budget``) in the template, not imported."""
    wallet = getattr(workspace, "wallet", None)
    charged = -(workspace.ledger.filter(kind=LedgerEntry.CHARGE, created_at__gte=workspace.period_start)
                .aggregate(total=Sum("amount"))["total"] or 0)
    return {
        "wallet": wallet,
        "charged_this_period": charged,
        "used_this_period": charged + (wallet.reserved if wallet else 0),
        "members": workspace.memberships.count(),
        "ledger": workspace.ledger.select_related("actor").order_by("-created_at", "-id")[:10],
        "limits_changed": workspace.audit_events.filter(action="plan.custom_limits").select_related("actor").first(),
    }


@admin.register(Workspace)
class WorkspaceAdmin(CreditFieldsMixin, admin.ModelAdmin):
    credit_fields = ("custom_monthly_credits",)
    list_display = ("slug", "name", "kind", "plan", "wallet_balance", "wallet_available", "period_end", "created_at")
    list_filter = ("plan", "kind")
    search_fields = ("slug", "name", "memberships__user__email")
    inlines = [MembershipInline]
    actions = ["adjust_credits"]

    def save_model(self, request, obj, form, change):
        if change:
            workspace_staff_save(workspace=obj, form=form, actor=request.user)
        else:
            super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        if formset.model is not Membership:
            return super().save_formset(request, form, formset, change)
        formset.save(commit=False)  # saves nothing; sets what the admin's change message reads (a 500 without)
        for member_form in formset.forms:
            if member_form.has_changed():
                membership_staff_save(membership=member_form.save(commit=False), form=member_form, actor=request.user)
    # Billing details are changed through their service (its checks and audit row): the owner's
    # Billing details page or `manage.py set_billing_details`; the admin shows them.
    # Billing details are changed through their service (its checks and audit row): the owner's
    # Billing details page or `manage.py set_billing_details`; the admin shows them.
    readonly_fields = ("created_at", "billing_name", "billing_address", "billing_country", "tax_id", "billing_email")
    # The wallet, plan, period, budget and latest ledger are the summary at the top of the page
    # (templates/admin/billing/workspace/change_form.html); the wallet is changed only by "Adjust credits".
    fieldsets = (
        (None, {"fields": ("slug", "name", "kind", "plan", "created_at")}),
        ("Billing period", {"fields": ("period_start", "period_end", "cancel_at_period_end", "scheduled_plan")}),
        ("Enterprise values (empty: the plan's)", {"fields": (
            "custom_monthly_credits", "custom_requests_per_minute", "custom_concurrent_runs")}),
        ("Stripe", {"fields": ("stripe_customer_id", "stripe_subscription_id")}),
        ("Billing details (set_billing_details SLUG ...)", {"fields": (
            "billing_name", "billing_address", "billing_country", "tax_id", "billing_email")}),
    )

    list_per_page = 50

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("plan", "wallet")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        workspace = self.get_object(request, object_id)
        extra_context = {**(extra_context or {}), "summary": workspace_support_summary(workspace) if workspace else None}
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path("<int:workspace_id>/adjust-credits/", self.admin_site.admin_view(self.adjust_credits_view),
                 name="billing_workspace_adjust_credits"),
        ] + super().get_urls()

    def _wallet(self, obj):
        return getattr(obj, "wallet", None) if obj and obj.pk else None

    def _figure(self, obj, attribute):
        wallet = self._wallet(obj)
        if wallet is None:
            return amount_cell("-")
        nanos = getattr(wallet, attribute)
        return amount_cell(nanos_table(nanos), f"{nanos_to_str(nanos)} credits")

    @admin.display(description="Balance")
    def wallet_balance(self, obj):
        return self._figure(obj, "balance")

    @admin.display(description="Available")
    def wallet_available(self, obj):
        return self._figure(obj, "available")

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
    form = MembershipAdminForm
    credit_fields = ("monthly_budget",)
    list_display = ("user", "workspace", "role", "budget_display", "created_at")
    list_filter = ("role", "workspace")
    search_fields = ("user__email", "workspace__slug")
    autocomplete_fields = ("user", "workspace")

    @admin.display(description="Monthly budget")
    def budget_display(self, obj):
        return amount_cell("-" if obj.monthly_budget is None else nanos_table(obj.monthly_budget))

    def save_model(self, request, obj, form, change):
        membership_staff_save(membership=obj, form=form, actor=request.user)

    def has_delete_permission(self, request, obj=None):
        return False  # a membership ends on Settings -> Members (its tokens are revoked, its history kept)
