"""anyio: per-call cost of ``await interpool.to_interpreter(f)`` under anyio's
asyncio and trio backends, beside ``anyio.to_interpreter.run_sync`` (3.13+)
and ``anyio.to_thread.run_sync``.

Sequential: one awaited call at a time.  Concurrent: N calls started at once
in a task group.  The function is a no-op, so the figure is the cost of the
round trip.
"""

from __future__ import annotations

import sys
import time

from . import _harness as h
from . import _tasks

NAME = "anyio"
TITLE = "anyio: to_interpreter vs anyio.to_interpreter and anyio.to_thread"
DESCRIPTION = "µs per awaited no-op call, sequential and concurrent (lower is better)."


async def _sequential(call, n):
    t = time.perf_counter()
    for _ in range(n):
        await call(_tasks.noop)
    return (time.perf_counter() - t) / n


async def _concurrent(call, n):
    import anyio

    t = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(call, _tasks.noop)
    return (time.perf_counter() - t) / n


def _peers():
    import anyio
    import anyio.to_thread

    import interpool

    peers = [("interpool.to_interpreter", interpool.to_interpreter, None)]
    if sys.version_info >= (3, 13):
        import anyio.to_interpreter

        peers.append(("anyio.to_interpreter.run_sync", anyio.to_interpreter.run_sync, None))
    else:
        peers.append(("anyio.to_interpreter.run_sync", None, "n/a (anyio needs Python 3.13+ for it)"))
    peers.append(("anyio.to_thread.run_sync", anyio.to_thread.run_sync, None))
    return peers


def run(config: h.Config) -> h.WorkloadResult:
    n_seq = config.size(2_000, 300, minimum=10)
    n_conc = config.size(2_000, 300, minimum=10)
    # anyio's to_interpreter starts an interpreter per concurrent call: keep its batch small.
    n_conc_anyio_interp = min(n_conc, config.size(64, 16, minimum=4))
    missing = h.needs("anyio")
    backends = ["asyncio"]
    try:
        import trio  # noqa: F401

        backends.append("trio")
    except ImportError:
        pass
    rows: list[h.Row] = []
    figures = {}
    if missing is not None:
        rows.append(("all peers", missing))
    else:
        import anyio

        for label, call, why in _peers():
            if call is None:
                rows.append((label, why))
                continue
            cells = [label]
            for backend in backends:
                config.log(f"anyio: {label} on {backend}")
                conc_n = n_conc_anyio_interp if "anyio.to_interpreter" in label else n_conc
                anyio.run(_sequential, call, 5, backend=backend)  # warm up
                seq = anyio.run(_sequential, call, n_seq, backend=backend)
                conc = anyio.run(_concurrent, call, conc_n, backend=backend)
                figures[(label, backend)] = (seq, conc)
                cells += [h.fmt_us(seq), h.fmt_us(conc) + ("" if conc_n == n_conc else f" (n={conc_n})")]
            rows.append(cells)
    headers = ["peer"]
    for backend in backends:
        headers += [f"{backend}: sequential", f"{backend}: concurrent"]
    table = h.Table(
        f"µs per awaited no-op; sequential: {n_seq:,} calls, concurrent: {n_conc:,} at once",
        headers,
        rows,
        notes=[
            "anyio.to_interpreter.run_sync starts a new interpreter for each concurrent call "
            "beyond its pool, so it gets a smaller concurrent batch."
        ],
    )
    params = {"sequential": n_seq, "concurrent": n_conc, "backends": backends}
    return h.WorkloadResult.of(__name__, params=params, tables=[table], targets=[], data={})


if __name__ == "__main__":
    from .__main__ import main

    raise SystemExit(main(default_only=[NAME]))
