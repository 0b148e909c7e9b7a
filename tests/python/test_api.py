"""The executor API: construction, submit, and the concurrent.futures/asyncio protocol of its futures."""

import asyncio
import concurrent.futures as cf
import os
import threading
import time

import pytest

import _probe
import _tasks
import interpool
from conftest import BEHAVIOUR, make

# Every executor kind (conftest.PoolKind) with 1 and 3 workers.
pytestmark = BEHAVIOUR

# ------------------------------------------------------------- construction


def test_default_workers_is_the_usable_cpu_count():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert interpool.default_workers() == expected
    assert interpool.default_workers() >= 1


@pytest.mark.timeout(30)
def test_pool_defaults_to_default_workers():
    with interpool.Pool() as pool:
        assert pool.workers == interpool.default_workers()
        assert pool.submit(_tasks.identity, 1).result(timeout=30) == 1


@pytest.mark.timeout(30)
def test_interpreter_pool_executor_defaults_like_the_stdlib():
    with interpool.InterpreterPoolExecutor() as pool:
        assert pool.workers == min(32, interpool.default_workers() + 4)
        assert pool.submit(_tasks.identity, 1).result(timeout=30) == 1


def test_workers_property_reports_the_count(pool, kind):
    assert pool.workers == kind.workers


@pytest.mark.parametrize(
    ("workers", "error", "message"),
    [
        (0, ValueError, "workers must be greater than 0, got 0"),
        (-1, ValueError, "workers must be greater than 0, got -1"),
        (1.5, TypeError, "workers must be an int or None, not float"),
        ("2", TypeError, "workers must be an int or None, not str"),
        (True, TypeError, "workers must be an int or None, not bool"),
    ],
)
def test_invalid_workers_are_rejected(workers, error, message):
    with pytest.raises(error, match=f"^{message}$"):
        interpool.Pool(workers)


@pytest.mark.parametrize(("workers", "error"), [(0, ValueError), (-1, ValueError), (1.5, TypeError), ("2", TypeError)])
def test_invalid_max_workers_are_rejected(workers, error):
    with pytest.raises(error):
        interpool.InterpreterPoolExecutor(max_workers=workers)


def test_both_classes_are_executors():
    assert issubclass(interpool.Pool, cf.Executor)
    assert issubclass(interpool.InterpreterPoolExecutor, interpool.Pool)


def test_repr_mentions_state_and_workers(pool_kind, kind):
    pool = make(pool_kind, kind.workers)  # the class itself (the kind's HybridPool marks calls isolated)
    n = kind.workers
    assert repr(pool) == f"<interpool.{pool_kind} running, workers={n}>"
    pool.shutdown()
    assert repr(pool) == f"<interpool.{pool_kind} shut down, workers={n}>"


# ------------------------------------------------------------------- submit


def test_submit_returns_a_concurrent_futures_future(pool):
    future = pool.submit(_tasks.identity, 1)
    assert isinstance(future, cf.Future)
    assert isinstance(future, interpool.Future)
    assert future.result(timeout=30) == 1


def test_submit_passes_positional_and_keyword_arguments(pool):
    result = pool.submit(_tasks.describe_call, 1, "two", three=3, four=[4]).result(timeout=30)
    assert result == ((1, "two"), {"three": 3, "four": [4]})


def test_submit_passes_keywords_named_like_its_own_parameters(pool):
    result = pool.submit(_tasks.describe_call, fn="f", args="a", kwargs="k").result(timeout=30)
    assert result == ((), {"fn": "f", "args": "a", "kwargs": "k"})


def test_submit_with_no_arguments(pool):
    assert pool.submit(os.getpid).result(timeout=30) == os.getpid()


@pytest.mark.timeout(30)
def test_results_match_their_futures(sized_pool):
    futures = {sized_pool.submit(_tasks.mul, i, 3): i for i in range(200)}
    for future, i in futures.items():
        assert future.result(timeout=30) == i * 3


@pytest.mark.timeout(30)
def test_result_timeout_raises_timeout_error(pool):
    gate = interpool.Event()
    future = pool.submit(_tasks.wait_for_gate, gate, "late")
    try:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            future.result(timeout=0.05)
        assert time.monotonic() - start >= 0.04, "gave up before its timeout"
        assert not future.done()
    finally:
        gate.set()
    assert future.result(timeout=30) == "late"


@pytest.mark.timeout(30)
def test_done_becomes_true_without_calling_result(pool):
    future = pool.submit(_tasks.sleep_then_return, 0.05, 1)
    _probe.wait_for(future.done, "the future became done without result() being called")
    assert future.result() == 1


@pytest.mark.timeout(30)
def test_running_is_true_while_the_task_runs(make_pool, tmp_path):
    pool = make_pool(1)
    started, release = tmp_path / "started", tmp_path / "release"
    future = pool.submit(_tasks.touch_and_wait, str(started), str(release))
    queued = pool.submit(_tasks.identity, "queued")
    _wait_for_file(started)
    assert future.running()
    assert not future.done()
    assert not queued.running()
    release.touch()
    assert future.result(timeout=30) == "released"
    assert not future.running()
    assert queued.result(timeout=30) == "queued"


def _wait_for_file(path):
    _probe.wait_for(path.exists, f"{path} appeared")


# ------------------------------------------------ concurrent.futures protocol


@pytest.mark.timeout(30)
def test_wait_all_completed(pool):
    futures = [pool.submit(_tasks.sleep_then_return, 0.01 * (i % 3), i) for i in range(20)]
    done, not_done = cf.wait(futures, timeout=30)
    assert done == set(futures)
    assert not not_done
    assert sorted(f.result() for f in done) == list(range(20))


@pytest.mark.timeout(30)
@pytest.mark.workers(3)  # the other task runs while the slow one holds a worker
@pytest.mark.parametrize(
    ("task", "return_when"),
    [
        pytest.param(_tasks.identity, cf.FIRST_COMPLETED, id="FIRST_COMPLETED"),
        pytest.param(_tasks.raise_value_error, cf.FIRST_EXCEPTION, id="FIRST_EXCEPTION"),
    ],
)
def test_wait_returns_the_task_that_ended_beside_a_slow_one(pool, task, return_when):
    gate = interpool.Event()  # "slow" ends when the test says so
    slow = pool.submit(_tasks.wait_for_gate, gate, "slow")
    other = pool.submit(task, "x")
    try:
        done, not_done = cf.wait([slow, other], timeout=30, return_when=return_when)
    finally:
        gate.set()
    assert done == {other}
    assert not_done == {slow}
    assert slow.result(timeout=30) == "slow"


@pytest.mark.timeout(30)
def test_as_completed_yields_every_future(pool):
    futures = [pool.submit(_tasks.sleep_then_return, 0.01 * ((7 * i) % 5), i) for i in range(25)]
    seen = [f.result() for f in cf.as_completed(futures, timeout=30)]
    assert sorted(seen) == list(range(25))


@pytest.mark.timeout(30)
def test_as_completed_timeout(pool):
    gate = interpool.Event()
    future = pool.submit(_tasks.wait_for_gate, gate, None)
    try:
        with pytest.raises(TimeoutError):
            for _ in cf.as_completed([future], timeout=0.05):
                pass
    finally:
        gate.set()
    assert future.result(timeout=30) is None


@pytest.mark.timeout(30)
def test_done_callback_runs_with_the_future(pool):
    called = threading.Event()
    seen = []

    def callback(f):
        seen.append((f, f.result()))
        called.set()

    future = pool.submit(_tasks.sleep_then_return, 0.05, "value")
    future.add_done_callback(callback)
    assert called.wait(60)
    assert seen == [(future, "value")]


@pytest.mark.timeout(30)
def test_done_callback_added_after_completion_runs_at_once(pool):
    future = pool.submit(_tasks.identity, 5)
    future.result(timeout=30)
    seen = []
    future.add_done_callback(seen.append)
    assert seen == [future]


@pytest.mark.timeout(30)
def test_done_callbacks_of_unobserved_futures_all_run(pool):
    called = []
    lock = threading.Lock()
    all_done = threading.Event()

    def callback(f):
        with lock:
            called.append(f.result())
            if len(called) == 100:
                all_done.set()

    for i in range(100):
        pool.submit(_tasks.identity, i).add_done_callback(callback)
    assert all_done.wait(20)
    assert sorted(called) == list(range(100))


@pytest.mark.timeout(30)
def test_asyncio_wrap_future(pool):
    async def main():
        a = asyncio.wrap_future(pool.submit(_tasks.sleep_then_return, 0.05, "a"))
        b = asyncio.wrap_future(pool.submit(_tasks.add, 1, 2))
        return await asyncio.gather(a, b)

    assert asyncio.run(main()) == ["a", 3]


@pytest.mark.timeout(30)
def test_asyncio_wrap_future_propagates_exceptions(pool):
    async def main():
        return await asyncio.wrap_future(pool.submit(_tasks.raise_custom, "async"))

    with pytest.raises(_tasks.CustomError, match="async"):
        asyncio.run(main())


@pytest.mark.timeout(30)
def test_run_in_executor(pool):
    async def main():
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, _tasks.mul, 6, 7)

    assert asyncio.run(main()) == 42


@pytest.mark.timeout(30)
def test_futures_from_different_pools_wait_together(make_pool):
    a, b = make_pool(1), make_pool(1)
    futures = [a.submit(_tasks.identity, "a"), b.submit(_tasks.identity, "b")]
    done, _ = cf.wait(futures, timeout=30)
    assert {f.result() for f in done} == {"a", "b"}
