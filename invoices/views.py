from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from billing.tenancy import membership_for
from billing.replica import reads_from_replica

from .forms import BillingDetailsForm
from .models import Invoice
from .pdf import invoice_pdf
from .services import workspace_billing_details_update


def _invoice_or_404(workspace, number: str) -> Invoice:
    # Scoped to the workspace: another workspace's number is a 404, like an unknown one.
    return get_object_or_404(Invoice.objects.defer("pdf").select_related("refers_to"), workspace=workspace,
                             number=number)


@login_required
@reads_from_replica
def history(request, slug):
    membership = membership_for(request, slug, manage=True)
    workspace = membership.workspace
    if request.method == "POST":
        form = BillingDetailsForm(request.POST)
        if form.is_valid():
            workspace_billing_details_update(workspace=workspace, actor=request.user, **form.cleaned_data)
            messages.success(request, "Billing details saved. They apply to invoices issued from now on.")
            return redirect("invoices:history", slug=slug)
    else:
        form = BillingDetailsForm(initial={"billing_name": workspace.billing_name,
                                           "billing_address": workspace.billing_address,
                                           "tax_id": workspace.tax_id})
    invoices = workspace.invoices.defer("pdf")
    return render(request, "invoices/history.html", {"invoices": invoices, "form": form})


@login_required
def detail(request, slug, number):
    membership = membership_for(request, slug, manage=True)
    invoice = _invoice_or_404(membership.workspace, number)
    return render(request, "invoices/detail.html", {
        "invoice": invoice,
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
