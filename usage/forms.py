"""Forms of the Developer tokens page: a token's name and its limits (issue 29). Amounts are typed
in credits and cleaned into nanocredits by billing.forms.CreditsField, as on the budget pages; the
expiry is a UTC date and time."""

from datetime import timezone as dt_timezone

from django import forms

from billing.forms import CreditsField
from billing.models import AIModel

from .tokens import TokenLimits

EXPIRY_FORMAT = "%Y-%m-%dT%H:%M"


class TokenLimitsForm(forms.Form):
    max_credits_per_run = CreditsField(label="Max per run (credits)", required=False, allow_zero=False,
                                       help_text="The most one run authorized with this token may hold. Empty: no limit.")
    max_credits_per_day = CreditsField(label="Max per day (credits, UTC day)", required=False, allow_zero=False,
                                       help_text="Charged plus held by its runs per UTC day. Empty: no limit.")
    max_credits_per_month = CreditsField(label="Max per billing period (credits)", required=False, allow_zero=False,
                                         help_text="Charged plus held by its runs per billing period. Empty: no limit.")
    allowed_models = forms.MultipleChoiceField(label="Allowed models", required=False,
                                               widget=forms.CheckboxSelectMultiple,
                                               help_text="None ticked: every model.")
    expires_at = forms.DateTimeField(label="Expires at (UTC)", required=False, input_formats=[EXPIRY_FORMAT],
                                     widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=EXPIRY_FORMAT),
                                     help_text="From then on every call with it is refused (401). Empty: never.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["allowed_models"].choices = list(AIModel.objects.order_by("id").values_list("id", "name"))

    def clean_expires_at(self):
        value = self.cleaned_data["expires_at"]
        # The field is read in the current time zone; the page says UTC.
        return value.replace(tzinfo=dt_timezone.utc) if value is not None else None

    @staticmethod
    def initial_for(token) -> dict:
        return {"max_credits_per_run": token.max_credits_per_run, "max_credits_per_day": token.max_credits_per_day,
                "max_credits_per_month": token.max_credits_per_month, "allowed_models": list(token.allowed_models),
                "expires_at": token.expires_at.astimezone(dt_timezone.utc).replace(tzinfo=None)
                if token.expires_at else None}

    def limits(self) -> TokenLimits:
        data = self.cleaned_data
        return TokenLimits(data["max_credits_per_run"], data["max_credits_per_day"], data["max_credits_per_month"],
                           tuple(data["allowed_models"]), data["expires_at"])


class TokenForm(TokenLimitsForm):
    """A new token: its name, and optionally its limits."""

    name = forms.CharField(max_length=100, required=False, label="Token name",
                           widget=forms.TextInput(attrs={"placeholder": "e.g. production engine"}))
    field_order = ["name"]
