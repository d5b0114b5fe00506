"""Rate versions. Rates are append-only: a change is a new row effective now, so a run is always
priced with the version in force when it was authorized (billing.pricing reads them)."""

from django.utils import timezone

from .models import AIModel, ModelRate, ToolRate


def model_rate_current(*, model: AIModel, at=None) -> ModelRate | None:
    return model.rates.filter(effective_from__lte=at or timezone.now()).order_by("-effective_from").first()


def tool_rate_current(*, tool: str, at=None) -> ToolRate | None:
    return ToolRate.objects.filter(tool=tool, effective_from__lte=at or timezone.now()).order_by("-effective_from").first()


CLASS_FIELDS = ("cached_input_nanos_per_token", "cache_write_nanos_per_token", "reasoning_nanos_per_token")


def model_rate_set(*, model: AIModel, input_nanos_per_token: int, output_nanos_per_token: int,
                   cached_input_nanos_per_token: int | None = None, cache_write_nanos_per_token: int | None = None,
                   reasoning_nanos_per_token: int | None = None, actor=None) -> ModelRate | None:
    """A new version effective now, unless the rates in force are already these (None then). A
    class rate left None is priced at its parent's rate (billing.pricing.Rate)."""
    wanted = {"input_nanos_per_token": input_nanos_per_token, "output_nanos_per_token": output_nanos_per_token,
              "cached_input_nanos_per_token": cached_input_nanos_per_token,
              "cache_write_nanos_per_token": cache_write_nanos_per_token,
              "reasoning_nanos_per_token": reasoning_nanos_per_token}
    current = model_rate_current(model=model)
    if current and all(getattr(current, name) == value for name, value in wanted.items()):
        return None
    return ModelRate.objects.create(model=model, effective_from=timezone.now(), created_by=actor, **wanted)


def tool_rate_set(*, tool: str, nanos_per_call: int, actor=None) -> ToolRate | None:
    """A new version of a tool's per-call rate effective now, unless it is already in force."""
    current = tool_rate_current(tool=tool)
    if current and current.nanos_per_call == nanos_per_call:
        return None
    return ToolRate.objects.create(tool=tool, nanos_per_call=nanos_per_call, effective_from=timezone.now(),
                                   created_by=actor)
