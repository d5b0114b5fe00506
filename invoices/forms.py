from django import forms


class BillingDetailsForm(forms.Form):
    billing_name = forms.CharField(
        label="Billing name", max_length=200, required=False,
        help_text="Company or person invoices are made out to. Empty: the workspace owner's name.")
    billing_address = forms.CharField(label="Billing address", max_length=1000, required=False,
                                      widget=forms.Textarea(attrs={"rows": 4}))
    tax_id = forms.CharField(label="Tax ID", max_length=64, required=False, help_text="VAT, GST or similar, if any.")
