"""Response schemas for /v1/docs/ and /v1/schema/: what every answer contains, field by field.

Documentation only: the views build their answers with the *_out functions in serializers.py, and
tests/usage/test_api_docs.py checks that a real answer has exactly the fields declared here, so the
two cannot drift apart. Credits are exact decimal strings (SPEC section 2), never JSON numbers."""

from rest_framework import serializers as s


def Credits(**kwargs):  # noqa: N802 (reads like a field type)
    return s.CharField(help_text=kwargs.pop("help_text", "Credits as an exact decimal string, e.g. \"12.5\""), **kwargs)


class Period(s.Serializer):
    start = s.DateTimeField()
    end = s.DateTimeField()


class Buckets(s.Serializer):
    monthly = Credits(help_text="The plan's credits left this period (expire at its end)")
    purchased = Credits(help_text="Packs, bonuses and adjustments (never expire)")


class BudgetState(s.Serializer):
    monthly_limit = Credits(allow_null=True, help_text="null: no monthly budget")
    used = Credits(help_text="Charged this period plus credits held by running runs")
    percent = s.IntegerField(allow_null=True)
    state = s.ChoiceField(["none", "ok", "warning", "critical", "hard_limit"])


class RateLimit(s.Serializer):
    requests_per_minute = s.IntegerField()
    concurrent_runs = s.IntegerField()


class Forecast(s.Serializer):
    daily_average = Credits(help_text="Credits charged per day this period")
    runs_out_on = s.DateField(allow_null=True, help_text="When available credits run out at that pace; null: not this period")
    next_auto_recharge_on = s.DateField(allow_null=True, help_text="When auto-recharge would next buy a pack; null: off")


class Balance(s.Serializer):
    workspace = s.CharField()
    plan = s.ChoiceField(["free", "pro", "team", "enterprise"])
    edition = s.ChoiceField(["cloud", "community"])
    balance = Credits(help_text="monthly + purchased")
    available = Credits(help_text="balance - reserved: what new runs can use")
    reserved = Credits(help_text="Held by running runs")
    buckets = Buckets()
    period = Period()
    used_this_period = Credits(help_text="Charged in this billing period (holds not included)")
    budget = BudgetState()
    rate_limit = RateLimit()
    forecast = Forecast()


class ModelRate(s.Serializer):
    id = s.CharField()
    name = s.CharField()
    input_per_million = Credits(help_text="Credits per 1M input tokens")
    output_per_million = Credits(help_text="Credits per 1M output tokens")


class ToolRate(s.Serializer):
    name = s.CharField()
    per_call = Credits(help_text="Credits per call")


class Rates(s.Serializer):
    at = s.DateTimeField()
    unit = s.CharField()
    models = ModelRate(many=True)
    tools = ToolRate(many=True)


class Authorization(s.Serializer):
    id = s.CharField()
    status = s.ChoiceField(["running"])
    reserved = Credits(help_text="Credits held for this run")
    max_output_tokens = s.IntegerField(allow_null=True, help_text="What the reservation can pay for: stop generating there")
    expires_at = s.DateTimeField(help_text="The hold is released after this unless the run completes")


class ToolCharge(s.Serializer):
    name = s.CharField()
    calls = s.IntegerField()
    credits = Credits()


class Node(s.Serializer):
    name = s.CharField()
    model = s.CharField()
    input_tokens = s.IntegerField()
    output_tokens = s.IntegerField()
    token_credits = Credits()
    tool_credits = Credits()
    credits = Credits()
    tools = ToolCharge(many=True)


class Run(s.Serializer):
    id = s.CharField()
    workflow = s.CharField()
    agent = s.CharField()
    model = s.CharField(help_text="The model the run was authorized for; nodes may use others")
    member = s.EmailField()
    status = s.ChoiceField(["running", "succeeded", "failed", "cancelled", "expired"])
    reserved = Credits()
    credits = Credits(help_text="Charged; 0 until the run completes")
    over_reservation = s.BooleanField(help_text="The cost exceeded the reservation (and was charged in full)")
    created_at = s.DateTimeField()
    completed_at = s.DateTimeField(allow_null=True)
    expires_at = s.DateTimeField()
    nodes = Node(many=True)


class RunList(s.Serializer):
    results = Run(many=True)
    next_cursor = s.CharField(allow_null=True, help_text="Pass as `cursor` for the next (older) page; null on the last")


class Day(s.Serializer):
    date = s.DateField()
    credits = Credits()


class ModelSpend(s.Serializer):
    model = s.CharField()
    credits = Credits()
    input_tokens = s.IntegerField()
    output_tokens = s.IntegerField()
    runs = s.IntegerField()


class AgentSpend(s.Serializer):
    agent = s.CharField()
    credits = Credits()
    input_tokens = s.IntegerField()
    output_tokens = s.IntegerField()
    runs = s.IntegerField()


class UsageDefinitions(s.Serializer):
    available = s.CharField()
    this_period = s.CharField()
    daily_average = s.CharField()
    projected = s.CharField()


class UsagePeriod(s.Serializer):
    start = s.DateField()
    end = s.DateField()


class Usage(s.Serializer):
    # "from" is a Python keyword: declared below.
    to = s.DateField()
    available = Credits()
    this_period = Credits(help_text="Charged in this billing period")
    held_this_period = Credits(help_text="Held by running runs authorized in this billing period")
    daily_average = Credits()
    projected = Credits()
    period = UsagePeriod()
    range_total = Credits(help_text="Credits charged between from and to")
    definitions = UsageDefinitions()
    daily = Day(many=True)
    by_model = ModelSpend(many=True)
    by_agent = AgentSpend(many=True)


Usage._declared_fields = {"from": s.DateField(), **Usage._declared_fields}


class ErrorBody(s.Serializer):
    code = s.CharField(help_text="Stable, machine-readable: budget_exhausted, rate_limited, invalid_request, ...")
    message = s.CharField(help_text="For people")


class Error(s.Serializer):
    error = ErrorBody()
