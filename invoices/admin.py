"""Invoices in the admin: accounting documents, so nothing here edits or deletes one. Staff search,
filter, export, download the PDF and re-render it (the same service the Celery task calls)."""

from django.contrib import admin, messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from import_export import fields, resources
from import_export.admin import ExportMixin
from import_export.formats.base_formats import CSV, XLSX

from billing.admin import ReadOnlyAdmin, amount_cell
from billing.forms import digits_int
from billing.money import cents_display, nanos_display

from .models import Invoice, InvoiceLine, InvoiceSequence
from .pdf import invoice_pdf, invoice_pdf_render


class InvoiceResource(resources.ModelResource):
    workspace = fields.Field(attribute="workspace__slug", column_name="workspace")
    refers_to = fields.Field(attribute="refers_to__number", column_name="refers_to")
    total = fields.Field(column_name="total")

    class Meta:
        model = Invoice
        fields = ("number", "kind", "status", "issued_at", "workspace", "description", "total", "subtotal_cents",
                  "tax_cents", "total_cents", "reverse_charge", "currency", "buyer_name", "buyer_contact", "buyer_email",
                  "buyer_workspace", "buyer_address", "buyer_country", "buyer_tax_id", "refers_to", "period_start", "period_end", "stripe_invoice_id")
        export_order = fields

    def dehydrate_total(self, invoice):
        # Exact decimal string of the amount, e.g. "-20.00"; total_cents stays for machines.
        sign = "-" if invoice.total_cents < 0 else ""
        return f"{sign}{abs(invoice.total_cents) // 100}.{abs(invoice.total_cents) % 100:02d}"


class YearFilter(admin.SimpleListFilter):
    title = "year"
    parameter_name = "year"

    def lookups(self, request, model_admin):
        years = Invoice.objects.dates("issued_at", "year", order="DESC")
        return [(str(d.year), str(d.year)) for d in years]

    def queryset(self, request, queryset):
        year = digits_int(self.value(), max_digits=4)
        if year:
            return queryset.filter(issued_at__year=year)
        return queryset


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    fields = ("position", "description", "quantity", "unit_display", "amount_display", "credits_display")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Unit price")
    def unit_display(self, line):
        return amount_cell(cents_display(line.unit_cents))

    @admin.display(description="Amount")
    def amount_display(self, line):
        return amount_cell(cents_display(line.amount_cents))

    @admin.display(description="Credits")
    def credits_display(self, line):
        return amount_cell(nanos_display(line.credits)) if line.credits else ""


@admin.register(Invoice)
class InvoiceAdmin(ExportMixin, ReadOnlyAdmin):
    resource_classes = [InvoiceResource]
    formats = [CSV, XLSX]
    list_display = ("number", "issued_at", "kind", "status", "workspace", "buyer_name", "buyer_email", "total_display",
                    "pdf_state")
    list_filter = ("kind", "status", YearFilter)
    search_fields = ("number", "buyer_name", "buyer_email", "buyer_workspace", "buyer_tax_id", "workspace__slug")
    list_select_related = ("workspace",)
    date_hierarchy = "issued_at"
    inlines = [InvoiceLineInline]
    actions = ["rerender_pdf"]
    fields = ("number", "kind", "status", "description", "issued_at", "workspace", "subtotal_cents", "tax_cents",
              "reverse_charge", "total_display", "currency", "buyer_name", "buyer_contact", "buyer_email",
              "buyer_workspace", "buyer_address", "buyer_country", "buyer_tax_id",
              "refers_to", "purchase", "stripe_invoice_id", "period_start", "period_end", "idempotency_key",
              "pdf_rendered_at", "pdf_link")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer("pdf")


    def get_urls(self):
        return [
            path("<int:invoice_id>/pdf/", self.admin_site.admin_view(self.pdf_view), name="invoices_invoice_pdf"),
        ] + super().get_urls()

    def pdf_view(self, request, invoice_id):
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        invoice = get_object_or_404(Invoice.objects.defer("pdf"), pk=invoice_id)
        response = HttpResponse(invoice_pdf(invoice=invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{invoice.pdf_filename}"'
        return response

    @admin.display(description="Total", ordering="total_cents")
    def total_display(self, invoice):
        return amount_cell(cents_display(invoice.total_cents, invoice.currency))

    @admin.display(description="PDF")
    def pdf_state(self, invoice):
        return "rendered" if invoice.pdf_rendered_at else "pending"

    @admin.display(description="PDF")
    def pdf_link(self, invoice):
        url = reverse("admin:invoices_invoice_pdf", args=[invoice.pk])
        return format_html('<a href="{}" target="_blank" rel="noopener">Open {}</a>', url, invoice.pdf_filename)

    @admin.action(description="Re-render PDF of selected invoices")
    def rerender_pdf(self, request, queryset):
        count = 0
        for invoice in queryset.select_related("refers_to"):
            invoice_pdf_render(invoice=invoice)
            count += 1
        self.message_user(request, f"Re-rendered {count} PDF{'s' if count != 1 else ''}.", messages.SUCCESS)


@admin.register(InvoiceSequence)
class InvoiceSequenceAdmin(ReadOnlyAdmin):
    """The last number per prefix and year, for audits. Never edited by hand: that would create gaps."""

    list_display = ("prefix", "year", "last_number")
    readonly_fields = ("prefix", "year", "last_number")

