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


def serial_runner(config: h.Config, grid, start, cells, reps: int, section: str):
    """A function that times the in-process loop over ``cells`` (the serial baseline)."""

    def run_serial():
        return h.run_peer(
            h.SERIAL,
            1,
            lambda ex, n: solve_serial(grid, start, cells[:n]),
            n=len(cells),
            repeats=reps,
            config=config,
            probe_n=min(len(cells), 20),
            section=section,
        )

    return run_serial


def settle_serial(ms: list[h.Measurement], serial: h.Measurement, expected):
    """Merge a second serial run into ``ms[0]``; mark peers whose answer differs. Returns the base (or None)."""
    if serial.ok and expected is None:
        expected = serial.answer  # the first serial run failed; the re-run decides
        for m in ms[1:]:
            if m.ok and m.answer != expected:
                m.status, m.detail = "error", f"wrong result: answer {m.answer} != serial answer {expected}"
    return serial if serial.ok else None


def speedup(base: h.Measurement | None, m: h.Measurement | None) -> float | None:
    """``base``'s time over ``m``'s, or None when either is missing or failed."""
    return base.best / m.best if (base is not None and m is not None and m.ok) else None


def speedup_rows(ms: list[h.Measurement], base: h.Measurement | None) -> list[h.Row]:
    """Table rows: peer, time, speedup over ``base``, µs per task, answer, start-up."""
    return h.rows(
        ms,
        lambda m: m.best,
        lambda m: [
            m.label,
            h.fmt_s(m.best),
            h.fmt_ratio(speedup(base, m)),
            h.fmt_us(m.per_item),
            str(m.answer),
            h.fmt_ms(m.startup),
        ],
    )


def problem(config: h.Config):
    """The grid, the guard's start, its route and the candidate cells, sized for ``config``."""
    grid, start = _tasks.make_grid()
    path = _tasks.guard_path(grid, start)
    step = 3 if config.quick else 1
    limit = max(1, int(len(path[1:][::step]) * config.scale)) if config.scale < 1 else None
    return grid, start, path, candidates(grid, start, step=step, limit=limit)


def run(config: h.Config) -> h.WorkloadResult:
    grid, start, path, cells = problem(config)
    reps = config.reps(3, 2)
    grid_bytes = len(pickle.dumps(grid))
    config.log(f"  gridsearch: {len(cells):,} candidate cells, grid {grid_bytes:,} bytes pickled")

    run_serial = serial_runner(config, grid, start, cells, reps, "gridsearch")

    # Serial runs before and after the peers; the best of all its runs counts.
    serial = run_serial()
    expected = serial.answer if serial.ok else None

    def check(answer, n):
        if expected is not None and n == len(cells):
            assert answer == expected, f"answer {answer} != serial answer {expected}"

    ms = [serial]
    for p in config.select(PEERS):
        ms.append(
            h.run_peer(
                p,
                config.workers,
                lambda ex, n: solve_map(ex, grid, start, cells[:n]),
                n=len(cells),
                repeats=reps,
                config=config,
                probe_n=min(len(cells), 8 * config.workers),
                check=check,
                section="gridsearch",
            )
        )

    ms[0] = serial = h.merge(serial, run_serial())
    base = settle_serial(ms, serial, expected)
    rows = speedup_rows(ms, base)
    table = h.Table(
        f"{len(cells):,} tasks on {config.workers} workers "
        f"(grid {len(grid)}×{len(grid[0])}, route {len(path):,} cells)",
        ["peer", "time s", "vs. serial", "µs/task", "answer", "startup ms"],
        rows,
        notes=h.error_notes(ms),
    )
    ip = h.find(ms, "interpool")
    s = speedup(base, ip) if ip else None
    targets = [
        h.target(
            f"interpool ≥ 1.5× serial on {config.workers} workers (stdlib measured 0.78× on 2 cores)",
            None if s is None else s >= 1.5,
            "" if s is None else h.fmt_ratio(s),
        )
    ]
    h.fail_if_interpool_failed(targets, ms)
    return h.WorkloadResult(
        NAME,
        TITLE,
        DESCRIPTION,
        params={
            "workers": config.workers,
            "grid": f"{len(grid)}x{len(grid[0])}",
            "route_cells": len(path),
            "tasks": len(cells),
            "grid_pickle_bytes": grid_bytes,
            "answer": expected,
            "repeats": reps,
        },
        tables=[table],
        targets=targets,
        data={"peers": ms},
    )


def main(argv=None):
    from .__main__ import main as suite_main

    return suite_main(argv, default_only=[NAME])


if __name__ == "__main__":
    raise SystemExit(main())
