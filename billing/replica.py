"""Read-only pages and exports on a streaming replica, everything else on the primary.

With DATABASE_REPLICA_URL set, settings add the `replica` database and ReplicaRouter. Nothing
reads from the replica unless a view asks for it with @reads_from_replica (Usage, History, the
CSV, GET /v1/usage and /v1/runs); the money path (authorize, complete, purchases, grants, budgets)
never does, so its reads, locks and writes stay on the primary.

A request is served from the replica only when, checked at its start:
- the replica answers (a failure marks it down for REPLICA_RETRY_SECONDS, then it is tried again);
- its replay lag is within REPLICA_MAX_LAG_SECONDS (zero when it has replayed all the primary's WAL);
- it has replayed the browser's last write: a POST answers with a signed cookie holding the
  primary's WAL position after it, and a later page needs a replica at or past it (read your writes).
Otherwise the request reads from the primary. The choice holds for the whole request, so one page
never mixes two snapshots."""

import functools
import logging
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.db import DatabaseError, connections

logger = logging.getLogger(__name__)

REPLICA = "replica"
PRIMARY = "default"
WAL_COOKIE = "lf_wal"  # signed: the primary's WAL position after this browser's last write
_alias: ContextVar[str] = ContextVar("read_alias", default=PRIMARY)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def lsn_int(lsn: str) -> int:
    """PostgreSQL's 'X/Y' WAL position as an integer, for comparison."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass
class ReplicaState:
    up: bool
    replay_lsn: int = 0
    lag_seconds: int = 0  # whole seconds, rounded up
    checked_at: float = 0.0


_state_lock = threading.Lock()
_state: ReplicaState | None = None


def _check() -> ReplicaState:
    now = time.monotonic()
    try:
        with connections[PRIMARY].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            primary_lsn = lsn_int(cursor.fetchone()[0])
        with connections[REPLICA].cursor() as cursor:
            cursor.execute("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
                           "ceil(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()))::bigint")
            in_recovery, replay, since_replay = cursor.fetchone()
    except DatabaseError as error:
        logger.warning("Replica unavailable, reading from the primary: %s", error)
        connections[REPLICA].close()
        return ReplicaState(up=False, checked_at=now)
    if not in_recovery or replay is None:
        return ReplicaState(up=False, checked_at=now)  # a promoted or misconfigured replica: not a replica
    replay_lsn = lsn_int(replay)
    # Caught up: no lag however long ago the last transaction was. Behind: the time since the
    # replica last replayed one, in whole seconds rounded up (a stalled or paused replica's lag
    # grows with the clock; never replayed counts as far behind).
    lag = 0 if replay_lsn >= primary_lsn else (since_replay if since_replay is not None else 10**9)
    return ReplicaState(up=True, replay_lsn=replay_lsn, lag_seconds=lag, checked_at=now)


def replica_state(*, max_age: float | None = None) -> ReplicaState:
    """The replica's health, checked at most every REPLICA_CHECK_SECONDS per process (or every
    REPLICA_RETRY_SECONDS while it is down)."""
    global _state
    with _state_lock:
        state = _state
        if state is not None:
            age = time.monotonic() - state.checked_at
            limit = max_age if max_age is not None else (
                settings.REPLICA_CHECK_SECONDS if state.up else settings.REPLICA_RETRY_SECONDS)
            if age < limit:
                return state
        _state = _check()
        return _state


def replica_state_forget() -> None:
    global _state
    with _state_lock:
        _state = None


def read_alias_for(request) -> str:
    """The database this request's reads use: the replica when it is configured, healthy, within
    the lag bound and past this browser's last write; else the primary."""
    if not replica_configured() or request.method not in ("GET", "HEAD"):
        return PRIMARY
    needed = 0
    raw = request.COOKIES.get(WAL_COOKIE)
    if raw:
        try:
            needed = lsn_int(signing.loads(raw, salt=WAL_COOKIE, max_age=3600))
        except (signing.BadSignature, ValueError):
            needed = 0
    state = replica_state()
    if state.up and needed > state.replay_lsn:
        state = replica_state(max_age=0)  # the cached view may be older than the write
    if not state.up or state.lag_seconds > settings.REPLICA_MAX_LAG_SECONDS or needed > state.replay_lsn:
        return PRIMARY
    return REPLICA


@contextmanager
def reads_on(alias: str):
    token = _alias.set(alias)
    try:
        yield alias
    finally:
        _alias.reset(token)


def reads_from_replica(view):
    """For read-only views (function views, or DRF methods taking self, request): the request's
    reads go to read_alias_for(request). Writes always go to the primary."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        request = args[1] if len(args) > 1 and hasattr(args[1], "COOKIES") else args[0]
        alias = read_alias_for(request)
        request.read_alias = alias
        with reads_on(alias):
            response = view(*args, **kwargs)
        response["X-Read-From"] = alias
        return response

    return wrapper


def current_read_alias() -> str:
    return _alias.get()


class ReplicaRouter:
    """Installed only with DATABASE_REPLICA_URL. Reads follow the request's choice; writes, and
    reads outside a @reads_from_replica view, use the primary (also for objects loaded from the
    replica, which Django would otherwise route back to the replica)."""

    def db_for_read(self, model, **hints):
        return _alias.get()

    def db_for_write(self, model, **hints):
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == PRIMARY


class WalPositionMiddleware:
    """After a page's write (a non-GET request), hand the browser the primary's WAL position so
    its next replica read waits for the replica to replay it (read your own writes). API calls
    (token-authenticated /v1/) are left out: their money path must not pay for this query."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (replica_configured() and request.method not in ("GET", "HEAD", "OPTIONS")
                and not request.path.startswith("/v1/")):
            try:
                with connections[PRIMARY].cursor() as cursor:
                    cursor.execute("SELECT pg_current_wal_lsn()::text")
                    position = cursor.fetchone()[0]
            except DatabaseError:
                return response
            response.set_cookie(WAL_COOKIE, signing.dumps(position, salt=WAL_COOKIE), max_age=3600,
                                httponly=True, samesite="Lax", secure=settings.SESSION_COOKIE_SECURE)
        return response
