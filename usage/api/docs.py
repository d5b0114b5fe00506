"""Examples and descriptions for /v1/docs/: a developer can follow them without reading the code.
The walk-through: authorize a run, then complete it with two nodes, one of which called a tool."""

from drf_spectacular.utils import OpenApiExample

AUTHORIZE_DESCRIPTION = """Reserve credits before a run starts.

The reservation is `min(reserve if given, agent and token max per run, available credits, every
remaining budget)`; if that is not positive the run is refused with `402` and the code of the limit
that binds (`insufficient_credits`, `budget_exhausted`, `agent_daily_budget_exceeded`,
`agent_monthly_budget_exceeded`, `member_budget_exceeded`, `token_budget_exceeded`). Workflows and
agents are created on first use by name.

**Token limits.** A developer token may carry limits (Settings -> Developer tokens): a maximum per
run, per UTC day and per billing period (charged plus held by the runs it authorized), a list of
models, and an expiry. They are checked in the same locked decision as every budget: a day or
period limit that binds is `402 token_budget_exceeded` (the error's `limit` names it, e.g.
`max_credits_per_day`), a model the token may not use `403 model_not_allowed`, and an expired token
`401 token_expired` (on every call).

**Holds that grow.** `reserve` (a decimal string of credits) holds less than the most the limits
allow: authorize small, then `POST /v1/runs/{id}/extend` before each expensive step. Without it the
hold is as large as the limits allow, as before.

**Cost tags.** `tags` is an object of at most 10 pairs: keys match `[a-z0-9_.-]{1,40}`, values are 1
to 100 printable characters (a schema cannot state either rule: anything else is
`400 invalid_request` naming the tag). They are stored on the run and returned with it, filter
`GET /v1/runs?tag=key:value`, and split `GET /v1/usage?group_by=tag:key`. `max_output_tokens` in the answer is what the reservation can pay for at the
model's output rate after `estimated_input_tokens` (capped by the value you asked for): stop
generating there. `estimated_cached_input_tokens` (optional, a part of `estimated_input_tokens`,
never more: `400` otherwise) counts that part at the model's cached input rate.

Every field of the body is one listed here: an unknown field is `400 invalid_request` naming it.

**Idempotency.** `id` is your idempotency key. Sending the same `id` and body again returns the
same answer with the same status (`201`) and the header `Idempotent-Replayed: true`; no new run is
created. The same `id` with another body is `409 idempotency_conflict`. Without `id` a new run id is
generated for every call.

Example with curl:

    curl -X POST $HOST/v1/runs -H "Authorization: Bearer $LF_TOKEN" \\
         -H "Content-Type: application/json" \\
         -d '{"id":"run-2024-0001","workflow":"support-triage","agent":"triage-bot","model":"gpt-4o","estimated_input_tokens":12000,"max_output_tokens":4000}'
"""

COMPLETE_DESCRIPTION = """Report what the run used; it is charged exactly once.

Each node names its model and token counts, and the tools it called with the number of calls.

**Token classes.** Besides `input_tokens` and `output_tokens` a node may report, all optional and
0 by default: `cached_input_tokens` (of the input, read from the provider's prompt cache),
`cache_write_tokens` (of the input, written to the cache) and `reasoning_tokens` (of the output,
spent on reasoning). They are parts, never extra tokens: `cached_input_tokens + cache_write_tokens
<= input_tokens` and `reasoning_tokens <= output_tokens`, else `400` and nothing is charged. A
node's token credits are

    (input - cached - write) x input rate + cached x cached input rate
      + write x cache write rate + output x output rate

(reasoning inside output, unless the model has a reasoning rate), plus `calls x tool rate`, at the
rates in force when the run was authorized (`GET /v1/billing/rates` lists every class; a class
without a rate of its own is priced at its parent's). A node that sends only input and output is
priced as input x input rate + output x output rate.

**Provider usage objects.** Instead of the token fields a node may send `usage_format` (`openai`,
`anthropic` or `gemini`) and `usage`, the provider's own usage object as it came (OpenAI Chat
Completions `usage`, Anthropic Messages `usage`, Gemini `usageMetadata`); it is mapped into the
classes (docs/usage-and-api.md has a worked example of each). Fields of the provider's object that
carry no count are ignored; a usage object that adds up to more than 10^12 tokens is refused.

The actual cost is always charged; above the reservation the run is flagged `over_reservation`.

**Idempotency.** Completing again with the same body returns the same run (`200`) and charges
nothing more, even from ten clients at once; a different body is `409 idempotency_conflict`.
A run whose reservation expired (after `RESERVATION_TTL_SECONDS`) can still be completed and is
charged once.

Token counts are JSON integers from 0 to 10^12; at most 1,000 nodes; `status` is `succeeded`,
`failed` or `cancelled`; every field is one listed here (an unknown field, at any level but inside a
provider's `usage`, is refused naming it). Anything else is `400 invalid_request` (an unpriced
model is `400 unknown_model`) and nothing is charged.

    curl -X POST $HOST/v1/runs/run-2024-0001/complete -H "Authorization: Bearer $LF_TOKEN" \\
         -H "Content-Type: application/json" -d @complete.json
"""

EXTEND_DESCRIPTION = """Grow a running run's hold before an expensive step.

`credits` (a decimal string) is added to the run's reservation, under the same locked decision as
authorize, against every limit: available credits, the workspace, member, agent and token budgets
(in the day and period the run counts in), and the per-run maximums of its agent and its token (a
hold never grows past them). The hold grows by the smaller of `credits` and what the limits leave;
`extension.added` says by how much. The answer carries the run's new `reserved`, `max_output_tokens`
recomputed for it (from the run's estimates and cap at authorization), and `expires_at` pushed out to
now plus the reservation TTL.

When no limit leaves anything the extension is refused with `402` and the binding code
(`agent_run_budget_exceeded` or `token_budget_exceeded` with `limit: max_credits_per_run` at a
per-run maximum), and the hold is unchanged. A completed or expired run is `409 run_not_running`.
`complete` charges the actual cost and releases the whole hold, as ever.

**Exactly once.** `id` is your extension key, unique per run in the database: the same key and body
again adds nothing and returns the first answer (with `Idempotent-Replayed: true`); the same key with
another body is `409 idempotency_conflict`.

The pattern for agent loops: authorize small (`reserve`), extend before each step that may cost more
than the hold has left, complete once at the end.

    curl -X POST $HOST/v1/runs/run-2024-0001/extend -H "Authorization: Bearer $LF_TOKEN" \\
         -H "Content-Type: application/json" -d '{"id":"step-3","credits":"2"}'
"""

CSV_DESCRIPTION = ("Header `date,workflow,agent,model,input_tokens,output_tokens,credits,status`; one row per "
                   "finished run and model used in it (tool charges in the row of the node's model); `date` is "
                   "when the run was charged, ISO 8601 UTC; `credits` exact. Filters `from`/`to` select UTC days "
                   "of that date. Streamed. `columns=detailed` appends `run_id,member,cached_input_tokens,"
                   "cache_write_tokens,reasoning_tokens,token_credits,tool_credits,tags` (token + tool credits = "
                   "credits on every row; `tags` the run's cost tags as a JSON object, empty without any). "
                   "`tag=key:value` keeps the runs with that cost tag.")

AUTHORIZE_REQUEST = OpenApiExample(
    "Authorize a GPT-4o run", request_only=True,
    value={"id": "run-2024-0001", "workflow": "support-triage", "agent": "triage-bot", "model": "gpt-4o",
           "estimated_input_tokens": 12000, "max_output_tokens": 4000},
)

AUTHORIZE_SMALL_REQUEST = OpenApiExample(
    "Authorize small, with cost tags", request_only=True,
    value={"id": "run-2024-0002", "workflow": "research", "agent": "researcher", "model": "claude-sonnet-4",
           "reserve": "0.5", "tags": {"customer": "acme", "feature": "deep-research"}},
)

AUTHORIZE_RESPONSE = OpenApiExample(
    "Authorized", response_only=True, status_codes=["201"],
    value={"id": "run-2024-0001", "status": "running", "reserved": "10", "max_output_tokens": 4000,
           "expires_at": "2025-03-01T13:00:00Z", "tags": {}},
)

REFUSAL_EXAMPLE = OpenApiExample(
    "Refused", response_only=True, status_codes=["402"],
    value={"error": {"code": "agent_daily_budget_exceeded",
                     "message": "This agent's daily budget is used up (0 left today, UTC)."}},
)

TOKEN_REFUSAL_EXAMPLE = OpenApiExample(
    "Refused by the token's daily limit", response_only=True, status_codes=["402"],
    value={"error": {"code": "token_budget_exceeded", "limit": "max_credits_per_day",
                     "message": "Token “nightly-agent” (lf_AbCdEfG…) has used its daily limit of 5 credits "
                                "(max_credits_per_day; 0 left today, UTC). Ask an owner or admin to raise it on "
                                "Settings -> Developer tokens, or wait for tomorrow."}},
)

EXTEND_REQUEST = OpenApiExample(
    "Grow the hold by 2 credits", request_only=True, value={"id": "step-3", "credits": "2"},
)

EXTEND_RESPONSE = OpenApiExample(
    "Extended", response_only=True, status_codes=["200"],
    value={"id": "run-2024-0002", "status": "running", "reserved": "2.5", "max_output_tokens": 83333,
           "expires_at": "2025-03-01T13:05:00Z", "extension": {"id": "step-3", "requested": "2", "added": "2"}},
)

EXTEND_REFUSAL_EXAMPLE = OpenApiExample(
    "Refused at the agent's maximum per run", response_only=True, status_codes=["402"],
    value={"error": {"code": "agent_run_budget_exceeded",
                     "message": "This run already holds the agent's maximum per run; it cannot reserve more."}},
)

COMPLETE_REQUEST = OpenApiExample(
    "Two nodes, one web search", request_only=True,
    value={"status": "succeeded", "nodes": [
        {"name": "classify", "model": "gpt-4o-mini", "input_tokens": 12000, "output_tokens": 800},
        {"name": "answer", "model": "gpt-4o", "input_tokens": 20000, "output_tokens": 3000,
         "tools": [{"name": "web_search", "calls": 2}]},
    ]},
)

COMPLETE_CLASSES_REQUEST = OpenApiExample(
    "Cached and reasoning tokens, and a provider's usage object", request_only=True,
    value={"status": "succeeded", "nodes": [
        {"name": "plan", "model": "claude-sonnet-4", "input_tokens": 50000, "cached_input_tokens": 42000,
         "cache_write_tokens": 6000, "output_tokens": 1200},
        {"name": "answer", "model": "gpt-4o", "usage_format": "openai",
         "usage": {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
                   "prompt_tokens_details": {"cached_tokens": 1920},
                   "completion_tokens_details": {"reasoning_tokens": 192}}},
    ]},
)

RUN_EXAMPLE = OpenApiExample(
    "The run, priced node by node", response_only=True, status_codes=["200"],
    value={"id": "run-2024-0001", "workflow": "support-triage", "agent": "triage-bot", "model": "gpt-4o",
           "member": "dev@example.com", "status": "succeeded", "reserved": "10", "max_output_tokens": 4000,
           "credits": "0.16956", "over_reservation": False, "created_at": "2025-03-01T12:00:00Z",
           "completed_at": "2025-03-01T12:00:09Z", "expires_at": "2025-03-01T13:00:00Z",
           "tags": {"customer": "acme"},
           "nodes": [
               {"name": "classify", "model": "gpt-4o-mini", "input_tokens": 12000, "output_tokens": 800,
                "cached_input_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0,
                "token_credits": "0.00456", "tool_credits": "0", "credits": "0.00456", "tools": []},
               {"name": "answer", "model": "gpt-4o", "input_tokens": 20000, "output_tokens": 3000,
                "cached_input_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0,
                "token_credits": "0.145", "tool_credits": "0.02", "credits": "0.165",
                "tools": [{"name": "web_search", "calls": 2, "credits": "0.02"}]},
           ]},
)

RUN_LIST_EXAMPLE = OpenApiExample(
    "A page of runs", response_only=True,
    value={"results": [RUN_EXAMPLE.value], "next_cursor": "MjAyNS0wMy0wMVQxMjowMDowMCswMDowMHw0Mg"},
)

BALANCE_EXAMPLE = OpenApiExample(
    "Balance", response_only=True,
    value={"workspace": "acme", "plan": "team", "edition": "cloud", "balance": "5120.5", "available": "5110.5",
           "reserved": "10", "buckets": {"monthly": "4620.5", "purchased": "500"},
           "period": {"start": "2025-03-01T00:00:00Z", "end": "2025-04-01T00:00:00Z"},
           "used_this_period": "379.5",
           "budget": {"monthly_limit": "2000", "used": "389.5", "percent": 19, "state": "ok"},
           "rate_limit": {"requests_per_minute": 300, "concurrent_runs": 20},
           "monthly_credits": "5000", "custom_limits": [],
           "forecast": {"daily_average": "12.65", "runs_out_on": "2025-09-14", "runs_out_beyond_horizon": False,
                        "next_auto_recharge_on": None},
           "token": {"name": "nightly-agent", "prefix": "lf_AbCdEfG", "max_credits_per_run": "2",
                     "max_credits_per_day": "5", "max_credits_per_month": "100", "used_today": "1.25",
                     "used_this_period": "31.5", "allowed_models": ["gpt-4o-mini"],
                     "expires_at": "2025-06-01T00:00:00Z"}},
)

RATES_EXAMPLE = OpenApiExample(
    "Rates", response_only=True,
    value={"at": "2025-03-01T12:00:00Z", "unit": "credits per 1M tokens; tools in credits per call",
           "classes": "cached input and cache write tokens are parts of the input tokens, ...",
           "models": [{"id": "claude-sonnet-4", "name": "Claude Sonnet 4", "input_per_million": "6",
                       "cached_input_per_million": "0.6", "cache_write_per_million": "7.5",
                       "output_per_million": "30", "reasoning_per_million": "30"}],
           "tools": [{"name": "web_search", "per_call": "0.01"}]},
)

USAGE_EXAMPLE = OpenApiExample(
    "Usage", response_only=True,
    value={"from": "2025-03-01", "to": "2025-03-02", "available": "4620.5", "this_period": "379.5",
           "daily_average": "189.75", "projected": "5882.25",
           "period": {"start": "2025-03-01", "end": "2025-03-31"}, "range_total": "379.5",
           "definitions": {"available": "...", "this_period": "...", "daily_average": "...", "projected": "..."},
           "daily": [{"date": "2025-03-01", "credits": "200"}, {"date": "2025-03-02", "credits": "179.5"}],
           "by_model": [{"model": "gpt-4o", "credits": "379.5", "input_tokens": 1000000, "output_tokens": 100000,
                         "cached_input_tokens": 600000, "cache_write_tokens": 0, "reasoning_tokens": 0, "runs": 12}],
           "prompt_caching": {"input_tokens": 1000000, "cached_input_tokens": 600000, "cache_write_tokens": 0,
                              "cached_percent": 60, "saved": "1.5"},
           "by_agent": [{"agent": "triage-bot", "credits": "379.5", "input_tokens": 1000000,
                         "output_tokens": 100000, "runs": 12}]},
)
