"""CPU-bound scaling: pure-Python ``sum_squares`` tasks at 1..N workers.

Every peer runs the same batch of equal tasks; the speedup is the serial
(in-process loop) time divided by the peer's time. ThreadPoolExecutor is
included to show the GIL: it should stay near 1×.
"""

from __future__ import annotations

import math
import os
import time

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


def calibrate(task_seconds: float) -> int:
    """n such that sum_squares(n) takes about ``task_seconds`` here."""
    probe = 50_000
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        _tasks.sum_squares(probe)
        best = min(best, time.perf_counter() - t0)
    return max(1_000, int(probe * task_seconds / best))


def run(config: h.Config) -> h.WorkloadResult:
    nmax = config.workers
    counts = worker_counts(nmax)
    task_s = (0.01 if config.quick else 0.02) * min(1.0, config.scale)
    size = calibrate(task_s)
    lcm = math.lcm(*range(1, min(nmax, 4) + 1))
    n_tasks = max(config.size(24, 12, minimum=1), nmax)
    n_tasks = -(-n_tasks // lcm) * lcm  # divisible by small worker counts
    expected = _tasks.sum_squares(size)
    reps = config.reps(3, 2)
    config.log(f"  scaling: {n_tasks} tasks of sum_squares({size:,}) ≈ {task_s * 1e3:.0f} ms each")

    def serial_task(ex, n):
        return [_tasks.sum_squares(size) for _ in range(n)]

    def pool_task(ex, n):
        return list(ex.map(_tasks.sum_squares, [size] * n))

    def check(answer, n):
        assert len(answer) == n and all(a == expected for a in answer), "wrong sums"

    # The serial baseline always runs (every speedup is relative to it), both
    # before and after the peers; the best of all its runs counts.
    def run_serial():
        return h.run_peer(
            h.SERIAL, 1, serial_task, n=n_tasks, repeats=reps, config=config, probe_n=1, check=check, section="scaling"
        )

    serial = [run_serial()]

    by_peer: dict[str, dict[int, h.Measurement]] = {}
    flat: list[h.Measurement] = []
    for p in config.select(PEERS):
        by_peer[p.key] = {}
        for w in counts:
            m = h.run_peer(
                p, w, pool_task, n=n_tasks, repeats=reps, config=config, probe_n=w, check=check, section=f"scaling@{w}"
            )
            by_peer[p.key][w] = m
            flat.append(m)
            if m.status == "n/a":
                break  # unavailable everywhere; one row is enough

    serial[0] = h.merge(serial[0], run_serial())
    base = serial[0] if serial[0].ok else None

    def speedup(m: h.Measurement | None) -> float | None:
        if m is None or not m.ok or base is None:
            return None
        return base.best / m.best

    rows: list[h.Row] = []
    peers = config.select(PEERS)

    def sort_key(p):
        s = speedup(by_peer[p.key].get(nmax))
        return (s is None, -(s or 0.0))

    for p in sorted(peers, key=sort_key):
        ms = by_peer[p.key]
        first = next(iter(ms.values()))
        if first.status == "n/a":
            rows.append(h.status_row(first))
            continue
        cells = []
        for w in counts:
            got = ms.get(w)
            cells.append(h.fmt_ratio(speedup(got)) if got is not None and got.ok else "ERROR")
        top = ms.get(nmax)
        rows.append(
            [p.label]
            + cells
            + [
                h.fmt_s(top.best) if top is not None and top.ok else "",
                h.fmt_ms(top.startup) if top is not None and top.ok else "",
            ]
        )
    if base is not None:
        rows.append([h.SERIAL.label, "1.00×"] + [""] * (len(counts) - 1) + [h.fmt_s(base.best), ""])
    headers = (
        ["peer"] + [f"{w} worker{'s' if w > 1 else ''}" for w in counts] + [f"time @{nmax} s", f"startup @{nmax} ms"]
    )
    table = h.Table(
        f"speedup vs. serial: {n_tasks} × sum_squares({size:,})",
        headers,
        rows,
        notes=h.error_notes(serial + flat),
    )
    cpus = os.cpu_count() or 1
    if nmax > cpus:
        table.notes.append(f"note: {nmax} workers > {cpus} CPUs; speedup is capped by the CPU count.")

    ip = by_peer.get("interpool", {}).get(nmax)
    s = speedup(ip)
    goal = 0.9 * min(nmax, cpus)
    targets = [
        h.target(
            f"interpool speedup at {nmax} workers ≥ 0.9 × {min(nmax, cpus)} = {goal:.2g}×",
            None if s is None else s >= goal,
            "" if s is None else h.fmt_ratio(s),
        )
    ]
    h.fail_if_interpool_failed(targets, flat)
    return h.WorkloadResult(
        NAME,
        TITLE,
        DESCRIPTION,
        params={"workers": counts, "n_tasks": n_tasks, "sum_squares_n": size, "task_ms": task_s * 1e3, "repeats": reps},
        tables=[table],
        targets=targets,
        data={"serial": serial, "peers": flat},
    )


def main(argv=None):
    from .__main__ import main as suite_main

    return suite_main(argv, default_only=[NAME])


if __name__ == "__main__":
    raise SystemExit(main())
