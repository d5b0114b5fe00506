"""Pricing is exact for every seeded model (SPEC 2) and additive."""

import pytest
from hypothesis import given, settings, strategies as st

from billing.models import credits
from billing.money import NANOS_PER_CREDIT
from billing.pricing import Rate, model_rates_at, price_node, price_tokens, tool_rates_at

SEEDED = {  # model id: (input, output) credits per 1M tokens, from the product page
    "gpt-4o": ("5", "15"),
    "gpt-4o-mini": ("0.3", "1.2"),
    "claude-sonnet-4": ("6", "30"),
    "claude-opus-4": ("30", "150"),
    "gemini-2.0-flash": ("0.15", "0.6"),
    "ollama": ("0", "0"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("model_id", sorted(SEEDED))
def test_it_prices_a_million_tokens_at_the_seeded_rate(model_id):
    from django.utils import timezone

    rate = model_rates_at(at=timezone.now())[model_id]
    rate_in, rate_out = SEEDED[model_id]
    assert price_tokens(rate=rate, input_tokens=1_000_000, output_tokens=0) == credits(rate_in)
    assert price_tokens(rate=rate, input_tokens=0, output_tokens=1_000_000) == credits(rate_out)
    # one token is exact too: rate / 1M credits, a whole number of nanocredits
    assert price_tokens(rate=rate, input_tokens=1, output_tokens=1) * 10**6 == credits(rate_in) + credits(rate_out)


@pytest.mark.django_db
def test_it_prices_tools_per_call_and_leaves_unknown_tools_free():
    from django.utils import timezone

    tools = tool_rates_at(at=timezone.now())
    rate = Rate("gpt-4o", 5000, 15000)
    price = price_node(rate=rate, input_tokens=1000, output_tokens=1000, tool_rates=tools,
                       tool_calls=[("web_search", 3), ("code_interpreter", 2), ("crystal_ball", 7)])
    assert price.token_credits == 1000 * 5000 + 1000 * 15000
    assert price.tool_credits == credits("0.03") + credits("0.06")
    assert [tool["credits"] for tool in price.tools] == [credits("0.03"), credits("0.06"), 0]


def test_it_never_rounds_a_small_charge_to_zero():
    rate = Rate("gpt-4o-mini", 300, 1200)
    assert price_tokens(rate=rate, input_tokens=1, output_tokens=0) == 300  # 0.0000003 credits
    assert 0 < 300 < NANOS_PER_CREDIT


rates = st.builds(Rate, st.just("m"), st.integers(0, 10**6), st.integers(0, 10**6))
tokens = st.integers(0, 10**9)


@settings(max_examples=200, deadline=None)
@given(rate=rates, a_in=tokens, a_out=tokens, b_in=tokens, b_out=tokens)
def test_it_is_additive(rate, a_in, a_out, b_in, b_out):
    cost_a = price_tokens(rate=rate, input_tokens=a_in, output_tokens=a_out)
    cost_b = price_tokens(rate=rate, input_tokens=b_in, output_tokens=b_out)
    assert cost_a + cost_b == price_tokens(rate=rate, input_tokens=a_in + b_in, output_tokens=a_out + b_out)
    assert isinstance(cost_a, int) and cost_a >= 0


@settings(max_examples=100, deadline=None)
@given(rate=rates, a_in=tokens, a_out=tokens, calls_a=st.integers(0, 1000), calls_b=st.integers(0, 1000),
       per_call=st.integers(0, 10**9))
def test_it_is_additive_with_tools(rate, a_in, a_out, calls_a, calls_b, per_call):
    tool_rates = {"web_search": per_call}
    one = price_node(rate=rate, input_tokens=a_in, output_tokens=a_out, tool_calls=[("web_search", calls_a)], tool_rates=tool_rates)
    two = price_node(rate=rate, input_tokens=0, output_tokens=0, tool_calls=[("web_search", calls_b)], tool_rates=tool_rates)
    both = price_node(rate=rate, input_tokens=a_in, output_tokens=a_out, tool_calls=[("web_search", calls_a + calls_b)],
                      tool_rates=tool_rates)
    assert one.credits + two.credits == both.credits
