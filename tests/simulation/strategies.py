"""What the money simulator draws from (machine.py): starting instants, workspaces, token counts
from tiny to absurd, and credit amounts from one nanocredit to a million credits."""

from datetime import datetime, timezone as dt_timezone

from hypothesis import strategies as st

from .model import MODEL_RATES, NANOS

EXTRA_PAGES = ("activity/", "buy/", "plans/", "history/", "/v1/runs", "activity/ledger.csv")
AGENTS = ("triage", "writer", "bulk")
STARTS = (  # month ends, a leap day, mid-month, a day start: the periods' edge cases
    datetime(2027, 1, 31, 23, 30, tzinfo=dt_timezone.utc),
    datetime(2028, 2, 29, 12, 0, tzinfo=dt_timezone.utc),
    datetime(2027, 3, 15, 0, 0, tzinfo=dt_timezone.utc),
    datetime(2027, 6, 30, 23, 59, 59, tzinfo=dt_timezone.utc),
)
WORKSPACES = (("free", "personal"), ("pro", "team"), ("team", "team"), ("enterprise", "team"))

# Token counts: tiny (one token costs nanocredits), ordinary, huge (a deep overrun) and absurd (over
# the per-run maximum: refused, nothing written).
TINY_TOKENS = st.integers(0, 3)
TOKENS = st.one_of(TINY_TOKENS, st.integers(0, 200_000), st.integers(10**6, 5 * 10**9), st.just(10**12))
TOOLS = st.lists(st.tuples(st.sampled_from(["web_search", "code_interpreter", "unpriced_tool"]), st.integers(0, 3)),
                 max_size=2)
NODE = st.tuples(st.sampled_from(sorted(MODEL_RATES)), TOKENS, TOKENS, TOOLS)
NODES = st.lists(NODE, min_size=1, max_size=3)
TINY_NODES = st.lists(st.tuples(st.sampled_from(["gemini-2.0-flash", "gpt-4o-mini"]), TINY_TOKENS, TINY_TOKENS,
                                st.just([])), min_size=1, max_size=2)
CREDIT_AMOUNTS = st.one_of(st.integers(1, 1000), st.integers(1, 500).map(lambda c: c * NANOS),
                           st.integers(10**3, 10**6).map(lambda c: c * NANOS))
