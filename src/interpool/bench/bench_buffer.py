"""Per-call cost of passing data: SharedBuffer by handle vs bytes by copy.

One task at a time, ``ex.submit(head_and_length, data).result()``, where the
task reads only the length and the first 4 bytes, so the time per call is
dispatch plus getting ``data`` to the worker.  ``data`` is 1 KiB, 1 MiB and
64 MiB: an ``interpool.SharedBuffer`` (a handle: no copy) or ``bytes`` (copied
or pickled per call by interpool and the stdlib executors; shared as is by
ThreadPoolExecutor, which runs in one interpreter).
"""

from __future__ import annotations

import concurrent.futures as cf

from . import _handle_tasks
from . import _harness as h

NAME = "buffer"
TITLE = "SharedBuffer vs bytes: per-call transport"
DESCRIPTION = (
    "µs per submit(head_and_length, data).result() round trip, one at a time; the task reads "
    "len(data) and 4 bytes. Lower is better."
)

SIZES = [("1 KiB", 1 << 10), ("1 MiB", 1 << 20), ("64 MiB", 64 << 20)]

#: SharedBuffer targets: per call at every size, and largest / smallest.
TARGET_US = 50.0
TARGET_SPREAD = 2.0


def _fake_missing() -> str | None:
    return "n/a (FAKE interpool stand-in)" if h.fake_interpool() else None


def peers() -> list[h.Benchmark]:
    ip = h.interpool_label()
    return [
        h.Benchmark(f"{ip} + SharedBuffer", h._make_interpool, "interpool", _fake_missing),
        h.Benchmark(f"{ip} + bytes", h._make_interpool, "interpool-bytes"),
        h.Benchmark("ThreadPoolExecutor + bytes (one interpreter, no copy)", cf.ThreadPoolExecutor, "threads"),
        h.Benchmark("InterpreterPoolExecutor (stdlib) + bytes", h._make_stdlib_ipe, "stdlib", h._stdlib_ipe_missing),
        h.Benchmark("ProcessPoolExecutor + bytes", h._make_processes, "processes"),
    ]


def _calls(data, size):
    def task(ex, n):
        fn = _handle_tasks.head_and_length
        submit = ex.submit
        for _ in range(n):
            got = submit(fn, data).result()
        assert got[0] == size, f"task saw {got[0]} bytes, expected {size}"
        return n

    return task


def run(config: h.Config) -> h.WorkloadResult:
    n = config.size(2_000, 500, minimum=5)
    timing = h.Timing(config, n=n, repeats=config.reps(3, 2), budget_s=config.pick(0.5, 0.15), probe_n=min(n, 5))
    selected = [p for p in peers() if config.wants(p.key)]
    by_peer: dict[str, list[h.Measurement]] = {p.key: [] for p in selected}
    for label, size in SIZES:
        for p in selected:
            if p.key == "interpool" and not p.unavailable():
                data = h.load_interpool().SharedBuffer(size)
            else:
                data = bytes(size)
            by_peer[p.key].append(timing.run(p, _calls(data, size), section=f"buffer {label}"))
            del data

    rows: list[h.Row] = []
    for p in selected:
        ms = by_peer[p.key]
        if not ms[0].ok and all(m.status == ms[0].status for m in ms):
            rows.append(h.status_row(ms[0]))
            continue
        rows.append([p.label] + [h.fmt_us(m.per_item) if m.ok else m.status.upper() for m in ms])
    errors = [m for ms in by_peer.values() for m in ms]
    table = h.Table(
        f"µs per call, one call at a time, {config.workers} workers",
        ["peer"] + [label for label, _ in SIZES],
        rows,
        notes=["Slow peers run fewer calls (sized to a time budget); all figures are per call."]
        + h.error_notes(errors),
    )

    ip = by_peer.get("interpool", [])
    ok = bool(ip) and all(m.ok for m in ip)
    per_call = [m.per_item * 1e6 for m in ip] if ok else []
    spread = max(per_call) / min(per_call) if per_call else None
    detail = ", ".join(f"{label}: {h.fmt_num(us)} µs" for (label, _), us in zip(SIZES, per_call))
    targets = [
        h.target(
            f"SharedBuffer ≤ {TARGET_US:g} µs per call at every size",
            None if not ok else max(per_call) <= TARGET_US,
            detail,
        ),
        h.at_most(
            f"SharedBuffer per-call cost independent of size (slowest size within {TARGET_SPREAD:g}× of the fastest)",
            spread,
            TARGET_SPREAD,
            lambda r: f"slowest/fastest {h.fmt_ratio(r)}",
        ),
    ]
    h.fail_if_interpool_failed(targets, ip)
    params = {"workers": config.workers, "sizes": [s for _, s in SIZES], "calls": n, "repeats": timing.repeats}
    data = {label: [by_peer[p.key][i] for p in selected] for i, (label, _) in enumerate(SIZES)}
    return h.WorkloadResult.of(__name__, params=params, tables=[table], targets=targets, data=data)


if __name__ == "__main__":
    from .__main__ import main

    raise SystemExit(main(default_only=[NAME]))
