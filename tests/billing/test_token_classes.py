"""Token classes (issue 28): cached input, cache write and reasoning tokens, each at its own
versioned rate, exact in nanocredits for every seeded model."""

import pytest
from django.utils import timezone
from hypothesis import given, settings, strategies as st

from billing.models import AIModel, credits
from billing.pricing import Rate, TokenCounts, model_rates_at, price_counts, price_tokens
from billing.rates import model_rate_set

# model id: (input, cached input, cache write, output) credits per 1M tokens, as seeded (issue 28)
SEEDED = {
    "gpt-4o": ("5", "2.5", "5", "15"),
    "gpt-4o-mini": ("0.3", "0.15", "0.3", "1.2"),
    "claude-sonnet-4": ("6", "0.6", "7.5", "30"),
    "claude-opus-4": ("30", "3", "37.5", "150"),
    "gemini-2.0-flash": ("0.15", "0.038", "0.15", "0.6"),
    "ollama": ("0", "0", "0", "0"),
}


def seeded_rates() -> dict[str, Rate]:
    return model_rates_at(at=timezone.now())


@pytest.mark.django_db
@pytest.mark.parametrize("model_id", sorted(SEEDED))
def test_it_prices_a_million_tokens_of_each_class_at_the_seeded_rate(model_id):
    rate = seeded_rates()[model_id]
    rate_in, rate_cached, rate_write, rate_out = SEEDED[model_id]
    million = 1_000_000
    assert price_tokens(rate=rate, input_tokens=million, output_tokens=0, cached_input_tokens=million) == credits(rate_cached)
    assert price_tokens(rate=rate, input_tokens=million, output_tokens=0, cache_write_tokens=million) == credits(rate_write)
    # Reasoning is priced at the output rate: no seeded model has a reasoning rate.
    assert price_tokens(rate=rate, input_tokens=0, output_tokens=million, reasoning_tokens=million) == credits(rate_out)


@pytest.mark.django_db
@pytest.mark.parametrize("model_id", sorted(SEEDED))
def test_it_prices_a_node_that_uses_all_four_classes_exactly(model_id):
    rate = seeded_rates()[model_id]
    rate_in, rate_cached, rate_write, rate_out = (credits(value) for value in SEEDED[model_id])
    # 1,000,003 input of which 600,001 cached and 200,001 written; 300,007 output of which 100,003 reasoning.
    cost = price_tokens(rate=rate, input_tokens=1_000_003, output_tokens=300_007, cached_input_tokens=600_001,
                        cache_write_tokens=200_001, reasoning_tokens=100_003)
    expected_times_million = (200_001 * rate_in + 600_001 * rate_cached + 200_001 * rate_write + 300_007 * rate_out)
    assert expected_times_million % 1_000_000 == 0  # exact: the 3-decimal rule holds for every class
    assert cost == expected_times_million // 1_000_000


def test_it_prices_reasoning_at_its_own_rate_when_a_model_has_one():
    rate = Rate("thinker", 1000, 4000, None, None, 8000)
    assert price_tokens(rate=rate, input_tokens=0, output_tokens=10, reasoning_tokens=4) == 6 * 4000 + 4 * 8000


def test_it_prices_a_class_without_a_rate_at_its_parents_rate():
    rate = Rate("plain", 5000, 15000)
    assert price_tokens(rate=rate, input_tokens=10, output_tokens=10, cached_input_tokens=3, cache_write_tokens=2,
                        reasoning_tokens=5) == 10 * 5000 + 10 * 15000


def test_it_names_the_subset_rule_a_node_breaks():
    assert TokenCounts(input=10, output=5, cached_input=6, cache_write=4, reasoning=5).check() is None
    assert "exceed input_tokens" in TokenCounts(input=10, output=5, cached_input=6, cache_write=5).check()
    assert "exceed output_tokens" in TokenCounts(input=10, output=5, reasoning=6).check()


@pytest.mark.django_db
def test_it_versions_class_rates_and_keeps_older_versions():
    model = AIModel.objects.get(pk="claude-sonnet-4")
    before = timezone.now()
    version = model_rate_set(model=model, input_nanos_per_token=6000, output_nanos_per_token=30000,
                             cached_input_nanos_per_token=300, cache_write_nanos_per_token=7500)
    assert version is not None
    assert model_rates_at(at=before)["claude-sonnet-4"].cached_input_nanos_per_token == 600
    assert model_rates_at(at=timezone.now())["claude-sonnet-4"].cached_input_nanos_per_token == 300
    # The same rates again add no version.
    assert model_rate_set(model=model, input_nanos_per_token=6000, output_nanos_per_token=30000,
                          cached_input_nanos_per_token=300, cache_write_nanos_per_token=7500) is None


# --- Properties, with the seeded rates (no database: the table above is the seeded one).

def _rate(model_id: str) -> Rate:
    rate_in, rate_cached, rate_write, rate_out = (credits(value) // 1_000_000 for value in SEEDED[model_id])
    return Rate(model_id, rate_in, rate_out, rate_cached, rate_write)


tokens = st.integers(min_value=0, max_value=10**12)


@settings(max_examples=300, deadline=None)
@given(model_id=st.sampled_from(sorted(SEEDED)), input_tokens=tokens, output_tokens=tokens, data=st.data())
def test_moving_input_tokens_into_the_cache_never_raises_a_nodes_cost(model_id, input_tokens, output_tokens, data):
    rate = _rate(model_id)
    cached = data.draw(st.integers(min_value=0, max_value=input_tokens))
    moved = data.draw(st.integers(min_value=0, max_value=input_tokens - cached))
    before = price_tokens(rate=rate, input_tokens=input_tokens, output_tokens=output_tokens, cached_input_tokens=cached)
    after = price_tokens(rate=rate, input_tokens=input_tokens, output_tokens=output_tokens,
                         cached_input_tokens=cached + moved)
    assert after <= before


@settings(max_examples=300, deadline=None)
@given(model_id=st.sampled_from(sorted(SEEDED)), input_tokens=tokens, output_tokens=tokens, data=st.data())
def test_moving_input_tokens_into_cache_writes_raises_the_cost_by_exactly_the_write_premium(
        model_id, input_tokens, output_tokens, data):
    rate = _rate(model_id)
    written = data.draw(st.integers(min_value=0, max_value=input_tokens))
    moved = data.draw(st.integers(min_value=0, max_value=input_tokens - written))
    before = price_tokens(rate=rate, input_tokens=input_tokens, output_tokens=output_tokens,
                          cache_write_tokens=written)
    after = price_tokens(rate=rate, input_tokens=input_tokens, output_tokens=output_tokens,
                         cache_write_tokens=written + moved)
    assert after - before == moved * (rate.cache_write_nanos_per_token - rate.input_nanos_per_token)


@settings(max_examples=300, deadline=None)
@given(model_id=st.sampled_from(sorted(SEEDED)), input_tokens=tokens, output_tokens=tokens)
def test_a_node_without_classes_is_priced_as_before_them(model_id, input_tokens, output_tokens):
    rate = _rate(model_id)
    before_classes = input_tokens * rate.input_nanos_per_token + output_tokens * rate.output_nanos_per_token
    assert price_tokens(rate=rate, input_tokens=input_tokens, output_tokens=output_tokens) == before_classes
    assert price_counts(rate=rate, counts=TokenCounts(input_tokens, output_tokens)) == before_classes
