"""asyncio: what ``await`` costs and buys with interpool.

(a) overhead: N ``noop`` tasks awaited through ``asyncio.gather``:
    ``await pool.run(noop)`` against ``loop.run_in_executor(ex, noop)`` with
    ThreadPoolExecutor and the stdlib InterpreterPoolExecutor (3.14), next to
    the cost of N bare no-op coroutines through gather (the floor).
(b) AsyncPool: N coroutines that each ``await asyncio.sleep(0.05)`` and then
    do ~1 ms of pure-Python CPU work, on an AsyncPool against the same
    coroutines on the main event loop alone.
(d) sequential awaits: ``await pool.run(noop)`` one after another, against
    ``await asyncio.to_thread(noop)`` on the same loop (the round trip,
    including waking the loop).
(c) grid search (the gridsearch workload, grid passed once with
    ``interpool.share``): one ``await interpool.to_interpreter(check_loop, ...)``
    per cell through gather against ``Pool.map`` on the same shared grid.

The coroutine functions are module-level here: AsyncPool workers import this
module to run them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import itertools

from . import _harness as h
from . import _tasks
from .bench_gridsearch import problem
from .bench_scaling import calibrate

NAME = "asyncio"
TITLE = "asyncio: Pool.run, AsyncPool, to_interpreter"
DESCRIPTION = (
    "Awaiting work from an event loop: per-task overhead through gather (lower is better), "
    "sleep-then-compute coroutines on AsyncPool workers vs. the main loop, and the grid "
    "search through to_interpreter vs. Pool.map (higher speedup is better)."
)

FAKE_REASON = "n/a (fake interpool stand-in)"


# ---------------------------------------------------------------------------
# Coroutine functions (imported by AsyncPool workers)
# ---------------------------------------------------------------------------


async def bare():
    """A no-op coroutine: the floor of any awaited task."""
    return None


async def sleep_then_spin(delay, n):
    """Wait like I/O, then burn ~1 ms of CPU (``sum_squares(n)``)."""
    await asyncio.sleep(delay)
    return _tasks.sum_squares(n)


async def call(fn, *args):
    """Run a plain function in a worker loop (used for warm-up)."""
    return fn(*args)


# ---------------------------------------------------------------------------
# Peers that are not plain executors
# ---------------------------------------------------------------------------


def _interpool_missing():
    if h.fake_interpool():
        return FAKE_REASON
    return None


class _DefaultPoolPeer:
    """interpool.default_pool() in an executor's clothes; never shut down (it is process-wide)."""

    def __init__(self, workers):
        self.pool = h.load_interpool().default_pool()

    def submit(self, fn, /, *args):
        return self.pool.submit(fn, *args)

    def shutdown(self, wait=True, cancel_futures=False):
        pass


class _AsyncPoolPeer:
    """An AsyncPool with the submit()/shutdown() that the harness warms up and closes."""

    def __init__(self, workers, concurrency):
        self.apool = h.load_interpool().AsyncPool(workers, concurrency=concurrency)

    def submit(self, fn, /, *args):
        future = cf.Future()
        try:
            future.set_result(asyncio.run(self.apool.run(call, fn, *args)))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def shutdown(self, wait=True, cancel_futures=False):
        self.apool.shutdown(wait)


def _peers(config, *entries):
    """``(peer, task)`` for each ``(label, make, key, task)`` that --peers selects (one that runs
    in-process, ``make`` None, always runs); interpool's are n/a under the FAKE stand-in."""
    missing = {"interpool": _interpool_missing, "stdlib": h._stdlib_ipe_missing}
    return [
        (h.Benchmark(label, make, key, missing.get(key.split("-")[0])), task)
        for label, make, key, task in entries
        if make is None or config.wants(key)
    ]


# ---------------------------------------------------------------------------
# (a) per-task overhead through gather
# ---------------------------------------------------------------------------


def _gather_bare(ex, n):
    async def main():
        return await asyncio.gather(*(bare() for _ in range(n)))

    return len(asyncio.run(main()))


def _gather_awaiting_future(ex, n):
    async def main():
        loop = asyncio.get_running_loop()

        async def await_a_future():
            future = loop.create_future()
            loop.call_soon(future.set_result, None)
            return await future

        return await asyncio.gather(*(await_a_future() for _ in range(n)))

    return len(asyncio.run(main()))


def _gather_pool_run(ex, n):
    async def main():
        run, fn = ex.run, _tasks.noop
        return await asyncio.gather(*(run(fn) for _ in range(n)))

    return len(asyncio.run(main()))


def _gather_run_in_executor(ex, n):
    async def main():
        loop = asyncio.get_running_loop()
        rie, fn = loop.run_in_executor, _tasks.noop
        return await asyncio.gather(*(rie(ex, fn) for _ in range(n)))

    return len(asyncio.run(main()))


def _check_count(answer, n):
    assert answer == n, f"expected {n} results, got {answer}"


def _overhead(config):
    n = config.size(100_000, 20_000, minimum=10)
    reps = config.reps(3, 2)
    budget = config.pick(1.5, 0.3)
    probe = min(n, int(config.pick(2_000, 500)))
    peers = _peers(
        config,
        ("bare coroutine (floor)", None, "serial", _gather_bare),
        # What any awaited result costs asyncio itself: a coroutine that
        # suspends on a future and is resumed when the loop completes it.
        ("coroutine awaiting a future, no work (asyncio floor)", None, "serial-future", _gather_awaiting_future),
        ("interpool.Pool.run", h._make_interpool, "interpool", _gather_pool_run),
        ("interpool.Pool via run_in_executor", h._make_interpool, "interpool-rie", _gather_run_in_executor),
        ("ThreadPoolExecutor via run_in_executor", cf.ThreadPoolExecutor, "threads", _gather_run_in_executor),
        ("InterpreterPoolExecutor (stdlib) via run_in_executor", h._make_stdlib_ipe, "stdlib", _gather_run_in_executor),
    )
    timing = h.Timing(config, n=n, repeats=reps, budget_s=budget, probe_n=probe, check=_check_count, section="gather")
    ms = [timing.run(p, task) for p, task in peers]
    floor, ip, st = h.find(ms, "serial"), h.find(ms, "interpool"), h.find(ms, "stdlib")
    awaiting = h.find(ms, "serial-future")

    def above_floor(m):
        return [h.fmt_us(m.per_item - floor.per_item) if (floor and m is not floor) else "-", h.fmt_ms(m.startup)]

    rows = h.per_item_rows(ms, ip, above_floor)
    table = h.Table(
        f"(a) {n:,} awaited noop() tasks through asyncio.gather, {config.workers} workers",
        ["peer", "items", "µs/task", "vs. interpool", "µs above floor", "startup ms"],
        rows,
        notes=h.error_notes(ms),
    )
    table.notes.append("Slow peers run fewer items (sized to ~1.5 s per run); all figures are per task.")
    missing = _interpool_missing() or "missing measurement"
    targets = [
        h.target(
            "Pool.run through gather ≤ 5 µs per task",
            None if ip is None else ip.per_item <= 5e-6,
            missing
            if ip is None
            else f"{h.fmt_us(ip.per_item)} µs; bare coroutine floor "
            f"{h.fmt_us(floor.per_item) if floor else '-'} µs, a coroutine awaiting a future "
            f"{h.fmt_us(awaiting.per_item) if awaiting else '-'} µs",
        ),
        h.target(
            "Pool.run ≥ 15× faster than stdlib InterpreterPoolExecutor via run_in_executor",
            None if (ip is None or st is None) else st.per_item / ip.per_item >= 15,
            (h._stdlib_ipe_missing() or missing)
            if (ip is None or st is None)
            else h.fmt_ratio(st.per_item / ip.per_item),
        ),
    ]
    return table, targets, ms, {"n_gather": n}


# ---------------------------------------------------------------------------
# (b) AsyncPool: sleep, then compute
# ---------------------------------------------------------------------------


def _async_pool(config):
    n = config.size(5_000, 1_000, minimum=4)
    delay = 0.05
    spin = calibrate(0.001, probe=20_000, tries=5, minimum=100)
    workers = config.workers
    concurrency = n // workers + 1  # every coroutine may be sleeping at once
    reps = config.reps(2, 1)
    expected = n * _tasks.sum_squares(spin)

    def check(answer, k):
        if k == n:
            assert answer == expected, f"sum {answer} != expected {expected}"

    def on_main_loop(ex, k):
        async def main():
            return await asyncio.gather(*(sleep_then_spin(delay, spin) for _ in range(k)))

        return sum(asyncio.run(main()))

    def on_async_pool(ex, k):
        apool = ex.apool

        async def main():
            return await asyncio.gather(*(apool.run(sleep_then_spin, delay, spin) for _ in range(k)))

        return sum(asyncio.run(main()))

    peers = _peers(
        config,
        ("main event loop alone", None, "serial", on_main_loop),
        (
            f"interpool.AsyncPool({workers}, concurrency={concurrency})",
            lambda w: _AsyncPoolPeer(w, concurrency),
            "interpool",
            on_async_pool,
        ),
    )
    timing = h.Timing(config, n=n, repeats=reps, probe_n=min(n, 100), check=check, section="async pool")
    ms = [timing.run(p, task) for p, task in peers]
    base, ip = h.find(ms, "serial"), h.find(ms, "interpool")
    rows = h.time_rows(ms, base, lambda m: [h.fmt_ms(m.per_item), h.fmt_ms(m.startup)])
    table = h.Table(
        f"(b) {n:,} coroutines: await asyncio.sleep({delay}), then ~1 ms CPU (sum_squares({spin:,}))",
        ["peer", "time s", "vs. main loop", "ms/coroutine", "startup ms"],
        rows,
        notes=h.error_notes(ms),
    )
    targets = [
        h.at_least(
            f"AsyncPool on {workers} workers ≥ 1.8× the main loop alone",
            h.speedup(base, ip),
            1.8,
            h.fmt_ratio,
            _interpool_missing() or "missing measurement",
        )
    ]
    return table, targets, ms, {"n_coroutines": n, "sleep_s": delay, "spin_n": spin, "concurrency": concurrency}


# ---------------------------------------------------------------------------
# (d) sequential awaits: one round trip at a time
# ---------------------------------------------------------------------------


def _sequential(config):
    n = config.size(5_000, 1_000, minimum=10)
    reps = config.reps(3, 2)
    noop = _tasks.noop

    def pool_run(ex, k):
        async def main():
            run = ex.run
            for _ in range(k):
                await run(noop)
            return k

        return asyncio.run(main())

    def to_thread(ex, k):
        async def main():
            for _ in range(k):
                await asyncio.to_thread(noop)
            return k

        return asyncio.run(main())

    def submit_result(ex, k):
        for _ in range(k):
            ex.submit(noop).result()
        return k

    peers = _peers(
        config,
        ("asyncio.to_thread(noop) (default executor)", None, "serial", to_thread),
        ("await interpool.Pool.run(noop)", h._make_interpool, "interpool", pool_run),
        ("interpool.Pool.submit(noop).result(), no loop", h._make_interpool, "interpool-sync", submit_result),
    )
    timing = h.Timing(config, n=n, repeats=reps, probe_n=min(n, 200), check=_check_count, section="sequential")
    ms = [timing.run(p, task) for p, task in peers]
    base, ip = h.find(ms, "serial"), h.find(ms, "interpool")
    table = h.Table(
        f"(d) {n:,} sequential awaits of noop(), {config.workers} workers",
        ["peer", "items", "µs/round trip", "vs. to_thread"],
        h.per_item_rows(ms, base),
        notes=h.error_notes(ms),
    )
    targets = [
        h.at_most(
            "sequential await pool.run(noop) ≤ 0.5 × asyncio.to_thread(noop)",
            h.ratio(ip, base),
            0.5,
            h.fmt_ratio,
            _interpool_missing() or "missing measurement",
        )
    ]
    return table, targets, ms, {"n_sequential": n}


# ---------------------------------------------------------------------------
# (c) grid search: to_interpreter vs Pool.map, shared grid
# ---------------------------------------------------------------------------


def _gridsearch(config):
    grid, start, _, cells = problem(config)
    reps = config.reps(3, 2)
    ipmod = None if _interpool_missing() else h.load_interpool()
    workers = ipmod.default_workers() if ipmod else config.workers
    shared = ipmod.share(grid) if ipmod else None
    check_loop = _tasks.check_loop

    def serial(ex, k):
        return _tasks.count_loops(grid, start, cells[:k])

    def via_to_interpreter(ex, k):
        to_interpreter = ipmod.to_interpreter

        async def main():
            return await asyncio.gather(*(to_interpreter(check_loop, shared, start, c) for c in cells[:k]))

        return sum(asyncio.run(main()))

    def via_map(ex, k):
        return sum(ex.map(check_loop, itertools.repeat(shared), itertools.repeat(start), cells[:k]))

    answers = {}

    def check(answer, k):
        if k == len(cells):
            answers.setdefault("first", answer)
            assert answer == answers["first"], f"answer {answer} != {answers['first']}"

    peers = _peers(
        config,
        ("serial (in-process loop)", None, "serial", serial),
        ("Pool.map, shared grid", h._make_interpool, "interpool-map", via_map),
        ("to_interpreter + gather, shared grid", _DefaultPoolPeer, "interpool", via_to_interpreter),
    )
    timing = h.Timing(
        config,
        n=len(cells),
        repeats=reps,
        workers=workers,
        probe_n=min(len(cells), 8 * workers),
        check=check,
        section="gridsearch",
    )
    ms = [timing.run(p, task, repeats=1) if p.serial else timing.run(p, task) for p, task in peers]
    base, ti, pm = h.find(ms, "serial"), h.find(ms, "interpool"), h.find(ms, "interpool-map")
    rows = h.time_rows(
        ms,
        base,
        lambda m: [h.fmt_ratio(h.speedup(m, pm)), h.fmt_us(m.per_item), str(m.answer), h.fmt_ms(m.startup)],
    )
    table = h.Table(
        f"(c) grid search, {len(cells):,} cells, {workers} workers (default_pool's size), grid shared once",
        ["peer", "time s", "vs. serial", "vs. Pool.map", "µs/task", "answer", "startup ms"],
        rows,
        notes=h.error_notes(ms),
    )
    table.notes.append("to_interpreter runs on interpool.default_pool(); its start-up counts only the first use.")
    targets = [
        h.at_most(
            "to_interpreter grid search within 10% of Pool.map",
            h.speedup(ti, pm),
            1.10,
            lambda r: f"{h.fmt_ratio(r)} Pool.map's time",
            _interpool_missing() or "missing measurement",
        )
    ]
    return table, targets, ms, {"grid_cells": len(cells), "grid_workers": workers}


# ---------------------------------------------------------------------------


def run(config: h.Config) -> h.WorkloadResult:
    # CPython 3.12: let the main interpreter create the first asyncio.Task
    # (its argument parser's keyword tuple), not an AsyncPool worker; see the
    # tests (test_unused_async_pool_exits_cleanly).
    asyncio.run(bare())
    tables, targets, data, params = [], [], {}, {"workers": config.workers}
    for name, section in (
        ("gather", _overhead),
        ("sequential", _sequential),
        ("async_pool", _async_pool),
        ("gridsearch", _gridsearch),
    ):
        table, section_targets, ms, section_params = section(config)
        h.fail_if_interpool_failed(section_targets, ms)
        tables.append(table)
        targets += section_targets
        data[name] = ms
        params.update(section_params)
    return h.WorkloadResult.of(__name__, params=params, tables=tables, targets=targets, data=data)


if __name__ == "__main__":
    from .__main__ import main

    raise SystemExit(main(default_only=[NAME]))
