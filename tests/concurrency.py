"""Real concurrency against PostgreSQL: threads, each with its own database connection.

`run_at_once` starts n workers behind a barrier so they hit the database together; the lock helpers
let a test pause a request exactly where a race would hurt (waiting for a row lock) and change
the world meanwhile, which makes a race deterministic instead of likely."""

import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connection


def run_at_once(worker: Callable[[int], Any], n: int) -> tuple[list[Any], list[BaseException]]:
    """Call worker(i) for i in range(n) in n threads released together; returns (results, errors).
    Each thread closes its connection, so the test database can be flushed afterwards."""
    barrier = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            barrier.wait()
            result = worker(i)
            with lock:
                results.append(result)
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            with lock:
                errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


class InThread:
    """Run one call in a thread with its own connection; `result()` joins it and returns (or raises)."""

    def __init__(self, call: Callable[[], Any]):
        self._call = call
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._call()
        except BaseException as error:  # noqa: BLE001 - re-raised by result()
            self._error = error
        finally:
            connection.close()

    def result(self, timeout: float = 30) -> Any:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the thread did not finish"
        if self._error is not None:
            raise self._error
        return self._value


def sessions_waiting_for_a_lock() -> int:
    """How many other sessions of this database are blocked on a lock right now."""
    with connection.cursor() as cursor:
        # Inside a transaction PostgreSQL keeps serving its first snapshot of the statistics views.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


def wait_until_blocked(count: int = 1, timeout: float = 20) -> None:
    """Return once `count` sessions wait for a lock (for example the wallet row this test holds)."""
    deadline = time.monotonic() + timeout
    while sessions_waiting_for_a_lock() < count:
        assert time.monotonic() < deadline, "no session blocked on the lock in time"
        time.sleep(0.02)
