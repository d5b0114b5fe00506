from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from billing.money import (
    InvalidAmount, credits_to_nanos, nanos_display, nanos_to_decimal, nanos_to_str, rate_to_nanos_per_token,
)


def test_it_parses_credits_exactly():
    assert credits_to_nanos("1.5") == 1_500_000_000
    assert credits_to_nanos(12) == 12 * 10**9
    assert credits_to_nanos("0.000000001") == 1
    assert credits_to_nanos("-2.25") == -2_250_000_000


@pytest.mark.parametrize("bad", [1.5, "abc", "1.0000000001", "NaN", "Infinity", str(10**12 + 1), True])
def test_it_refuses_floats_bad_text_and_excess_precision(bad):
    with pytest.raises(InvalidAmount):
        credits_to_nanos(bad)


def test_it_shows_credits_for_people():
    assert nanos_display(1_234_567_890_000) == "1,234.57"
    assert nanos_display(0) == "0.00"
    assert nanos_display(300) != "0.00" and Decimal(nanos_display(300)) > 0
    assert nanos_display(4_200_000) == "0.0042"


def test_it_converts_rates_with_at_most_three_decimals():
    assert rate_to_nanos_per_token("0.15") == 150
    assert rate_to_nanos_per_token("30") == 30000
    with pytest.raises(InvalidAmount):
        rate_to_nanos_per_token("0.0001")
    with pytest.raises(InvalidAmount):
        rate_to_nanos_per_token("-1")


@given(st.integers(-(10**21), 10**21))
def test_it_round_trips_exact_strings(nanos):
    text = nanos_to_str(nanos)
    assert Decimal(text) == nanos_to_decimal(nanos)
    if abs(nanos) <= 10**21:
        assert credits_to_nanos(text) == nanos
