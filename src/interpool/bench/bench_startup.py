"""Start-up, memory per worker and shutdown, beside the stdlib executor.

(a) N workers: wall time from the constructor until every worker has run a
    task, RSS per worker while they all hold one, and ``shutdown(wait=True)``.
    Every worker must run its own task: each task checks in through a pipe
    and then blocks on another, and the parent releases them only when all
    N have checked in.  The task is the builtin ``exec`` on a string, so no
    peer imports anything for it: interpool's workers pay for their own
    bootstrap, the stdlib's for theirs.  CPython's floor, N isolated
    interpreters made by ``_interpreters`` on N threads, runs the same check-in.
(b) Where one worker's start-up goes: the CPU time of each phase (thread
    CPU time, so that other load on the machine does not count), one
    interpreter at a time.

Every figure comes from a fresh child process, one per peer and size.
"""

from __future__ import annotations

import json
import os

from . import _harness as h

NAME = "startup"
TITLE = "Start-up, memory per worker and shutdown"
DESCRIPTION = (
    "Constructor until every worker has run a task, RSS per worker, shutdown(wait=True); "
    "each from a fresh child process (lower is better)."
)

# The child: make an executor of N workers, hold one task in each, measure.
CHILD = """
import json, os, sys, threading, time

def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

kind, n = sys.argv[1], int(sys.argv[2])
arrive_r, arrive_w = os.pipe()
release_r, release_w = os.pipe()
# Each worker's task: check in, then wait for the release (one byte each).
TASK = f"import os\\nos.write({arrive_w}, b'x')\\nos.read({release_r}, 1)\\n"

# The class is looked up before the clock starts (both packages load it lazily).
if kind == "interpool":
    import interpool
    cls = interpool.Pool
    make = lambda: cls(n)
elif kind == "stdlib":
    import concurrent.futures as cf
    cls = cf.InterpreterPoolExecutor
    make = lambda: cls(n)
elif kind != "cpython":
    raise SystemExit(f"unknown kind {kind}")

def check_in(futures=()):
    # Wait for n check-ins; a task or thread that failed writes "!" or ends its future.
    import select
    got, deadline = 0, time.monotonic() + 300
    while got < n:
        for f in futures:
            if f.done() and f.exception() is not None:
                raise f.exception()
        ready, _, _ = select.select([arrive_r], [], [], 0.5)
        if ready:
            data = os.read(arrive_r, n - got)
            if b"!" in data:
                raise RuntimeError(f"a bare interpreter failed: {errors}")
            got += len(data)
        elif time.monotonic() > deadline:
            raise TimeoutError(f"only {got} of {n} workers ran their task within 300 s")
    rss = rss_mib()
    os.write(release_w, b"x" * n)
    return rss

rss0 = rss_mib()
if kind == "cpython":  # the floor: bare isolated interpreters, each on its own thread
    try:
        import _interpreters as interpreters
    except ImportError:
        import _xxsubinterpreters as interpreters
    run = getattr(interpreters, "exec", None) or interpreters.run_string  # 3.12: run_string
    def bare():
        try:
            iid = interpreters.create()
            done.append(iid)
            run(iid, TASK)
        except BaseException as exc:
            errors.append(repr(exc))
            os.write(arrive_w, b"!")
    done, errors = [], []
    t0 = time.perf_counter()
    threads = [threading.Thread(target=bare) for _ in range(n)]
    for t in threads:
        t.start()
    rss = check_in()
    for t in threads:
        t.join()
    ready = time.perf_counter() - t0
    t1 = time.perf_counter()
    for iid in done:
        interpreters.destroy(iid)
    stop = time.perf_counter() - t1
else:
    t0 = time.perf_counter()
    ex = make()
    futures = [ex.submit(exec, TASK, {}) for _ in range(n)]
    rss = check_in(futures)
    for f in futures:
        f.result()
    ready = time.perf_counter() - t0
    t1 = time.perf_counter()
    ex.shutdown(wait=True)
    stop = time.perf_counter() - t1
print(json.dumps({"ready_s": ready, "rss_per_worker_mib": (rss - rss0) / n, "shutdown_s": stop}))
"""

# Phases of one worker's start-up, in CPU time of the thread that does them.
PHASES = """
import json, os, sys, time
try:
    import _interpreters as interpreters
except ImportError:
    import _xxsubinterpreters as interpreters
import interpool

k = int(sys.argv[1])
r, w = os.pipe()
CODE = '''
import sys, time
t0 = time.thread_time()
sys.path[:] = PATH
import interpool
t1 = time.thread_time()
import interpool._worker
t2 = time.thread_time()
interpool._worker.setup(argv=[""])
t3 = time.thread_time()
import os
os.write(W, repr((t1 - t0, t2 - t1, t3 - t2)).encode())
'''.replace("PATH", repr(sys.path)).replace("W", str(w))
rows = []
for _ in range(k):
    t0 = time.thread_time()
    iid = interpreters.create()
    created = time.thread_time() - t0
    failed = (getattr(interpreters, "exec", None) or interpreters.run_string)(iid, CODE)  # 3.12: run_string
    if failed is not None:  # 3.13+ returns the exception's description instead of raising
        raise RuntimeError(f"the phase probe failed in the interpreter: {failed}")
    package, worker, setup = eval(os.read(r, 200))
    t0 = time.thread_time()
    interpreters.destroy(iid)
    ended = time.thread_time() - t0
    rows.append([created, package, worker, setup, ended])
# The whole of a real worker's start-up: a task that returns its thread's
# CPU time so far (thread start, interpreter, imports, set-up, the task's decoding).
firsts = []
for _ in range(k):
    with interpool.Pool(1) as pool:
        firsts.append(pool.submit(time.thread_time).result())
best = [min(col) for col in zip(*rows)]
print(json.dumps({"phases_s": best, "first_task_cpu_s": min(firsts)}))
"""


def _measure(config, label, key, n, reps, missing=None):
    """Best of ``reps`` fresh children: times are ready seconds; extras ride in answer."""

    def body(m):
        runs = [h.child_json(CHILD, key, n, timeout=600) for _ in range(reps)]
        m.n = n
        m.times = [r["ready_s"] for r in runs]
        m.answer = {
            "rss_per_worker_mib": min(r["rss_per_worker_mib"] for r in runs),
            "shutdown_s": min(r["shutdown_s"] for r in runs),
        }

    m = h.Measurement(label, key, workers=n)
    return h.guarded(m, config, body, missing=missing, progress=f"  startup: {label}, {n} workers ...")


def sizes(config) -> list[int]:
    return [2, 8] if config.quick else [2, 8, 16]


def run(config: h.Config) -> h.WorkloadResult:
    fake = "n/a (fake interpool stand-in)" if h.fake_interpool() else None
    reps = config.reps(3, 1)
    peers = [
        ("cpython", "bare isolated interpreters on threads (CPython floor)", None),
        ("interpool", "interpool.Pool", fake),
        ("stdlib", "InterpreterPoolExecutor (stdlib)", h._stdlib_ipe_missing()),
    ]
    peers = [p for p in peers if p[0] == "cpython" or config.wants(p[0])]
    ms: list[h.Measurement] = []
    for n in sizes(config):
        for key, label, missing in peers:
            ms.append(_measure(config, label, key, n, reps, missing))

    def get(key, n):
        return next((m for m in ms if m.key == key and m.workers == n and m.ok), None)

    def cell(key, n, what):
        m = next((m for m in ms if m.key == key and m.workers == n), None)
        if m is None:
            return "-"
        return what(m) if m.ok else ("n/a" if m.status == "n/a" else "ERROR")

    top = sizes(config)[-1]
    rows = []
    for key, label, _ in peers:
        rows.append(
            [label]
            + [cell(key, n, lambda m: h.fmt_ms(m.best)) for n in sizes(config)]
            + [
                cell(key, top, lambda m: f"{m.answer['rss_per_worker_mib']:.2f}"),
                cell(key, top, lambda m: h.fmt_ms(m.answer["shutdown_s"])),
            ]
        )
    ip, st = get("interpool", top), get("stdlib", top)
    both = ip is not None and st is not None
    if both:
        rows.append(
            ["interpool ÷ stdlib"]
            + [
                h.fmt_ratio(get("interpool", n).best / get("stdlib", n).best)
                if get("interpool", n) and get("stdlib", n)
                else "-"
                for n in sizes(config)
            ]
            + [
                h.fmt_ratio(ip.answer["rss_per_worker_mib"] / st.answer["rss_per_worker_mib"]),
                h.fmt_ratio(ip.answer["shutdown_s"] / st.answer["shutdown_s"]),
            ]
        )
    table_a = h.Table(
        f"(a) start-up until every worker has run a task (ms), best of {reps} fresh processes",
        ["peer"] + [f"{n} workers" for n in sizes(config)] + [f"RSS/worker MiB @{top}", f"shutdown ms @{top}"],
        rows,
        notes=[
            f"{os.cpu_count()} CPUs. RSS per worker: growth of the process's RSS while all {top} "
            "workers hold a task, divided by the workers."
        ]
        + h.error_notes(ms),
    )

    phase = h.Measurement("phases", "phases")
    tables = [table_a]
    if not fake and config.wants("interpool"):
        config.log("  startup: phases ...")
        try:
            doc = h.child_json(PHASES, 5 if config.quick else 20, timeout=600)
            created, package, worker, setup, ended = doc["phases_s"]
            phase.times, phase.n = [doc["first_task_cpu_s"]], 1
            phase.answer = json.dumps(doc)
            tables.append(
                h.Table(
                    "(b) one worker's start-up, CPU ms of the thread that does it (best of several)",
                    ["phase", "CPU ms"],
                    [
                        ["create the isolated interpreter (CPython)", h.fmt_ms(created)],
                        ["import interpool (its __init__ and the extension _core)", h.fmt_ms(package)],
                        ["import interpool._worker", h.fmt_ms(worker)],
                        ["interpool._worker.setup()", h.fmt_ms(setup)],
                        [
                            "all of a real worker until its first task runs (thread start included)",
                            h.fmt_ms(doc["first_task_cpu_s"]),
                        ],
                        ["end the interpreter (CPython)", h.fmt_ms(ended)],
                    ],
                )
            )
        except Exception as exc:  # noqa: BLE001
            phase.status, phase.detail = "error", f"{type(exc).__name__}: {exc}"
            tables[0].notes.append(f"ERROR phases: {phase.detail}")

    def ratio(what):
        if not both:
            return None
        return what(ip) / what(st)

    ready, rss = ratio(lambda m: m.best), ratio(lambda m: m.answer["rss_per_worker_mib"])
    missing = h._stdlib_ipe_missing() or fake or "missing measurement"
    targets = [
        h.at_most(
            f"start-up, {top} workers ready ≤ 0.5 × the stdlib executor's time", ready, 0.5, h.fmt_ratio, missing
        ),
        h.at_most("RSS per worker ≤ 0.6 × the stdlib executor's", rss, 0.6, h.fmt_ratio, missing),
    ]
    h.fail_if_interpool_failed(targets, ms)
    params = {"workers": sizes(config), "repeats": reps}
    data = {"startup": ms, "phases": [phase]}
    return h.WorkloadResult.of(__name__, params=params, tables=tables, targets=targets, data=data)


if __name__ == "__main__":
    from .__main__ import main

    raise SystemExit(main(default_only=[NAME]))
