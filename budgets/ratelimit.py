"""Per-workspace request rate limits for /v1/ (SPEC section 3). Contract:

    limiter_check(*, workspace) -> RateLimitDecision
        Counts one request for the workspace against workspace.requests_per_minute in a shared atomic
        Redis script (exact sliding window across processes); raises LimiterUnavailable when Redis
        cannot be reached (the API answers 503 then: fail closed).

The window is exact: a sorted set per workspace holds one member per admitted request, scored by the
Redis server's clock in milliseconds (one clock for every web process, so skew between machines does
not matter). One Lua script drops what left the window, counts, admits or computes when the oldest
request leaves the window, in a single round trip (EVALSHA).

Without REDIS_URL an in-process fallback counts the same way. It is exact only within ONE process:
run the demo with a single web worker, or set REDIS_URL. settings.RATE_LIMIT_ENABLED=False turns the
limiter off (the `ratelimit` bench's baseline).

The same round trip checks the workspace's access version (billing.access_versions) for the API's
per-process token cache: `limiter_check(..., access_version=seen)` raises AccessChanged, counting
nothing, when the version differs from what the cached token was loaded under. With the limiter
off, the check is a plain MGET of the counters.
"""

import hashlib
import itertools
import math
import os
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass

from django.conf import settings

from billing.access_versions import access_version_get, version_keys
from billing.edition import is_community

WINDOW_MS = 60_000  # one minute; tests shorten it
KEY_PREFIX = "lf:ratelimit:"
SOCKET_TIMEOUT_SECONDS = 0.5

# KEYS[1]: the workspace's sorted set; KEYS[2..]: access-version counters to compare (optional).
# ARGV: limit, window in ms, a unique member for this request, the access version the caller holds.
# Returns {admitted (1/0), requests in the window after this one, ms until the oldest leaves the window,
# the current access version}; admitted is -1 (and nothing is counted) when the versions differ.
SLIDING_WINDOW_LUA = """
local version = ''
if #KEYS > 1 then
  local parts = {}
  for i = 2, #KEYS do
    parts[#parts + 1] = redis.call('GET', KEYS[i]) or '0'
  end
  version = table.concat(parts, ':')
  if version ~= ARGV[4] then
    return {-1, 0, 0, version}
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local admitted = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  count = count + 1
  admitted = 1
end
local wait = window
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if oldest[2] then
  wait = tonumber(oldest[2]) + window - now
end
redis.call('PEXPIRE', KEYS[1], window)
return {admitted, count, wait, version}
"""


@dataclass(frozen=True)
class RateLimitDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until a slot frees up / the window resets
    retry_after: int  # whole seconds >= 1 when refused, else 0


class LimiterUnavailable(Exception):
    pass


class AccessChanged(Exception):
    """The workspace's access version is no longer the one the caller's cached token was read under."""

    def __init__(self, version: str | None):
        super().__init__(version)
        self.version = version


def _whole_seconds(ms: int) -> int:
    return max(1, math.ceil(ms / 1000))


def _decision(*, admitted: bool, limit: int, count: int, wait_ms: int) -> RateLimitDecision:
    reset = _whole_seconds(wait_ms)
    return RateLimitDecision(allowed=admitted, limit=limit, remaining=max(limit - count, 0), reset_seconds=reset,
                             retry_after=0 if admitted else reset)


# --- Redis: one client per process (a connection pool), created on first use. The script runs by
# its SHA1 (EVALSHA), loaded on the first NOSCRIPT answer. Called directly rather than through
# redis-py's Script object: its isinstance() check against redis-py's Pipeline (a typing.Protocol
# subclass, so typing's slow path) took a tenth of the web workers' Python time under load
# (docs/performance.md).
SLIDING_WINDOW_SHA = hashlib.sha1(SLIDING_WINDOW_LUA.encode()).hexdigest()
_client = None
_client_lock = threading.Lock()


def _redis_client():
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                import redis

                _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=SOCKET_TIMEOUT_SECONDS,
                                               socket_connect_timeout=SOCKET_TIMEOUT_SECONDS)
    return _client


def _sliding_window(keys: list[str], args: list) -> list:
    from redis.exceptions import NoScriptError

    client = _redis_client()
    try:
        return client.evalsha(SLIDING_WINDOW_SHA, len(keys), *keys, *args)
    except NoScriptError:  # a new or flushed Redis server
        client.script_load(SLIDING_WINDOW_LUA)
        return client.evalsha(SLIDING_WINDOW_SHA, len(keys), *keys, *args)


def reset_client() -> None:
    """Forget the client (after a fork, or when tests change REDIS_URL)."""
    global _client
    with _client_lock:
        _client = None


# A sorted-set member unique across processes and machines: a random prefix per process (re-drawn
# after a fork) and a counter. Cheaper than drawing random bytes per request (the bench saw 5% of
# a no-op request in os.urandom).
_member_prefix = (None, "")
_member_counter = itertools.count()


def _unique_member() -> str:
    global _member_prefix
    pid, prefix = _member_prefix
    if pid != os.getpid():
        _member_prefix = pid, prefix = os.getpid(), secrets.token_hex(8)
    return f"{prefix}{next(_member_counter):x}"


def _redis_check(key: str, limit: int, window_ms: int, *, guard_keys: list[str] = (),
                 guard: str = "") -> RateLimitDecision:
    import redis

    try:
        admitted, count, wait_ms, version = _sliding_window([key, *guard_keys],
                                                            [limit, window_ms, _unique_member(), guard])
    except redis.RedisError as error:
        raise LimiterUnavailable(f"Rate limiter unavailable: {error}") from error
    if admitted == -1:
        raise AccessChanged(version.decode())
    return _decision(admitted=bool(admitted), limit=limit, count=int(count), wait_ms=int(wait_ms))


# --- In-process fallback (single process only; see the module docstring).
_local_windows: dict[str, deque] = defaultdict(deque)
_local_lock = threading.Lock()


def _local_check(key: str, limit: int, window_ms: int) -> RateLimitDecision:
    now = time.monotonic() * 1000
    with _local_lock:
        window = _local_windows[key]
        while window and window[0] <= now - window_ms:
            window.popleft()
        admitted = len(window) < limit
        if admitted:
            window.append(now)
        wait = window[0] + window_ms - now if window else window_ms
        return _decision(admitted=admitted, limit=limit, count=len(window), wait_ms=int(wait))


def rate_check(*, key: str, limit: int, window_ms: int | None = None) -> RateLimitDecision:
    """Count one request under `key` against `limit` per window; Redis when configured."""
    window_ms = window_ms or WINDOW_MS
    if settings.REDIS_URL:
        return _redis_check(KEY_PREFIX + key, limit, window_ms)
    return _local_check(key, limit, window_ms)


def limiter_check(*, workspace, access_version: str | None = None) -> RateLimitDecision:
    """Count one request for the workspace. With `access_version` (and Redis), first compare it with
    the workspace's current access version in the same round trip: AccessChanged when it differs."""
    limit = workspace.requests_per_minute
    if not settings.RATE_LIMIT_ENABLED or is_community():  # Community Edition has no plan limits
        if access_version is not None and settings.REDIS_URL:
            current = access_version_get(workspace_id=workspace.pk)
            if current != access_version:
                raise AccessChanged(current)
        return RateLimitDecision(allowed=True, limit=limit, remaining=limit, reset_seconds=WINDOW_MS // 1000,
                                 retry_after=0)
    if access_version is not None and settings.REDIS_URL:
        return _redis_check(KEY_PREFIX + str(workspace.pk), limit, WINDOW_MS,
                            guard_keys=version_keys(workspace.pk), guard=access_version)
    return rate_check(key=str(workspace.pk), limit=limit)
