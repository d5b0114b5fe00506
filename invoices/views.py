import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from billing.tenancy import membership_for
from billing.replica import reads_from_replica

from .export import ACCOUNTING_COLUMNS, accounting_rows
from .forms import BillingDetailsForm
from .models import Invoice
from .pdf import invoice_pdf, invoice_pdf_data
from .services import BillingDetailsError, workspace_billing_details_update


def _invoice_or_404(workspace, number: str) -> Invoice:
    # Scoped to the workspace: another workspace's number is a 404, like an unknown one.
    return get_object_or_404(Invoice.objects.defer("pdf").select_related("refers_to"), workspace=workspace,
                             number=number)


@login_required
@reads_from_replica
def history(request, slug):
    membership = membership_for(request, slug, manage=True)
    invoices = membership.workspace.invoices.defer("pdf")
    return render(request, "invoices/history.html", {"invoices": invoices})


@login_required
@reads_from_replica
def export(request, slug):
    """History for accountants: one row per invoice and credit note (invoices/export.py)."""
    membership = membership_for(request, slug, manage=True)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="invoices-{membership.workspace.slug}.csv"'
    response["Cache-Control"] = "private, no-store"
    writer = csv.writer(response)
    writer.writerow(ACCOUNTING_COLUMNS)
    writer.writerows(accounting_rows(workspace=membership.workspace))
    return response


@login_required
def billing_details(request, slug):
    membership = membership_for(request, slug, manage=True)
    workspace = membership.workspace
    if request.method == "POST":
        form = BillingDetailsForm(request.POST)
        if form.is_valid():
            try:
                workspace_billing_details_update(workspace=workspace, actor=request.user, **form.cleaned_data)
            except BillingDetailsError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, "Billing details saved. They apply to invoices issued from now on.")
                return redirect("invoices:billing_details", slug=slug)
    else:
        form = BillingDetailsForm(initial={"billing_name": workspace.billing_name,
                                           "billing_address": workspace.billing_address,
                                           "billing_country": workspace.billing_country.code or "",
                                           "tax_id": workspace.tax_id, "billing_email": workspace.billing_email})
    return render(request, "invoices/billing_details.html", {"form": form})


@login_required
def detail(request, slug, number):
    membership = membership_for(request, slug, manage=True)
    invoice = _invoice_or_404(membership.workspace, number)
    return render(request, "invoices/detail.html", {
        "invoice": invoice,
        "doc": invoice_pdf_data(invoice=invoice),  # the PDF's figures: seller, buyer, taxes
        "lines": invoice.lines.all(),
        "credit_notes": invoice.credit_notes.defer("pdf"),
    })


@login_required
def pdf(request, slug, number):
    membership = membership_for(request, slug, manage=True)
    invoice = _invoice_or_404(membership.workspace, number)
    response = HttpResponse(invoice_pdf(invoice=invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{invoice.pdf_filename}"'
    response["Cache-Control"] = "private, no-store"
    return response
