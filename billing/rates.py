"""Rate versions. Rates are append-only: a change is a new row effective now, so a run is always
priced with the version in force when it was authorized (billing.pricing reads them)."""

from django.utils import timezone

from .models import AIModel, ModelRate, ToolRate


def model_rate_current(*, model: AIModel, at=None) -> ModelRate | None:
    return model.rates.filter(effective_from__lte=at or timezone.now()).order_by("-effective_from").first()


def tool_rate_current(*, tool: str, at=None) -> ToolRate | None:
    return ToolRate.objects.filter(tool=tool, effective_from__lte=at or timezone.now()).order_by("-effective_from").first()


def model_rate_set(*, model: AIModel, input_nanos_per_token: int, output_nanos_per_token: int, actor=None) -> ModelRate | None:
    """A new version effective now, unless the rates in force are already these (None then)."""
    current = model_rate_current(model=model)
    if current and (current.input_nanos_per_token, current.output_nanos_per_token) == (
            input_nanos_per_token, output_nanos_per_token):
        return None
    return ModelRate.objects.create(model=model, input_nanos_per_token=input_nanos_per_token,
                                    output_nanos_per_token=output_nanos_per_token, effective_from=timezone.now(),
                                    created_by=actor)


def tool_rate_set(*, tool: str, nanos_per_call: int, actor=None) -> ToolRate | None:
    """A new version of a tool's per-call rate effective now, unless it is already in force."""
    current = tool_rate_current(tool=tool)
    if current and current.nanos_per_call == nanos_per_call:
        return None
    return ToolRate.objects.create(tool=tool, nanos_per_call=nanos_per_call, effective_from=timezone.now(),
                                   created_by=actor)
