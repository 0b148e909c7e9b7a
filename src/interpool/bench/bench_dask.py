"""dask.distributed: one worker process with N interpreters, against its peers.

A pure-Python ``dask.bag`` job (``map(sum_squares)`` over many items, then
``sum``) on a LocalCluster of worker processes, three ways to use N cores:

* one worker process with N threads whose tasks run in interpreters
  (``interpool.dask.InterpreterPlugin``);
* one worker process with N threads (Dask's default executor: the GIL makes
  it about one core);
* N worker processes of one thread each (Dask's way around the GIL).

It prints the best time of each, the best time of the same graph with one
item per partition (distributed's own cost per job, which no executor
avoids), and the resident memory of the worker processes (their sum; the
nannies and the scheduler are left out, as they are the same kind of
process in every setup).

Each setup runs alone, its cluster closed before the next starts: idle
clusters kept up to take turns would load the cores the parallel setups
need (tried: it cost them 10-15% against threads).  On a machine shared
with other sessions the parallel setups' figures understate them: Linux
with ``sched_autogroup_enabled`` splits the cores between busy sessions,
not threads, so with k busy sessions on N cores the bench gets about N/k
cores however many threads it runs (with k >= N, N workers cannot beat
one thread).  The table says so when the load average shows it.  Run it
on a quiet machine, or, as root, give its session more weight:
``setsid sh -c 'echo -10 > /proc/self/autogroup; exec python -m
interpool.bench --only dask'``.  The section is skipped, with a line
saying so, where dask or distributed is not installed.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from . import _harness as h
from . import _tasks

NAME = "dask"
TITLE = "dask.distributed: interpreters vs threads vs processes"
DESCRIPTION = (
    "Seconds for a pure-Python dask.bag job (map(sum_squares) then sum) on a LocalCluster, and the "
    "RSS of its worker processes. Lower is better."
)

#: interpool's executor against the same worker with threads: at least this × N faster.
TARGET_VS_THREADS = 0.85
#: and against N single-threaded worker processes: at most this much slower.
TARGET_VS_PROCESSES = 1.10


def process_rss_mb():
    """This process's resident memory in MiB (run in each worker by client.run)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _missing() -> str | None:
    if h.fake_interpool():
        # Three clusters to compare with a stand-in for interpool: not worth their start-up.
        return "the FAKE interpool stand-in is in use"
    try:
        import dask.bag  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        return f"dask or distributed is not installed ({exc})"
    return None


def _bag_missing() -> str | None:
    if sys.version_info < (3, 13):
        # dask.bag imports fsspec, which imports ctypes; 3.12's _ctypes refuses subinterpreters.
        return "n/a (needs 3.13: on 3.12 dask.bag imports ctypes, which refuses subinterpreters)"
    return None


def _setups(workers):
    """(label, key, processes, threads per process, use interpreters, requires)."""
    return [
        (f"interpool executor: 1 process × {workers} interpreters", "interpool", 1, workers, True, _bag_missing),
        (f"threads: 1 process × {workers} threads", "threads", 1, workers, False, None),
        (f"processes: {workers} processes × 1 thread", "processes", workers, 1, False, None),
    ]


def _measure(config, label, key, processes, threads, interpreters, requires, items, size, repeats):
    import dask.bag as db
    import distributed

    got = {}  # rss: the workers' MiB; overhead: s of the same graph with one item per partition

    def body(m):
        expected = sum(_tasks.sum_squares(size) for _ in range(items))
        t0 = time.perf_counter()
        with (
            distributed.LocalCluster(
                n_workers=processes,
                threads_per_worker=threads,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                worker_dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            client.wait_for_workers(processes, timeout=600)
            if interpreters:
                import interpool.dask

                client.register_plugin(interpool.dask.InterpreterPlugin())
            partitions = 4 * processes * threads

            def job(n):
                bag = db.from_sequence([size] * n, npartitions=partitions).map(_tasks.sum_squares)
                return bag.sum().compute()

            job(partitions)  # warm up: every worker imports the task module
            m.startup = time.perf_counter() - t0
            m.n = items
            overhead = []
            for _ in range(repeats):
                client.run(_gc_collect)
                t0 = time.perf_counter()
                answer = job(items)
                m.times.append(time.perf_counter() - t0)
                if answer != expected:
                    raise AssertionError(f"got {answer}, expected {expected}")
                m.answer = answer
                t0 = time.perf_counter()
                job(partitions)
                overhead.append(time.perf_counter() - t0)
            got["rss"], got["overhead"] = sum(client.run(process_rss_mb).values()), min(overhead)

    m = h.Measurement(label, key, workers=processes * threads)
    h.guarded(m, config, body, missing=requires() if requires else None, progress=f"  dask: {label} ...")
    return m, got.get("rss"), got.get("overhead")


def _busy_machine_note(workers):
    """A note when other work shared the cores (autogroup scheduling), else None."""
    try:
        load = os.getloadavg()[0]
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            autogroup = f.read().strip() == "1"
    except (OSError, AttributeError):
        return None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if load <= max(cpus, workers) + 1:
        return None
    why = (
        "Linux splits the cores between busy sessions (sched_autogroup_enabled), so the parallel setups got "
        "fewer than N cores and their ratios understate them"
        if autogroup
        else "the parallel setups got fewer than N cores"
    )
    return f"BUSY MACHINE: load average {load:.1f} on {cpus} CPUs at the end; {why}."


def _gc_collect():
    import gc

    gc.collect()


def run(config: h.Config) -> h.WorkloadResult:
    workers = config.workers
    missing = _missing()
    if missing:
        line = f"skipped: {missing}" + ("" if h.fake_interpool() else "; pip install 'dask[bag]' distributed to run it")
        table = h.Table(f"section skipped: {missing}", ["peer", "result"], [("dask", line)])
        params = {"workers": workers, "skipped": missing}
        return h.WorkloadResult.of(__name__, params=params, tables=[table], targets=[], data={})
    items = config.size(800, 80, minimum=8)
    size = config.size(20_000, 5_000, minimum=100)
    repeats = config.reps(5, 1)
    selected = [s for s in _setups(workers) if config.wants(s[1])]
    ms, rss, overhead = [], {}, {}
    for label, key, processes, threads, interpreters, requires in selected:
        m, mb, cost = _measure(config, label, key, processes, threads, interpreters, requires, items, size, repeats)
        ms.append(m)
        if mb is not None:
            rss[key], overhead[key] = mb, cost

    ip = h.find(ms, "interpool")

    def row(m):
        vs = "-" if ip is None or m is ip else h.fmt_ratio(m.best / ip.best)
        return [
            m.label,
            h.fmt_s(m.best),
            vs,
            h.fmt_s(overhead.get(m.key)),
            h.fmt_num(rss[m.key]) if m.key in rss else "-",
        ]

    table = h.Table(
        f"{items} items of sum_squares({size}), {4 * workers} partitions, best of {repeats}",
        ["setup", "s", "vs. interpool (time ratio)", "per-job cost (s)", "worker RSS (MiB)"],
        h.rows(ms, lambda m: m.best, row),
        notes=[
            f"per-job cost: the same graph with one item per partition ({4 * workers} items), best of {repeats}: "
            "distributed's own cost per job (graph, scheduling, results), which no executor avoids.",
            "RSS: the worker processes' resident memory summed, after the runs.",
        ]
        + [n for n in [_busy_machine_note(workers)] if n]
        + h.error_notes(ms),
    )
    threads_m, procs_m = h.find(ms, "threads"), h.find(ms, "processes")
    vs_threads = None if ip is None or threads_m is None else threads_m.best / ip.best
    vs_procs = None if ip is None or procs_m is None else ip.best / procs_m.best
    less_memory = None if "interpool" not in rss or "processes" not in rss else rss["interpool"] < rss["processes"]
    targets = [
        h.target(
            f"interpool executor ≥ {TARGET_VS_THREADS:g} × N ({TARGET_VS_THREADS * workers:.2f}×) faster than threads",
            None if vs_threads is None else vs_threads >= TARGET_VS_THREADS * workers,
            "" if vs_threads is None else f"{h.fmt_ratio(vs_threads)}",
        ),
        h.target(
            f"interpool executor within {round((TARGET_VS_PROCESSES - 1) * 100)}% of {workers} worker processes",
            None if vs_procs is None else vs_procs <= TARGET_VS_PROCESSES,
            "" if vs_procs is None else f"time ratio {h.fmt_ratio(vs_procs)}",
        ),
        h.target(
            f"with less memory than {workers} worker processes",
            less_memory,
            "" if less_memory is None else f"{h.fmt_num(rss['interpool'])} vs {h.fmt_num(rss['processes'])} MiB",
        ),
    ]
    h.fail_if_interpool_failed(targets, ms)
    params = {
        "workers": workers,
        "items": items,
        "size": size,
        "repeats": repeats,
        "worker_rss_mb": {k: round(v, 1) for k, v in rss.items()},
        "job_overhead_s": {k: round(v, 4) for k, v in overhead.items()},
    }
    return h.WorkloadResult.of(__name__, params=params, tables=[table], targets=targets, data={"setups": ms})


if __name__ == "__main__":
    from .__main__ import main

    raise SystemExit(main(default_only=[NAME]))
