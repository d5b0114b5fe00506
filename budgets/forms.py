"""Forms for the budget pages. Amounts are typed in credits and cleaned into nanocredits by
billing.money.credits_to_nanos, so a page and the API read amounts the same way."""

from django import forms

from billing.models import Membership
from billing.forms import CreditsField as BaseCreditsField


class CreditsField(BaseCreditsField):
    """Budgets are positive amounts of credits."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "")
        super().__init__(allow_zero=False, **kwargs)


class BudgetForm(forms.Form):
    monthly_limit = CreditsField(label="Monthly budget (credits)", required=False,
                                 help_text="Credits per billing period. Leave empty for no budget.")
    warning_enabled = forms.BooleanField(label="Warning at 80%", required=False)
    critical_enabled = forms.BooleanField(label="Critical at 95%", required=False)
    hard_limit_enabled = forms.BooleanField(label="Hard limit at 100% (stop executions)", required=False)
    webhook_url = forms.URLField(label="Alert webhook URL", required=False, max_length=500, assume_scheme="https",
                                 help_text="Optional. We POST signed JSON here when an alert fires or resolves.")


class AgentBudgetForm(forms.Form):
    max_per_run = CreditsField(label="Max per run (credits)", help_text="Default 10.")
    max_per_day = CreditsField(label="Max per day (credits, UTC day)", help_text="Default 100.")
    max_per_month = CreditsField(label="Max per billing period (credits)", help_text="Default 1,000.")

    def clean(self):
        data = super().clean()
        run, day, month = data.get("max_per_run"), data.get("max_per_day"), data.get("max_per_month")
        if run and day and run > day:
            self.add_error("max_per_run", "The per-run maximum cannot exceed the daily budget.")
        if day and month and day > month:
            self.add_error("max_per_day", "The daily budget cannot exceed the monthly budget.")
        return data


class MemberBudgetForm(forms.Form):
    membership = forms.IntegerField(widget=forms.HiddenInput)
    monthly_budget = CreditsField(label="Monthly budget (credits)", required=False,
                                  help_text="Empty: no member budget.")


class MemberAddForm(forms.Form):
    email = forms.EmailField(label="E-mail address")
    role = forms.ChoiceField(choices=[(Membership.MEMBER, "Member"), (Membership.ADMIN, "Admin")])


class MemberRoleForm(forms.Form):
    membership = forms.IntegerField(widget=forms.HiddenInput)
    role = forms.ChoiceField(choices=[(Membership.MEMBER, "Member"), (Membership.ADMIN, "Admin")])
