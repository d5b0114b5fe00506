"""The response shapes and error answers of /v1/ for the OpenAPI schema (/v1/schema/).

The views build their answers as plain dicts (usage.api.views, serializers.run_out); these
serializers only describe them, and tests/usage/test_schema_conformance.py (schemathesis) checks
every answer against them. `document_errors` adds the error answers every operation can give."""

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers as s

from usage.models import Run
from usage.provider_usage import MAX_TOKENS


class ErrorDetail(s.Serializer):
    code = s.CharField(help_text="Machine-readable: invalid_request, unauthorized, not_found, rate_limited, ...")
    message = s.CharField(help_text="A sentence for people.")
    limit = s.CharField(required=False, help_text="On a refusal by a developer token's limits: the one that binds "
                                                  "(max_credits_per_run, max_credits_per_day, max_credits_per_month, "
                                                  "allowed_models, expires_at).")
    request_id = s.CharField(required=False, help_text="Only on 500: quote it to support; it is in the logs.")


class Error(s.Serializer):
    error = ErrorDetail()


class Ping(s.Serializer):
    ok = s.BooleanField()
    workspace = s.CharField()


class Buckets(s.Serializer):
    monthly = s.CharField()
    purchased = s.CharField()


class Period(s.Serializer):
    start = s.CharField(help_text="ISO 8601")
    end = s.CharField(help_text="ISO 8601")


class BudgetState(s.Serializer):
    monthly_limit = s.CharField(allow_null=True)
    used = s.CharField()
    percent = s.IntegerField(allow_null=True)
    state = s.ChoiceField(choices=["none", "ok", "warning", "critical", "hard_limit"])


class RateLimit(s.Serializer):
    requests_per_minute = s.IntegerField()
    concurrent_runs = s.IntegerField()


class Forecast(s.Serializer):
    daily_average = s.CharField(help_text="Credits charged per day on average this period.")
    runs_out_on = s.DateField(allow_null=True, help_text="When available credits run out at that rate; null without "
                                                          "usage or when that is more than a year away.")
    runs_out_beyond_horizon = s.BooleanField(help_text="True when available credits last more than a year at that rate.")
    next_auto_recharge_on = s.DateField(allow_null=True, help_text="When auto-recharge next fires at that rate; null when off.")


class TokenLimits(s.Serializer):
    """The calling developer token's limits and use (issue 29)."""
    name = s.CharField()
    prefix = s.CharField(help_text="The token's first characters.")
    max_credits_per_run = s.CharField(allow_null=True, help_text="Most a run authorized with it may hold; null: none.")
    max_credits_per_day = s.CharField(allow_null=True, help_text="Charged plus held per UTC day; null: no limit.")
    max_credits_per_month = s.CharField(allow_null=True, help_text="Charged plus held per billing period; null: no limit.")
    used_today = s.CharField(help_text="Charged plus held today (UTC) by runs authorized with this token.")
    used_this_period = s.CharField(help_text="Charged plus held this billing period by runs authorized with this token.")
    allowed_models = s.ListField(child=s.CharField(), help_text="Models it may use; empty: every model.")
    expires_at = s.CharField(allow_null=True, help_text="ISO 8601; from then on every call with it is 401.")


class Balance(s.Serializer):
    workspace = s.CharField()
    plan = s.CharField()
    edition = s.ChoiceField(choices=["cloud", "community"])
    balance = s.CharField(help_text="Credits, exact decimal string (may be negative after an overrun).")
    available = s.CharField()
    reserved = s.CharField()
    buckets = Buckets()
    period = Period()
    used_this_period = s.CharField()
    budget = BudgetState()
    rate_limit = RateLimit()
    monthly_credits = s.CharField(help_text="Credits granted each billing period: the plan's, or this workspace's own.")
    custom_limits = s.ListField(child=s.ChoiceField(choices=["monthly_credits", "requests_per_minute",
                                                             "concurrent_runs"]),
                                help_text="Which of monthly_credits and rate_limit are this workspace's own "
                                          "(agreed with sales, Enterprise) rather than its plan's.")
    forecast = Forecast()
    token = TokenLimits(allow_null=True, help_text="The calling token's limits and use; null for a token without limits.")


class ModelRate(s.Serializer):
    id = s.CharField()
    name = s.CharField()
    input_per_million = s.CharField()
    cached_input_per_million = s.CharField(help_text="Input tokens read from the provider's prompt cache; "
                                                     "the input rate when the model has none of its own.")
    cache_write_per_million = s.CharField(help_text="Input tokens written to the prompt cache; the input rate "
                                                    "when the model has none of its own.")
    output_per_million = s.CharField()
    reasoning_per_million = s.CharField(help_text="Output tokens spent on reasoning; the output rate when the "
                                                  "model has none of its own.")


class ToolRate(s.Serializer):
    name = s.CharField()
    per_call = s.CharField()


class Rates(s.Serializer):
    at = s.CharField(help_text="ISO 8601")
    models = ModelRate(many=True)
    tools = ToolRate(many=True)
    unit = s.CharField()
    classes = s.CharField()


class Authorization(s.Serializer):
    id = s.CharField()
    status = s.ChoiceField(choices=Run.STATUSES)
    reserved = s.CharField(help_text="Credits held, exact decimal string.")
    max_output_tokens = s.IntegerField(allow_null=True)
    expires_at = s.CharField(help_text="ISO 8601")
    tags = s.DictField(child=s.CharField(), help_text="The run's cost tags ({} when none).")


class ExtensionDone(s.Serializer):
    id = s.CharField(help_text="The extension key.")
    requested = s.CharField(help_text="Credits asked for.")
    added = s.CharField(help_text="Credits the hold grew by: what was asked, or less when a limit leaves less.")


class ExtensionOut(s.Serializer):
    id = s.CharField(help_text="The run's id.")
    status = s.ChoiceField(choices=[Run.RUNNING])
    reserved = s.CharField(help_text="The run's hold after the extension, exact decimal string.")
    max_output_tokens = s.IntegerField(allow_null=True, help_text="Recomputed for the grown hold.")
    expires_at = s.CharField(help_text="ISO 8601: now plus the reservation TTL.")
    extension = ExtensionDone()


class ToolUse(s.Serializer):
    name = s.CharField()
    calls = s.IntegerField()
    credits = s.CharField()


class NodeCost(s.Serializer):
    name = s.CharField()
    model = s.CharField()
    input_tokens = s.IntegerField()
    output_tokens = s.IntegerField()
    cached_input_tokens = s.IntegerField(help_text="Of input_tokens, read from the prompt cache.")
    cache_write_tokens = s.IntegerField(help_text="Of input_tokens, written to the prompt cache.")
    reasoning_tokens = s.IntegerField(help_text="Of output_tokens, spent on reasoning.")
    token_credits = s.CharField()
    tool_credits = s.CharField()
    credits = s.CharField()
    tools = ToolUse(many=True)


class RunOut(s.Serializer):
    id = s.CharField()
    workflow = s.CharField()
    agent = s.CharField()
    model = s.CharField()
    member = s.CharField(help_text="E-mail of the member whose token authorized the run.")
    status = s.ChoiceField(choices=Run.STATUSES)
    reserved = s.CharField()
    credits = s.CharField()
    over_reservation = s.BooleanField()
    created_at = s.CharField(help_text="ISO 8601")
    completed_at = s.CharField(allow_null=True)
    expires_at = s.CharField(allow_null=True)
    max_output_tokens = s.IntegerField(allow_null=True, help_text="What the hold pays for at the output rate.")
    tags = s.DictField(child=s.CharField(), help_text="The run's cost tags ({} when none).")
    nodes = NodeCost(many=True)


class RetentionNotice(s.Serializer):
    """Run detail older than RUN_DETAIL_RETENTION_MONTHS is dropped (rollups, ledger and invoices stay)."""
    detail_kept_from = s.DateField(allow_null=True, help_text="First day whose run detail is kept; null while nothing was dropped.")
    notice = s.CharField(allow_null=True, help_text="A sentence when the range starts before the kept detail, else null.")


class RunPage(RetentionNotice):
    results = RunOut(many=True)
    next_cursor = s.CharField(allow_null=True)


class Definitions(s.Serializer):
    available = s.CharField()
    this_period = s.CharField()
    daily_average = s.CharField()
    projected = s.CharField()


class DayCredits(s.Serializer):
    date = s.DateField()
    credits = s.CharField()


class ModelUsage(s.Serializer):
    model = s.CharField()
    credits = s.CharField()
    input_tokens = s.IntegerField()
    output_tokens = s.IntegerField()
    cached_input_tokens = s.IntegerField(help_text="Of input_tokens, read from the prompt cache.")
    cache_write_tokens = s.IntegerField(help_text="Of input_tokens, written to the prompt cache.")
    reasoning_tokens = s.IntegerField(help_text="Of output_tokens, spent on reasoning.")
    runs = s.IntegerField()


class PromptCaching(s.Serializer):
    input_tokens = s.IntegerField()
    cached_input_tokens = s.IntegerField()
    cache_write_tokens = s.IntegerField()
    cached_percent = s.IntegerField(allow_null=True, help_text="Cached share of the input tokens, rounded down; "
                                                               "null without input tokens.")
    saved = s.CharField(help_text="Credits caching saved: the cached and written tokens at the plain input rate, "
                                  "minus what they were charged (negative when writes cost more than reads saved).")


class AgentUsage(s.Serializer):
    agent = s.CharField()
    credits = s.CharField()
    input_tokens = s.IntegerField()
    output_tokens = s.IntegerField()
    runs = s.IntegerField()


class TagUsage(s.Serializer):
    value = s.CharField(allow_null=True, help_text="The tag's value; null for the runs without that tag key.")
    credits = s.CharField()
    runs = s.IntegerField()


class UsageFrom(RetentionNotice):
    # `from` is a Python keyword: renamed in get_fields, like the filters.
    from_ = s.DateField()
    to = s.DateField()
    available = s.CharField()
    this_period = s.CharField()
    held_this_period = s.CharField()
    daily_average = s.CharField()
    projected = s.CharField()
    period = Period()
    range_total = s.CharField()
    definitions = Definitions()
    daily = DayCredits(many=True)
    by_model = ModelUsage(many=True)
    by_agent = AgentUsage(many=True)
    prompt_caching = PromptCaching(help_text="Prompt caching over the range, under the filters.")
    group_by = s.CharField(required=False, help_text="With ?group_by=tag:key: that parameter.")
    by_tag = TagUsage(many=True, required=False,
                      help_text="With ?group_by=tag:key: the range's credits and runs for each value of the tag key "
                                "and for the runs without it (value null), under every filter; the credits sum "
                                "exactly to range_total.")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


ERRORS = {
    400: "invalid_request: the body, a parameter or a bound is wrong (the message names it); nothing changed",
    401: "unauthorized: no token, an unknown token or a revoked one; token_expired: the token's expires_at has passed",
    404: "not_found: no such object in this token's workspace",
    413: "payload_too_large: the body is over 1 MB",
    429: "rate_limited (requests per minute) or concurrency_limit (runs at once); see Retry-After",
    500: "internal_error: an unexpected error, logged with the request_id given in the answer",
    503: "service_unavailable: the database or Redis is unreachable; retry after Retry-After",
}


def document_errors(result, generator, request, public):
    """drf-spectacular postprocessing hook: every /v1/ operation documents the errors it can give,
    all in the one error shape; responses a view declared keep their description."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    error_ref = {"$ref": "#/components/schemas/Error"}
    if "Error" not in schemas:
        schemas["Error"] = {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "limit": {"type": "string"},
                           "request_id": {"type": "string"}}}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            statuses = [400, 401, 429, 500, 503]
            if "{" in path:
                statuses.append(404)
            if method == "post":
                statuses.append(413)
            for status in statuses:
                responses.setdefault(str(status), {"description": ERRORS[status]})
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    response["content"] = {"application/json": {"schema": error_ref}}
    return result


_COUNT = {"type": "integer", "minimum": 0, "maximum": MAX_TOKENS}
_OPTIONAL = {**_COUNT, "nullable": True}


def _details(field: str) -> dict:
    return {"type": "object", "nullable": True, "properties": {field: _OPTIONAL}}


# The fields of each provider's usage object that carry counts (usage.provider_usage); every other
# field of the provider's object is accepted and ignored.
USAGE_OBJECTS = {
    "openai": {"description": "OpenAI Chat Completions `usage`.",
               "properties": {"prompt_tokens": _COUNT, "completion_tokens": _COUNT,
                              "prompt_tokens_details": _details("cached_tokens"),
                              "completion_tokens_details": _details("reasoning_tokens")},
               "required": ["prompt_tokens", "completion_tokens"]},
    "anthropic": {"description": "Anthropic Messages `usage`; input_tokens excludes the cache fields, which are added.",
                  "properties": {"input_tokens": _COUNT, "output_tokens": _COUNT,
                                 "cache_read_input_tokens": _OPTIONAL, "cache_creation_input_tokens": _OPTIONAL},
                  "required": ["input_tokens", "output_tokens"]},
    "gemini": {"description": "Gemini `usageMetadata`; thoughtsTokenCount is added to the output, "
                              "toolUsePromptTokenCount to the input.",
               "properties": {name: _OPTIONAL for name in ("promptTokenCount", "candidatesTokenCount",
                                                           "cachedContentTokenCount", "thoughtsTokenCount",
                                                           "toolUsePromptTokenCount")} | {"promptTokenCount": _COUNT},
               "required": ["promptTokenCount"]},
}
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens")


def strict_request_bodies(result, generator, request, public):
    """drf-spectacular postprocessing hook: request bodies take no field they do not list
    (additionalProperties: false, as the API refuses them), and a node is one of: the token fields,
    or a usage_format with that provider's usage object."""
    schemas = result.get("components", {}).get("schemas", {})
    for name in ("AuthorizeIn", "CompleteIn", "ToolIn", "ExtendIn"):
        if name in schemas:
            schemas[name]["additionalProperties"] = False
    node = schemas.get("NodeIn")
    if node is None or "oneOf" in node:
        return result
    properties = node["properties"]
    common = {name: properties[name] for name in ("name", "model", "tools")}
    variants = [{"type": "object", "title": "Token fields", "additionalProperties": False,
                 "properties": {**common, **{name: properties[name] for name in TOKEN_FIELDS}},
                 "required": ["name", "model", "input_tokens", "output_tokens"]}]
    for usage_format, usage in USAGE_OBJECTS.items():
        variants.append({"type": "object", "title": f"{usage_format} usage object", "additionalProperties": False,
                         "properties": {**common, "usage_format": {"type": "string", "enum": [usage_format]},
                                        "usage": {"type": "object", **usage}},
                         "required": ["name", "model", "usage_format", "usage"]})
    schemas["NodeIn"] = {"description": node.get("description", ""), "oneOf": variants}
    schemas.pop("UsageFormatEnum", None)
    return result


# What str.strip() removes (Python's whitespace), spelled out: ECMA's \s differs from Python's.
_SPACE = r"\t\n\u000b\f\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NAME_PATTERN = rf"^[^\u0000]*[^{_SPACE}\u0000][^\u0000]*$"


class NameFieldSchema(OpenApiSerializerFieldExtension):
    """Names are trimmed and may not be blank or contain NUL: say so, so "" and "  " are known
    to be refused."""

    target_class = "usage.api.serializers.NameField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "minLength": 1, "maxLength": self.target.max_length, "pattern": NAME_PATTERN}


class CreditsAmountSchema(OpenApiSerializerFieldExtension):
    """A positive decimal string of credits, up to 12 digits before the point and 9 after."""

    target_class = "usage.api.serializers.CreditsAmountField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "pattern": r"^[0-9]{1,12}(\.[0-9]{1,9})?$", "example": "2.5"}


class TagsSchema(OpenApiSerializerFieldExtension):
    """At most 10 pairs of strings of 1 to 100 characters. The key pattern ([a-z0-9_.-]{1,40}) and
    the values' printable characters are in the description: OpenAPI 3.0 cannot state them."""

    target_class = "usage.api.serializers.TagsField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "object", "maxProperties": 10,
                "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 100},
                "description": "Cost tags: keys match [a-z0-9_.-]{1,40}; values are 1 to 100 printable characters.",
                "example": {"customer": "acme", "env": "prod"}}


class TagFilterSchema(OpenApiSerializerFieldExtension):
    target_class = "usage.api.serializers.TagFilterField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "pattern": r"^[a-z0-9_.-]{1,40}:.{1,100}$", "example": "customer:acme"}


class TagGroupSchema(OpenApiSerializerFieldExtension):
    target_class = "usage.api.serializers.TagGroupField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "pattern": r"^tag:[a-z0-9_.-]{1,40}$", "example": "tag:customer"}


class BoundedDateSchema(OpenApiSerializerFieldExtension):
    """2000-01-01 to 2099-12-31, written YYYY-MM-DD: the 20xx year in the pattern is the bound."""

    target_class = "usage.api.serializers.BoundedDateField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "format": "date", "pattern": r"^20[0-9]{2}-[0-9]{2}-[0-9]{2}$"}
