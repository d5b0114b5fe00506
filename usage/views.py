"""Usage pages: the dashboard, the per-run breakdown, the CSV download and developer tokens.
Each view loads the membership (404 for outsiders), calls one selector or service, and renders."""

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from billing.models import AIModel
from billing.pricing import model_rates_at, price_tokens
from billing.services import current_membership
from billing.tenancy import membership_for
from billing.replica import reads_from_replica
from budgets.selectors import token_use

from .bounds import MAX_RANGE_DAYS, date_in_bounds
from .charts import bar_chart
from .export import COLUMN_SETS, csv_response
from .models import Run
from .filters import RunFilter
from .selectors import (InvalidCursor, daily_series, default_range, detail_kept_from, detail_notice, encode_cursor,
                        filter_choices, run_detail, run_dropped_notice, runs_page, runs_page_newer, savings_for,
                        usage_summary)
from .forms import TokenForm, TokenLimitsForm
from .tags import InvalidTag, tag_filter_parse, tag_key_check
from .tokens import LIMIT_FIELDS, TokenLimits, TokenLimitsInvalid, token_create, token_limits_set, token_revoke, tokens_visible_to


class UsageFilterForm(forms.Form):
    """The page's filters; the same names as the API's query parameters. `by_tag` (a cost tag key)
    adds the "Spend by tag" table, as `group_by=tag:key` does in the API."""

    from_ = forms.DateField(required=False, validators=[date_in_bounds], widget=forms.DateInput(attrs={"type": "date"}))
    to = forms.DateField(required=False, validators=[date_in_bounds], widget=forms.DateInput(attrs={"type": "date"}))
    agent = forms.CharField(required=False, max_length=200)
    model = forms.CharField(required=False, max_length=64)
    status = forms.ChoiceField(required=False, choices=[("", "Any status")] + Run.STATUSES)
    tag = forms.CharField(required=False, max_length=141, strip=False)
    by_tag = forms.CharField(required=False, max_length=40)

    def __init__(self, data, **kwargs):
        data = data.copy()
        if "from" in data:
            data["from_"] = data.get("from")
        super().__init__(data, **kwargs)

    def clean_tag(self):
        text = self.cleaned_data["tag"]
        if not text:
            return None
        try:
            return tag_filter_parse(text)
        except InvalidTag as error:
            raise forms.ValidationError(str(error)) from None

    def clean_by_tag(self):
        key = self.cleaned_data["by_tag"].strip()
        if not key:
            return None
        try:
            return tag_key_check(key)
        except InvalidTag as error:
            raise forms.ValidationError(str(error)) from None


def _filters(request, workspace):
    form = UsageFilterForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    start, end = default_range(workspace)
    start, end = data.get("from_") or start, data.get("to") or end
    if end < start:
        start, end = end, start
    if (end - start).days > MAX_RANGE_DAYS:
        start = end - timedelta(days=MAX_RANGE_DAYS)
    return form, start, end, data


@require_safe
@login_required
@reads_from_replica
def usage(request, slug):
    membership = membership_for(request, slug)
    workspace = membership.workspace
    form, start, end, data = _filters(request, workspace)
    run_filters = RunFilter.from_data(data).with_range(start, end)
    if not data.get("from_") and not data.get("to"):
        # No dates chosen: this billing period, from the instant it started (issue 10).
        run_filters = run_filters.for_period(workspace.period_start)
    summary = usage_summary(workspace=workspace, start=start, end=end, filters=run_filters,
                            tag_key=data.get("by_tag"))
    today = timezone.now().date()
    # The last 90 days whatever the period or dates chosen; agent, model and status still apply.
    last_90 = daily_series(workspace=workspace, start=today - timedelta(days=89), end=today,
                           filters=run_filters.for_days(today - timedelta(days=89), today))
    runs, next_cursor, newer_cursor = _runs_table(workspace, run_filters, request.GET)
    query = run_filters.as_query()
    if data.get("by_tag"):
        query["by_tag"] = data["by_tag"]
    return render(request, "usage/usage.html", {
        "summary": summary,
        "chart": bar_chart(summary.daily),
        "chart_90": bar_chart(last_90),
        "chart_90_total": sum(credits for _, credits in last_90),
        # The same runs as the tables and the CSV: every figure below the cards follows the filters.
        "savings": savings_for(by_model=summary.by_model),
        "runs": runs,
        "next_cursor": next_cursor,
        "is_first_page": newer_cursor is None,
        "newer_cursor": newer_cursor,
        "form": form,
        "query": query,
        "choices": filter_choices(workspace=workspace),
        "start": start,
        "end": end,
        "detail_notice": detail_notice(start=start, kept_from=detail_kept_from()),
    })


def _runs_table(workspace, run_filters: RunFilter, params, limit: int = 25):
    """One page of the runs table and the cursors of the older and the newer page (None at either end).
    `cursor` pages towards older runs, `before` towards newer ones; a bad cursor shows the newest."""
    try:
        if params.get("before"):
            runs, has_newer = runs_page_newer(workspace=workspace, filters=run_filters, before=params["before"],
                                              limit=limit)
            if not has_newer:  # back at the top: the newest page, with its own "older" cursor
                runs, next_cursor = runs_page(workspace=workspace, filters=run_filters, limit=limit)
                return runs, next_cursor, None
            return runs, encode_cursor(runs[-1]) if runs else None, encode_cursor(runs[0])
        cursor = params.get("cursor")
        runs, next_cursor = runs_page(workspace=workspace, filters=run_filters, cursor=cursor, limit=limit)
        return runs, next_cursor, encode_cursor(runs[0]) if cursor and runs else None
    except InvalidCursor:
        runs, next_cursor = runs_page(workspace=workspace, filters=run_filters, limit=limit)
        return runs, next_cursor, None


@require_safe
@login_required
@reads_from_replica
def export_csv(request, slug):
    membership = membership_for(request, slug)
    form = UsageFilterForm(request.GET)
    if not form.is_valid():
        # Refused before the first byte: a stream cannot turn into an error page half-way.
        errors = "; ".join(f"{'from' if name == 'from_' else name}: {message}"
                           for name, messages_ in form.errors.items() for message in messages_)
        return HttpResponseBadRequest(f"Invalid filters: {errors}\n", content_type="text/plain")
    columns = request.GET.get("columns", "default")
    if columns not in COLUMN_SETS:
        return HttpResponseBadRequest(f"Invalid columns: choose {' or '.join(COLUMN_SETS)}.\n", content_type="text/plain")
    return csv_response(workspace=membership.workspace,
                        data={**form.cleaned_data, "period": request.GET.get("period"), "columns": columns})


@require_safe
@login_required
def run(request, slug, run_id):
    membership = membership_for(request, slug)
    found = run_detail(workspace=membership.workspace, public_id=run_id)
    if found is None:
        dropped = run_dropped_notice(workspace=membership.workspace, public_id=run_id)
        if dropped is None:
            raise Http404("No such run.")
        return render(request, "usage/run_dropped.html", {"workspace": membership.workspace, "public_id": run_id,
                                                          "notice": dropped, "membership": membership}, status=404)
    nodes = list(found.nodes.all())
    tool_credits = sum(node.tool_credits for node in nodes)
    names = dict(AIModel.objects.values_list("id", "name"))
    # What the same tokens would cost on each model, at today's rates; tool charges stay the same.
    rates = model_rates_at(at=timezone.now())
    actual_tokens = sum(node.token_credits for node in nodes)
    alternatives = []
    for model_id, rate in rates.items():
        cost = sum(price_tokens(rate=rate, input_tokens=n.input_tokens, output_tokens=n.output_tokens,
                                cached_input_tokens=n.cached_input_tokens, cache_write_tokens=n.cache_write_tokens,
                                reasoning_tokens=n.reasoning_tokens) for n in nodes)
        alternatives.append({"model": model_id, "name": names.get(model_id, model_id), "token_credits": cost,
                             "credits": cost + tool_credits, "difference": cost - actual_tokens,
                             "used": any(n.model_id == model_id for n in nodes)})
    alternatives.sort(key=lambda a: (a["credits"], a["model"]))
    rates_used = {}
    for node in nodes:
        rates_used.setdefault((node.model_id, node.input_nanos_per_token, node.output_nanos_per_token,
                               node.cached_input_nanos_per_token, node.cache_write_nanos_per_token), node)
    tools_used = {}
    for node in nodes:
        for tool in node.tools:
            tools_used.setdefault(tool["name"], tool.get("nanos_per_call", 0))
    return render(request, "usage/run.html", {
        "run": found, "nodes": nodes, "names": names, "alternatives": alternatives,
        "rates_used": [{"model": k[0], "name": names.get(k[0], k[0]), "input": k[1], "output": k[2],
                        "cached_input": k[3], "cache_write": k[4]} for k in rates_used],
        # Prompt caching (issue 28): the cached and written tokens at the plain input rate, minus their charge.
        "caching_used": any(n.cached_input_tokens or n.cache_write_tokens for n in nodes),
        "cache_saving": sum(n.cache_saving for n in nodes),
        "has_classes": any(n.cached_input_tokens or n.cache_write_tokens or n.reasoning_tokens for n in nodes),
        "tools_used": sorted(tools_used.items()),
        "token_credits": actual_tokens, "tool_credits": tool_credits,
        "input_tokens": sum(n.input_tokens for n in nodes), "output_tokens": sum(n.output_tokens for n in nodes),
        # A run can use several models (one per node); the page names them all.
        "models_used": [names.get(m, m) for m in dict.fromkeys(n.model_id for n in nodes)] or [found.model.name],
    })


NEW_TOKEN_SESSION_KEY = "usage:new-token"


def _limit_errors(form, error: TokenLimitsInvalid) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


def _token_rows(membership, tokens) -> list[dict]:
    """Each token with today's and this period's use (its spend counters) and which limit it has
    reached, for the table."""
    workspace = membership.workspace
    now = timezone.now()
    use = token_use(workspace=workspace, token_ids=[t.pk for t in tokens], day=now.date())
    rows = []
    for token in tokens:
        used = use.get(token.pk)
        today, period = (used.today, used.this_period) if used else (0, 0)
        reached = [name for name, limit, value in (("day", token.max_credits_per_day, today),
                                                   ("period", token.max_credits_per_month, period))
                   if limit and value >= limit]
        rows.append({"token": token, "today": today, "period": period, "reached": reached,
                     "expired": token.is_expired(now),
                     "editable": membership.can_manage_billing or token.membership_id == membership.pk})
    return rows


@login_required
def tokens(request, slug):
    membership = membership_for(request, slug)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = token_create(membership=membership, name=form.cleaned_data["name"], limits=form.limits(),
                                   actor=request.user)
        except TokenLimitsInvalid as error:
            _limit_errors(form, error)
        else:
            # POST/redirect/GET, so a reload cannot create a second token. The raw token rides in the
            # session to the next page view only: popped there, so it is shown exactly once.
            request.session[NEW_TOKEN_SESSION_KEY] = {"workspace": membership.workspace_id,
                                                      "name": created.token.name, "raw": created.raw}
            return redirect("usage:tokens", slug=slug)
    shown = request.session.pop(NEW_TOKEN_SESSION_KEY, None)
    if shown and shown.get("workspace") != membership.workspace_id:
        shown = None
    return render(request, "usage/tokens.html", {
        "form": form,
        "created": shown,
        "rows": _token_rows(membership, list(tokens_visible_to(membership=membership))),
        "sees_all": membership.can_manage_billing,
        "limits_open": request.method == "POST" and any(form.errors.get(name) for name in
                                                        (*LIMIT_FIELDS, "allowed_models", "expires_at")),
    })


@login_required
def token_limits(request, slug, token_id):
    """One token's limits: owners and admins set them on any token (they become its ceiling); a
    member on their own tokens, at most what an owner or admin set (usage.tokens.token_limits_set)."""
    membership = membership_for(request, slug)
    token = get_object_or_404(tokens_visible_to(membership=membership), pk=token_id)
    form = TokenLimitsForm(request.POST or None, initial=TokenLimitsForm.initial_for(token))
    if request.method == "POST" and form.is_valid():
        try:
            token_limits_set(token=token, limits=form.limits(), by=membership)
        except TokenLimitsInvalid as error:
            _limit_errors(form, error)
        else:
            messages.success(request, f"Limits of token “{token.name}” ({token.prefix}…) saved. They apply from "
                                      "the next call.")
            return redirect("usage:tokens", slug=slug)
    row = _token_rows(membership, [token])[0]
    ceiling = None if membership.can_manage_billing else TokenLimits.from_json(token.admin_limits)
    return render(request, "usage/token_limits.html", {"form": form, "row": row, "token": token,
                                                       "ceiling": ceiling, "sees_all": membership.can_manage_billing})


@require_safe
@login_required
def tokens_current(request):
    """/settings/tokens/: the Tokens page of the workspace the person is in (the API docs link here,
    since they belong to no workspace)."""
    membership = current_membership(request.user)
    if membership is None:
        return redirect("home")
    return redirect("usage:tokens", slug=membership.workspace.slug)


@login_required
@require_POST
def token_revoke_view(request, slug, token_id):
    membership = membership_for(request, slug)
    token = get_object_or_404(tokens_visible_to(membership=membership), pk=token_id)
    token_revoke(token=token, actor=request.user)
    messages.success(request, f"Token “{token.name}” ({token.prefix}…) was revoked. It stopped working at once.")
    return redirect("usage:tokens", slug=slug)

