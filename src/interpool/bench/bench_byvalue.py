"""Functions sent by value: what a notebook's function costs per call.

A function defined in ``__main__`` (a notebook, IPython, ``python -c``, a
script) cannot be imported by a worker, so interpool sends it by value with
cloudpickle: its code, defaults, closure and the globals it uses.  The
caller reuses the encoding while nothing it captured was rebound, and each
worker decodes it once and caches it.  This workload times the same tiny
tasks as ``overhead`` with a by-name function (``interpool.bench._tasks``)
and with the same function defined in ``__main__``, on one pool kind, in
one run:

(a) submit N tasks, then ``.result()`` each   -> µs per task
(b) ``list(pool.map(fn, range(N)))``            -> µs per item
"""

from __future__ import annotations

import concurrent.futures as cf
import sys

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
    return h.Table(title, ["function", "items", f"µs/{unit}", "vs. by name"], rows, notes=h.error_notes([by_name, by_value]))


def run(config: h.Config) -> h.WorkloadResult:
    peers = config.select(["interpool"])
    reps = config.reps(5, 2)
    noop, identity = _main_functions()
    n_submit = config.size(100_000, 20_000, minimum=10)
    n_map = config.size(1_000_000, 100_000, minimum=10)
    sections = {}
    for name, task, n, check, probe, budget in (
        ("submit", (_submitter(_tasks.noop), _submitter(noop)), n_submit, _check_count, 2_000, 1.0),
        ("map", (_mapper(_tasks.identity), _mapper(identity)), n_map, _check_map, 5_000, 1.5),
    ):
        if config.quick:
            probe, budget = probe // 4, budget / 4
        ms = []
        for label, fn in zip(("by name", "by value"), task):
            for p in peers:
                m = h.run_peer(
                    p, config.workers, fn, n=n, repeats=reps, config=config, budget_s=budget,
                    probe_n=min(n, probe), check=check, section=f"{name}, {label}",
                )
                m.label = f"{p.label} {label}"
                m.key = "interpool" if label == "by name" else "interpool-by-value"
                ms.append(m)
        sections[name] = ms

    def pair(name):
        ms = sections[name]
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
    return h.WorkloadResult(
        NAME, TITLE, DESCRIPTION,
        params={"workers": config.workers, "n_submit": n_submit, "n_map": n_map, "repeats": reps},
        tables=tables, targets=targets, data=sections,
    )


def main(argv=None):
    from .__main__ import main as suite_main

    return suite_main(argv, default_only=[NAME])


if __name__ == "__main__":
    raise SystemExit(main())
