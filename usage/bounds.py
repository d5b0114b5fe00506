"""Bounds on the dates that pages and the API accept (docs/usage-and-api.md, "Bounds").

Beyond them day arithmetic overflows (9999-12-31 + 1 day) and PostgreSQL's timestamps end; no run
is older than the product, so the window is generous and fixed."""

from datetime import date

from django.core.exceptions import ValidationError

DATE_MIN = date(2000, 1, 1)
DATE_MAX = date(2099, 12, 31)
MAX_RANGE_DAYS = 366 * 2  # a summary or list covers at most about two years


def date_in_bounds(value: date) -> None:
    """A Django validator, used by the page forms and the API serializers alike."""
    if value is not None and not DATE_MIN <= value <= DATE_MAX:
        raise ValidationError(f"Enter a date between {DATE_MIN.isoformat()} and {DATE_MAX.isoformat()}.")
