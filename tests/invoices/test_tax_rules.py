"""invoices/tax.py: the rounding, the reverse charge and the credit-note shares, as numbers."""

from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from invoices.tax import line_tax, tax_decide, tax_refund_share


@pytest.mark.parametrize("cents, rate, tax", [
    (2000, "19", 380), (1, "50", 1), (3, "50", 2), (-3, "50", -2),  # halves away from zero
    (105, "10", 11), (104, "10", 10), (999, "7.7", 77), (0, "19", 0),
])
def test_a_lines_tax_is_rounded_half_up_once(cents, rate, tax):
    assert line_tax(cents, Decimal(rate)) == tax


def test_each_line_is_rounded_on_its_own(settings):
    settings.BILLING_TAX_RATES = {"FR": "20"}
    decision = tax_decide(country="FR", tax_id="", amounts=[1, 1, 1])  # 0.2 cents each
    assert decision.tax_cents == 0 and decision.lines[0].taxable_cents == 3


@pytest.mark.parametrize("country, tax_id, seller, reverse, tax", [
    ("DE", "DE136695976", "US", True, 0),  # a valid VAT id abroad
    ("DE", "DE136695978", "US", False, 380),  # a wrong check digit is no VAT id
    ("DE", "DE136695976", "DE", False, 380),  # the seller's own country: the rate applies
    ("GB", "GB980780684", "US", True, 0),
    ("US", "12-3456789", "GB", False, 0),  # an EIN is not a VAT id; the US is not in the table
    ("", "", "US", False, 0),
])
def test_the_reverse_charge_needs_a_valid_vat_id_in_another_country(settings, country, tax_id, seller, reverse, tax):
    settings.SELLER = {**settings.SELLER, "country": seller}
    decision = tax_decide(country=country, tax_id=tax_id, amounts=[2000])
    assert (decision.reverse_charge, decision.tax_cents) == (reverse, tax)


@given(total_tax=st.integers(0, 10_000), net=st.integers(1, 100_000),
       refunds=st.lists(st.integers(1, 20_000), min_size=1, max_size=6))
def test_partial_refunds_give_back_exactly_the_tax_of_what_they_refund(total_tax, net, refunds):
    total, refunded, given_back = net + total_tax, 0, 0
    for amount in refunds:
        amount = min(amount, total - refunded)
        if amount <= 0:
            break
        ((_, tax),) = tax_refund_share(lines=[(net, total_tax)], total_cents=total, refunded_before=refunded,
                                      refunded_now=amount)
        assert 0 <= tax <= amount
        refunded, given_back = refunded + amount, given_back + tax
    if refunded == total:
        assert given_back == total_tax
    ((_, rest),) = tax_refund_share(lines=[(net, total_tax)], total_cents=total, refunded_before=refunded,
                                   refunded_now=total - refunded)
    assert given_back + rest == total_tax
