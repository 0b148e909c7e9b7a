"""Functions sent by value: what a notebook's function costs per call.

A function defined in ``__main__`` (a notebook, IPython, ``python -c``, a
script) cannot be imported by a worker, so interpool sends it by value with
cloudpickle: its code, defaults, closure and the globals it uses.  The
caller reuses the encoding while nothing it captured was rebound, and each
worker decodes it once and caches it.  This workload times the same tiny
tasks as ``overhead`` with a by-name function (``interpool.bench._tasks``)
and with the same function defined in ``__main__``, alternating between
the two on one pool, best of several rounds:

(a) submit N tasks, then ``.result()`` each   -> µs per task
(b) ``list(pool.map(fn, range(N)))``            -> µs per item
"""

from __future__ import annotations

import concurrent.futures as cf
import sys
import time

from . import _harness as h
from . import _tasks

NAME = "byvalue"
TITLE = "Functions by value (notebook, __main__) vs by name"
DESCRIPTION = (
    "Cost per call of a tiny function defined in __main__ (sent by value with cloudpickle) "
    "beside the same function imported by name; lower is better."
)

TARGET_RATIO = 1.5

# Defined in the real __main__, as a notebook cell or a script defines it.
_SOURCE = """
def _interpool_bench_noop():
    return None

def _interpool_bench_identity(x):
    return x
"""


def _main_functions():
    namespace = sys.modules["__main__"].__dict__
    if "_interpool_bench_noop" not in namespace:
        exec(compile(_SOURCE, "<interpool.bench byvalue>", "exec"), namespace)
    return namespace["_interpool_bench_noop"], namespace["_interpool_bench_identity"]


def _submitter(fn):
    def submit_all(ex: cf.Executor, n: int) -> int:
        submit = ex.submit
        futures = [submit(fn) for _ in range(n)]
        for f in futures:
            f.result()
        return len(futures)

    return submit_all


def _mapper(fn):
    def map_all(ex: cf.Executor, n: int) -> list:
        return list(ex.map(fn, range(n)))

    return map_all


def _check_count(answer, n):
    assert answer == n, f"expected {n} tasks, got {answer}"


def _check_map(answer, n):
    assert answer == list(range(n)), "map results differ from the input / are out of order"


def _table(title, by_name, by_value, unit):
    rows = []
    for label, m in (("by name (module function)", by_name), ("by value (__main__ function)", by_value)):
        if m.ok:
            ratio = h.fmt_ratio(m.per_item / by_name.per_item) if by_name.ok else "-"
            rows.append([label, f"{m.n:,}", h.fmt_us(m.per_item), ratio])
        else:
            rows.append(h.status_row(m))
    return h.Table(
        title, ["function", "items", f"µs/{unit}", "vs. by name"], rows, notes=h.error_notes([by_name, by_value])
    )


def _alternate(config, section, tasks, n, rounds, check):
    """Time each task of ``tasks`` (by name, by value) ``rounds`` times on one
    pool, alternating, so that a burst of unrelated load hits both alike."""
    peer = h.standard_peers()["interpool"]
    ms = [
        h.Measurement(f"{peer.label} {label}", key, workers=config.workers, n=n)
        for label, key in (("by name", "interpool"), ("by value", "interpool-by-value"))
    ]
    reason = peer.unavailable()
    if reason:
        for m in ms:
            m.status, m.detail = "n/a", reason
        return ms
    config.log(f"  {section}: by name and by value, {rounds} rounds each ...")
    try:
        with h.opened(peer, config.workers) as (ex, startup):
            for m, task in zip(ms, tasks):
                m.startup = startup
                task(ex, min(n, 1_000))  # every worker decodes the function once
            for _ in range(rounds):
                for m, task in zip(ms, tasks):
                    t0 = time.perf_counter()
                    answer = task(ex, n)
                    m.times.append(time.perf_counter() - t0)
                    check(answer, n)
    except AssertionError as exc:
        for m in ms:
            m.status, m.detail = "error", f"wrong result: {exc}"
    except Exception as exc:
        for m in ms:
            m.status, m.detail = "error", f"{type(exc).__name__}: {exc}"
    return ms


def run(config: h.Config) -> h.WorkloadResult:
    rounds = config.reps(7, 3)
    noop, identity = _main_functions()
    n_submit = config.size(20_000, 5_000, minimum=10)
    n_map = config.size(200_000, 50_000, minimum=10)
    sections = {}
    if config.wants("interpool"):
        sections["submit"] = _alternate(
            config, "submit", (_submitter(_tasks.noop), _submitter(noop)), n_submit, rounds, _check_count
        )
        sections["map"] = _alternate(
            config, "map", (_mapper(_tasks.identity), _mapper(identity)), n_map, rounds, _check_map
        )

    def pair(name):
        ms = sections.get(name, [])
        return (ms[0], ms[1]) if len(ms) == 2 else (None, None)

    tables, targets = [], []
    for name, title, unit in (
        ("submit", f"(a) submit {n_submit:,} × noop(), then .result() each", "task"),
        ("map", f"(b) list(pool.map(identity, range({n_map:,})))", "item"),
    ):
        by_name, by_value = pair(name)
        if by_name is None:
            continue
        tables.append(_table(title, by_name, by_value, unit))
        ok = by_name.ok and by_value.ok
        ratio = by_value.per_item / by_name.per_item if ok else None
        targets.append(
            h.target(
                f"{name}: by value ≤ {TARGET_RATIO}× by name per call",
                None if ratio is None else ratio <= TARGET_RATIO,
                "" if ratio is None else f"{h.fmt_ratio(ratio)}",
            )
        )
    h.fail_if_interpool_failed(targets, *sections.values())
    params = {"workers": config.workers, "n_submit": n_submit, "n_map": n_map, "rounds": rounds}
    return h.WorkloadResult.of(__name__, params=params, tables=tables, targets=targets, data=sections)


if __name__ == "__main__":
    from .__main__ import main

    raise SystemExit(main(default_only=[NAME]))
