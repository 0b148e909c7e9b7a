"""interpool.Lock, RLock, Event, Semaphore, BoundedSemaphore and Barrier.

Each has the threading module's API and stands for one engine object shared
by every interpreter holding it: a task in a worker can block on a lock the
main interpreter holds, a Semaphore bounds holders across interpreters, and
so on.  Blocking calls release the GIL, honour timeouts and stay responsive
to Ctrl-C.  Wrappers of the same object compare and hash equal.
"""

import functools
import pickle
import threading
import time

import pytest

import _probe
import _sync_tasks as tasks
import interpool
from conftest import ALL_BEHAVIOUR, child_env

# Every pool kind (conftest.PoolKind, AsyncPool included) with 1 and 3
# workers; one pool per kind for the module, since its tasks never outlive a
# test and keep no state in a worker.
pytestmark = [pytest.mark.timeout(60), *ALL_BEHAVIOUR, pytest.mark.reuse_pool]


def result(future, timeout=30):
    return future.result(timeout=timeout)


def _thread_tid(thread):
    """The native id of a started threading.Thread (set once it runs)."""
    _probe.wait_for(lambda: thread.native_id is not None, "the thread runs")
    return thread.native_id


def run_threads(n, target, *args):
    threads = [threading.Thread(target=target, args=args) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def join_all(threads, timeout=60):
    for t in threads:
        t.join(timeout)
        assert not t.is_alive()


# ===================================================================== Lock


def test_lock_is_held_by_one_acquirer_at_a_time():
    lock = interpool.Lock()
    assert not lock.locked()
    assert lock.acquire() is True
    assert lock.locked()
    assert lock.acquire(False) is False
    assert lock.acquire(blocking=False) is False
    lock.release()
    assert not lock.locked()
    with lock:
        assert lock.locked()
    assert not lock.locked()
    assert repr(lock) == "<interpool.Lock unlocked>"


def test_releasing_an_unlocked_lock_raises_runtime_error():
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        interpool.Lock().release()


def test_lock_acquire_honours_its_timeout():
    lock = interpool.Lock()
    lock.acquire()
    t0 = time.monotonic()
    assert lock.acquire(timeout=0.2) is False
    assert time.monotonic() - t0 >= 0.19, "returned before its timeout"
    assert lock.acquire(True, 0) is False


def test_lock_acquire_arguments_are_checked_like_threading():
    lock = interpool.Lock()
    with pytest.raises(ValueError, match="non-blocking"):
        lock.acquire(False, 1)
    with pytest.raises(ValueError, match="non-negative"):
        lock.acquire(timeout=-2)
    with pytest.raises(TypeError):
        lock.acquire(timeout="1")
    with pytest.raises(OverflowError):
        lock.acquire(timeout=1e300)
    with pytest.raises(TypeError):
        lock.acquire(wait=True)
    with pytest.raises(TypeError):
        interpool.Lock(1)
    assert lock.acquire(timeout=-1) is True, "-1 means forever"
    assert not lock.acquire(blocking=False, timeout=-1)


def test_a_lock_held_here_blocks_a_worker_until_released(pool):
    lock = interpool.Lock()
    lock.acquire()
    ok, took = result(pool.submit(tasks.acquire_with_timeout, lock, 0.2))
    assert ok is False and took >= 0.19
    lock.release()
    ok, _ = result(pool.submit(tasks.acquire_with_timeout, lock, 10))
    assert ok is True
    assert lock.locked(), "the worker holds it now"
    lock.release()  # any thread of any interpreter may release a Lock


def test_a_worker_releasing_a_lock_wakes_the_main_thread(pool):
    lock = interpool.Lock()
    started, release = interpool.Event(), interpool.Event()
    future = pool.submit(tasks.hold_lock_until, lock, started, release)
    assert started.wait(30)
    assert lock.acquire(timeout=0.1) is False
    release.set()
    assert lock.acquire(timeout=30) is True
    lock.release()
    assert result(future) is True


@pytest.mark.parametrize(
    ("lock_type", "increments", "threads_here", "n"),
    [
        pytest.param(interpool.Lock, tasks.locked_increments, 4, 3000, id="Lock"),
        pytest.param(interpool.RLock, tasks.rlock_increments, 2, 2000, id="RLock"),  # each increment nests
    ],
)
def test_a_lock_keeps_a_counter_correct_under_contention(pool, lock_type, increments, threads_here, n):
    """Four tasks in worker interpreters and threads here do read-modify-write
    increments of one int64 in a SharedBuffer, each under the lock (without
    it, updates get lost)."""
    lock = lock_type()
    buf = interpool.SharedBuffer(8)
    futures = [pool.submit(increments, lock, buf, n) for _ in range(4)]
    threads = run_threads(threads_here, increments, lock, buf, n)
    assert [result(f, 60) for f in futures] == [n] * 4
    join_all(threads)
    assert memoryview(buf).cast("q")[0] == (4 + threads_here) * n
    assert not lock.locked()


# ==================================================================== RLock


def test_rlock_is_reentrant_for_its_owner():
    rlock = interpool.RLock()
    assert rlock.acquire()
    assert rlock.acquire(False)
    with rlock:
        assert rlock.locked()
    rlock.release()
    assert rlock.locked(), "one level is still held"
    rlock.release()
    assert not rlock.locked()
    assert "unlocked" in repr(rlock)


def test_rlock_release_by_a_non_owner_raises_runtime_error(pool):
    rlock = interpool.RLock()
    with pytest.raises(RuntimeError, match="cannot release un-acquired lock"):
        rlock.release()
    rlock.acquire()
    errors = []

    def other_thread():
        try:
            rlock.release()
        except RuntimeError as error:
            errors.append(str(error))
        errors.append(rlock.acquire(timeout=0.05))

    t = threading.Thread(target=other_thread)
    t.start()
    t.join(30)
    assert errors == ["cannot release un-acquired lock", False]
    assert result(pool.submit(tasks.try_release_rlock, rlock)) == "cannot release un-acquired lock"
    assert rlock.locked()
    rlock.release()


def test_rlock_works_under_threading_condition():
    cond = threading.Condition(interpool.RLock())
    go = []
    out = []

    def waiter():
        with cond:
            with cond:  # nested: wait() must release both levels
                out.append(cond.wait_for(lambda: go, timeout=10))

    t = threading.Thread(target=waiter)
    t.start()
    # The waiter holds the RLock twice, then waits in cond.wait_for.
    _probe.wait_until_asleep(_thread_tid(t), futex=True, what="the waiter blocked in wait_for")
    assert cond.acquire(timeout=30), "the waiter released every level while waiting"
    go.append(True)
    cond.notify_all()
    cond.release()
    t.join(30)
    assert out == [[True]]


# ==================================================================== Event


def test_event_flag_set_clear_wait():
    ev = interpool.Event()
    assert not ev.is_set()
    assert ev.wait(0) is False
    assert ev.wait(-1) is False, "a negative timeout does not wait (threading.Event)"
    ev.set()
    assert ev.is_set()
    assert ev.wait() is True
    assert ev.wait(0) is True
    ev.clear()
    assert not ev.is_set()
    assert repr(ev) == "<interpool.Event unset>"


def test_event_wait_honours_its_timeout():
    ev = interpool.Event()
    t0 = time.monotonic()
    assert ev.wait(0.2) is False
    assert time.monotonic() - t0 >= 0.19, "returned before its timeout"
    with pytest.raises(TypeError):
        ev.wait("1")


def test_event_signalled_across_interpreters(pool):
    ev, answer = interpool.Event(), interpool.Event()
    tids = interpool.Queue()
    future = pool.submit(tasks.wait_then_answer, ev, answer, tids)
    _probe.wait_until_asleep(tids.get(timeout=30), futex=True, what="the task blocked in ev.wait()")
    assert not answer.is_set(), "answered before the event was set"
    ev.set()
    assert answer.wait(30) is True
    assert result(future) is True


def test_an_event_set_by_a_worker_wakes_every_waiting_thread_here(pool):
    ev = interpool.Event()
    seen = []
    threads = run_threads(4, lambda: seen.append(ev.wait(30)))
    for th in threads:  # all four wait before the worker sets the event
        _probe.wait_until_asleep(_thread_tid(th), futex=True, what="a thread blocked in ev.wait()")
    answer = interpool.Event()
    future = pool.submit(tasks.wait_then_answer, answer, ev)  # sets ev after answer
    answer.set()
    join_all(threads)
    assert seen == [True] * 4
    assert result(future) is True


def test_event_wait_in_a_worker_times_out(pool):
    got, took = result(pool.submit(tasks.event_wait_timed, interpool.Event(), 0.2))
    assert got is False and took >= 0.19


# ================================================================ Semaphore


def test_semaphore_counts_units():
    sem = interpool.Semaphore(2)
    assert sem.acquire() and sem.acquire()
    assert sem.acquire(False) is False
    assert sem.acquire(timeout=0) is False
    sem.release(2)
    assert sem._value == 2
    with sem:
        assert sem._value == 1
    assert interpool.Semaphore()._value == 1
    assert repr(interpool.Semaphore(3)) == "<interpool.Semaphore value=3>"


def test_semaphore_arguments_are_checked_like_threading():
    with pytest.raises(ValueError):
        interpool.Semaphore(-1)
    with pytest.raises(TypeError):
        interpool.Semaphore(1.5)
    sem = interpool.Semaphore(1)
    with pytest.raises(ValueError):
        sem.release(0)
    with pytest.raises(ValueError):
        sem.acquire(False, 1)


def test_semaphore_acquire_honours_its_timeout():
    sem = interpool.Semaphore(0)
    t0 = time.monotonic()
    assert sem.acquire(timeout=0.2) is False
    assert time.monotonic() - t0 >= 0.19, "returned before its timeout"


def test_bounded_semaphore_refuses_to_exceed_its_initial_value():
    sem = interpool.BoundedSemaphore(2)
    assert sem.bounded
    with pytest.raises(ValueError, match="released too many times"):
        sem.release()
    sem.acquire()
    with pytest.raises(ValueError):
        sem.release(2)
    sem.release()
    assert sem._value == 2
    assert not interpool.Semaphore(2).bounded


def test_bounded_semaphore_stays_bounded_in_other_interpreters(pool):
    sem = interpool.BoundedSemaphore(1)
    assert result(pool.submit(tasks.identity, sem)).bounded


@pytest.mark.workers(3)  # "it does admit three at once" needs tasks that run at once
def test_a_semaphore_of_three_never_admits_more_than_three_holders(pool):
    """Four worker interpreters and two threads here take a Semaphore(3)
    repeatedly; how many hold it at once is counted under a Lock."""
    sem = interpool.Semaphore(3)
    lock = interpool.Lock()
    buf = interpool.SharedBuffer(16)  # int64 [holders now, most holders ever]
    rounds = 25
    futures = [pool.submit(tasks.semaphore_holders, sem, lock, buf, rounds) for _ in range(4)]
    threads = run_threads(2, tasks.semaphore_holders, sem, lock, buf, rounds)
    assert [result(f, 60) for f in futures] == [rounds] * 4
    join_all(threads)
    now, most = memoryview(buf).cast("q")
    assert now == 0
    assert most <= 3, "never more than three holders"
    assert most == 3, "and it does admit three at once"
    assert sem._value == 3


def test_a_worker_releasing_a_semaphore_wakes_the_main_thread(pool):
    sem = interpool.Semaphore(0)
    got = []
    t = threading.Thread(target=lambda: got.append(sem.acquire(timeout=30)))
    t.start()
    _probe.wait_until_asleep(_thread_tid(t), futex=True, what="the thread blocked in sem.acquire()")
    assert got == []
    pool.submit(sem.release).result(timeout=30)
    t.join(30)
    assert got == [True]


# ================================================================== Barrier


def test_barrier_attributes_and_arguments():
    b = interpool.Barrier(3)
    assert (b.parties, b.n_waiting, b.broken) == (3, 0, False)
    with pytest.raises(ValueError):
        interpool.Barrier(0)
    with pytest.raises(TypeError):
        interpool.Barrier("3")
    with pytest.raises(TypeError, match="callable"):
        interpool.Barrier(2, action=5)


def test_an_unsendable_barrier_action_raises_type_error_at_construction():
    lock = threading.Lock()
    with pytest.raises(TypeError, match="cannot send"):
        interpool.Barrier(2, action=lambda: lock)


def test_a_barrier_of_one_passes_at_once_and_runs_its_action():
    log = interpool.Queue()
    b = interpool.Barrier(1, action=functools.partial(tasks.put_marker, log, "tripped"))
    assert b.wait() == 0
    assert b.wait() == 0
    assert [log.get_nowait(), log.get_nowait()] == ["tripped", "tripped"]


@pytest.mark.workers(3)  # three tasks wait at the barrier at once
def test_a_barrier_across_tasks_passes_each_round_together(pool):
    """Three tasks and the main thread pass a Barrier(4) five times; each round
    hands out the indexes 0..3 once, and the action runs once per round."""
    rounds = 5
    log, trips = interpool.Queue(), interpool.Queue()
    b = interpool.Barrier(4, action=functools.partial(tasks.put_marker, trips, "tripped"))
    futures = [pool.submit(tasks.barrier_rounds, b, rounds, log) for _ in range(3)]
    tasks.barrier_rounds(b, rounds, log)
    assert [result(f) for f in futures] == [rounds] * 3
    entries = [log.get_nowait() for _ in range(4 * rounds)]
    for r in range(rounds):
        assert sorted(i for rr, i in entries if rr == r) == [0, 1, 2, 3], f"round {r}"
    assert trips.qsize() == rounds
    assert not b.broken


def test_a_barrier_wait_timeout_breaks_the_barrier():
    b = interpool.Barrier(2)
    t0 = time.monotonic()
    with pytest.raises(threading.BrokenBarrierError):
        b.wait(timeout=0.2)
    assert time.monotonic() - t0 >= 0.19, "returned before its timeout"
    assert b.broken
    with pytest.raises(threading.BrokenBarrierError):
        b.wait(timeout=1)
    b.reset()
    assert not b.broken


def test_a_barrier_default_timeout_applies():
    b = interpool.Barrier(2, timeout=0.1)
    with pytest.raises(threading.BrokenBarrierError):
        b.wait()


@pytest.mark.workers(3)  # two tasks wait at the barrier at once
def test_abort_wakes_tasks_waiting_at_a_barrier(pool):
    b = interpool.Barrier(3)
    futures = [pool.submit(tasks.barrier_wait_outcome, b) for _ in range(2)]
    _probe.wait_for(lambda: b.n_waiting == 2, "both tasks wait at the barrier")
    b.abort()
    assert [result(f) for f in futures] == [("broken", None)] * 2
    assert b.broken


def test_reset_breaks_the_current_round_and_the_barrier_is_reusable(pool):
    b = interpool.Barrier(2)
    future = pool.submit(tasks.barrier_wait_outcome, b)
    _probe.wait_for(lambda: b.n_waiting == 1, "the task waits at the barrier")
    b.reset()
    assert result(future) == ("broken", None)
    assert not b.broken
    future = pool.submit(tasks.barrier_wait_outcome, b)
    mine = b.wait(timeout=30)
    theirs = result(future)
    assert sorted([mine, theirs[1]]) == [0, 1]


def test_a_failing_action_raises_in_its_party_and_breaks_the_barrier_for_the_others(pool):
    b = interpool.Barrier(2, action=tasks.failing_action)
    future = pool.submit(tasks.barrier_wait_outcome, b)
    outcomes = [tasks.barrier_wait_outcome(b), result(future)]
    assert sorted(outcomes, key=str) == sorted([("ValueError", "the action failed"), ("broken", None)], key=str)
    assert b.broken


# ============================================================ identity, pickle

SYNC_TYPES = [
    interpool.Queue,
    interpool.Lock,
    interpool.RLock,
    interpool.Event,
    interpool.Semaphore,
    lambda: interpool.Barrier(2),
]


@pytest.mark.parametrize("make", SYNC_TYPES, ids=["Queue", "Lock", "RLock", "Event", "Semaphore", "Barrier"])
def test_wrappers_of_one_object_compare_equal_across_interpreters(pool, make):
    obj, other = make(), make()
    back = result(pool.submit(tasks.identity, obj))
    assert type(back) is type(obj)
    assert back is not obj
    assert back == obj and hash(back) == hash(obj)
    assert back != other
    assert {obj: 1}[back] == 1


@pytest.mark.parametrize("make", SYNC_TYPES, ids=["Queue", "Lock", "RLock", "Event", "Semaphore", "Barrier"])
def test_pickling_outside_interpool_is_refused(make):
    with pytest.raises(TypeError, match="cannot pickle"):
        pickle.dumps(make())


def test_handles_inside_pickled_objects_travel_too(pool):
    # A functools.partial is pickled; the Event inside it travels as a handle.
    ev = interpool.Event()
    pool.submit(functools.partial(ev.set)).result(timeout=30)
    assert ev.is_set()


def test_names_are_exported():
    for name in ("Queue", "Lock", "RLock", "Event", "Semaphore", "BoundedSemaphore", "Barrier", "QueueClosed"):
        assert name in interpool.__all__
        assert getattr(interpool, name)


# ==================================================================== Ctrl-C


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "setup, block",
    [
        ("lock = interpool.Lock(); lock.acquire()", "lock.acquire()"),
        ("lock = interpool.Lock(); lock.acquire()", "lock.acquire(timeout=60)"),
        ("lock = interpool.Lock(); lock.acquire(); pool = interpool.Pool(2)", "lock.acquire()"),
        ("r = interpool.RLock(); t = threading.Thread(target=r.acquire); t.start(); t.join()", "r.acquire()"),
        ("sem = interpool.Semaphore(0)", "sem.acquire()"),
        ("ev = interpool.Event()", "ev.wait()"),
        ("b = interpool.Barrier(2)", "b.wait()"),
    ],
    ids=["lock", "lock-timeout", "lock-with-pool", "rlock", "semaphore", "event", "barrier"],
)
def test_ctrl_c_interrupts_a_blocked_main_thread(setup, block):
    # How soon it reacts is a benchmark figure; here: it does, once blocked.
    outcome = tasks.interrupt_blocked(setup, block, child_env(), _probe.wait_until_asleep)
    assert outcome == "INTERRUPTED"
