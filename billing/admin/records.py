"""Records only services write: wallets, the append-only ledger, purchases and the audit trail."""

from django.contrib import admin
from import_export.admin import ExportMixin

from billing.models import AuditEvent, LedgerEntry, Purchase, Wallet
from billing.money import cents_display, nanos_table, nanos_to_str

from .fields import IMPORT_EXPORT_FORMATS, ReadOnlyAdmin, amount_cell, credits_column


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ("workspace", "monthly_display", "purchased_display", "reserved_display", "available_display",
                    "running_runs", "updated_at")
    search_fields = ("workspace__slug", "workspace__name")

    monthly_display = credits_column("monthly", "Monthly")
    purchased_display = credits_column("purchased", "Purchased")
    reserved_display = credits_column("reserved", "Reserved")
    available_display = credits_column("available", "Available")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ExportMixin, ReadOnlyAdmin):
    """The append-only ledger. Corrections are new entries (Workspaces -> Adjust credits)."""

    formats = IMPORT_EXPORT_FORMATS
    # The bucket's own balance after is on each entry's page; the list keeps to what fits on a screen.
    list_display = ("created_at", "workspace", "kind", "bucket", "amount_display", "balance_after_display",
                    "actor_display", "reason")
    list_per_page = 50
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
        return amount_cell(nanos_table(obj.amount, signed=True), f"{nanos_to_str(obj.amount)} credits")

    @admin.display(description="Exact credits")
    def amount_exact(self, obj):
        return nanos_to_str(obj.amount)

    bucket_balance_display = credits_column("bucket_balance_after", "Bucket after")
    balance_after_display = credits_column("balance_after", "Balance after")

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

    credits_display = credits_column("credits", "Credits")
    bonus_display = credits_column("bonus", "Bonus")

    @admin.display(description="Amount")
    def amount_display(self, obj):
        return amount_cell(cents_display(obj.amount_cents, obj.currency))

    @admin.display(description="Refunded")
    def refunded_display(self, obj):
        return amount_cell(cents_display(obj.refunded_cents, obj.currency))


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Every workspace's audit log (append-only: read-only here, and the database refuses changes)."""

    list_display = ("created_at", "workspace", "actor", "actor_kind", "action", "ip", "before", "detail")
    list_filter = ("actor_kind", "action")
    search_fields = ("action", "workspace__slug", "actor__email")
    list_select_related = ("workspace", "actor")
