"""Tiny-task overhead: what each executor costs per task when tasks do nothing.

(a) submit N ``noop`` tasks, then ``.result()`` each   -> µs per task
(b) ``list(ex.map(identity, range(N)))``               -> µs per item
(c) serial ``ex.submit(noop).result()`` round trips    -> µs per round trip

Slow peers get fewer items (sized from a probe run so each timed run takes a
few seconds at most); everything is normalised per item.
"""

from __future__ import annotations

import concurrent.futures as cf

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


def _section(config, peers, task, *, n, probe, budget, repeats, check, section):
    return [
        h.run_peer(
            p,
            config.workers,
            task,
            n=n,
            repeats=repeats,
            config=config,
            budget_s=budget,
            probe_n=probe,
            check=check,
            section=section,
        )
        for p in peers
    ]


def _table(title: str, ms: list[h.Measurement], unit: str) -> h.Table:
    base = h.find(ms, "interpool")
    rows = h.rows(
        ms,
        lambda m: m.per_item,
        lambda m: [
            m.label,
            f"{m.n:,}",
            h.fmt_us(m.per_item),
            h.fmt_ratio(m.per_item / base.per_item) if base else "-",
            h.fmt_ms(m.startup),
        ],
    )
    return h.Table(
        title,
        ["peer", "items", f"µs/{unit}", "vs. interpool", "startup ms"],
        rows,
        notes=h.error_notes(ms),
    )


def run(config: h.Config) -> h.WorkloadResult:
    peers = config.select(PEERS)
    q = config.quick
    reps = config.reps(3, 2)

    n_submit = config.size(100_000, 20_000, minimum=10)
    submit = _section(
        config,
        peers,
        _submit_all,
        n=n_submit,
        probe=min(n_submit, 2_000 if not q else 500),
        budget=1.0 if not q else 0.25,
        repeats=reps,
        check=_check_count,
        section="submit",
    )

    n_map = config.size(1_000_000, 100_000, minimum=10)
    map_peers = list(peers)
    if any(p.key == "processes" for p in peers):
        map_peers.append(h.Benchmark("ProcessPoolExecutor chunksize=1000", h._make_processes, "processes"))
    map_ms = []
    for p in map_peers:
        task = _map_chunked if p.label.endswith("chunksize=1000") else _map
        map_ms += _section(
            config,
            [p],
            task,
            n=n_map,
            probe=min(n_map, 5_000 if not q else 1_000),
            budget=1.5 if not q else 0.3,
            repeats=reps,
            check=_check_map,
            section="map",
        )

    n_rt = config.size(20_000, 5_000, minimum=10)
    rt = _section(
        config,
        peers,
        _round_trip,
        n=n_rt,
        probe=min(n_rt, 500 if not q else 200),
        budget=0.5 if not q else 0.15,
        repeats=reps,
        check=_check_count,
        section="round-trip",
    )

    tables = [
        _table(f"(a) submit {n_submit:,} × noop(), then .result() each", submit, "task"),
        _table(f"(b) list(ex.map(identity, range({n_map:,})))", map_ms, "item"),
        _table(f"(c) serial round trip: ex.submit(noop).result(), {n_rt:,}×", rt, "round trip"),
    ]
    tables[1].notes.insert(0, "map uses default arguments (chunksize=1 for ProcessPoolExecutor) except where labelled.")
    tables[0].notes.append("Slow peers run fewer items (sized to ~1 s per run); all figures are per item.")

    ip_s, th_s, st_s = (h.find(submit, k) for k in ("interpool", "threads", "stdlib"))
    ip_m, st_m = h.find(map_ms, "interpool"), h.find(map_ms, "stdlib")
    stdlib_missing = h._stdlib_ipe_missing()

    def vs_stdlib(ip, st):
        if ip is None or st is None:
            return None, stdlib_missing or "missing measurement"
        r = st.per_item / ip.per_item
        return r >= 15, f"{h.fmt_ratio(r)} less"

    targets = [
        h.target(
            "submit+result ≤ 5 µs per task",
            None if ip_s is None else ip_s.per_item <= 5e-6,
            "" if ip_s is None else f"{h.fmt_us(ip_s.per_item)} µs",
        ),
        h.target(
            "submit+result no slower than ThreadPoolExecutor",
            None if (ip_s is None or th_s is None) else ip_s.per_item <= th_s.per_item,
            "" if (ip_s is None or th_s is None) else f"{h.fmt_us(ip_s.per_item)} vs {h.fmt_us(th_s.per_item)} µs",
        ),
        h.target(
            "map ≤ 1 µs per item",
            None if ip_m is None else ip_m.per_item <= 1e-6,
            "" if ip_m is None else f"{h.fmt_us(ip_m.per_item)} µs",
        ),
        h.target("submit overhead ≥ 15× less than stdlib InterpreterPoolExecutor", *vs_stdlib(ip_s, st_s)),
        h.target("map overhead ≥ 15× less than stdlib InterpreterPoolExecutor", *vs_stdlib(ip_m, st_m)),
    ]
    h.fail_if_interpool_failed(targets, submit, map_ms, rt)
    return h.WorkloadResult(
        NAME,
        TITLE,
        DESCRIPTION,
        params={"workers": config.workers, "n_submit": n_submit, "n_map": n_map, "n_round_trip": n_rt, "repeats": reps},
        tables=tables,
        targets=targets,
        data={"submit": submit, "map": map_ms, "round_trip": rt},
    )


def main(argv=None):
    from .__main__ import main as suite_main

    return suite_main(argv, default_only=[NAME])


if __name__ == "__main__":
    raise SystemExit(main())
