"""Stopping work that runs: interrupt latency, timeout overshoot, Ctrl-C to exit.

Three figures, each against the standard library executors where they can
do the same thing at all:

* **interrupt**: ``future.interrupt()`` on a task that runs a pure-Python
  loop (it sets an ``interpool.Event`` once the loop starts; the caller waits
  for it first), until the future is done.  No stdlib executor can stop a
  running task; ProcessPoolExecutor can only kill its worker processes, which
  breaks the whole pool: that is timed as "kill the pool".
* **timeout**: tasks that would loop for a second, run with
  ``pool.options(timeout=...)``.  Each task puts its start time
  (``time.monotonic()``, one clock for every thread and interpreter of the
  process) on an ``interpool.Queue``, since it never returns; a done-callback
  reads the clock when its future is done.  Overshoot = done - start -
  timeout.  The engine starts the timer just before the task's first line,
  so the figure is low by the few microseconds in between.
* **ctrl-c**: a child process runs ``with executor: list(executor.map(spin,
  ...))`` over 8 tasks of 1.5 s; once its workers print that they run, the
  parent sends SIGINT to the child's process group, as a terminal's Ctrl-C
  does, and times until the child has exited.  The child catches
  ``KeyboardInterrupt`` outside the ``with`` block and exits.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import os
import queue
import selectors
import signal
import statistics
import subprocess
import sys
import time

from . import _harness as h
from . import _tasks

NAME = "stop"
TITLE = "Stopping running tasks"
DESCRIPTION = "How fast running work stops: interrupt() to done, timeout overshoot, Ctrl-C to exit; lower is better."

PEERS = ["interpool", "threads", "processes", "stdlib"]
WORKERS = 2  # the figures are about stopping, not throughput: 2 workers everywhere
TIMEOUT = 0.01  # s: the per-task timeout of the overshoot figure
TASK_SECONDS = 1.0  # s each timed-out task would loop
SPIN_FOREVER = 60.0  # s: a task to interrupt; one that outlives this was not interrupted
CTRL_C_TASKS = 8
CTRL_C_SECONDS = 1.5
CHILD_LIMIT = 60.0  # s: a child that has not exited by then is killed and reported

CANNOT = "cannot (no way to stop a running task)"


def _fake_reason():
    return "n/a (INTERPOOL_BENCH_FAKE stand-in cannot stop tasks)" if h.fake_interpool() else None


def _na(bench, detail):
    m = h.Measurement(bench.label, bench.key, workers=WORKERS)
    m.status, m.detail = "n/a", detail
    return m


def _guarded(bench, config, section, body):
    """Run ``body(m)`` for one peer; failures become an error row, never escape."""
    m = h.Measurement(bench.label, bench.key, workers=WORKERS)
    return h.guarded(m, config, body, missing=bench.unavailable(), progress=f"  {section}: {bench.label} ...")


# ---------------------------------------------------------------------------
# 1. interrupt() latency
# ---------------------------------------------------------------------------


def _interrupt_latencies(pool, interpool, n):
    """Interrupt ``n`` looping tasks one at a time; seconds from interrupt() to done."""
    latencies = []
    for _ in range(n):
        started = interpool.Event()
        future = pool.submit(_tasks.spin_signalled, started, SPIN_FOREVER)
        started.wait()
        t0 = time.perf_counter()
        future.interrupt()
        cf.wait([future])
        latencies.append(time.perf_counter() - t0)
        assert future.cancelled(), f"the task was not stopped: {future!r}"
    return sorted(latencies)


def _interrupt_interpool(bench, config, n):
    def body(m):
        interpool = h.load_interpool()
        with interpool.Pool(WORKERS) as pool:
            h.warm_up(pool, WORKERS)
            _interrupt_latencies(pool, interpool, min(n, 5))  # warm-up: module imported
            before = pool.stats()
            m.times = _interrupt_latencies(pool, interpool, n)
            after = pool.stats()
        m.n = n
        m.answer = after.interrupted - before.interrupted
        assert m.answer == n, f"stats() counted {m.answer} interrupts, expected {n}"
        assert after.workers_replaced == before.workers_replaced, "a worker was replaced"

    return _guarded(bench, config, "interrupt", body)


def _kill_pool_once(ctx):
    """Start a ProcessPoolExecutor, loop one task, kill its processes; kill -> future done."""
    ex = cf.ProcessPoolExecutor(WORKERS, mp_context=ctx)
    with ctx.Manager() as manager:
        try:
            started = manager.Event()
            future = ex.submit(_tasks.spin_signalled, started, SPIN_FOREVER)
            if not started.wait(CHILD_LIMIT):
                raise RuntimeError("the task never started")
            t0 = time.perf_counter()
            for p in list(ex._processes.values()):  # no public API: only a whole pool can be killed
                p.kill()
            cf.wait([future], timeout=CHILD_LIMIT)
            elapsed = time.perf_counter() - t0
            assert future.done(), "the future never ended after its process was killed"
            assert isinstance(future.exception(), cf.process.BrokenProcessPool), repr(future.exception())
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
    return elapsed


def _interrupt_processes(bench, config, n):
    def body(m):
        ctx = h._mp_context()
        m.times = sorted(_kill_pool_once(ctx) for _ in range(n))
        m.n = n
        m.detail = "kill the pool"

    return _guarded(bench, config, "interrupt", body)


def _interrupt_section(config):
    n = config.size(200, 50)
    kills = config.size(5, 3)
    fake = _fake_reason()
    ms = []
    for bench in config.select(PEERS):
        if bench.key == "interpool":
            ms.append(_na(bench, fake) if fake else _interrupt_interpool(bench, config, n))
        elif bench.key == "processes":
            ms.append(_interrupt_processes(bench, config, kills))
        else:
            ms.append(_na(bench, bench.unavailable() or CANNOT))
    return ms, n


# ---------------------------------------------------------------------------
# 2. timeout overshoot
# ---------------------------------------------------------------------------


def _overshoots(pool, interpool, n):
    """Run ``n`` one-second loops with a TIMEOUT each; sorted overshoots in seconds."""
    log = interpool.Queue()
    done_at = [math.nan] * n
    all_done = h.Countdown(n)

    def callback_for(i):
        def callback(future):
            done_at[i] = time.monotonic()
            all_done.tick()

        return callback

    timed = pool.options(timeout=TIMEOUT)
    futures = []
    for i in range(n):
        future = timed.submit(_tasks.spin_recorded, log, i, TASK_SECONDS)
        future.add_done_callback(callback_for(i))
        futures.append(future)
    cf.wait(futures)
    if not all_done.wait(CHILD_LIMIT):
        raise RuntimeError("some done-callbacks never ran")
    wrong = [f for f in futures if not isinstance(f.exception(), TimeoutError)]
    assert not wrong, f"{len(wrong)} of {n} tasks did not raise TimeoutError, e.g. {wrong[0].exception()!r}"
    # A task puts its start before it ends, so every record is in by now. On a
    # loaded machine the timeout can expire before a task reaches its first
    # line (the timer starts as the worker takes it): such a task has no start.
    started = {}
    while True:
        try:
            index, start = log.get_nowait()
        except queue.Empty:
            break
        started[index] = start
    return sorted(done_at[i] - started[i] - TIMEOUT for i in started), n - len(started)


def _timeout_interpool(bench, config, n):
    def body(m):
        interpool = h.load_interpool()
        with interpool.Pool(WORKERS) as pool:
            h.warm_up(pool, WORKERS)
            _overshoots(pool, interpool, 2 * WORKERS)  # warm-up: module imported
            before = pool.stats()
            m.times, unrecorded = _overshoots(pool, interpool, n)
            after = pool.stats()
        m.n = n
        if unrecorded:
            m.detail = f"{unrecorded} stopped before their first line"
        assert m.times, "no task reached its first line before its timeout"
        m.answer = after.timed_out - before.timed_out
        assert m.answer == n, f"stats() counted {m.answer} timeouts, expected {n}"

    return _guarded(bench, config, "timeout", body)


def _timeout_section(config):
    n = config.size(1_000, 200, minimum=2 * WORKERS)
    fake = _fake_reason()
    ms = []
    for bench in config.select(PEERS):
        if bench.key == "interpool":
            ms.append(_na(bench, fake) if fake else _timeout_interpool(bench, config, n))
        else:
            ms.append(_na(bench, bench.unavailable() or "cannot (no per-task timeout)"))
    return ms, n


# ---------------------------------------------------------------------------
# 3. Ctrl-C to exit
# ---------------------------------------------------------------------------

_CHILD = r"""
import signal
import sys
# A shell that starts a job in the background leaves SIGINT ignored, and Python
# then installs no handler of its own: make Ctrl-C raise KeyboardInterrupt here.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path[:0] = [p for p in {path!r} if p not in sys.path]
from interpool.bench import _harness as h, _tasks
ex = h.standard_peers()[{key!r}].make({workers})
try:
    with ex:
        list(ex.map(_tasks.spin_announced, [{seconds!r}] * {tasks}, chunksize=1))
except KeyboardInterrupt:
    print("interrupted", flush=True)
else:
    print("finished", flush=True)
"""


def _ctrl_c_once(key, seconds):
    """Start a child, Ctrl-C it once WORKERS tasks run; seconds from SIGINT to its exit."""
    code = _CHILD.format(path=list(sys.path), key=key, workers=WORKERS, seconds=seconds, tasks=CTRL_C_TASKS)
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: SIGINT reaches it and its workers
    )
    try:
        started = 0
        buf = b""
        deadline = time.monotonic() + CHILD_LIMIT
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while started < WORKERS:
                if not sel.select(max(0.0, deadline - time.monotonic())):
                    raise RuntimeError("the child's tasks never started")
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    err = proc.stderr.read().decode(errors="replace").strip().splitlines()
                    raise RuntimeError(f"the child exited early: {err[-1] if err else proc.wait()}")
                buf += chunk
                started = buf.count(b"started\n")
        t0 = time.perf_counter()
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(CHILD_LIMIT)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"the child was still running {CHILD_LIMIT:g} s after SIGINT") from None
        elapsed = time.perf_counter() - t0
        out = buf + proc.stdout.read()
        assert b"interrupted" in out, (
            f"the child did not see KeyboardInterrupt (exit {proc.returncode}): "
            f"{proc.stderr.read().decode(errors='replace').strip()[-300:]}"
        )
        return elapsed
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _ctrl_c_section(config):
    reps = config.reps(3, 1)
    # Shorter tasks only for smoke tests (--scale < 1): a peer that waits for them stays quick.
    seconds = max(0.3, CTRL_C_SECONDS * min(1.0, config.scale))

    def measure(bench):
        def body(m):
            m.times = [_ctrl_c_once(bench.key, seconds) for _ in range(reps)]
            m.n = reps

        return _guarded(bench, config, "ctrl-c", body)

    return [measure(b) for b in config.select(PEERS)], reps, seconds


# ---------------------------------------------------------------------------


def run(config: h.Config) -> h.WorkloadResult:
    interrupts, n_int = _interrupt_section(config)
    timeouts, n_to = _timeout_section(config)
    ctrl_c, reps, seconds = _ctrl_c_section(config)

    def median(m):
        return statistics.median(m.times)

    def latency_table(title, count, ms, notes):
        headers = ["peer", count, "p50 ms", "p99 ms", "max ms"]
        return h.Table(title, headers, h.latency_rows(ms), notes=notes + h.error_notes(ms))

    t_int = latency_table(
        f"interrupt() -> future done, task in a pure-Python loop, {WORKERS} workers",
        "stops",
        interrupts,
        [
            "One task at a time; the caller waits for the task's Event before interrupting.",
            "ProcessPoolExecutor: kill its worker processes (the pool is broken after), "
            "kill -> future done with BrokenProcessPool.",
        ],
    )
    t_to = latency_table(
        f"timeout overshoot, {n_to:,} tasks of a {TASK_SECONDS:g} s loop with a "
        f"{TIMEOUT * 1e3:g} ms timeout, {WORKERS} workers",
        "tasks",
        timeouts,
        [
            "Overshoot = (future done - task start) - timeout; every task raised TimeoutError.",
            "A task whose timeout expired before its first line (a loaded machine) has no start: "
            "left out, counted beside the peer.",
        ],
    )
    ip_c = h.find(ctrl_c, "interpool")
    t_cc = h.Table(
        f"Ctrl-C -> process exited, map of {CTRL_C_TASKS} tasks of a {seconds:g} s loop, "
        f"{WORKERS} workers, median of {reps}",
        ["peer", "median s", "max s", "vs. interpool"],
        h.rows(
            ctrl_c,
            median,
            lambda m: [
                m.label,
                h.fmt_s(median(m)),
                h.fmt_s(max(m.times)),
                h.fmt_ratio(median(m) / median(ip_c)) if ip_c and median(ip_c) > 0 else "-",
            ],
        ),
        notes=[
            "SIGINT goes to the child's process group, as a terminal's Ctrl-C does "
            "(ProcessPoolExecutor's workers get it too).",
        ]
        + h.error_notes(ctrl_c),
    )

    ip_i = h.find(interrupts, "interpool")
    ip_t = h.find(timeouts, "interpool")
    targets = [
        h.at_most("interpool interrupt p99 ≤ 10 ms", h.p99(ip_i) if ip_i else None, 10e-3, h.in_ms),
        h.at_most("interpool timeout overshoot p99 ≤ 10 ms", h.p99(ip_t) if ip_t else None, 10e-3, h.in_ms),
        h.target(
            "interpool Ctrl-C to exit ≤ 0.5 s",
            None if ip_c is None else median(ip_c) <= 0.5,
            "" if ip_c is None else f"median {h.fmt_s(median(ip_c))} s, max {h.fmt_s(max(ip_c.times))} s",
        ),
    ]
    h.fail_if_interpool_failed(targets, interrupts, timeouts, ctrl_c)
    params = {
        "workers": WORKERS,
        "interrupts": n_int,
        "timeout_tasks": n_to,
        "timeout_s": TIMEOUT,
        "timeout_task_s": TASK_SECONDS,
        "ctrl_c_tasks": CTRL_C_TASKS,
        "ctrl_c_task_s": seconds,
        "ctrl_c_repeats": reps,
    }
    data = {"interrupt": interrupts, "timeout": timeouts, "ctrl_c": ctrl_c}
    return h.WorkloadResult.of(__name__, params=params, tables=[t_int, t_to, t_cc], targets=targets, data=data)


if __name__ == "__main__":
    from .__main__ import main

    raise SystemExit(main(default_only=[NAME]))
