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
import threading
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


def percentile(sorted_values, q):
    """Nearest-rank percentile of an ascending list (q in 0..1)."""
    if not sorted_values:
        return math.nan
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


def _latencies(ex, n):
    """Submit n long tasks at once; the latency of each one's done-callback."""
    latencies = [math.nan] * n
    remaining = [n]
    lock = threading.Lock()
    all_called = threading.Event()

    def callback_for(i):
        def callback(future):
            now = time.perf_counter()
            try:
                latencies[i] = now - future.result()
            except BaseException:  # noqa: BLE001 - counted as missing below
                pass
            with lock:
                remaining[0] -= 1
                if remaining[0] == 0:
                    all_called.set()

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
    m = h.Measurement(bench.label, bench.key, workers=config.workers)
    reason = bench.unavailable()
    if reason:
        m.status, m.detail = "n/a", reason
        return m
    config.log(f"  {bench.label} ({config.workers} workers) ...")
    try:
        with h.opened(bench, config.workers) as (ex, startup):
            m.startup = startup
            _latencies(ex, min(n, 2 * config.workers))  # warm-up: every worker imports this module
            m.times = _latencies(ex, n)
            m.n = n
    except Exception as exc:  # noqa: BLE001 - reported in the table
        m.status, m.detail = "error", f"{type(exc).__name__}: {exc}"
        config.log(f"    ERROR: {m.detail}")
    return m


def run(config: h.Config) -> h.WorkloadResult:
    n = config.size(400, 60, minimum=2 * config.workers)
    ms = [_measure(p, config, n) for p in config.select(PEERS)]

    def p50(m):
        return percentile(m.times, 0.50)

    def p99(m):
        return percentile(m.times, 0.99)

    ip = h.find(ms, "interpool")
    rows = h.rows(
        ms,
        p99,
        lambda m: [
            m.label,
            f"{m.n:,}",
            h.fmt_ms(p50(m)),
            h.fmt_ms(p99(m)),
            h.fmt_ms(m.times[-1]),
            h.fmt_ratio(p99(m) / p99(ip)) if ip and p99(ip) > 0 else "-",
        ],
    )
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
        h.target(
            "interpool p50 ≤ 1 ms",
            None if ip is None else p50(ip) <= 1e-3,
            "" if ip is None else f"{h.fmt_ms(p50(ip))} ms",
        ),
        h.target(
            "interpool p99 ≤ 5 ms",
            None if ip is None else p99(ip) <= 5e-3,
            "" if ip is None else f"{h.fmt_ms(p99(ip))} ms",
        ),
    ]
    h.fail_if_interpool_failed(targets, ms)
    return h.WorkloadResult(
        NAME,
        TITLE,
        DESCRIPTION,
        params={"workers": config.workers, "tasks": n, "task_seconds": LONG},
        tables=[table],
        targets=targets,
        data={"latency": ms},
    )


def main(argv=None):
    from .__main__ import main as suite_main

    return suite_main(argv, default_only=[NAME])


if __name__ == "__main__":
    raise SystemExit(main())
