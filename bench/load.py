"""A small closed-loop HTTP load generator: P processes x T threads, keep-alive connections, for a
fixed time; counts requests and errors, and times each request by kind (authorize, complete, ping).
Bounded in count and time, loopback only."""

import http.client
import json
import multiprocessing
import random
import threading
import time
import uuid


def _scenario_requests(scenario: str, conn, tokens: list[str], rng: random.Random,
                       timings: dict[str, list[float]]) -> tuple[int, int]:
    """One iteration; returns (requests done, errors) and appends each request's seconds to `timings`."""
    token = tokens[rng.randrange(len(tokens))]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if scenario == "noop":
        status = _timed(timings, "ping", conn, "GET", "/v1/ping", None, headers)
        return 1, int(status != 200)
    if scenario == "charge":
        run_id = uuid.uuid4().hex
        body = {"id": run_id, "workflow": "bench", "agent": "bench-agent", "model": "gpt-4o-mini",
                "estimated_input_tokens": 1000, "max_output_tokens": 500}
        first = _timed(timings, "authorize", conn, "POST", "/v1/runs", body, headers)
        complete = {"status": "succeeded", "nodes": [
            {"name": "n1", "model": "gpt-4o-mini", "input_tokens": 1000, "output_tokens": 400}]}
        second = _timed(timings, "complete", conn, "POST", f"/v1/runs/{run_id}/complete", complete, headers)
        return 2, int(first != 201) + int(second != 200)
    raise ValueError(scenario)


def _timed(timings, kind, *args) -> int:
    started = time.perf_counter()
    status = _call(*args)
    timings.setdefault(kind, []).append(time.perf_counter() - started)
    return status


def _call(conn, method, path, body, headers) -> int:
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    response.read()
    return response.status


def _process(port, scenario, tokens, threads, seconds, queue, seed):
    totals = {"requests": 0, "errors": 0, "timings": {}}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(index):
        rng = random.Random(seed * 1000 + index)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        done = errors = 0
        timings: dict[str, list[float]] = {}
        while time.monotonic() < deadline:
            try:
                n, e = _scenario_requests(scenario, conn, tokens, rng, timings)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                n, e = 1, 1
            done += n
            errors += e
        with lock:
            totals["requests"] += done
            totals["errors"] += errors
            for kind, samples in timings.items():
                totals["timings"].setdefault(kind, []).extend(samples)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    queue.put(totals)


def run_load(*, port: int, scenario: str, tokens: list[str], clients: int = 16, seconds: float = 10.0,
             processes: int = 4, latencies: dict[str, list[float]] | None = None) -> tuple[float, int]:
    """Requests per second and error count for `clients` concurrent clients; with `latencies`, each
    request's seconds are added to it by kind."""
    queue = multiprocessing.Queue()
    per_process = max(1, clients // processes)
    procs = [multiprocessing.Process(target=_process, args=(port, scenario, tokens, per_process, seconds, queue, i))
             for i in range(processes)]
    started = time.monotonic()
    for p in procs:
        p.start()
    results = [queue.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - started
    requests = sum(r["requests"] for r in results)
    if latencies is not None:
        for r in results:
            for kind, samples in r["timings"].items():
                latencies.setdefault(kind, []).extend(samples)
    return requests / elapsed, sum(r["errors"] for r in results)
