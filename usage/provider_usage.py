"""Provider usage objects as they come (issue 28): a node may send the usage object its model
provider returned, with `usage_format`, instead of the token fields. Each is mapped here into the
token classes of billing.pricing.TokenCounts; docs/usage-and-api.md has a worked example of each.

- openai (Chat Completions `usage`): prompt_tokens counts cached tokens and completion_tokens counts
  reasoning tokens, so they map as they are.
- anthropic (Messages `usage`): input_tokens EXCLUDES the cache reads and writes, so the input is
  input_tokens + cache_read_input_tokens + cache_creation_input_tokens.
- gemini (`usageMetadata`): candidatesTokenCount EXCLUDES thoughtsTokenCount and promptTokenCount
  excludes toolUsePromptTokenCount (totalTokenCount is the sum of all four), and Google bills
  thoughts as output and tool-use prompts as input, so output = candidates + thoughts and
  input = prompt + tool-use prompt.

The object is the provider's, not ours: fields we do not price (total_tokens, audio_tokens,
service_tier, ...) are accepted and ignored, and new ones a provider adds do not break billing.
The fields that carry the counts are checked strictly: each is a whole number from 0 to 10^12 (or
null, read as 0, where the provider may send null), and the ones the provider always sends are
required, so a misspelt object (snake_case Gemini keys, say) is refused rather than charged 0."""

from collections.abc import Mapping

from billing.pricing import TokenCounts

MAX_TOKENS = 10**12
FORMATS = ("openai", "anthropic", "gemini")


class UsageObjectError(ValueError):
    """A usage object that cannot be priced; the message names the field (`usage.prompt_tokens`)."""


def _count(usage: Mapping, path: tuple[str, ...], *, required: bool = False) -> int:
    value = usage
    for key in path:
        if value is None:
            break
        if not isinstance(value, Mapping):
            raise UsageObjectError(f"usage.{'.'.join(path[:-1])} must be an object.")
        if key not in value:
            if required:
                raise UsageObjectError(f"usage.{'.'.join(path)} is required for this usage_format.")
            return 0
        value = value[key]
    if value is None and not required:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageObjectError(f"usage.{'.'.join(path)} must be a whole number (a JSON integer).")
    if not 0 <= value <= MAX_TOKENS:
        raise UsageObjectError(f"usage.{'.'.join(path)} must be from 0 to {MAX_TOKENS}.")
    return value


def _openai(usage: Mapping) -> TokenCounts:
    return TokenCounts(
        input=_count(usage, ("prompt_tokens",), required=True),
        output=_count(usage, ("completion_tokens",), required=True),
        cached_input=_count(usage, ("prompt_tokens_details", "cached_tokens")),
        reasoning=_count(usage, ("completion_tokens_details", "reasoning_tokens")),
    )


def _anthropic(usage: Mapping) -> TokenCounts:
    cached = _count(usage, ("cache_read_input_tokens",))
    written = _count(usage, ("cache_creation_input_tokens",))
    return TokenCounts(input=_count(usage, ("input_tokens",), required=True) + cached + written,
                       output=_count(usage, ("output_tokens",), required=True), cached_input=cached,
                       cache_write=written)


def _gemini(usage: Mapping) -> TokenCounts:
    thoughts = _count(usage, ("thoughtsTokenCount",))
    return TokenCounts(
        input=_count(usage, ("promptTokenCount",), required=True) + _count(usage, ("toolUsePromptTokenCount",)),
        output=_count(usage, ("candidatesTokenCount",)) + thoughts,
        cached_input=_count(usage, ("cachedContentTokenCount",)),
        reasoning=thoughts,
    )


_MAPPERS = {"openai": _openai, "anthropic": _anthropic, "gemini": _gemini}


def usage_counts(*, usage_format: str, usage) -> TokenCounts:
    """The token classes of a provider's usage object; UsageObjectError names what is wrong."""
    if usage_format not in _MAPPERS:
        raise UsageObjectError(f"usage_format must be one of {', '.join(FORMATS)}.")
    if not isinstance(usage, Mapping):
        raise UsageObjectError("usage must be the provider's usage object (a JSON object).")
    counts = _MAPPERS[usage_format](usage)
    if counts.input > MAX_TOKENS or counts.output > MAX_TOKENS:
        raise UsageObjectError(f"usage adds up to more than {MAX_TOKENS} input or output tokens.")
    return counts
