"""HybridPool as asyncio's default executor: blocking I/O and CPU-bound work.

(a) 6 and 8 blocking calls (``time.sleep(0.25)``) through ``asyncio.to_thread``
    at once: plain callables get ThreadPoolExecutor's default thread count
    (``min(32, CPUs + 4)``), so 6 finish in one round on 2 cores and 8 in two.
(b) 4 × workers CPU-bound calls through ``asyncio.to_thread(isolated(f))``:
    the speedup over a serial loop (worker interpreters, one per core); best
    of ``REPEAT`` rounds for each, serial included.
Beside asyncio's own default, a ThreadPoolExecutor.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import time
from collections.abc import Callable

from . import _harness as h
from . import _tasks

NAME = "hybrid"
TITLE = "HybridPool as asyncio's default executor"
DESCRIPTION = (
    "Seconds for N blocking 0.25 s calls at once (lower is better), and the speedup of CPU-bound "
    "calls over a serial loop (higher is better), through asyncio.to_thread."
)

SLEEP = 0.25
TARGETS_S = {6: 0.3, 8: 0.55}  # on 2 cores: 6 threads by default
REPEAT = 3  # CPU-bound rounds (and serial loops); the best counts


async def _blocking(executor, n):
    asyncio.get_running_loop().set_default_executor(executor)
    await asyncio.to_thread(_tasks.noop)  # a thread is up
    t = time.perf_counter()
    await asyncio.gather(*(asyncio.to_thread(time.sleep, SLEEP) for _ in range(n)))
    return time.perf_counter() - t


async def _cpu(executor, fn, n, work):
    """Best of ``REPEAT`` rounds of n calls at once: one round is short enough for noise to dominate."""
    asyncio.get_running_loop().set_default_executor(executor)
    await asyncio.gather(*(asyncio.to_thread(fn, 1000) for _ in range(n)))  # workers are up
    best = float("inf")
    for _ in range(REPEAT):
        t = time.perf_counter()
        await asyncio.gather(*(asyncio.to_thread(fn, work) for _ in range(n)))
        best = min(best, time.perf_counter() - t)
    return best


def run(config: h.Config) -> h.WorkloadResult:
    workers = config.workers
    work = config.size(2_000_000, 200_000, minimum=1_000)
    n_cpu = 4 * workers
    rows: list[h.Row] = []
    got: dict[tuple[str, object], float] = {}
    if h.fake_interpool():
        rows.append(("all peers", "n/a (fake interpool stand-in)"))
    else:
        import interpool

        serial = float("inf")
        for _ in range(REPEAT):
            t = time.perf_counter()
            for _ in range(n_cpu):
                _tasks.sum_squares(work)
            serial = min(serial, time.perf_counter() - t)
        peers: list[tuple[str, Callable[[], cf.Executor], Callable[[int], int]]] = [
            (f"HybridPool({workers})", lambda: interpool.HybridPool(workers), interpool.isolated(_tasks.sum_squares)),
            ("ThreadPoolExecutor()", cf.ThreadPoolExecutor, _tasks.sum_squares),
        ]
        for label, make, cpu_fn in peers:
            cells = [label]
            for n in TARGETS_S:
                config.log(f"hybrid: {label}, {n} blocking calls")
                got[(label, n)] = asyncio.run(_blocking(make(), n))
                cells.append(h.fmt_s(got[(label, n)]))
            config.log(f"hybrid: {label}, CPU-bound")
            cpu = asyncio.run(_cpu(make(), cpu_fn, n_cpu, work))
            got[(label, "cpu")] = serial / cpu
            cells.append(h.fmt_ratio(serial / cpu))
            rows.append(cells)
    table = h.Table(
        f"asyncio.to_thread through loop.set_default_executor(...), {workers} workers",
        ["default executor"] + [f"{n} × sleep({SLEEP:g})" for n in TARGETS_S] + [f"{n_cpu} CPU-bound: speedup"],
        rows,
        notes=[
            "HybridPool runs the CPU-bound calls as isolated(f) in worker interpreters; "
            "ThreadPoolExecutor runs them on threads under one GIL."
        ],
    )
    hp = f"HybridPool({workers})"
    ok = (hp, 6) in got
    targets = [
        h.target(
            f"{n} blocking calls ≤ {limit:g} s (2 cores: 6 threads)",
            got[(hp, n)] <= limit if ok else None,
            h.fmt_s(got[(hp, n)]) + " s" if ok else "",
        )
        for n, limit in TARGETS_S.items()
    ] + [
        h.target(
            "isolated CPU-bound work still scales (speedup ≥ 0.8 × workers)",
            got[(hp, "cpu")] >= 0.8 * workers if ok else None,
            h.fmt_ratio(got[(hp, "cpu")]) if ok else "",
        )
    ]
    params = {"workers": workers, "work": work}
    return h.WorkloadResult.of(__name__, params=params, tables=[table], targets=targets, data={})


if __name__ == "__main__":
    from .__main__ import main

    raise SystemExit(main(default_only=[NAME]))
