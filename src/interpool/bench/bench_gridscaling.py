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
from .bench_gridsearch import Baseline, problem, solve_map
from .bench_scaling import capped_note, scaling_runs, speedup_row, worker_counts, worker_headers
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
    counts = worker_counts(config.workers)
    config.log(f"  gridscaling: {len(cells):,} cells at {counts} workers")
    baseline = Baseline(config, grid, start, cells, config.reps(2, 1), "gridscaling")

    def task(key, workers):
        if key == "interpool":
            return lambda ex, n: solve_shared(ex, grid, start, cells[:n])
        if key == "threads":
            return lambda ex, n: solve_map(ex, grid, start, cells[:n])
        chunk = max(1, min(1024, len(cells) // (workers * 16))) if key == "processes" else 1
        return lambda ex, n: solve_preset(ex, start, cells[:n], chunk)

    selected = [p for p in curve_peers(grid) if config.wants(p.key)]
    flat = scaling_runs(selected, counts, lambda p, w: baseline.peers(w, f"gridscaling@{w}").run(p, task(p.key, w)))
    base = baseline.settle(flat)
    table = h.Table(
        f"speedup vs. serial: {len(cells):,} grid cells",
        ["peer"] + worker_headers(counts),
        [speedup_row(p, flat, counts, base) for p in selected],
        notes=h.error_notes([baseline.serial] + flat) + capped_note(config.workers),
    )
    ip = next((m for m in flat if m.key == "interpool" and m.workers == config.workers and m.ok), None)
    cpus = min(config.workers, os.cpu_count() or 1)
    targets = [
        h.at_least(
            f"interpool + share(grid) at {config.workers} workers ≥ 0.9 × {cpus} = {0.9 * cpus:.3g}×",
            h.speedup(base, ip),
            0.9 * cpus,
            h.fmt_ratio,
        )
    ]
    h.fail_if_interpool_failed(targets, flat)
    params = {"workers": counts, "tasks": len(cells), "answer": baseline.expected, "repeats": baseline.timing.repeats}
    data = {"serial": [baseline.serial], "peers": flat}
    return h.WorkloadResult.of(__name__, params=params, tables=[table], targets=targets, data=data)


if __name__ == "__main__":
    from .__main__ import main

    raise SystemExit(main(default_only=[NAME]))
