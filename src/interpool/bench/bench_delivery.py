"""Delivery latency: how soon a finished task reaches its done-callback.

Every worker runs a stream of long tasks: each sleeps ``LONG`` seconds, then
returns ``time.perf_counter()`` as it ends (a monotonic clock that every
interpreter and process of the machine shares).  A done-callback on each
future reads the clock when it runs; the latency is the difference.  A
worker always has its next long task waiting, so an executor that held
finished tasks back while its worker runs the next one would show ``LONG``
here instead of microseconds.

Peers: interpool's Pool, ThreadPoolExecutor (which runs callbacks on the
worker thread itself, the floor), ProcessPoolExecutor and the stdlib
InterpreterPoolExecutor (3.14).
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import time

from . import _harness as h

NAME = "delivery"
TITLE = "Delivery latency under long tasks"
DESCRIPTION = (
    "Time from a task's end (its own clock reading) to its done-callback, while every "
    "worker goes on with further long tasks; lower is better."
)

PEERS = ["interpool", "threads", "processes", "stdlib"]
LONG = 0.02  # seconds each task sleeps: long next to any delivery path


def sleep_then_clock(seconds):
    """Sleep, then return the clock reading at the task's end."""
    time.sleep(seconds)
    return time.perf_counter()


def _latencies(ex, n):
    """Submit n long tasks at once; the latency of each one's done-callback."""
    latencies = [math.nan] * n
    all_called = h.Countdown(n)

    def callback_for(i):
        def callback(future):
            now = time.perf_counter()
            try:
                latencies[i] = now - future.result()
            except BaseException:  # noqa: BLE001 - counted as missing below
                pass
            all_called.tick()

        return callback

    futures = [ex.submit(sleep_then_clock, LONG) for _ in range(n)]
    for i, future in enumerate(futures):
        future.add_done_callback(callback_for(i))
    cf.wait(futures)
    if not all_called.wait(60):
        raise RuntimeError("some done-callbacks never ran")
    missing = sum(1 for x in latencies if math.isnan(x))
    if missing:
        raise RuntimeError(f"{missing} of {n} tasks failed")
    return sorted(latencies)


def _measure(bench, config, n):
    def body(m):
        with h.opened(bench, config.workers) as (ex, startup):
            m.startup = startup
            _latencies(ex, min(n, 2 * config.workers))  # warm-up: every worker imports this module
            m.times = _latencies(ex, n)
            m.n = n

    m = h.Measurement(bench.label, bench.key, workers=config.workers)
    return h.guarded(
        m, config, body, missing=bench.unavailable(), progress=f"  {bench.label} ({config.workers} workers) ..."
    )


def run(config: h.Config) -> h.WorkloadResult:
    n = config.size(400, 60, minimum=2 * config.workers)
    ms = [_measure(p, config, n) for p in config.select(PEERS)]
    ip = h.find(ms, "interpool")
    p99_ip = h.p99(ip) if ip else None
    rows = h.latency_rows(ms, lambda m: [h.fmt_ratio(h.p99(m) / p99_ip) if p99_ip else "-"])
    table = h.Table(
        f"task end -> done-callback, {n:,} tasks of sleep({LONG * 1e3:g} ms), {config.workers} workers",
        ["peer", "tasks", "p50 ms", "p99 ms", "max ms", "p99 vs. interpool"],
        rows,
        notes=[
            "Every worker has further long tasks queued while its finished ones are delivered.",
            "ThreadPoolExecutor runs callbacks on the worker thread that finished the task: the floor.",
        ]
        + h.error_notes(ms),
    )
    targets = [
        h.at_most("interpool p50 ≤ 1 ms", h.p50(ip) if ip else None, 1e-3, h.in_ms),
        h.at_most("interpool p99 ≤ 5 ms", p99_ip, 5e-3, h.in_ms),
    ]
    h.fail_if_interpool_failed(targets, ms)
    params = {"workers": config.workers, "tasks": n, "task_seconds": LONG}
    return h.WorkloadResult.of(__name__, params=params, tables=[table], targets=targets, data={"latency": ms})


if __name__ == "__main__":
    from .__main__ import main

    raise SystemExit(main(default_only=[NAME]))
