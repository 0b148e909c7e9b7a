"""CPU-bound scaling: pure-Python ``sum_squares`` tasks at 1..N workers.

Every peer runs the same batch of equal tasks; the speedup is the serial
(in-process loop) time divided by the peer's time. ThreadPoolExecutor is
included to show the GIL: it should stay near 1×.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

from . import _harness as h
from . import _tasks

NAME = "scaling"
TITLE = "CPU-bound scaling"
DESCRIPTION = (
    "Batch of equal pure-Python sum_squares(n) tasks via ex.map; speedup = serial time / peer time (higher is better)."
)

PEERS = ["interpool", "processes", "stdlib", "threads"]


def worker_counts(n: int) -> list[int]:
    """1..n, thinned to powers of two (plus n itself) above 8 workers."""
    if n <= 8:
        return list(range(1, n + 1))
    counts = [1 << i for i in range(int(math.log2(n)) + 1)]
    return counts + ([n] if counts[-1] != n else [])


def worker_headers(counts: list[int]) -> list[str]:
    return [f"{w} worker{'s' if w > 1 else ''}" for w in counts]


def capped_note(workers: int) -> list[str]:
    """A table note where there are more workers than CPUs."""
    cpus = os.cpu_count() or 1
    return [f"note: {workers} workers > {cpus} CPUs; speedup is capped by the CPU count."] if workers > cpus else []


def scaling_runs(
    peers: list[h.Benchmark], counts: list[int], measure: Callable[[h.Benchmark, int], h.Measurement]
) -> list[h.Measurement]:
    """``measure(peer, workers)`` for each peer at each worker count; one that is n/a is not run further."""
    flat = []
    for p in peers:
        for w in counts:
            flat.append(measure(p, w))
            if flat[-1].status == "n/a":
                break  # unavailable everywhere; one row is enough
    return flat


def speedup_row(peer: h.Benchmark, flat: list[h.Measurement], counts: list[int], base: h.Measurement | None) -> h.Row:
    """``peer``'s speedup over ``base`` at each worker count (of the runs in ``flat``), or its status."""
    runs = {m.workers: m for m in flat if m.key == peer.key}
    first = next(iter(runs.values()), None)
    if first is None or first.status == "n/a":
        return h.status_row(first) if first else (peer.label, "-")
    return [peer.label] + [
        h.fmt_ratio(h.speedup(base, runs[w])) if w in runs and runs[w].ok else "ERROR" for w in counts
    ]


def calibrate(task_seconds: float, *, probe: int = 50_000, tries: int = 3, minimum: int = 1_000) -> int:
    """n such that sum_squares(n) takes about ``task_seconds`` here (best of ``tries`` runs of ``probe``)."""
    best = math.inf
    for _ in range(tries):
        t0 = time.perf_counter()
        _tasks.sum_squares(probe)
        best = min(best, time.perf_counter() - t0)
    return max(minimum, int(probe * task_seconds / best))


def run(config: h.Config) -> h.WorkloadResult:
    nmax = config.workers
    counts = worker_counts(nmax)
    task_s = (0.01 if config.quick else 0.02) * min(1.0, config.scale)
    size = calibrate(task_s)
    lcm = math.lcm(*range(1, min(nmax, 4) + 1))
    n_tasks = max(config.size(24, 12, minimum=1), nmax)
    n_tasks = -(-n_tasks // lcm) * lcm  # divisible by small worker counts
    expected = _tasks.sum_squares(size)
    config.log(f"  scaling: {n_tasks} tasks of sum_squares({size:,}) ≈ {task_s * 1e3:.0f} ms each")

    def serial_task(ex, n):
        return [_tasks.sum_squares(size) for _ in range(n)]

    def pool_task(ex, n):
        return list(ex.map(_tasks.sum_squares, [size] * n))

    def check(answer, n):
        assert len(answer) == n and all(a == expected for a in answer), "wrong sums"

    # The serial baseline always runs (every speedup is relative to it), both
    # before and after the peers; the best of all its runs counts.
    timing = h.Timing(
        config, n=n_tasks, repeats=config.reps(3, 2), workers=1, probe_n=1, check=check, section="scaling"
    )
    serial = timing.run(h.SERIAL, serial_task)
    peers = config.select(PEERS)
    flat = scaling_runs(
        peers, counts, lambda p, w: timing.run(p, pool_task, workers=w, probe_n=w, section=f"scaling@{w}")
    )
    serial = h.merge(serial, timing.run(h.SERIAL, serial_task))
    base = serial if serial.ok else None
    top = {m.key: m for m in flat if m.workers == nmax and m.ok}

    def sort_key(p):
        s = h.speedup(base, top.get(p.key))
        return (s is None, -(s or 0.0))

    rows: list[h.Row] = []
    for p in sorted(peers, key=sort_key):
        row = speedup_row(p, flat, counts, base)
        if isinstance(row, list):
            m = top.get(p.key)
            row += [h.fmt_s(m.best), h.fmt_ms(m.startup)] if m else ["", ""]
        rows.append(row)
    if base is not None:
        rows.append([h.SERIAL.label, "1.00×"] + [""] * (len(counts) - 1) + [h.fmt_s(base.best), ""])
    table = h.Table(
        f"speedup vs. serial: {n_tasks} × sum_squares({size:,})",
        ["peer"] + worker_headers(counts) + [f"time @{nmax} s", f"startup @{nmax} ms"],
        rows,
        notes=h.error_notes([serial] + flat) + capped_note(nmax),
    )
    cpus = min(nmax, os.cpu_count() or 1)
    targets = [
        h.at_least(
            f"interpool speedup at {nmax} workers ≥ 0.9 × {cpus} = {0.9 * cpus:.2g}×",
            h.speedup(base, top.get("interpool")),
            0.9 * cpus,
            h.fmt_ratio,
        )
    ]
    h.fail_if_interpool_failed(targets, flat)
    params = {
        "workers": counts,
        "n_tasks": n_tasks,
        "sum_squares_n": size,
        "task_ms": task_s * 1e3,
        "repeats": timing.repeats,
    }
    data = {"serial": [serial], "peers": flat}
    return h.WorkloadResult.of(__name__, params=params, tables=[table], targets=targets, data=data)


if __name__ == "__main__":
    from .__main__ import main

    raise SystemExit(main(default_only=[NAME]))
