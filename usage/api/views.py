"""The v1 API: one view per operation; each validates with an input serializer, calls one service
or selector, and answers with the SPEC section 7 shapes. Errors go through usage.api.errors."""

import threading

from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.models import AIModel, Wallet
from billing.replica import current_read_alias, reads_from_replica
from billing.money import nanos_to_str, rate_str
from billing.pricing import TokenCounts, model_rates_at, tool_rates_at
from budgets.selectors import budget_status, token_use
from budgets.ratelimit import limiter_check
from usage.bounds import MAX_RANGE_DAYS
from usage.errors import InvalidRequest, RunNotFound
from usage.export import csv_response
from usage.filters import RunFilter
from usage.forecast import credit_forecast
from usage.selectors import (InvalidCursor, default_range, detail_kept_from, detail_notice, run_detail,
                             run_dropped_notice, runs_page, usage_summary)
from usage.services import NodeInput, request_hash, run_authorize, run_complete, run_extend

from . import docs, schema
from .errors import ApiError
from .serializers import (AuthorizeIn, CompleteIn, ExportQuery, ExtendIn, RunListFilters, UsageQuery, authorization_out,
                          extension_out, run_out)

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


class WorkspaceAPIView(APIView):
    """Every token-authenticated /v1/ call: counts against the workspace's rate limit (SPEC 3) and
    carries the X-RateLimit-* headers, refused or not."""

    def initial(self, request, *args, **kwargs):
        # Read the body through Django first: over DATA_UPLOAD_MAX_MEMORY_SIZE it raises
        # RequestDataTooBig (413); DRF's stream parsing would otherwise read any size.
        if request.method in ("POST", "PUT", "PATCH"):
            request._request.body  # noqa: B018
        super().initial(request, *args, **kwargs)
        self.membership = request.auth.membership
        self.workspace = self.membership.workspace
        # A token served from the process cache was counted while its freshness was checked.
        decision = getattr(request._request, "rate_limit", None)
        if decision is None:
            decision = limiter_check(workspace=self.workspace)
        request.rate_limit = decision
        if not decision.allowed:
            raise ApiError(429, "rate_limited",
                           f"Over {decision.limit} requests per minute for this workspace; retry in {decision.retry_after}s.",
                           retry_after=decision.retry_after)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        decision = getattr(request, "rate_limit", None)
        if decision is not None:
            response["X-RateLimit-Limit"] = str(decision.limit)
            response["X-RateLimit-Remaining"] = str(max(decision.remaining, 0))
            response["X-RateLimit-Reset"] = str(max(decision.reset_seconds, 0))
        return response


class PingView(WorkspaceAPIView):
    @extend_schema(summary="Check a token (no-op)", tags=["meta"],
                   responses=schema.Ping)
    def get(self, request):
        return Response({"ok": True, "workspace": self.workspace.slug})


class BalanceView(WorkspaceAPIView):
    @extend_schema(summary="Balance, buckets, period, budget and limits", tags=["billing"],
                   responses=OpenApiResponse(schema.Balance, examples=[docs.BALANCE_EXAMPLE]))
    def get(self, request):
        workspace = self.workspace
        wallet = Wallet.objects.get(workspace_id=workspace.pk)
        status = budget_status(workspace=workspace)
        limit = status.limit
        return Response({
            "workspace": workspace.slug,
            "plan": workspace.plan_id,
            "edition": settings.BILLING_EDITION,
            "balance": nanos_to_str(wallet.balance),
            "available": nanos_to_str(wallet.available),
            "reserved": nanos_to_str(wallet.reserved),
            "buckets": {"monthly": nanos_to_str(wallet.monthly), "purchased": nanos_to_str(wallet.purchased)},
            "period": {"start": workspace.period_start.isoformat().replace("+00:00", "Z"),
                       "end": workspace.period_end.isoformat().replace("+00:00", "Z")},
            "used_this_period": nanos_to_str(status.spend.charged),
            "budget": {"monthly_limit": nanos_to_str(limit) if limit is not None else None,
                       "used": nanos_to_str(status.spend.used), "percent": status.percent, "state": status.state},
            "rate_limit": {"requests_per_minute": workspace.requests_per_minute,
                           "concurrent_runs": workspace.concurrent_runs},
            "monthly_credits": nanos_to_str(workspace.monthly_credits),
            "custom_limits": workspace.custom_limits,
            "forecast": forecast_json(credit_forecast(workspace=workspace)),
            "token": token_json(request.auth, workspace=workspace),
        })


def token_json(token, *, workspace) -> dict | None:
    """The calling token's limits and use (issue 29); None for a token without limits."""
    if not token.has_limits:
        return None
    use = token_use(workspace=workspace, token_ids=[token.pk], day=timezone.now().date()).get(token.pk)
    limit = lambda nanos: nanos_to_str(nanos) if nanos is not None else None  # noqa: E731
    return {"name": token.name, "prefix": token.prefix,
            "max_credits_per_run": limit(token.max_credits_per_run),
            "max_credits_per_day": limit(token.max_credits_per_day),
            "max_credits_per_month": limit(token.max_credits_per_month),
            "used_today": nanos_to_str(use.today if use else 0),
            "used_this_period": nanos_to_str(use.this_period if use else 0),
            "allowed_models": list(token.allowed_models),
            "expires_at": token.expires_at.isoformat().replace("+00:00", "Z") if token.expires_at else None}


def forecast_json(forecast) -> dict:
    """Dates are omitted (null) when there is no usage this period, or when they lie beyond the
    forecast's one-year horizon (then `runs_out_beyond_horizon` is true)."""
    return {"daily_average": nanos_to_str(forecast.daily_average),
            "runs_out_on": forecast.runs_out_on.isoformat() if forecast.runs_out_on else None,
            "runs_out_beyond_horizon": forecast.beyond_horizon,
            "next_auto_recharge_on": forecast.next_auto_recharge_on.isoformat() if forecast.next_auto_recharge_on else None}


CLASSES_NOTE = ("cached input and cache write tokens are parts of the input tokens, reasoning tokens a part of the "
                "output tokens; a class without a rate of its own is listed, and priced, at its parent's rate")


class RatesView(WorkspaceAPIView):
    @extend_schema(summary="Model and tool rates in force", tags=["billing"],
                   responses=OpenApiResponse(schema.Rates, examples=[docs.RATES_EXAMPLE]))
    def get(self, request):
        now = timezone.now()
        names = dict(AIModel.objects.values_list("id", "name"))
        models = [{"id": model_id, "name": names.get(model_id, model_id),
                   "input_per_million": rate_str(rate.input_nanos_per_token),
                   "cached_input_per_million": rate_str(rate.cached_input_nanos_per_token),
                   "cache_write_per_million": rate_str(rate.cache_write_nanos_per_token),
                   "output_per_million": rate_str(rate.output_nanos_per_token),
                   "reasoning_per_million": rate_str(rate.reasoning_nanos_per_token)}
                  for model_id, rate in sorted(model_rates_at(at=now).items())]
        tools = [{"name": name, "per_call": nanos_to_str(nanos)} for name, nanos in sorted(tool_rates_at(at=now).items())]
        return Response({"at": now.isoformat().replace("+00:00", "Z"), "models": models, "tools": tools,
                         "unit": "credits per 1M tokens; tools in credits per call",
                         "classes": CLASSES_NOTE})


class RunsView(WorkspaceAPIView):
    @extend_schema(
        operation_id="runs_authorize", summary="Authorize a run (reserve credits)", tags=["runs"],
        description=docs.AUTHORIZE_DESCRIPTION, request=AuthorizeIn,
        responses={201: OpenApiResponse(schema.Authorization, examples=[docs.AUTHORIZE_RESPONSE]),
                   401: OpenApiResponse(schema.Error, "unauthorized, token_expired or token_revoked"),
                   402: OpenApiResponse(schema.Error, "Refused by a credit or budget limit",
                                        examples=[docs.REFUSAL_EXAMPLE, docs.TOKEN_REFUSAL_EXAMPLE]),
                   403: OpenApiResponse(schema.Error, "model_not_allowed: the token may not use this model"),
                   409: OpenApiResponse(schema.Error, "idempotency_conflict: same id, different body"),
                   429: OpenApiResponse(schema.Error, "rate_limited or concurrency_limit; see Retry-After")},
        examples=[docs.AUTHORIZE_REQUEST, docs.AUTHORIZE_SMALL_REQUEST],
    )
    def post(self, request):
        data = _validated(AuthorizeIn, request.data)
        authorization = run_authorize(
            membership=self.membership, workflow=data["workflow"], agent=data["agent"], model=data["model"],
            public_id=data.get("id"), estimated_input_tokens=data.get("estimated_input_tokens"),
            estimated_cached_input_tokens=data.get("estimated_cached_input_tokens"),
            max_output_tokens=data.get("max_output_tokens"), token=request.auth, reserve=data.get("reserve"),
            tags=data.get("tags"), body_hash=request_hash(data),
        )
        # A replay answers exactly as the first call did, 201 included (see docs/api.md).
        response = Response(authorization_out(authorization.run), status=201)
        if authorization.replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(
        operation_id="runs_list", summary="List runs, newest first (cursor pagination)", tags=["runs"],
        parameters=[RunListFilters],
        responses=OpenApiResponse(schema.RunPage, examples=[docs.RUN_LIST_EXAMPLE]),
    )
    @reads_from_replica
    def get(self, request):
        data = _validated(RunListFilters, request.query_params)
        filters = RunFilter.from_data(data)
        try:
            runs, next_cursor = runs_page(workspace=self.workspace, filters=filters, cursor=data.get("cursor"),
                                          limit=data["limit"], with_nodes=True)
        except InvalidCursor as error:
            raise InvalidRequest(str(error)) from None
        return Response({"results": [run_out(run) for run in runs], "next_cursor": next_cursor,
                         **_retention_fields(data.get("from"))})


class RunCompleteView(WorkspaceAPIView):
    @extend_schema(
        operation_id="runs_complete", summary="Complete a run (charge exactly once)", tags=["runs"],
        description=docs.COMPLETE_DESCRIPTION, request=CompleteIn,
        responses={200: OpenApiResponse(schema.RunOut, examples=[docs.RUN_EXAMPLE]),
                   404: OpenApiResponse(schema.Error, "No such run in this workspace"),
                   409: OpenApiResponse(schema.Error, "Completed before with a different body")},
        examples=[docs.COMPLETE_REQUEST, docs.COMPLETE_CLASSES_REQUEST],
    )
    def post(self, request, run_id):
        data = _validated(CompleteIn, request.data)
        nodes = [node_input(node) for node in data["nodes"]]
        run = run_complete(workspace=self.workspace, public_id=run_id, status=data["status"], nodes=nodes,
                           body_hash=request_hash(data))
        return Response(run_out(run))


class RunExtendView(WorkspaceAPIView):
    @extend_schema(
        operation_id="runs_extend", summary="Grow a running run's hold", tags=["runs"],
        description=docs.EXTEND_DESCRIPTION, request=ExtendIn,
        responses={200: OpenApiResponse(schema.ExtensionOut, examples=[docs.EXTEND_RESPONSE]),
                   402: OpenApiResponse(schema.Error, "Refused by a credit, budget or per-run limit; the hold is "
                                                      "unchanged", examples=[docs.EXTEND_REFUSAL_EXAMPLE]),
                   404: OpenApiResponse(schema.Error, "No such run in this workspace"),
                   409: OpenApiResponse(schema.Error, "run_not_running (completed or expired), or "
                                                      "idempotency_conflict (same key, different body)")},
        examples=[docs.EXTEND_REQUEST],
    )
    def post(self, request, run_id):
        data = _validated(ExtendIn, request.data)
        extension = run_extend(workspace=self.workspace, public_id=run_id, key=data["id"], credits=data["credits"],
                               body_hash=request_hash(data))
        response = Response(extension_out(extension))
        if extension.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


def node_input(node: dict) -> NodeInput:
    """A validated node (serializers.NodeIn): its token fields, or the classes its provider usage
    object maps to."""
    counts = node.get("counts") or TokenCounts(node["input_tokens"], node["output_tokens"],
                                               node.get("cached_input_tokens", 0), node.get("cache_write_tokens", 0),
                                               node.get("reasoning_tokens", 0))
    return NodeInput(node["name"], node["model"], counts.input, counts.output,
                     tuple((tool["name"], tool["calls"]) for tool in node.get("tools", [])),
                     cached_input_tokens=counts.cached_input, cache_write_tokens=counts.cache_write,
                     reasoning_tokens=counts.reasoning)


class RunDetailView(WorkspaceAPIView):
    @extend_schema(operation_id="runs_retrieve", summary="A run with its cost breakdown", tags=["runs"],
                   responses=OpenApiResponse(schema.RunOut, examples=[docs.RUN_EXAMPLE]))
    def get(self, request, run_id):
        run = run_detail(workspace=self.workspace, public_id=run_id)
        if run is None:
            raise RunNotFound(run_dropped_notice(workspace=self.workspace, public_id=run_id)
                              or f"No run {run_id!r} in this workspace.")
        return Response(run_out(run))


def _range(workspace, data):
    start, end = default_range(workspace)
    start, end = data.get("from") or start, data.get("to") or end
    if end < start:
        raise InvalidRequest("`to` is before `from`.")
    if (end - start).days > MAX_RANGE_DAYS:
        raise InvalidRequest("Ask for at most two years at a time.")
    return start, end


class UsageView(WorkspaceAPIView):
    @extend_schema(
        summary="The four dashboard figures and the daily series", tags=["usage"],
        parameters=[UsageQuery],
        responses=OpenApiResponse(schema.UsageFrom, examples=[docs.USAGE_EXAMPLE]),
    )
    @reads_from_replica
    def get(self, request):
        data = _validated(UsageQuery, request.query_params)
        start, end = _range(self.workspace, data)
        filters = RunFilter.from_data(data).with_range(start, end)
        if not data.get("from") and not data.get("to"):
            filters = filters.for_period(self.workspace.period_start)  # default: this billing period
        summary = usage_summary(workspace=self.workspace, start=start, end=end, filters=filters,
                                tag_key=data.get("group_by"))
        return Response({**usage_out(summary), **_retention_fields(start)})


def _retention_fields(start) -> dict:
    """detail_kept_from (null while nothing was dropped) and, when the range starts before it, a notice."""
    kept_from = detail_kept_from()
    return {"detail_kept_from": kept_from.isoformat() if kept_from else None,
            "notice": detail_notice(start=start, kept_from=kept_from)}


def usage_out(summary) -> dict:
    return {
        "from": summary.start.isoformat(), "to": summary.end.isoformat(),
        "available": nanos_to_str(summary.available),
        "this_period": nanos_to_str(summary.period_used),
        "held_this_period": nanos_to_str(summary.period_held),
        "daily_average": nanos_to_str(summary.daily_average),
        "projected": nanos_to_str(summary.projected),
        "period": {"start": summary.period_start.isoformat(), "end": summary.period_end.isoformat()},
        "range_total": nanos_to_str(summary.range_total),
        "definitions": {"available": summary.definitions["available"],
                        "this_period": summary.definitions["period_used"],
                        "daily_average": summary.definitions["daily_average"],
                        "projected": summary.definitions["projected"]},
        "daily": [{"date": day.isoformat(), "credits": nanos_to_str(credits)} for day, credits in summary.daily],
        "by_model": [{"model": row.key, "credits": nanos_to_str(row.credits), "input_tokens": row.input_tokens,
                      "output_tokens": row.output_tokens, "cached_input_tokens": row.cached_input_tokens,
                      "cache_write_tokens": row.cache_write_tokens, "reasoning_tokens": row.reasoning_tokens,
                      "runs": row.runs} for row in summary.by_model],
        "prompt_caching": caching_out(summary.caching),
        "by_agent": [{"agent": row.label, "credits": nanos_to_str(row.credits), "input_tokens": row.input_tokens,
                      "output_tokens": row.output_tokens, "runs": row.runs} for row in summary.by_agent],
        **({"group_by": f"tag:{summary.tag_key}",
            "by_tag": [{"value": row.value, "credits": nanos_to_str(row.credits), "runs": row.runs}
                       for row in summary.by_tag]} if summary.by_tag is not None else {}),
    }


def caching_out(caching) -> dict:
    return {"input_tokens": caching.input_tokens, "cached_input_tokens": caching.cached_input_tokens,
            "cache_write_tokens": caching.cache_write_tokens, "cached_percent": caching.cached_percent,
            "saved": nanos_to_str(caching.saved)}


class UsageExportView(WorkspaceAPIView):
    @extend_schema(
        summary="Usage CSV (one row per finished run and model)", tags=["usage"],
        parameters=[ExportQuery],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description=docs.CSV_DESCRIPTION)},
    )
    @reads_from_replica
    def get(self, request):
        data = _validated(ExportQuery, request.query_params)
        return csv_response(workspace=self.workspace, data=data)


# One input serializer of each kind per thread, built on first use. DRF deep-copies a serializer's
# declared fields into every new instance (so that an instance may change its own fields; these never
# do), which cost about a tenth of a charge request's Python (docs/performance.md). Validation keeps
# no state on a serializer or its fields (a list serializer validates every item with one child), so a
# thread validates every request with the same one.
_serializers = threading.local()


def _serializer(serializer_class):
    built = getattr(_serializers, "built", None)
    if built is None:
        built = _serializers.built = {}
    if serializer_class not in built:
        built[serializer_class] = serializer_class()
    return built[serializer_class]


def _validated(serializer_class, data) -> dict:
    if not isinstance(data, dict) and not hasattr(data, "getlist"):
        raise InvalidRequest("The body must be a JSON object.")
    serializer = _serializer(serializer_class)
    if hasattr(data, "getlist"):
        # Query strings are strict like bodies: a misspelt filter (`?form=`) must not be ignored.
        unknown = sorted(set(data) - set(serializer.fields))
        if unknown:
            raise InvalidRequest(f"Unknown parameter `{unknown[0]}`; this endpoint takes "
                                 f"{', '.join(f'`{name}`' for name in serializer.fields)}.")
        # DRF treats `?status=` like an absent parameter; an empty value is a mistake: say so.
        empty = next((name for name in serializer.fields if name in data and data.get(name) == ""), None)
        if empty:
            raise InvalidRequest(f"`{empty}` is empty: leave the parameter out or give it a value.")
    return serializer.run_validation(data)

