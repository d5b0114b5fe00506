"""Version counters in Redis that tell every web process when what a developer token grants has
changed, so each process may keep the token's rows in memory (usage.api.token_cache) and still see
a revocation, a role, budget, plan or period change at once.

One counter per workspace (`lf:access:ws:<id>`) and one for everything (`lf:access:all`, bumped when
a plan or a user changes). A process caches a token together with the counters' values it read
before loading the rows; the API compares them with the current values in the same Redis round
trip as the rate-limit count (budgets.ratelimit), and reloads from the database on any difference.

Bump after every change to a token, membership, workspace, budget, plan or user. Model saves and
deletes bump through signals (usage.api.token_cache.connect_signals); writers that use
QuerySet.update() call `access_versions_bump` themselves. A bump is made at once and again after
the surrounding transaction commits: the first makes a concurrent reload in this transaction's
window re-check, the second invalidates whatever another process read before the commit.

Without REDIS_URL there is nothing to compare with, and the API reads the token from the database
on every request.
"""

import logging
import threading
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

EVERYTHING_KEY = "lf:access:all"
SOCKET_TIMEOUT_SECONDS = 0.5


def workspace_key(workspace_id: int) -> str:
    return f"lf:access:ws:{workspace_id}"


def version_keys(workspace_id: int) -> list[str]:
    """The two counters whose values, joined, are a workspace's access version."""
    return [workspace_key(workspace_id), EVERYTHING_KEY]


def version_string(values: Iterable) -> str:
    """Counter values (bytes or None from Redis) as one comparable string; a missing counter is 0."""
    return ":".join(value.decode() if isinstance(value, bytes) else str(value or 0) for value in values)


_client = None
_client_lock = threading.Lock()


def redis_client():
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                import redis

                _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=SOCKET_TIMEOUT_SECONDS,
                                               socket_connect_timeout=SOCKET_TIMEOUT_SECONDS)
    return _client


def reset_client() -> None:
    """Forget the client (tests that change REDIS_URL)."""
    global _client
    with _client_lock:
        _client = None


def access_version_get(*, workspace_id: int) -> str | None:
    """The workspace's current access version; None without Redis (or when it cannot be read)."""
    if not settings.REDIS_URL:
        return None
    import redis

    try:
        return version_string(redis_client().mget(version_keys(workspace_id)))
    except redis.RedisError:
        return None


def _bump(keys: list[str]) -> None:
    import redis

    try:
        pipe = redis_client().pipeline(transaction=False)
        for key in keys:
            pipe.incr(key)
        pipe.execute()
    except redis.RedisError:
        # The token cache's time limit (usage.api.token_cache.MAX_AGE_SECONDS) bounds what a lost
        # bump can leave stale.
        logger.warning("Could not bump access versions %s", keys[:3], exc_info=True)


def access_versions_bump(*, workspace_ids: Iterable[int] = (), everything: bool = False) -> None:
    """Mark what tokens of these workspaces (or of all, with `everything`) grant as changed."""
    if not settings.REDIS_URL:
        return
    keys = [workspace_key(pk) for pk in sorted(set(workspace_ids)) if pk is not None]
    if everything:
        keys.append(EVERYTHING_KEY)
    if not keys:
        return
    _bump(keys)
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: _bump(keys))
