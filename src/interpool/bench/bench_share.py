"""Grid search with ``interpool.share(grid)``: a large argument passed by handle.

The ``gridsearch`` workload (AoC 2024 day 6 part 2, one task per candidate
cell) with the unchanged task function, the grid wrapped once:

    g = interpool.share(grid)
    sum(pool.map(check_loop, itertools.repeat(g), itertools.repeat(start), cells))

Each worker decodes the grid once; every task then receives that same object.
Compared with the serial loop, with interpool passing the grid per call
(plain), with interpool setting it once per worker by initializer, and with
the standard library's best case: an initializer that stores the grid in a
module global of the task module, read by the task (``InterpreterPoolExecutor``
on 3.14, ``ProcessPoolExecutor``).  ``share()`` itself is inside the timed run.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import pickle

from . import _handle_tasks, _tasks
from . import _harness as h
from .bench_gridsearch import Baseline, problem, solve_map, speedup_table

NAME = "share"
TITLE = "Grid search with share(grid)"
DESCRIPTION = (
    "One task per candidate cell; the grid passed as interpool.share(grid), per call, "
    "or set once per worker by an initializer. Speedup = serial time / peer time (higher is better)."
)

#: Fraction of perfect scaling the share row must reach (1.85× on 2 workers).
TARGET_EFFICIENCY = 0.925


def _fake_missing() -> str | None:
    return "n/a (FAKE interpool stand-in)" if h.fake_interpool() else None


def _stdlib_init_script(grid) -> str:
    # The stdlib's subinterpreters start from the initial sys.path, so replay
    # ours (as the harness's stdlib peer does), then store the grid in the
    # task module.  exec is a picklable builtin; the grid travels as a literal.
    return h._sys_path_sync_script() + "import interpool.bench._handle_tasks as _m\n" + f"_m.set_grid({grid!r})\n"


def peers(grid) -> list[h.Benchmark]:
    ip = h.load_interpool

    def interpool_init(workers):
        return ip().Pool(workers, initializer=_handle_tasks.set_grid, initargs=(grid,))

    def stdlib_init(workers):
        return cf.InterpreterPoolExecutor(max_workers=workers, initializer=exec, initargs=(_stdlib_init_script(grid),))

    def processes_init(workers):
        return cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=h._mp_context(),
            initializer=_handle_tasks.set_grid,
            initargs=(grid,),
        )

    return [
        h.Benchmark(f"{h.interpool_label()} + share(grid)", h._make_interpool, "interpool", _fake_missing),
        h.Benchmark(f"{h.interpool_label()}, grid per call", h._make_interpool, "interpool-plain"),
        h.Benchmark(f"{h.interpool_label()}, grid by initializer", interpool_init, "interpool-init", _fake_missing),
        h.Benchmark(
            "InterpreterPoolExecutor (stdlib), grid by initializer", stdlib_init, "stdlib", h._stdlib_ipe_missing
        ),
        h.Benchmark("ProcessPoolExecutor, grid by initializer", processes_init, "processes"),
    ]


def solve_shared(ex, grid, start, cells) -> int:
    shared = h.load_interpool().share(grid)
    return sum(ex.map(_tasks.check_loop, itertools.repeat(shared), itertools.repeat(start), cells))


def solve_preset(ex, start, cells, chunksize=1) -> int:
    return sum(ex.map(_handle_tasks.check_loop_preset, itertools.repeat(start), cells, chunksize=chunksize))


def run(config: h.Config) -> h.WorkloadResult:
    grid, start, _, cells = problem(config)
    grid_bytes = len(pickle.dumps(grid))
    # ProcessPoolExecutor's best case batches items (its map defaults to one
    # item per round trip); the chunk size interpool's map picks by itself.
    chunk = max(1, min(1024, len(cells) // (config.workers * 16)))
    config.log(f"  share: {len(cells):,} candidate cells, grid {grid_bytes:,} bytes pickled")
    baseline = Baseline(config, grid, start, cells, config.reps(3, 2), "share")
    tasks = {
        "interpool": lambda ex, n: solve_shared(ex, grid, start, cells[:n]),
        "interpool-plain": lambda ex, n: solve_map(ex, grid, start, cells[:n]),
        "interpool-init": lambda ex, n: solve_preset(ex, start, cells[:n]),
        "stdlib": lambda ex, n: solve_preset(ex, start, cells[:n]),
        "processes": lambda ex, n: solve_preset(ex, start, cells[:n], chunk),
    }
    timing = baseline.peers(config.workers)
    peers_ms = [timing.run(p, tasks[p.key]) for p in peers(grid) if config.wants(p.key)]
    base = baseline.settle(peers_ms)
    ms = [baseline.serial] + peers_ms
    chunk_note = f"ProcessPoolExecutor map uses chunksize={chunk} (its default of 1 is much slower)."
    table = speedup_table(
        f"{len(cells):,} tasks on {config.workers} workers "
        f"(grid {len(grid)}×{len(grid[0])}, {grid_bytes:,} bytes pickled)",
        ms,
        base,
        ["share(grid) is inside the timed run."] + ([chunk_note] if any(m.key == "processes" for m in ms) else []),
    )

    ip = h.find(ms, "interpool")
    want = TARGET_EFFICIENCY * config.workers
    stdlib_rows = [m for m in (h.find(ms, "stdlib"), h.find(ms, "processes")) if m is not None]
    best_stdlib = min(stdlib_rows, key=lambda m: m.best) if stdlib_rows else None
    targets = [
        h.at_least(
            f"interpool + share(grid) ≥ {want:.2f}× serial on {config.workers} workers",
            h.speedup(base, ip),
            want,
            h.fmt_ratio,
        ),
        h.target(
            "interpool + share(grid) faster than the stdlib's best (initializer, grid set once per worker)",
            None if (ip is None or best_stdlib is None) else ip.best < best_stdlib.best,
            ""
            if (ip is None or best_stdlib is None)
            else f"{h.fmt_ratio(h.speedup(base, ip))} vs {h.fmt_ratio(h.speedup(base, best_stdlib))} ({best_stdlib.label})",
        ),
    ]
    h.fail_if_interpool_failed(targets, ms)
    params = {
        "workers": config.workers,
        "grid": f"{len(grid)}x{len(grid[0])}",
        "tasks": len(cells),
        "grid_pickle_bytes": grid_bytes,
        "answer": baseline.expected,
        "repeats": timing.repeats,
        "processes_chunksize": chunk,
    }
    return h.WorkloadResult.of(__name__, params=params, tables=[table], targets=targets, data={"peers": ms})


if __name__ == "__main__":
    from .__main__ import main

    raise SystemExit(main(default_only=[NAME]))
