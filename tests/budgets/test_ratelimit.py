"""The sliding-window limiter: exact across processes, Retry-After in whole seconds >= 1."""

import multiprocessing
import time

import pytest
from django.conf import settings
from django.test import override_settings

from budgets import ratelimit
from budgets.ratelimit import LimiterUnavailable, limiter_check, rate_check


@pytest.fixture
def redis_key():
    import redis

    key = f"test-{time.time_ns()}"
    yield key
    redis.Redis.from_url(settings.REDIS_URL).delete(ratelimit.KEY_PREFIX + key)


def _fire(args):
    """In a child process: its own Redis connection, `count` requests, the admitted ones returned."""
    redis_url, key, count, limit, window_ms = args
    import django
    from django.conf import settings as child_settings

    if not child_settings.configured:
        django.setup()
    from budgets import ratelimit as child

    child.reset_client()
    return [child.rate_check(key=key, limit=limit, window_ms=window_ms) for _ in range(count)]


@pytest.mark.needs_redis
def test_it_admits_exactly_the_limit_across_processes(redis_key):
    context = multiprocessing.get_context("spawn")
    window_ms = 4000
    with context.Pool(4) as pool:
        results = pool.map(_fire, [(settings.REDIS_URL, redis_key, 6, 10, window_ms)] * 4)
    decisions = [d for batch in results for d in batch]
    admitted = [d for d in decisions if d.allowed]
    refused = [d for d in decisions if not d.allowed]
    assert len(decisions) == 24 and len(admitted) == 10
    assert all(1 <= d.retry_after <= window_ms // 1000 for d in refused)
    assert sorted(d.remaining for d in admitted) == list(range(10))

    time.sleep(max(d.retry_after for d in refused))
    later = rate_check(key=redis_key, limit=10, window_ms=window_ms)
    assert later.allowed and later.retry_after == 0


@pytest.mark.needs_redis
def test_it_slides_rather_than_resetting_the_whole_window(redis_key):
    assert rate_check(key=redis_key, limit=2, window_ms=2000).allowed
    time.sleep(1.0)
    assert rate_check(key=redis_key, limit=2, window_ms=2000).allowed
    refused = rate_check(key=redis_key, limit=2, window_ms=2000)
    assert not refused.allowed and refused.retry_after == 1  # the first request leaves within a second
    time.sleep(1.1)
    assert rate_check(key=redis_key, limit=2, window_ms=2000).allowed  # one slot freed, not two
    assert not rate_check(key=redis_key, limit=2, window_ms=2000).allowed


@pytest.mark.needs_redis
def test_it_keeps_counting_after_redis_lost_its_scripts(redis_key):
    """A restarted Redis (or SCRIPT FLUSH) answers NOSCRIPT: the limiter loads the script again."""
    import redis

    assert rate_check(key=redis_key, limit=2).allowed
    redis.Redis.from_url(settings.REDIS_URL).script_flush()
    assert rate_check(key=redis_key, limit=2).allowed
    assert not rate_check(key=redis_key, limit=2).allowed  # still one window: the count survived


@pytest.mark.django_db
@pytest.mark.needs_redis
def test_it_limits_a_free_workspace_to_ten_requests_a_minute(outsider):
    from billing.models import Workspace

    workspace = Workspace.objects.select_related("plan").get(slug="elsewhere")
    import redis

    redis.Redis.from_url(settings.REDIS_URL).delete(ratelimit.KEY_PREFIX + str(workspace.pk))
    decisions = [limiter_check(workspace=workspace) for _ in range(11)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False]
    assert decisions[-1].retry_after >= 1 and decisions[-1].limit == 10 and decisions[-1].remaining == 0
    redis.Redis.from_url(settings.REDIS_URL).delete(ratelimit.KEY_PREFIX + str(workspace.pk))


@pytest.mark.django_db
def test_it_is_off_when_disabled(outsider):
    from billing.models import Workspace

    workspace = Workspace.objects.select_related("plan").get(slug="elsewhere")
    with override_settings(RATE_LIMIT_ENABLED=False):
        assert all(limiter_check(workspace=workspace).allowed for _ in range(30))


def test_it_fails_closed_when_redis_is_unreachable():
    ratelimit.reset_client()
    try:
        with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
            with pytest.raises(LimiterUnavailable):
                rate_check(key="down", limit=5)
    finally:
        ratelimit.reset_client()


def test_it_counts_the_same_way_in_process_without_redis():
    with override_settings(REDIS_URL=""):
        key = f"local-{time.time_ns()}"
        decisions = [rate_check(key=key, limit=3, window_ms=1000) for _ in range(4)]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert decisions[-1].retry_after == 1
        time.sleep(1.05)
        assert rate_check(key=key, limit=3, window_ms=1000).allowed
