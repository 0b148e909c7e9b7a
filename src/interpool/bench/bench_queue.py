"""Queue ping-pong: round trips per second between the caller and one worker.

A task in one worker loops ``outbox.put(inbox.get())``; the caller puts an
int on ``inbox`` and waits for it on ``outbox``, N times.  One round trip is
two queue hand-offs between interpreters (threads, for ThreadPoolExecutor):

* ``interpool.Queue`` with an ``interpool.Pool(1)`` worker;
* ``concurrent.interpreters.Queue`` with the stdlib InterpreterPoolExecutor
  (Python 3.14+);
* ``queue.Queue`` with a ThreadPoolExecutor thread (one interpreter, one GIL:
  the reference for a hand-off that crosses no interpreter).
"""

from __future__ import annotations

import concurrent.futures as cf
import queue

from . import _handle_tasks
from . import _harness as h

NAME = "queue"
TITLE = "Queue ping-pong"
DESCRIPTION = (
    "Round trips per second between the caller and one worker over two queues "
    "(put, get, put back, get); higher is better."
)

TARGET_RATE = 50_000


def _interpool_missing() -> str | None:
    if h.fake_interpool():
        return "n/a (FAKE interpool stand-in)"
    if not hasattr(h.load_interpool(), "Queue"):
        return "n/a (this interpool has no Queue)"
    return None


def _stdlib_queue():
    from concurrent import interpreters

    return interpreters.create_queue()


def peers() -> list[h.Benchmark]:
    return [
        h.Benchmark(f"{h.interpool_label()} + interpool.Queue", h._make_interpool, "interpool", _interpool_missing),
        h.Benchmark(
            "InterpreterPoolExecutor (stdlib) + concurrent.interpreters.Queue",
            h._make_stdlib_ipe,
            "stdlib",
            h._stdlib_ipe_missing,
        ),
        h.Benchmark("ThreadPoolExecutor + queue.Queue (one interpreter)", cf.ThreadPoolExecutor, "threads"),
    ]


def ping_pong(make_queue):
    def task(ex, n):
        inbox, outbox = make_queue(), make_queue()
        done = ex.submit(_handle_tasks.pong, inbox, outbox, n)
        put, get = inbox.put, outbox.get
        try:
            for i in range(n):
                put(i)
                got = get()
                if got != i:
                    raise AssertionError(f"round trip {i} returned {got!r}")
        finally:
            if not done.done():
                # Unblock the worker if the caller failed half-way.
                for _ in range(n):
                    try:
                        inbox.put(None)
                    except Exception:  # noqa: BLE001 - best effort
                        break
        assert done.result() == n
        return n

    return task


def run(config: h.Config) -> h.WorkloadResult:
    n = config.size(200_000, 30_000, minimum=20)
    # Workers: the ping-pong uses one; a second would only sit idle.
    timing = h.Timing(
        config, n=n, repeats=config.reps(3, 2), workers=1, budget_s=config.pick(1.0, 0.3), section="queue"
    )
    makers = {
        "interpool": lambda: h.load_interpool().Queue(),
        "stdlib": _stdlib_queue,
        "threads": queue.Queue,
    }
    selected = [p for p in peers() if config.wants(p.key)]
    ms = [timing.run(p, ping_pong(makers[p.key]), probe_n=min(n, 20 if p.key == "stdlib" else 2_000)) for p in selected]
    ip = h.find(ms, "interpool")
    rows = h.rows(
        ms,
        lambda m: m.per_item,
        lambda m: [m.label, f"{m.n:,}", f"{1 / m.per_item:,.0f}", h.fmt_us(m.per_item), h.fmt_ratio(h.ratio(m, ip))],
    )
    table = h.Table(
        "ping-pong between the caller and 1 worker",
        ["peer", "round trips", "round trips/s", "µs/round trip", "vs. interpool"],
        rows,
        notes=["Slow peers run fewer round trips (sized to a time budget)."] + h.error_notes(ms),
    )
    st = h.find(ms, "stdlib")
    targets = [
        h.at_least(
            f"interpool.Queue ≥ {TARGET_RATE:,} round trips/s",
            1 / ip.per_item if ip else None,
            TARGET_RATE,
            "{:,.0f}/s".format,
        ),
        h.target(
            "interpool.Queue faster than concurrent.interpreters.Queue (stdlib)",
            None if (ip is None or st is None) else ip.per_item < st.per_item,
            h._stdlib_ipe_missing()
            or ("" if (ip is None or st is None) else f"{h.fmt_ratio(st.per_item / ip.per_item)} more round trips/s"),
        ),
    ]
    h.fail_if_interpool_failed(targets, ms)
    params = {"round_trips": n, "repeats": timing.repeats}
    return h.WorkloadResult.of(__name__, params=params, tables=[table], targets=targets, data={"peers": ms})


if __name__ == "__main__":
    from .__main__ import main

    raise SystemExit(main(default_only=[NAME]))
