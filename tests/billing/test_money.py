from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from billing.money import (
    InvalidAmount, cents_display, credits_to_nanos, nanos_display, nanos_table, price_display, nanos_to_decimal, nanos_to_str, rate_to_nanos_per_token,
)


def test_it_parses_credits_exactly():
    assert credits_to_nanos("1.5") == 1_500_000_000
    assert credits_to_nanos(12) == 12 * 10**9
    assert credits_to_nanos("0.000000001") == 1
    assert credits_to_nanos("-2.25") == -2_250_000_000


@pytest.mark.parametrize("bad", [1.5, "abc", "1.0000000001", "NaN", "Infinity", str(10**12 + 1), True, "1e9", "2E3",
                                 "1.5e-3", "0x10", "1_000"])
def test_it_refuses_floats_bad_text_and_excess_precision(bad):
    with pytest.raises(InvalidAmount):
        credits_to_nanos(bad)


def test_it_shows_credits_for_people():
    assert nanos_display(1_234_567_890_000) == "1,234.57"
    assert nanos_display(0) == "0"
    assert nanos_display(300) != "0" and Decimal(nanos_display(300)) > 0
    assert nanos_display(4_200_000) == "0.0042"


def test_it_shows_whole_credits_without_decimals_and_fractions_as_needed():
    # The product page's way of writing credits: "2,000", "+150"; fractions only where they exist.
    assert nanos_display(2_000 * 10**9) == "2,000"
    assert nanos_display(150 * 10**9, signed=True) == "+150"
    assert nanos_display(12_600_000_000) == "12.6"
    assert nanos_display(-1_500_000_000, signed=True) == "-1.5"
    assert nanos_display(0, signed=True) == "0"
    # a fraction 2 decimals would hide is still shown: never a whole-looking non-whole amount
    assert nanos_display(5_000_004_000_000) == "5,000.004"


def test_it_shows_prices_by_the_same_rule_and_invoices_to_the_cent():
    assert price_display(2900) == "$29" and price_display(0) == "$0" and price_display(2950) == "$29.50"
    assert cents_display(2000) == "$20.00"


@given(st.integers(-(10**18), 10**18))
def test_it_never_shows_a_non_zero_amount_as_zero(nanos):
    text = nanos_display(nanos)
    assert (Decimal(text.replace(",", "")) == 0) == (nanos == 0)


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


def test_tables_show_two_decimals_so_columns_line_up():
    # issue 30: "11,093.1, 12,025, -49.2, 545.9 and 2,517.0023" in one column
    assert [nanos_table(credits_to_nanos(v)) for v in ("11093.1", "12025", "-49.2", "545.9", "2517.0023")] == [
        "11,093.10", "12,025.00", "-49.20", "545.90", "2,517.00"]
    assert nanos_table(150 * 10**9, signed=True) == "+150.00" and nanos_table(0, signed=True) == "0.00"
    assert nanos_table(4_200_000) == "<0.01" and nanos_table(-4_200_000, signed=True) == "-<0.01"
    assert nanos_table(5_000_000) == "0.01"


@given(st.integers(-(10**18), 10**18))
def test_a_table_never_shows_a_non_zero_amount_as_zero(nanos):
    text = nanos_table(nanos)
    assert (text in ("0.00",)) == (nanos == 0)
    if "<" not in text:
        assert text.split(".")[1].isdigit() and len(text.split(".")[1]) == 2
