"""The buying flow's forms: the Activity page's filters and the auto-recharge settings."""

from django import forms

from billing.forms import CreditsField, DayField
from billing.models import CreditPack, LedgerEntry

from .activity import LedgerFilters


class LedgerFilterForm(forms.Form):
    """The Activity page's filters; the same names in its CSV link."""

    kind = forms.ChoiceField(required=False, choices=[("", "Every kind")] + LedgerEntry.KINDS)
    bucket = forms.ChoiceField(required=False, choices=[("", "Both buckets")] + LedgerEntry.BUCKETS)
    from_ = DayField(label="From")
    to = DayField()
    before = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    after = forms.IntegerField(required=False, min_value=0, max_value=2**63 - 1)

    def __init__(self, data, **kwargs):
        data = data.copy()
        if "from" in data:
            data["from_"] = data.get("from")
        super().__init__(data, **kwargs)

    def filters(self) -> LedgerFilters:
        """The valid filters (an invalid field is reported on the form and left out)."""
        data = self.cleaned_data if self.is_bound else {}
        start, end = data.get("from_"), data.get("to")
        if start and end and end < start:
            start, end = end, start
        return LedgerFilters(kind=data.get("kind") or "", bucket=data.get("bucket") or "", start=start, end=end)


class AutoRechargeForm(forms.Form):
    threshold = CreditsField(allow_zero=False, label="When available credits fall below",
                             help_text="In credits, e.g. 200.")
    pack = forms.ModelChoiceField(queryset=CreditPack.objects.filter(is_active=True), empty_label=None,
                                  label="Buy this pack")
    max_per_period = forms.IntegerField(min_value=1, max_value=100, initial=3, label="At most, per billing period")
