"""Input validation and output shapes of the v1 API. Inputs are strict (SPEC section 10): token
counts are JSON integers between 0 and 10^12, never strings, floats or booleans."""

import re
from collections.abc import Mapping

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.money import InvalidAmount, credits_to_nanos, nanos_to_str
from usage.models import Run
from usage.bounds import date_in_bounds
from usage.export import COLUMN_SETS
from usage.provider_usage import FORMATS, UsageObjectError, usage_counts
from usage.services import MAX_NODES, MAX_TOKENS
from usage.tags import InvalidTag, tag_filter_parse, tag_group_parse, tags_check

NAME_MAX = 200


@extend_schema_field({"type": "integer", "minimum": 0, "maximum": MAX_TOKENS})
class StrictIntegerField(serializers.Field):
    """A JSON integer in [min_value, max_value]. DRF's IntegerField accepts "12" and 12.0; the
    engine must send exact counts, so anything but an integer is refused."""

    default_error_messages = {
        "invalid": "must be a whole number (a JSON integer).",
        "min_value": "must be {min_value} or more.",
        "max_value": "must be at most {max_value}.",
    }

    def __init__(self, *, min_value: int = 0, max_value: int = MAX_TOKENS, **kwargs):
        self.min_value, self.max_value = min_value, max_value
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        if data < self.min_value:
            self.fail("min_value", min_value=self.min_value)
        if data > self.max_value:
            self.fail("max_value", max_value=self.max_value)
        return data

    def to_representation(self, value):
        return value


BIGINT_MAX = 2**63 - 1
CREDITS_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,9})?$"


class CreditsAmountField(serializers.Field):
    """A positive amount of credits as a decimal string ("2.5"), up to 9 decimals and 10^12 credits;
    nanocredits inside. A JSON number is refused, as floats are on the money path. An amount above
    what a hold can be (a bigint of nanocredits) asks for as much as the limits allow."""

    default_error_messages = {
        "invalid": "must be a decimal string of credits, e.g. \"2.5\".",
        "positive": "must be more than 0 credits.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str) or not re.fullmatch(CREDITS_PATTERN, data):
            self.fail("invalid")
        try:
            nanos = credits_to_nanos(data)
        except InvalidAmount as error:
            raise serializers.ValidationError(str(error)) from None
        if nanos <= 0:
            self.fail("positive")
        return min(nanos, BIGINT_MAX)

    def to_representation(self, value):
        return nanos_to_str(value)


class TagsField(serializers.Field):
    """Cost tags: at most 10 pairs, keys [a-z0-9_.-]{1,40}, values of 1 to 100 printable characters
    (usage.tags)."""

    def to_internal_value(self, data):
        try:
            return tags_check(data)
        except InvalidTag as error:
            raise serializers.ValidationError(str(error)) from None

    def to_representation(self, value):
        return value


class TagFilterField(serializers.CharField):
    """`key:value`: runs carrying that tag. Spaces are part of a value: nothing is trimmed."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        text = super().to_internal_value(data)
        try:
            return tag_filter_parse(text)
        except InvalidTag as error:
            raise serializers.ValidationError(str(error)) from None


class TagGroupField(serializers.CharField):
    """`tag:key`: spend split by the values of that tag key."""

    def to_internal_value(self, data):
        text = super().to_internal_value(data)
        try:
            return tag_group_parse(text)
        except InvalidTag as error:
            raise serializers.ValidationError(str(error)) from None


class NameField(serializers.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", NAME_MAX)
        kwargs.setdefault("trim_whitespace", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            data.encode()
        except UnicodeEncodeError:  # a lone surrogate from JSON "\ud800": it cannot be stored
            self.fail("invalid")
        return super().to_internal_value(data)


class BoundedDateField(serializers.DateField):
    """A UTC day written YYYY-MM-DD (not 20240105 or 2024-1-5), from 2000-01-01 to 2099-12-31."""

    def __init__(self, **kwargs):
        kwargs.setdefault("validators", [date_in_bounds])
        super().__init__(**kwargs)

    def to_internal_value(self, value):
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"


class RunIdField(serializers.RegexField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictSerializer(serializers.Serializer):
    """A request body object that refuses fields it does not know, naming the first one (as Stripe's
    API does): a field silently ignored is a field silently mispriced (issue 28: cached tokens sent
    before the API took them were charged as plain input)."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = [name for name in data if name not in self.fields]
            if unknown:
                raise serializers.ValidationError(
                    {unknown[0]: [f"unknown field; this object takes {', '.join(self.fields)}."]})
        return super().to_internal_value(data)


class AuthorizeIn(StrictSerializer):
    """Authorize a run. A field this object does not list is refused with 400 naming it."""

    # The id goes into URLs (/v1/runs/<id>/complete, /w/<slug>/runs/<id>/): no slashes or spaces.
    id = RunIdField(RUN_ID_PATTERN, required=False, max_length=100,
                                error_messages={"invalid": "may contain letters, digits and . _ : - only."},
                                help_text="Your idempotency key for this run (optional).")
    workflow = NameField(help_text="Workflow name; created on first use.")
    agent = NameField(help_text="Agent name; created on first use with the default budgets.")
    model = NameField(max_length=64, help_text="Model id, e.g. gpt-4o (see GET /v1/billing/rates).")
    estimated_input_tokens = StrictIntegerField(required=False)
    estimated_cached_input_tokens = StrictIntegerField(
        required=False, help_text="Of estimated_input_tokens, those expected from the provider's prompt cache: "
                                  "max_output_tokens then counts them at the cached input rate.")
    max_output_tokens = StrictIntegerField(required=False)
    reserve = CreditsAmountField(
        required=False, help_text="Credits to hold now, a decimal string: the hold is the smaller of this and what "
                                  "every limit allows. Omit it to hold as much as the limits allow; grow the hold "
                                  "later with POST /v1/runs/{id}/extend.")
    tags = TagsField(required=False, help_text="Cost tags: at most 10 pairs; keys [a-z0-9_.-]{1,40}, values 1 to 100 "
                                               "printable characters. Filter runs with ?tag=key:value and split "
                                               "usage with ?group_by=tag:key.")


class ExtendIn(StrictSerializer):
    """Grow a running run's hold."""

    id = RunIdField(RUN_ID_PATTERN, max_length=100,
                    error_messages={"invalid": "may contain letters, digits and . _ : - only."},
                    help_text="Your extension key: the same key and body again adds nothing and answers the same.")
    credits = CreditsAmountField(help_text="Credits to add to the hold, a decimal string (e.g. \"2.5\").")


class AuthorizeOut(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.CharField()
    reserved = serializers.CharField(help_text="Credits held, exact decimal string.")
    max_output_tokens = serializers.IntegerField(allow_null=True)
    expires_at = serializers.DateTimeField()


class ToolIn(StrictSerializer):
    """The calls of one tool in a node."""

    name = NameField(max_length=64)
    calls = StrictIntegerField(max_value=MAX_TOKENS)


TOKEN_FIELDS = ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens")


class NodeIn(StrictSerializer):
    """One node: its model and its tokens, either as token fields (input_tokens and output_tokens;
    optionally cached_input_tokens and cache_write_tokens, parts of input_tokens, and reasoning_tokens,
    a part of output_tokens) or as usage_format with the provider's own usage object."""

    # Without classes a node validates to exactly what it did before them (issue 28), so the
    # idempotency hash of a completion replayed across the upgrade stays the same.

    name = NameField()
    model = NameField(max_length=64)
    input_tokens = StrictIntegerField(required=False)
    output_tokens = StrictIntegerField(required=False)
    cached_input_tokens = StrictIntegerField(required=False, help_text="Of input_tokens, read from the prompt cache.")
    cache_write_tokens = StrictIntegerField(required=False, help_text="Of input_tokens, written to the prompt cache.")
    reasoning_tokens = StrictIntegerField(required=False, help_text="Of output_tokens, spent on reasoning.")
    usage_format = serializers.ChoiceField(choices=list(FORMATS), required=False)
    usage = serializers.JSONField(required=False, help_text="The provider's usage object, as it came.")
    tools = ToolIn(many=True, required=False)

    def validate(self, data):
        if "usage_format" in data or "usage" in data:
            given = next((name for name in TOKEN_FIELDS if name in data), None)
            if given:
                raise serializers.ValidationError(
                    {given: ["send either the token fields or usage_format with usage, not both."]})
            for name in ("usage_format", "usage"):
                if name not in data:
                    raise serializers.ValidationError({name: ["This field is required with "
                                                              f"{'usage' if name == 'usage_format' else 'usage_format'}."]})
            try:
                data["counts"] = usage_counts(usage_format=data["usage_format"], usage=data["usage"])
            except UsageObjectError as error:
                raise serializers.ValidationError({"usage": [str(error)]}) from None
            return data
        for name in ("input_tokens", "output_tokens"):
            if name not in data:
                raise serializers.ValidationError({name: ["This field is required."]})
        return data


class CompleteIn(StrictSerializer):
    """Complete a run: its final status and its nodes."""

    status = serializers.ChoiceField(choices=list(Run.FINAL_STATUSES))
    nodes = NodeIn(many=True, max_length=MAX_NODES,
                   error_messages={"max_length": f"A run has at most {MAX_NODES} nodes."})


class RunListFilters(serializers.Serializer):
    from_ = BoundedDateField(required=False,
                                  help_text="First UTC day (YYYY-MM-DD), inclusive.")
    to = BoundedDateField(required=False,
                               help_text="Last UTC day (YYYY-MM-DD), inclusive.")
    agent = serializers.CharField(required=False, max_length=NAME_MAX)
    model = serializers.CharField(required=False, max_length=64)
    status = serializers.ChoiceField(required=False, choices=Run.STATUSES)
    tag = TagFilterField(required=False, max_length=141, help_text="`key:value`: only runs with that cost tag.")
    period = serializers.ChoiceField(required=False, choices=["current"],
                                     help_text="`current`: the runs authorized in this billing period (CSV).")
    cursor = serializers.CharField(required=False, max_length=200)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")  # `from` is a Python keyword
        return fields


class RangeQuery(serializers.Serializer):
    """GET /v1/usage: at most MAX_RANGE_DAYS between `from` and `to` (checked by the view)."""
    from_ = BoundedDateField(required=False,
                                  help_text="First UTC day (YYYY-MM-DD), default the period start; 2000-01-01 to 2099-12-31.")
    to = BoundedDateField(required=False,
                               help_text="Last UTC day, default today; at most two years after `from`.")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class UsageFilters(RangeQuery):
    agent = serializers.CharField(required=False, max_length=NAME_MAX)
    model = serializers.CharField(required=False, max_length=64)
    status = serializers.ChoiceField(required=False, choices=Run.STATUSES)
    tag = TagFilterField(required=False, max_length=141, help_text="`key:value`: only runs with that cost tag.")


class UsageQuery(UsageFilters):
    group_by = TagGroupField(required=False, max_length=44,
                             help_text="`tag:key`: add `by_tag`, the credits and runs for each value of that cost "
                                       "tag key (and for runs without it), which sum exactly to `range_total`.")


class ExportQuery(UsageFilters):
    period = serializers.ChoiceField(required=False, choices=["current"],
                                     help_text="`current`: the runs authorized in this billing period.")
    columns = serializers.ChoiceField(required=False, choices=list(COLUMN_SETS),
                                      help_text="`detailed` appends run_id, member, cached_input_tokens, "
                                                "cache_write_tokens, reasoning_tokens, token_credits, tool_credits "
                                                "and tags to the default columns.")


def credits_str(nanos: int) -> str:
    return nanos_to_str(nanos)


def node_out(node) -> dict:
    return {
        "name": node.name,
        "model": node.model_id,
        "input_tokens": node.input_tokens,
        "output_tokens": node.output_tokens,
        "cached_input_tokens": node.cached_input_tokens,
        "cache_write_tokens": node.cache_write_tokens,
        "reasoning_tokens": node.reasoning_tokens,
        "token_credits": credits_str(node.token_credits),
        "tool_credits": credits_str(node.tool_credits),
        "credits": credits_str(node.credits),
        "tools": [{"name": t["name"], "calls": t["calls"], "credits": credits_str(t["credits"])} for t in node.tools],
    }


def _dt(value):
    return value.isoformat().replace("+00:00", "Z") if value else None


def run_out(run: Run, nodes=None) -> dict:
    """A run wherever the API returns one (SPEC section 7). Needs workflow, agent and member__user
    loaded (select_related) and the nodes prefetched or passed in."""
    nodes = list(run.nodes.all()) if nodes is None else nodes
    return {
        "id": run.public_id,
        "workflow": run.workflow.name,
        "agent": run.agent.name,
        "model": run.model_id,
        "member": run.member.user.email,
        "status": run.status,
        "reserved": credits_str(run.reserved),
        "max_output_tokens": run.max_output_tokens,
        "credits": credits_str(run.credits),
        "over_reservation": run.over_reservation,
        "created_at": _dt(run.created_at),
        "completed_at": _dt(run.completed_at),
        "expires_at": _dt(run.expires_at),
        "tags": run.tags,
        "nodes": [node_out(node) for node in nodes],
    }


def authorization_out(run: Run) -> dict:
    return {
        "id": run.public_id,
        "status": run.status,
        "reserved": credits_str(run.reserved),
        "max_output_tokens": run.max_output_tokens,
        "expires_at": _dt(run.expires_at),
        "tags": run.tags,
    }


def extension_out(extension) -> dict:
    """The answer to an extension (a replay repeats it): the run's hold after it."""
    return {
        "id": extension.run_id,
        "status": Run.RUNNING,
        "reserved": credits_str(extension.reserved),
        "max_output_tokens": extension.max_output_tokens,
        "expires_at": _dt(extension.expires_at),
        "extension": {"id": extension.key, "requested": credits_str(extension.requested),
                      "added": credits_str(extension.added)},
    }
