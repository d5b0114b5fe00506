from django import forms
from django_countries.fields import LazyTypedChoiceField
from django_countries import countries

from .tax import TaxIdError, tax_id_normalise


class BillingDetailsForm(forms.Form):
    """The Billing details page. The checks are the service's (invoices.services.
    workspace_billing_details_update, invoices/tax.py); the form shows them next to the field."""

    billing_name = forms.CharField(
        label="Legal name", max_length=200, required=False,
        help_text="The company or person invoices are made out to. Empty: the workspace owner's name.")
    billing_address = forms.CharField(label="Address", max_length=1000, required=False,
                                      widget=forms.Textarea(attrs={"rows": 4}))
    billing_country = LazyTypedChoiceField(label="Country", choices=[("", "—")] + list(countries), required=False,
                                           help_text="Decides the tax on your purchases.")
    tax_id = forms.CharField(label="Tax ID", max_length=64, required=False,
                             help_text="VAT, GST or similar, with its country prefix (e.g. DE136695976). "
                                       "Checked for the country's format and check digit.")
    billing_email = forms.EmailField(label="Invoice e-mail", max_length=254, required=False,
                                     help_text="Where receipts and invoices go. Empty: the owner's e-mail.")

    def clean(self):
        data = super().clean()
        if "tax_id" in data and "billing_country" in data:
            try:
                data["tax_id"] = tax_id_normalise(country=data["billing_country"] or "", tax_id=data["tax_id"])
            except TaxIdError as error:
                self.add_error("tax_id", str(error))
        return data
