"""Memory: what ending worker interpreters leaves behind.

CPython itself keeps part of every isolated interpreter it ends (on 3.13.0,
about 1.7 MB of RSS each).  This workload measures that baseline in the same
run and sets interpool beside it:

(a) RSS growth per replaced interpreter: ``Pool(1, max_tasks_per_worker=1)``
    running N tasks (a new interpreter for each), against N bare isolated
    interpreters created and destroyed with CPython's ``_interpreters``
    module (``_xxsubinterpreters`` on 3.12).
(b) RSS growth per ``with Pool(4): ...`` cycle after the first, against the
    stdlib InterpreterPoolExecutor (3.14) and ThreadPoolExecutor.

Every probe runs in a fresh child process, so nothing else this benchmark
did blurs the figures.
"""

from __future__ import annotations

from . import _harness as h

NAME = "memory"
TITLE = "Memory: recycled interpreters and pool cycles"
DESCRIPTION = (
    "RSS growth per ended worker interpreter, beside CPython's own leak for a bare isolated "
    "interpreter measured in the same run; lower is better."
)

#: What interpool may add to CPython's own leak, per interpreter (MB); tests/python/test_memory.py holds it to it too.
MARGIN_MB = 0.3

_RSS = """
import json, os, sys
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
n = int(sys.argv[1])
"""

BARE = (
    _RSS
    + """
try:
    import _interpreters as interpreters
except ImportError:
    import _xxsubinterpreters as interpreters
import threading
per_round = int(sys.argv[2])
def one():
    interpreters.destroy(interpreters.create())  # isolated, own GIL
def on_threads():  # as a pool does: each interpreter on a thread of its own
    threads = [threading.Thread(target=one) for _ in range(per_round)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
step = on_threads if per_round else one
step(); step()
before = rss_mb()
for _ in range(n):
    step()
print(json.dumps({"growth_mb": rss_mb() - before, "count": n}))
"""
)

RECYCLED = (
    _RSS
    + """
import interpool
with interpool.Pool(1, max_tasks_per_worker=1) as pool:
    pool.submit(abs, -1).result(); pool.submit(abs, -1).result()
    before = rss_mb()
    for _ in range(n):  # every task ends its interpreter; the next one starts fresh
        pool.submit(abs, -1).result()
    after = rss_mb()
print(json.dumps({"growth_mb": after - before, "count": n}))
"""
)

CYCLES = (
    _RSS
    + """
kind = sys.argv[2]
def make():
    if kind == "interpool":
        import interpool
        return interpool.Pool(4)
    import concurrent.futures as cf
    if kind == "stdlib":
        return cf.InterpreterPoolExecutor(4)
    return cf.ThreadPoolExecutor(4)
after = []
for _ in range(n):
    with make() as ex:
        for f in [ex.submit(abs, -i) for i in range(16)]:
            f.result()
    after.append(rss_mb())
print(json.dumps({"growth_mb": after[-1] - after[0], "count": n - 1}))
"""
)


def probe(source, *args) -> float:
    """MB of RSS growth per unit (interpreter, round or cycle) that ``source`` (BARE, RECYCLED or CYCLES)
    measures in a fresh child process with these arguments."""
    doc = h.child_json(source, *args, timeout=1200)
    return doc["growth_mb"] / doc["count"]


def _mb(x):
    return f"{x + 0.0:.2f}".replace("-0.00", "0.00")  # RSS may also shrink a little


def _measure(config, label, key, source, *args, missing=None):
    """A Measurement whose one 'time' is MB per unit (interpreter or cycle)."""

    def body(m):
        m.times = [probe(source, *args)]
        m.n = int(args[0])

    return h.guarded(h.Measurement(label, key), config, body, missing=missing, progress=f"  {label} ...")


def _table(title, headers, ms, cells, notes):
    """Rows by MB: the peer, then ``cells(m)``."""
    rows = h.rows(ms, lambda m: m.best, lambda m: [m.label, *cells(m)])
    return h.Table(title, headers, rows, notes=notes + h.error_notes(ms))


def run(config: h.Config) -> h.WorkloadResult:
    fake = "n/a (fake interpool stand-in)" if h.fake_interpool() else None
    n = config.size(1000, 100, minimum=10)
    cycles = config.size(30, 10, minimum=3)
    recycled = [
        _measure(config, "bare isolated interpreter (CPython's own leak)", "cpython", BARE, n, 0),
    ]
    if config.wants("interpool"):
        recycled.append(
            _measure(config, "interpool.Pool(1, max_tasks_per_worker=1)", "interpool", RECYCLED, n, missing=fake)
        )
    bare = h.find(recycled, "cpython")

    def above(m):
        return "-" if bare is None or m is bare else f"{(m.best - bare.best) * 1024:+,.0f}".replace("-0", "0")

    table_a = _table(
        f"(a) RSS growth per replaced interpreter, {n:,} interpreters",
        ["peer", "interpreters", "MB/interpreter", "kB above CPython's"],
        recycled,
        lambda m: [f"{m.n:,}", _mb(m.best), above(m)],
        ["Each figure comes from a fresh child process; CPython's baseline is measured in this run."],
    )

    peers = [
        ("interpool", "interpool.Pool(4)", fake),
        ("stdlib", "InterpreterPoolExecutor(4) (stdlib)", h._stdlib_ipe_missing()),
        ("threads", "ThreadPoolExecutor(4)", None),
    ]
    cycle_ms = [
        # CPython's floor for a cycle: four bare interpreters, each on a new thread.
        _measure(config, "4 bare isolated interpreters on new threads (CPython)", "cpython", BARE, cycles, 4),
    ] + [
        _measure(config, label, key, CYCLES, cycles, key, missing=missing)
        for key, label, missing in peers
        if config.wants(key)
    ]
    bare_threads = h.find(cycle_ms, "cpython")
    if bare_threads is not None:
        bare_threads.n += 1  # its figure is per round of four already; the table counts rounds after the first
    table_b = _table(
        f"(b) RSS growth per 'with executor:' cycle after the first, {cycles} cycles, 16 tasks each",
        ["peer", "cycles", "MB/cycle", "MB/interpreter"],
        cycle_ms,
        lambda m: [f"{m.n - 1:,}", _mb(m.best), "-" if m.key == "threads" else _mb(m.best / 4)],
        ["Four interpreters end per cycle: CPython keeps about its bare leak of each."],
    )

    ip = h.find(recycled, "interpool")
    ip_cycles = h.find(cycle_ms, "interpool")
    floor = bare_threads.best / 4 if bare_threads is not None else None
    targets = [
        h.target(
            f"recycled interpreter ≤ CPython's bare leak + {MARGIN_MB:g} MB",
            None if ip is None or bare is None else ip.best <= bare.best + MARGIN_MB,
            "" if ip is None or bare is None else f"{ip.best:.2f} vs {bare.best:.2f} MB",
        ),
        h.target(
            f"'with Pool(4)' cycle ≤ 4 × (CPython's bare leak on a thread + {MARGIN_MB:g} MB)",
            None if ip_cycles is None or floor is None else ip_cycles.best <= 4 * (floor + MARGIN_MB),
            "" if ip_cycles is None or floor is None else f"{ip_cycles.best:.2f} vs 4 × {floor:.2f} MB",
        ),
    ]
    h.fail_if_interpool_failed(targets, recycled, cycle_ms)
    params = {"interpreters": n, "cycles": cycles}
    data = {"recycled": recycled, "cycles": cycle_ms}
    return h.WorkloadResult.of(__name__, params=params, tables=[table_a, table_b], targets=targets, data=data)


if __name__ == "__main__":
    from .__main__ import main

    raise SystemExit(main(default_only=[NAME]))
