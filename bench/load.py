"""A small closed-loop HTTP load generator: P processes x T threads, keep-alive connections, for a
fixed time; counts requests and errors. Bounded in count and time, loopback only."""

import http.client
import json
import multiprocessing
import random
import threading
import time
import uuid


def _scenario_requests(scenario: str, conn, tokens: list[str], rng: random.Random) -> tuple[int, int]:
    """One iteration; returns (requests done, errors)."""
    token = tokens[rng.randrange(len(tokens))]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if scenario == "noop":
        status = _call(conn, "GET", "/v1/ping", None, headers)
        return 1, int(status != 200)
    if scenario == "charge":
        run_id = uuid.uuid4().hex
        body = {"id": run_id, "workflow": "bench", "agent": "bench-agent", "model": "gpt-4o-mini",
                "estimated_input_tokens": 1000, "max_output_tokens": 500}
        first = _call(conn, "POST", "/v1/runs", body, headers)
        complete = {"status": "succeeded", "nodes": [
            {"name": "n1", "model": "gpt-4o-mini", "input_tokens": 1000, "output_tokens": 400}]}
        second = _call(conn, "POST", f"/v1/runs/{run_id}/complete", complete, headers)
        return 2, int(first != 201) + int(second != 200)
    raise ValueError(scenario)


def _call(conn, method, path, body, headers) -> int:
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    response.read()
    return response.status


def _process(port, scenario, tokens, threads, seconds, queue, seed):
    totals = {"requests": 0, "errors": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(index):
        rng = random.Random(seed * 1000 + index)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        done = errors = 0
        while time.monotonic() < deadline:
            try:
                n, e = _scenario_requests(scenario, conn, tokens, rng)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                n, e = 1, 1
            done += n
            errors += e
        with lock:
            totals["requests"] += done
            totals["errors"] += errors

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    queue.put(totals)


def run_load(*, port: int, scenario: str, tokens: list[str], clients: int = 16, seconds: float = 10.0,
             processes: int = 4) -> tuple[float, int]:
    """Requests per second and error count for `clients` concurrent clients."""
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
    return requests / elapsed, sum(r["errors"] for r in results)
