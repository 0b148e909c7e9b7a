"""Grid search scaling: the ``share`` workload's task at 1..N workers.

Each peer at its best, as in the ``share`` workload: interpool with
``share(grid)``, the stdlib InterpreterPoolExecutor (3.14) and
ProcessPoolExecutor with the grid set once per worker by an initializer,
and ThreadPoolExecutor with the grid passed per call (threads share it).
Speedup = serial time / peer time.  ``--plot FILE`` draws these curves
beside the CPU-bound ``scaling`` ones.
"""

from __future__ import annotations

import concurrent.futures as cf
import os

from . import _harness as h
from .bench_gridsearch import problem, serial_runner, solve_map, speedup
from .bench_scaling import worker_counts
from .bench_share import peers as share_peers
from .bench_share import solve_preset, solve_shared

NAME = "gridscaling"
TITLE = "Grid search scaling"
DESCRIPTION = (
    "The share workload's grid search at 1..N workers, each peer at its best (interpool: share(grid); "
    "stdlib and processes: grid by initializer; threads: grid per call); speedup = serial / peer time."
)

PEERS = ["interpool", "processes", "stdlib", "threads"]


def curve_peers(grid) -> list[h.Benchmark]:
    """The peers of the curves, keyed like the harness's peers."""
    by_key = {p.key: p for p in share_peers(grid)}
    return [
        by_key["interpool"],
        by_key["stdlib"],
        by_key["processes"],
        h.Benchmark("ThreadPoolExecutor, grid per call", cf.ThreadPoolExecutor, "threads"),
    ]


def run(config: h.Config) -> h.WorkloadResult:
    grid, start, _, cells = problem(config)
    reps = config.reps(2, 1)
    counts = worker_counts(config.workers)
    config.log(f"  gridscaling: {len(cells):,} cells at {counts} workers")

    run_serial = serial_runner(config, grid, start, cells, reps, "gridscaling")

    serial = run_serial()
    expected = serial.answer if serial.ok else None

    def check(answer, n):
        if expected is not None and n == len(cells):
            assert answer == expected, f"answer {answer} != serial answer {expected}"

    def task(key, workers):
        if key == "interpool":
            return lambda ex, n: solve_shared(ex, grid, start, cells[:n])
        if key == "threads":
            return lambda ex, n: solve_map(ex, grid, start, cells[:n])
        chunk = max(1, min(1024, len(cells) // (workers * 16))) if key == "processes" else 1
        return lambda ex, n: solve_preset(ex, start, cells[:n], chunk)

    flat: list[h.Measurement] = []
    selected = [p for p in curve_peers(grid) if config.peers is None or p.key in config.peers]
    for p in selected:
        for w in counts:
            m = h.run_peer(
                p,
                w,
                task(p.key, w),
                n=len(cells),
                repeats=reps,
                config=config,
                probe_n=min(len(cells), 8 * w),
                check=check,
                section=f"gridscaling@{w}",
            )
            flat.append(m)
            if m.status == "n/a":
                break
    serial = h.merge(serial, run_serial())
    base = serial if serial.ok else None
    rows: list[h.Row] = []
    for p in selected:
        ms = {m.workers: m for m in flat if m.key == p.key}
        first = next(iter(ms.values()), None)
        if first is None or first.status == "n/a":
            rows.append(h.status_row(first) if first else (p.label, "-"))
            continue
        rows.append(
            [p.label] + [h.fmt_ratio(speedup(base, ms.get(w))) if ms.get(w) and ms[w].ok else "ERROR" for w in counts]
        )
    table = h.Table(
        f"speedup vs. serial: {len(cells):,} grid cells",
        ["peer"] + [f"{w} worker{'s' if w > 1 else ''}" for w in counts],
        rows,
        notes=h.error_notes([serial] + flat),
    )
    cpus = os.cpu_count() or 1
    if config.workers > cpus:
        table.notes.append(f"note: {config.workers} workers > {cpus} CPUs; speedup is capped by the CPU count.")
    ip = next((m for m in flat if m.key == "interpool" and m.workers == config.workers and m.ok), None)
    s = speedup(base, ip)
    goal = 0.9 * min(config.workers, cpus)
    targets = [
        h.target(
            f"interpool + share(grid) at {config.workers} workers ≥ 0.9 × {min(config.workers, cpus)} = {goal:.3g}×",
            None if s is None else s >= goal,
            "" if s is None else h.fmt_ratio(s),
        )
    ]
    h.fail_if_interpool_failed(targets, flat)
    return h.WorkloadResult(
        NAME,
        TITLE,
        DESCRIPTION,
        params={"workers": counts, "tasks": len(cells), "answer": expected, "repeats": reps},
        tables=[table],
        targets=targets,
        data={"serial": [serial], "peers": flat},
    )


def main(argv=None):
    from .__main__ import main as suite_main

    return suite_main(argv, default_only=[NAME])


if __name__ == "__main__":
    raise SystemExit(main())
