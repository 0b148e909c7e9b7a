"""Grid search: Advent of Code 2024 day 6 part 2 on a generated 130×130 grid.

For every cell on the guard's original route (except the start) one task
checks whether an obstacle there traps the guard in a loop; the answer is how
many cells do. Each task receives the whole grid (a tuple of strings, ~17 kB
pickled) plus the start and the candidate cell:

    ex.map(check_loop, itertools.repeat(grid), itertools.repeat(start), cells)

so the per-task cost of shipping a moderately large argument is part of the
measurement. Every peer's answer must equal the serial answer.
"""

from __future__ import annotations

import dataclasses
import itertools
import pickle

from . import _harness as h
from . import _tasks

NAME = "gridsearch"
TITLE = "Grid search (AoC 2024 day 6 part 2)"
DESCRIPTION = (
    "One task per candidate cell, the ~17 kB grid passed with every call; "
    "speedup = serial time / peer time (higher is better)."
)

PEERS = ["interpool", "processes", "stdlib", "threads"]


def candidates(grid, start, *, step: int = 1, limit: int | None = None) -> list[tuple[int, int]]:
    """Cells on the original route except the start (every ``step``-th one)."""
    cells = _tasks.guard_path(grid, start)[1:][::step]
    return cells if limit is None else cells[:limit]


def solve_serial(grid, start, cells) -> int:
    return _tasks.count_loops(grid, start, cells)


def solve_map(ex, grid, start, cells) -> int:
    return sum(ex.map(_tasks.check_loop, itertools.repeat(grid), itertools.repeat(start), cells))


class Baseline:
    """The serial baseline of a grid search, and the timing of its peers.

    Timed before the peers and again after them (the best of all its runs
    counts, so that a burst of unrelated load during one of the two does not
    skew every ratio); its answer checks theirs.
    """

    def __init__(self, config: h.Config, grid, start, cells, reps: int, section: str):
        self.timing = h.Timing(
            config, n=len(cells), repeats=reps, workers=1, probe_n=min(len(cells), 20), section=section
        )
        self._task = lambda ex, n: solve_serial(grid, start, cells[:n])
        self.serial = self.timing.run(h.SERIAL, self._task)
        self.expected = self.serial.answer if self.serial.ok else None

    def check(self, answer, n) -> None:
        if self.expected is not None and n == self.timing.n:
            assert answer == self.expected, f"answer {answer} != serial answer {self.expected}"

    def peers(self, workers: int, section: str | None = None) -> h.Timing:
        """How the peers are timed on ``workers``: the same cells and repeats, checked against the serial answer."""
        probe = min(self.timing.n, 8 * workers)
        return dataclasses.replace(
            self.timing, workers=workers, probe_n=probe, check=self.check, section=section or self.timing.section
        )

    def settle(self, ms: list[h.Measurement]) -> h.Measurement | None:
        """Time the baseline again; mark the peers in ``ms`` whose answer differs. The base for speedups (or None)."""
        self.serial = h.merge(self.serial, self.timing.run(h.SERIAL, self._task))
        if self.serial.ok and self.expected is None:
            self.expected = self.serial.answer  # the first serial run failed; the re-run decides
            for m in ms:
                if m.ok and m.answer != self.expected:
                    m.status, m.detail = "error", f"wrong result: answer {m.answer} != serial answer {self.expected}"
        return self.serial if self.serial.ok else None


def speedup_table(title: str, ms: list[h.Measurement], base: h.Measurement | None, notes=()) -> h.Table:
    """A table of ``ms``: peer, time, speedup over ``base``, µs per task, answer, start-up."""
    rows = h.time_rows(ms, base, lambda m: [h.fmt_us(m.per_item), str(m.answer), h.fmt_ms(m.startup)])
    headers = ["peer", "time s", "vs. serial", "µs/task", "answer", "startup ms"]
    return h.Table(title, headers, rows, notes=list(notes) + h.error_notes(ms))


def problem(config: h.Config):
    """The grid, the guard's start, its route and the candidate cells, sized for ``config``."""
    grid, start = _tasks.make_grid()
    path = _tasks.guard_path(grid, start)
    step = 3 if config.quick else 1
    limit = max(1, int(len(path[1:][::step]) * config.scale)) if config.scale < 1 else None
    return grid, start, path, candidates(grid, start, step=step, limit=limit)


def run(config: h.Config) -> h.WorkloadResult:
    grid, start, path, cells = problem(config)
    grid_bytes = len(pickle.dumps(grid))
    config.log(f"  gridsearch: {len(cells):,} candidate cells, grid {grid_bytes:,} bytes pickled")
    baseline = Baseline(config, grid, start, cells, config.reps(3, 2), "gridsearch")
    timing = baseline.peers(config.workers)
    peers = [timing.run(p, lambda ex, n: solve_map(ex, grid, start, cells[:n])) for p in config.select(PEERS)]
    base = baseline.settle(peers)
    ms = [baseline.serial] + peers
    table = speedup_table(
        f"{len(cells):,} tasks on {config.workers} workers (grid {len(grid)}×{len(grid[0])}, route {len(path):,} cells)",
        ms,
        base,
    )
    s = h.speedup(base, h.find(ms, "interpool"))
    targets = [
        h.at_least(
            f"interpool ≥ 1.5× serial on {config.workers} workers (stdlib measured 0.78× on 2 cores)",
            s,
            1.5,
            h.fmt_ratio,
        )
    ]
    h.fail_if_interpool_failed(targets, ms)
    params = {
        "workers": config.workers,
        "grid": f"{len(grid)}x{len(grid[0])}",
        "route_cells": len(path),
        "tasks": len(cells),
        "grid_pickle_bytes": grid_bytes,
        "answer": baseline.expected,
        "repeats": timing.repeats,
    }
    return h.WorkloadResult.of(__name__, params=params, tables=[table], targets=targets, data={"peers": ms})


if __name__ == "__main__":
    from .__main__ import main

    raise SystemExit(main(default_only=[NAME]))
