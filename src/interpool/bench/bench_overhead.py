"""Tiny-task overhead: what each executor costs per task when tasks do nothing.

(a) submit N ``noop`` tasks, then ``.result()`` each   -> µs per task
(b) ``list(ex.map(identity, range(N)))``               -> µs per item
(c) serial ``ex.submit(noop).result()`` round trips    -> µs per round trip

Slow peers get fewer items (sized from a probe run so each timed run takes a
few seconds at most); everything is normalised per item.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
from collections.abc import Callable
from typing import Any

from . import _harness as h
from . import _tasks

NAME = "overhead"
TITLE = "Tiny-task overhead"
DESCRIPTION = (
    "Cost per task of noop()/identity() tasks; lower is better. Executor start-up is excluded (shown separately)."
)

PEERS = ["interpool", "threads", "processes", "stdlib"]


def _submit_all(ex: cf.Executor, n: int) -> int:
    fn = _tasks.noop
    submit = ex.submit
    futures = [submit(fn) for _ in range(n)]
    for f in futures:
        f.result()
    return len(futures)


def _map(ex: cf.Executor, n: int) -> list:
    return list(ex.map(_tasks.identity, range(n)))


def _map_chunked(ex: cf.Executor, n: int) -> list:
    return list(ex.map(_tasks.identity, range(n), chunksize=1000))


def _round_trip(ex: cf.Executor, n: int) -> int:
    fn = _tasks.noop
    submit = ex.submit
    for _ in range(n):
        submit(fn).result()
    return n


def _check_count(answer, n):
    assert answer == n, f"expected {n} tasks, got {answer}"


def _check_map(answer, n):
    assert len(answer) == n, f"expected {n} items, got {len(answer)}"
    assert answer == list(range(n)), "map results differ from the input / are out of order"


def _us(seconds: float) -> str:
    return f"{h.fmt_us(seconds)} µs"


@dataclasses.dataclass(frozen=True)
class Part:
    """One of the three measurements: its task, its sizes (full, quick) and its table."""

    key: str
    task: Callable[[cf.Executor, int], Any]
    check: Callable[[Any, int], None]
    items: tuple[int, int]
    probe: tuple[int, int]
    budget_s: tuple[float, float]
    title: str  # formatted with the items
    unit: str


# fmt: off
PARTS = (
    Part("submit", _submit_all, _check_count, (100_000, 20_000), (2_000, 500), (1.0, 0.25),
         "(a) submit {:,} × noop(), then .result() each", "task"),
    Part("map", _map, _check_map, (1_000_000, 100_000), (5_000, 1_000), (1.5, 0.3),
         "(b) list(ex.map(identity, range({:,})))", "item"),
    Part("round_trip", _round_trip, _check_count, (20_000, 5_000), (500, 200), (0.5, 0.15),
         "(c) serial round trip: ex.submit(noop).result(), {:,}×", "round trip"),
)
# fmt: on


def run(config: h.Config) -> h.WorkloadResult:
    peers = config.select(PEERS)
    reps = config.reps(3, 2)
    tables, data, params = [], {}, {"workers": config.workers}
    for part in PARTS:
        n = config.size(*part.items, minimum=10)
        timing = h.Timing(
            config,
            n=n,
            repeats=reps,
            budget_s=config.pick(*part.budget_s),
            probe_n=min(n, int(config.pick(*part.probe))),
            check=part.check,
            section=part.key.replace("_", "-"),
        )
        runs = [(p, part.task) for p in peers]
        if part.key == "map" and any(p.key == "processes" for p in peers):
            runs.append(
                (h.Benchmark("ProcessPoolExecutor chunksize=1000", h._make_processes, "processes"), _map_chunked)
            )
        data[part.key] = ms = [timing.run(p, task) for p, task in runs]
        params[f"n_{part.key}"] = n
        tables.append(
            h.Table(
                part.title.format(n),
                ["peer", "items", f"µs/{part.unit}", "vs. interpool", "startup ms"],
                h.per_item_rows(ms, h.find(ms, "interpool"), lambda m: [h.fmt_ms(m.startup)]),
                notes=h.error_notes(ms),
            )
        )
    params["repeats"] = reps
    tables[1].notes.insert(0, "map uses default arguments (chunksize=1 for ProcessPoolExecutor) except where labelled.")
    tables[0].notes.append("Slow peers run fewer items (sized to ~1 s per run); all figures are per item.")
    submit, map_ms = data["submit"], data["map"]

    ip_s, th_s, st_s = (h.find(submit, k) for k in ("interpool", "threads", "stdlib"))
    ip_m, st_m = h.find(map_ms, "interpool"), h.find(map_ms, "stdlib")
    stdlib_missing = h._stdlib_ipe_missing()

    def vs_stdlib(ip, st):
        if ip is None or st is None:
            return None, stdlib_missing or "missing measurement"
        r = st.per_item / ip.per_item
        return r >= 15, f"{h.fmt_ratio(r)} less"

    targets = [
        h.at_most("submit+result ≤ 5 µs per task", ip_s.per_item if ip_s else None, 5e-6, _us),
        h.target(
            "submit+result no slower than ThreadPoolExecutor",
            None if (ip_s is None or th_s is None) else ip_s.per_item <= th_s.per_item,
            "" if (ip_s is None or th_s is None) else f"{h.fmt_us(ip_s.per_item)} vs {h.fmt_us(th_s.per_item)} µs",
        ),
        h.at_most("map ≤ 1 µs per item", ip_m.per_item if ip_m else None, 1e-6, _us),
        h.target("submit overhead ≥ 15× less than stdlib InterpreterPoolExecutor", *vs_stdlib(ip_s, st_s)),
        h.target("map overhead ≥ 15× less than stdlib InterpreterPoolExecutor", *vs_stdlib(ip_m, st_m)),
    ]
    h.fail_if_interpool_failed(targets, *data.values())
    return h.WorkloadResult.of(__name__, params=params, tables=tables, targets=targets, data=data)


if __name__ == "__main__":
    from .__main__ import main

    raise SystemExit(main(default_only=[NAME]))
