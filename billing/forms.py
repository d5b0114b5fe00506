"""Form fields that speak credits and rates: typed as decimals, cleaned into nanocredits by billing.money."""

from django import forms

from .money import InvalidAmount, credits_to_nanos, nanos_to_str, rate_str, rate_to_nanos_per_token


# Amounts are stored in bigint columns (signed 64-bit nanocredits): about 9.22 billion credits.
BIGINT_MAX = 2**63 - 1


def digits_int(value, *, max_digits: int) -> int | None:
    """A short run of ASCII digits as an int, anything else None. str.isdigit() alone also accepts
    "²" or "٣", which int() then refuses (a 500) or the ORM cannot look up."""
    value = "" if value is None else str(value)
    return int(value) if value.isascii() and value.isdigit() and len(value) <= max_digits else None


SANE_YEARS = (2000, 2100)  # dates outside are refused as absurd input (SPEC section 10)


class DayField(forms.DateField):
    """A filter's UTC day, refused outside SANE_YEARS (no query for year 1 or 9999)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.DateInput(attrs={"type": "date"}))
        super().__init__(**kwargs)

    def clean(self, value):
        day = super().clean(value)
        if day is not None and not (SANE_YEARS[0] <= day.year <= SANE_YEARS[1]):
            raise forms.ValidationError(f"Choose a date between {SANE_YEARS[0]} and {SANE_YEARS[1]}.")
        return day


class CreditsField(forms.CharField):
    """Credits as a decimal string (up to 9 decimals) in the form; nanocredits in the model."""

    def __init__(self, *, allow_negative: bool = False, allow_zero: bool = True, **kwargs):
        self.allow_negative = allow_negative
        self.allow_zero = allow_zero
        kwargs.setdefault("help_text", "In credits, up to 9 decimal places.")
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            return nanos_to_str(value)
        return value

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            nanos = credits_to_nanos(value)
        except InvalidAmount as error:
            raise forms.ValidationError(str(error)) from None
        if abs(nanos) > BIGINT_MAX:
            raise forms.ValidationError(f"Enter at most {nanos_to_str(BIGINT_MAX)} credits: the largest amount "
                                        f"that can be stored.")
        if nanos < 0 and not self.allow_negative:
            raise forms.ValidationError("Enter zero or more credits." if self.allow_zero
                                        else "Enter an amount of credits greater than zero.")
        if nanos == 0 and not self.allow_zero:
            raise forms.ValidationError("Enter an amount of credits greater than zero.")
        return nanos

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        attrs.update(inputmode="decimal", autocomplete="off")
        return attrs


class RateFormField(forms.CharField):
    """A rate in credits per 1M tokens (at most 3 decimals); nanocredits per token in the model."""

    def prepare_value(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            return rate_str(value)
        return value

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            return rate_to_nanos_per_token(value.strip())
        except InvalidAmount as error:
            raise forms.ValidationError(str(error)) from None
