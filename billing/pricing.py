"""Exact pricing: cost_nanocredits = tokens * rate_nanos_per_token (+ calls * tool rate). No floats."""

from dataclasses import dataclass, field
from datetime import datetime

from .edition import is_community
from .models import ModelRate, ToolRate


@dataclass(frozen=True)
class Rate:
    """A model's rates in nanocredits per token. A token class without a rate of its own (None) is
    priced at its parent's rate: cached input and cache write at the input rate, reasoning at the
    output rate (issue 28)."""

    model_id: str
    input_nanos_per_token: int
    output_nanos_per_token: int
    cached_input_nanos: int | None = None
    cache_write_nanos: int | None = None
    reasoning_nanos: int | None = None

    @property
    def cached_input_nanos_per_token(self) -> int:
        return self.input_nanos_per_token if self.cached_input_nanos is None else self.cached_input_nanos

    @property
    def cache_write_nanos_per_token(self) -> int:
        return self.input_nanos_per_token if self.cache_write_nanos is None else self.cache_write_nanos

    @property
    def reasoning_nanos_per_token(self) -> int:
        return self.output_nanos_per_token if self.reasoning_nanos is None else self.reasoning_nanos


def _rate(model_id: str, row, community: bool) -> Rate:
    """A Rate from (input, output, cached input, cache write, reasoning) as stored."""
    return Rate(model_id, 0, 0, 0, 0, 0) if community else Rate(model_id, *row)


# The class columns of billing_modelrate, in the order Rate takes them after input and output.
CLASS_COLUMNS = ("cached_input_nanos_per_token", "cache_write_nanos_per_token", "reasoning_nanos_per_token")


def model_rates_at(*, at: datetime, model_ids=None) -> dict[str, Rate]:
    """The rate in force at `at` for each model (one query; rates are few)."""
    rates: dict[str, Rate] = {}
    query = ModelRate.objects.filter(effective_from__lte=at).order_by("model_id", "-effective_from")
    if model_ids is not None:
        query = query.filter(model_id__in=list(model_ids))
    community = is_community()
    for model_id, *row in query.values_list("model_id", "input_nanos_per_token", "output_nanos_per_token",
                                            *CLASS_COLUMNS):
        if model_id not in rates:
            rates[model_id] = _rate(model_id, row, community)
    return rates


def tool_rates_at(*, at: datetime, tools=None) -> dict[str, int]:
    """Nanocredits per call in force at `at`; a tool with no rate is free (absent here)."""
    rates: dict[str, int] = {}
    query = ToolRate.objects.filter(effective_from__lte=at).order_by("tool", "-effective_from")
    if tools is not None:
        query = query.filter(tool__in=list(tools))
    for tool, nanos in query.values_list("tool", "nanos_per_call"):
        rates.setdefault(tool, 0 if is_community() else nanos)
    return rates


def rates_from_rows(*, model_rows, tool_rows) -> tuple[dict[str, Rate], dict[str, int]]:
    """The rates a statement read: `model_rows` as (model id, input, output, cached input, cache
    write, reasoning) and `tool_rows` as (tool, per call), one row each in force (the completion's
    one read, usage.services)."""
    community = is_community()
    models = {row[0]: _rate(row[0], row[1:], community) for row in model_rows}
    tools = {row[0]: 0 if community else row[1] for row in tool_rows}
    return models, tools


@dataclass
class NodePrice:
    token_credits: int
    tool_credits: int
    tools: list[dict] = field(default_factory=list)

    @property
    def credits(self) -> int:
        return self.token_credits + self.tool_credits


@dataclass(frozen=True)
class TokenCounts:
    """A node's tokens by class (issue 28). cached_input and cache_write are parts of input,
    reasoning a part of output: `check` says which rule a count breaks."""

    input: int = 0
    output: int = 0
    cached_input: int = 0
    cache_write: int = 0
    reasoning: int = 0

    def check(self) -> str | None:
        if self.cached_input + self.cache_write > self.input:
            return (f"cached_input_tokens + cache_write_tokens ({self.cached_input + self.cache_write:,}) exceed "
                    f"input_tokens ({self.input:,}); they are parts of the input tokens.")
        if self.reasoning > self.output:
            return (f"reasoning_tokens ({self.reasoning:,}) exceed output_tokens ({self.output:,}); they are part of "
                    "the output tokens.")
        return None


def price_tokens(*, rate: Rate, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0,
                 cache_write_tokens: int = 0, reasoning_tokens: int = 0) -> int:
    """Token credits in nanocredits, exact: (input - cached - write) x input + cached x cached rate +
    write x write rate + (output - reasoning) x output + reasoning x reasoning rate. Without classes
    it is input x input + output x output, as before them."""
    plain_input = input_tokens - cached_input_tokens - cache_write_tokens
    plain_output = output_tokens - reasoning_tokens
    return (plain_input * rate.input_nanos_per_token + cached_input_tokens * rate.cached_input_nanos_per_token
            + cache_write_tokens * rate.cache_write_nanos_per_token + plain_output * rate.output_nanos_per_token
            + reasoning_tokens * rate.reasoning_nanos_per_token)


def price_counts(*, rate: Rate, counts: TokenCounts) -> int:
    return price_tokens(rate=rate, input_tokens=counts.input, output_tokens=counts.output,
                        cached_input_tokens=counts.cached_input, cache_write_tokens=counts.cache_write,
                        reasoning_tokens=counts.reasoning)


def price_node(*, rate: Rate, input_tokens: int, output_tokens: int, tool_calls: list[tuple[str, int]],
               tool_rates: dict[str, int], cached_input_tokens: int = 0, cache_write_tokens: int = 0,
               reasoning_tokens: int = 0) -> NodePrice:
    tools = []
    for name, calls in tool_calls:
        per_call = tool_rates.get(name, 0)
        tools.append({"name": name, "calls": calls, "nanos_per_call": per_call, "credits": calls * per_call})
    return NodePrice(
        token_credits=price_tokens(rate=rate, input_tokens=input_tokens, output_tokens=output_tokens,
                                   cached_input_tokens=cached_input_tokens, cache_write_tokens=cache_write_tokens,
                                   reasoning_tokens=reasoning_tokens),
        tool_credits=sum(tool["credits"] for tool in tools),
        tools=tools,
    )
