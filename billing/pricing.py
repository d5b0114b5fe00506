"""Exact pricing: cost_nanocredits = tokens * rate_nanos_per_token (+ calls * tool rate). No floats."""

from dataclasses import dataclass, field
from datetime import datetime

from .edition import is_community
from .models import ModelRate, ToolRate
from .sql import placeholders, sql_rows


@dataclass(frozen=True)
class Rate:
    model_id: str
    input_nanos_per_token: int
    output_nanos_per_token: int


def model_rate_sql(column: str) -> str:
    """The rate of one model in force at a time, as a scalar subquery of fixed text (billing.sql) for
    the charge path to add to a statement it makes anyway: `column` is input_nanos_per_token or
    output_nanos_per_token; its parameters are the model id, then the time. Read the pair back with
    rate_from_columns."""
    return (f"(SELECT r.{column} FROM billing_modelrate r WHERE r.model_id = %s AND r.effective_from <= %s "
            "ORDER BY r.effective_from DESC LIMIT 1)")


def rate_from_columns(*, model_id: str, rate_in: int | None, rate_out: int | None) -> Rate | None:
    """The Rate that two model_rate_sql subqueries read, or None when the model has no rate in force."""
    if rate_in is None or rate_out is None:
        return None
    return Rate(model_id, 0, 0) if is_community() else Rate(model_id, rate_in, rate_out)


def model_rates_at(*, at: datetime, model_ids=None) -> dict[str, Rate]:
    """The rate in force at `at` for each model (one query; rates are few)."""
    rates: dict[str, Rate] = {}
    query = ModelRate.objects.filter(effective_from__lte=at).order_by("model_id", "-effective_from")
    if model_ids is not None:
        query = query.filter(model_id__in=list(model_ids))
    for model_id, rate_in, rate_out in query.values_list("model_id", "input_nanos_per_token", "output_nanos_per_token"):
        if model_id not in rates:
            rates[model_id] = Rate(model_id, 0, 0) if is_community() else Rate(model_id, rate_in, rate_out)
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


def rates_at(*, at: datetime, model_ids, tools) -> tuple[dict[str, Rate], dict[str, int]]:
    """model_rates_at and tool_rates_at together, in one statement of fixed text (a UNION ALL; the
    charge path, billing.sql)."""
    model_ids, tools = sorted(model_ids), sorted(tools)
    parts, params = [], []
    if model_ids:
        parts.append("SELECT 'model', model_id, input_nanos_per_token, output_nanos_per_token, effective_from "
                     f"FROM billing_modelrate WHERE effective_from <= %s AND model_id IN ({placeholders(len(model_ids))})")
        params += [at, *model_ids]
    if tools:
        parts.append("SELECT 'tool', tool, nanos_per_call, 0, effective_from "
                     f"FROM billing_toolrate WHERE effective_from <= %s AND tool IN ({placeholders(len(tools))})")
        params += [at, *tools]
    models: dict[str, Rate] = {}
    tool_rates: dict[str, int] = {}
    if not parts:
        return models, tool_rates
    community = is_community()
    for kind, name, first, second, _ in sorted(sql_rows(" UNION ALL ".join(parts), params), key=lambda row: row[4],
                                               reverse=True):
        if kind == "model" and name not in models:
            models[name] = Rate(name, 0, 0) if community else Rate(name, first, second)
        elif kind == "tool" and name not in tool_rates:
            tool_rates[name] = 0 if community else first
    return models, tool_rates


@dataclass
class NodePrice:
    token_credits: int
    tool_credits: int
    tools: list[dict] = field(default_factory=list)

    @property
    def credits(self) -> int:
        return self.token_credits + self.tool_credits


def price_tokens(*, rate: Rate, input_tokens: int, output_tokens: int) -> int:
    return input_tokens * rate.input_nanos_per_token + output_tokens * rate.output_nanos_per_token


def price_node(*, rate: Rate, input_tokens: int, output_tokens: int, tool_calls: list[tuple[str, int]],
               tool_rates: dict[str, int]) -> NodePrice:
    tools = []
    for name, calls in tool_calls:
        per_call = tool_rates.get(name, 0)
        tools.append({"name": name, "calls": calls, "nanos_per_call": per_call, "credits": calls * per_call})
    return NodePrice(
        token_credits=price_tokens(rate=rate, input_tokens=input_tokens, output_tokens=output_tokens),
        tool_credits=sum(tool["credits"] for tool in tools),
        tools=tools,
    )
