"""Stopping work that runs: Future.interrupt(), timeouts, stuck workers, stats.

Applied to every pool kind whose tasks run in interpreters.  No test orders
events by sleeping or bounds wall-clock time: tasks report that they started
through an interpool.Event, and the tests wait on futures, events or
pool.stats() (latencies are measured by ``python -m interpool.bench``).
"""

import concurrent.futures as cf
import time

import pytest

import _probe
import _stop_tasks as tasks
import interpool
from conftest import ALL_KINDS

PATIENCE = 60.0  # generous: only a hang fails this, never slowness

# Every pool kind (conftest.PoolKind); AsyncPool is skipped, by name: it has
# no Future.interrupt() or stats (cancelling its coroutines is tested in
# test_async_pool.py).  Each test makes the pools it needs with the worker
# count it needs (one worker, mostly: the task under test is the one a probe
# watches), so the worker-count axis would only run each test twice.
pytestmark = [pytest.mark.kinds(*ALL_KINDS), pytest.mark.workers(1), pytest.mark.needs("interrupt")]


def wait_until_sleeping_in_c(pool):
    """Wait until the task of ``pool``'s only worker sleeps in C (a probe, not a guess)."""
    _probe.wait_until_in_sleep(pool.stats().workers[0].native_id, what="the worker sleeps in time.sleep")


def started_task(kind, pool, f, *args, submit=None):
    started = interpool.Event()
    future = (submit or pool.submit)(kind.fn(f), started, *args)
    assert started.wait(PATIENCE), "the task never started"
    return future


# ------------------------------------------------------------- interrupt()


def test_interrupt_stops_a_tight_loop_and_cancels_its_future(kind):
    pool = kind.make(1)
    future = started_task(kind, pool, tasks.spin_forever)
    assert future.running()
    assert future.cancel() is False  # the concurrent.futures contract holds
    assert future.interrupt() is True
    with pytest.raises(cf.CancelledError):
        future.result(timeout=PATIENCE)
    assert future.cancelled()
    stats = pool.stats()
    assert stats.interrupted == 1 and stats.workers_replaced == 0
    assert pool.submit(kind.fn(abs), -3).result(timeout=PATIENCE) == 3  # the worker goes on


def test_interrupt_of_a_queued_task_cancels_it(kind):
    pool = kind.make(1)
    release = interpool.Event()
    blocker = pool.submit(kind.fn(tasks.wait_for), release)
    queued = pool.submit(kind.fn(abs), -1)
    assert queued.interrupt() is True
    assert queued.cancelled()
    release.set()
    assert blocker.result(timeout=PATIENCE) == "released"
    assert pool.stats().cancelled == 1


def test_interrupt_after_the_task_finished_keeps_its_result(kind):
    pool = kind.make(1)
    future = pool.submit(kind.fn(abs), -5)
    assert future.result(timeout=PATIENCE) == 5
    assert future.interrupt() is False
    assert future.result() == 5 and not future.cancelled()


def test_a_task_that_catches_the_interrupt_keeps_its_result(kind):
    pool = kind.make(1)
    future = started_task(kind, pool, tasks.spin_then_catch)
    assert future.interrupt()
    assert future.result(timeout=PATIENCE) == "caught: the task was interrupted"


def test_task_interrupted_is_a_base_exception_in_workers_too(kind):
    pool = kind.make(1)
    name, base, plain = pool.submit(kind.fn(tasks.interrupted_type_info)).result(timeout=PATIENCE)
    assert (name, base, plain) == ("TaskInterrupted", True, False)
    assert issubclass(interpool.TaskInterrupted, BaseException)
    assert not issubclass(interpool.TaskInterrupted, Exception)


def test_an_interrupt_never_reaches_the_next_task(kind):
    pool = kind.make(1)
    for _ in range(20):
        future = pool.submit(kind.fn(abs), -1)
        future.interrupt()  # queued, running or done: whichever it is now
        try:
            assert future.result(timeout=PATIENCE) == 1
        except cf.CancelledError:
            pass
    assert [pool.submit(kind.fn(abs), -i).result(timeout=PATIENCE) for i in range(50)] == list(range(50))


# ---------------------------------------------------------------- timeouts


def test_pool_task_timeout_raises_builtin_timeout_error(kind):
    pool = kind.make(1, task_timeout=0.05)
    started = interpool.Event()
    future = pool.submit(kind.fn(tasks.spin_forever), started)
    with pytest.raises(TimeoutError, match="ran past its timeout of 0.05 s"):
        future.result(timeout=PATIENCE)
    assert pool.stats().timed_out == 1
    # A per-call timeout overrides the pool's (a generous one: a loaded machine
    # may take a while even for a quick task).
    assert pool.options(timeout=PATIENCE).submit(kind.fn(abs), -2).result(timeout=PATIENCE) == 2


def test_per_call_timeout_through_options(kind):
    pool = kind.make(1)
    quick = pool.options(timeout=0.05)
    with pytest.raises(TimeoutError):
        quick.submit(kind.fn(tasks.spin_forever), interpool.Event()).result(timeout=PATIENCE)
    # The user's keyword arguments stay theirs: `timeout` here goes to the function.
    assert (
        pool.options(timeout=30)
        .submit(kind.fn(tasks.sleep_in_c), interpool.Event(), seconds=0)
        .result(timeout=PATIENCE)
        == "woke up"
    )
    assert list(pool.options(timeout=30).map(kind.fn(abs), [-1, -2])) == [1, 2]
    stats = pool.stats()
    assert stats.timed_out == 1 and stats.done >= 2


def test_per_call_timeout_applies_to_map_chunks(kind):
    pool = kind.make(1)
    assert pool.submit(kind.fn(abs), -1).result(timeout=PATIENCE) == 1  # the worker has imported what it needs
    started = interpool.Event()
    results = pool.options(timeout=2).map(kind.fn(tasks.spin_item), [1, 0, 2], [started] * 3, chunksize=1)
    assert next(results) == 1
    with pytest.raises(TimeoutError):
        next(results)


@pytest.mark.parametrize("buffersize", [None, 4], ids=["all-submitted", "windowed"])
def test_map_deadline_cancels_queued_and_interrupts_running(kind, buffersize):
    pool = kind.make(1)
    started = interpool.Event()
    results = pool.map(
        kind.fn(tasks.spin_item), [0, 1, 2, 3], [started] * 4, timeout=0.1, chunksize=1, buffersize=buffersize
    )
    assert started.wait(PATIENCE)  # the first chunk runs; the deadline passes while it spins
    with pytest.raises(TimeoutError):
        list(results)
    _probe.wait_for(lambda: pool.stats().running == 0, "the spinning task was interrupted")
    stats = pool.stats()
    assert stats.interrupted == 1 and stats.cancelled == 3
    assert pool.submit(kind.fn(abs), -4).result(timeout=PATIENCE) == 4


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "1", True])
def test_bad_timeouts_are_refused(kind, bad):
    pool = kind.make(1)
    with pytest.raises((TypeError, ValueError), match="timeout"):
        pool.options(timeout=bad)
    with pytest.raises((TypeError, ValueError), match="task_timeout"):
        interpool.Pool(1, task_timeout=bad)
    with pytest.raises((TypeError, ValueError), match="interrupt_grace"):
        interpool.Pool(1, interrupt_grace=bad)


@pytest.mark.parametrize("how", ["Event.wait", "Queue.get", "Lock.acquire"])
def test_a_task_blocked_in_an_interpool_wait_is_interrupted_and_keeps_its_worker(kind, how):
    # interpool's own waits check for an interrupt between their slices, so
    # the task stops without being abandoned, even with no grace at all.
    pool = kind.make(1, interrupt_grace=3600)
    future = started_task(kind, pool, tasks.wait_on_interpool, how)
    old_thread = pool.stats().workers[0].native_id
    assert future.interrupt()
    with pytest.raises(cf.CancelledError):
        future.result(timeout=PATIENCE)
    stats = pool.stats()
    assert stats.interrupted == 1 and stats.workers_replaced == 0
    assert pool.submit(kind.fn(abs), -7).result(timeout=PATIENCE) == 7
    assert pool.stats().workers[0].native_id == old_thread


# ----------------------------------------------------------- stuck workers


def test_a_task_stuck_in_c_is_abandoned_and_its_worker_replaced(kind):
    pool = kind.make(1, interrupt_grace=0.05)
    future = started_task(kind, pool, tasks.sleep_in_c)
    wait_until_sleeping_in_c(pool)
    old_thread = pool.stats().workers[0].native_id
    assert future.interrupt()
    with pytest.raises(cf.CancelledError):
        future.result(timeout=PATIENCE)
    stats = pool.stats()
    assert stats.workers_replaced == 1 and len(stats.workers) == 1
    assert pool.submit(kind.fn(abs), -7).result(timeout=PATIENCE) == 7  # same size, still usable
    assert pool.stats().workers[0].native_id != old_thread


def test_a_timeout_on_a_task_stuck_in_c_still_raises_timeout_error(kind):
    pool = kind.make(1, interrupt_grace=0.05)
    with pytest.raises(TimeoutError):
        pool.options(timeout=0.05).submit(kind.fn(time.sleep), 1e6).result(timeout=PATIENCE)
    assert pool.stats().timed_out == 1
    assert pool.submit(kind.fn(abs), -1).result(timeout=PATIENCE) == 1


def test_a_task_that_swallows_interrupts_is_abandoned(kind):
    pool = kind.make(2, interrupt_grace=0.05)
    release = interpool.Event()
    try:
        future = started_task(kind, pool, tasks.swallow_interrupts, release)
        future.interrupt()
        with pytest.raises(cf.CancelledError):
            future.result(timeout=PATIENCE)
        # CPython may raise the interrupt where the task's own handler does not
        # cover it (as with KeyboardInterrupt); then it stops without being
        # abandoned.  Either way it ends, once, and the pool goes on.
        stats = pool.stats()
        assert (stats.workers_replaced, stats.interrupted) in ((1, 1), (0, 1))
        assert sorted(pool.map(kind.fn(abs), [-1, -2, -3])) == [1, 2, 3]
    finally:
        release.set()  # the abandoned thread comes back, finds itself replaced, and ends


def test_shutdown_with_interrupt_stops_a_hanging_initializer(kind):
    if kind.name == "InterpreterPoolExecutor":
        pytest.skip("initializer stop is engine behaviour, covered through Pool")
    started = interpool.Event()
    pool = kind.make(1, initializer=tasks.hang_initializer, initargs=(started,))
    queued = None
    if kind.name == "HybridPool":  # its worker interpreters start when isolated work arrives
        queued = pool.submit(kind.fn(abs), -1)
    assert started.wait(PATIENCE)
    pool.shutdown(wait=True, cancel_futures=True, interrupt=True)
    assert pool._broken  # it never got a working worker
    if queued is not None:
        assert queued.cancelled()


# ------------------------------------------------------------------- stats


def test_stats_show_what_each_worker_runs(kind):
    pool = kind.make(2)
    release = interpool.Event()
    running = started_task(kind, pool, tasks.spin_forever)
    waiting = [pool.submit(kind.fn(tasks.wait_for), release) for _ in range(3)]
    _probe.wait_for(lambda: pool.stats().running == 2, "both workers run a task")
    stats = pool.stats()
    assert stats.queued == 2
    futures = {w.future for w in stats.workers}
    assert running in futures and waiting[0] in futures
    assert all(w.seconds >= 0 and isinstance(w.native_id, int) for w in stats.workers)
    running.interrupt()
    with pytest.raises(cf.CancelledError):
        running.result(timeout=PATIENCE)
    release.set()
    assert [f.result(timeout=PATIENCE) for f in waiting] == ["released"] * 3
    _probe.wait_for(lambda: pool.stats().done == 3, "the three waiting tasks are counted")
    final = pool.stats()
    assert (final.interrupted, final.failed, final.running) == (1, 0, 0)


def test_failed_tasks_are_counted(kind):
    pool = kind.make(1)
    with pytest.raises(ValueError):
        pool.submit(kind.fn(int), "x").result(timeout=PATIENCE)
    _probe.wait_for(lambda: pool.stats().failed == 1, "the failure is counted")


# ------------------------------------------------------ shutdown from inside


def test_shutdown_from_a_done_callback_does_not_deadlock(kind):
    pool = kind.make(1)
    called = []
    future = pool.submit(kind.fn(abs), -1)
    future.add_done_callback(lambda f: (pool.shutdown(wait=True), called.append(True)))
    assert future.result(timeout=PATIENCE) == 1
    _probe.wait_for(lambda: called, "the callback returned")
    with pytest.raises(RuntimeError, match="shutdown"):
        pool.submit(kind.fn(abs), 1)


def test_shutdown_from_a_hybrid_thread_task_does_not_deadlock():
    pool = interpool.HybridPool(2)
    try:
        assert pool.submit(pool.shutdown, wait=True).result(timeout=PATIENCE) is None
        with pytest.raises(RuntimeError, match="shutdown"):
            pool.submit(abs, 1)
    finally:
        pool.shutdown(wait=True)
