"""A per-process cache of developer tokens with the rows they bring (membership, workspace, plan,
budget, user), so an API request does not query them, while a revocation or any change to those
rows still takes effect at once on every process.

Each entry holds the pickled token graph and the workspace's access version (billing.access_versions)
read *before* the rows were loaded. The API compares that version with the current one in the
rate-limit call it makes anyway (budgets.ratelimit.limiter_check) and reloads on any difference.
A request unpickles its own copy, so no model instance is shared between threads.

Changes bump the version: model saves and deletes through the signals connected below, and the
writers that use QuerySet.update() by calling access_versions_bump themselves. An entry also
expires after MAX_AGE_SECONDS, which bounds what a change made outside the application (SQL by
hand) or a bump lost while Redis was down can leave stale.
"""

import pickle
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save

from billing.access_versions import access_versions_bump
from billing.models import Membership, Plan, Workspace
from budgets.models import WorkspaceBudget
from usage.models import DeveloperToken

MAX_AGE_SECONDS = 60
MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class CachedToken:
    blob: bytes  # the pickled DeveloperToken with membership__workspace__plan/budget and membership__user
    version: str  # the workspace's access version read before the rows were loaded
    loaded_at: float  # time.monotonic()


_entries: dict[str, CachedToken] = {}
_workspaces: dict[str, int] = {}  # token hash -> its workspace (never changes for a token)
_lock = threading.Lock()


def enabled() -> bool:
    return bool(settings.REDIS_URL)


def token_cache_get(token_hash: str) -> tuple[object, str] | None:
    """A private copy of the cached token and the version it was loaded under, or None."""
    entry = _entries.get(token_hash)
    if entry is None:
        return None
    if time.monotonic() - entry.loaded_at > MAX_AGE_SECONDS:
        token_cache_forget(token_hash)
        return None
    return pickle.loads(entry.blob), entry.version


def token_workspace(token_hash: str) -> int | None:
    """The workspace of a token this process has loaded before (to read its version first)."""
    return _workspaces.get(token_hash)


def token_cache_put(token_hash: str, token, version: str | None, *, loaded_at: float | None = None) -> None:
    """Cache `token` under `version`, which must have been read before the token's rows were."""
    if not enabled():
        return
    with _lock:
        if len(_workspaces) >= MAX_ENTRIES and token_hash not in _workspaces:
            _workspaces.clear()
        _workspaces[token_hash] = token.membership.workspace_id
    if version is None:
        return  # no version read before the rows: nothing safe to compare with later
    entry = CachedToken(pickle.dumps(token, protocol=pickle.HIGHEST_PROTOCOL), version,
                        loaded_at if loaded_at is not None else time.monotonic())
    with _lock:
        if len(_entries) >= MAX_ENTRIES and token_hash not in _entries:
            _entries.clear()  # crude but bounded; tokens in use reload on their next request
        _entries[token_hash] = entry


def token_cache_touch(token_hash: str, token) -> None:
    """Store a token whose last_used_at moved, keeping the entry's version and age."""
    entry = _entries.get(token_hash)
    if entry is not None:
        token_cache_put(token_hash, token, entry.version, loaded_at=entry.loaded_at)


def token_cache_forget(token_hash: str | None = None) -> None:
    """Drop one entry, or all of them."""
    with _lock:
        if token_hash is None:
            _entries.clear()
            _workspaces.clear()
        else:
            _entries.pop(token_hash, None)


# --- Invalidation: every save or delete of a row a cached token carries bumps its workspace.

def _bump_workspaces(ids) -> None:
    access_versions_bump(workspace_ids=ids)


def _on_token(sender, instance, **kwargs):
    membership = instance.membership if "membership" in instance._state.fields_cache else None
    workspace_id = membership.workspace_id if membership is not None else (
        Membership.objects.filter(pk=instance.membership_id).values_list("workspace_id", flat=True).first())
    _bump_workspaces([workspace_id])


def _on_membership(sender, instance, **kwargs):
    _bump_workspaces([instance.workspace_id])


def _on_workspace(sender, instance, **kwargs):
    _bump_workspaces([instance.pk])


def _on_budget(sender, instance, **kwargs):
    _bump_workspaces([instance.workspace_id])


def _on_plan(sender, instance, **kwargs):
    access_versions_bump(everything=True)


def _on_user(sender, instance, update_fields=None, **kwargs):
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # a web login changes nothing a token grants
    _bump_workspaces(Membership.objects.filter(user_id=instance.pk).values_list("workspace_id", flat=True))


def connect_signals() -> None:
    """Called from UsageConfig.ready()."""
    for model, receiver in ((DeveloperToken, _on_token), (Membership, _on_membership), (Workspace, _on_workspace),
                            (WorkspaceBudget, _on_budget), (Plan, _on_plan), (get_user_model(), _on_user)):
        post_save.connect(receiver, sender=model, dispatch_uid=f"token_cache:{model.__name__}:save")
        post_delete.connect(receiver, sender=model, dispatch_uid=f"token_cache:{model.__name__}:delete")
