"""initializer/initargs run in each worker; a failing one breaks the pool; max_tasks_per_worker recycles."""

import concurrent.futures as cf
import threading

import pytest

import _tasks
import interpool
from conftest import BEHAVIOUR

# Every executor kind (conftest.PoolKind) with 1 and 3 workers.
pytestmark = BEHAVIOUR

# -------------------------------------------------------------- initializer


@pytest.mark.timeout(30)
def test_initializer_globals_are_seen_by_later_tasks_in_every_worker(make_pool):
    pool = make_pool(2, initializer=_tasks.set_global, initargs=("configured",))
    results = [pool.submit(_tasks.sleep_then_return, 0.01, None) for _ in range(4)]
    values = [pool.submit(_tasks.get_global).result(timeout=30) for _ in range(20)]
    cf.wait(results)
    assert values == ["configured"] * 20
    assert list(pool.map(_tasks.get_global, range(50), chunksize=1)) == ["configured"] * 50


@pytest.mark.timeout(30)
def test_initializer_receives_all_initargs(make_pool):
    pool = make_pool(1, initializer=_tasks.set_global, initargs=["a", 2, (3,)])
    assert pool.submit(_tasks.get_global).result(timeout=30) == ("a", 2, (3,))


@pytest.mark.timeout(30)
def test_initializer_runs_once_per_worker_inside_the_worker(make_pool):
    pool = make_pool(2, initializer=_tasks.set_global, initargs=("x",))
    counts = list(pool.map(_tasks.init_calls, range(40), chunksize=1))
    assert set(counts) == {1}
    # It ran in the workers, not here.
    assert _tasks.get_global() is None
    assert _tasks.init_calls() == 0


@pytest.mark.timeout(30)
def test_initializer_can_be_a_partial_or_builtin(make_pool):
    import functools

    pool = make_pool(1, initializer=functools.partial(_tasks.set_global, "partial"))
    assert pool.submit(_tasks.get_global).result(timeout=30) == "partial"
    pool2 = make_pool(1, initializer=print, initargs=("",))
    assert pool2.submit(_tasks.identity, 1).result(timeout=30) == 1


@pytest.mark.timeout(30)
def test_failing_initializer_breaks_pool_and_fails_pending_futures(make_pool, tmp_path):
    gate = tmp_path / "fail-now"
    pool = make_pool(1, initializer=_tasks.touch_and_wait_then_fail, initargs=(str(tmp_path / "started"), str(gate)))
    futures = [pool.submit(_tasks.identity, i) for i in range(5)]
    gate.touch()
    for future in futures:
        with pytest.raises(interpool.BrokenPool) as info:
            future.result(timeout=30)
        exc = info.value
        assert isinstance(exc, cf.BrokenExecutor)
        assert type(exc.__cause__) is _tasks.InitError
        assert str(exc.__cause__) == "initializer failed on purpose"
        assert "initializer failed" in str(exc)


@pytest.mark.timeout(30)
def test_submit_to_broken_pool_raises_broken_pool(make_pool):
    pool = make_pool(1, initializer=_tasks.failing_initializer)
    future = None
    try:
        future = pool.submit(_tasks.identity, 1)
    except interpool.BrokenPool:
        pass
    if future is not None:
        with pytest.raises(interpool.BrokenPool):
            future.result(timeout=30)
    with pytest.raises(interpool.BrokenPool, match="initializer failed"):
        pool.submit(_tasks.identity, 2)
    with pytest.raises(interpool.BrokenPool):
        list(pool.map(_tasks.identity, [1, 2]))
    assert "broken" in repr(pool)


def test_broken_pool_is_catchable_as_stdlib_broken_executor():
    assert issubclass(interpool.BrokenPool, cf.BrokenExecutor)
    assert issubclass(interpool.BrokenPool, cf.thread.BrokenThreadPool)


@pytest.mark.timeout(30)
def test_broken_pool_shuts_down_cleanly(make_pool):
    pool = make_pool(2, initializer=_tasks.failing_initializer)
    with pytest.raises(interpool.BrokenPool):
        pool.submit(_tasks.identity, 1).result(timeout=30)
    pool.shutdown(wait=True)
    with pytest.raises((RuntimeError, interpool.BrokenPool)):
        pool.submit(_tasks.identity, 1)


@pytest.mark.parametrize("initializer", [42, "not callable", [print]])
def test_non_callable_initializer_raises_type_error_at_construction(pool_kind, initializer):
    from conftest import make

    with pytest.raises(TypeError, match="initializer must be a callable"):
        make(pool_kind, 1, initializer=initializer)


def test_unsendable_initializer_raises_type_error_at_construction(pool_kind):
    from conftest import make

    # Closes over a lock: it cannot be sent, even by value.
    lock = threading.Lock()
    with pytest.raises(TypeError, match="cannot send callable <function .*<lambda>"):
        make(pool_kind, 1, initializer=lambda: lock)


def test_unsendable_initargs_raise_type_error_at_construction(pool_kind):
    from conftest import make

    with pytest.raises(TypeError, match="cannot send object <unlocked _thread.lock"):
        make(pool_kind, 1, initializer=_tasks.set_global, initargs=(threading.Lock(),))


def test_non_iterable_initargs_raise_type_error(pool_kind):
    from conftest import make

    with pytest.raises(TypeError):
        make(pool_kind, 1, initializer=_tasks.set_global, initargs=5)


# ----------------------------------------------------- max_tasks_per_worker
# (a Pool option; InterpreterPoolExecutor keeps the stdlib signature)


@pytest.fixture
def make_plain_pool():
    pools = []

    def factory(workers, **kwargs):
        pools.append(interpool.Pool(workers, **kwargs))
        return pools[-1]

    yield factory
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.timeout(30)
def test_worker_interpreter_is_replaced_after_max_tasks(make_plain_pool):
    pool = make_plain_pool(1, max_tasks_per_worker=3)
    values = [pool.submit(_tasks.bump).result(timeout=30) for _ in range(10)]
    assert values == [1, 2, 3, 1, 2, 3, 1, 2, 3, 1]


@pytest.mark.timeout(30)
def test_recycling_with_queued_tasks(make_plain_pool):
    pool = make_plain_pool(1, max_tasks_per_worker=3)
    futures = [pool.submit(_tasks.bump) for _ in range(9)]
    assert [f.result(timeout=30) for f in futures] == [1, 2, 3] * 3


@pytest.mark.timeout(30)
def test_initializer_reruns_in_each_new_interpreter(make_plain_pool):
    pool = make_plain_pool(1, initializer=_tasks.set_global, initargs=("init",), max_tasks_per_worker=2)
    values = [pool.submit(_tasks.bump_with_global).result(timeout=30) for _ in range(6)]
    assert values == [(1, "init"), (2, "init")] * 3
    assert [pool.submit(_tasks.init_calls).result(timeout=30) for _ in range(4)] == [1, 1, 1, 1]


@pytest.mark.timeout(30)
def test_map_chunk_items_count_towards_max_tasks(make_plain_pool):
    pool = make_plain_pool(1, max_tasks_per_worker=3)
    assert list(pool.map(_tasks.bump, range(9), chunksize=3)) == [1, 2, 3] * 3


@pytest.mark.timeout(30)
def test_without_max_tasks_the_interpreter_is_kept(make_plain_pool):
    pool = make_plain_pool(1)
    assert [pool.submit(_tasks.bump).result(timeout=30) for _ in range(10)] == list(range(1, 11))


@pytest.mark.timeout(30)
def test_recycling_with_two_workers_keeps_every_count_within_the_limit(make_plain_pool):
    pool = make_plain_pool(2, max_tasks_per_worker=4)
    values = [f.result(timeout=30) for f in [pool.submit(_tasks.bump) for _ in range(40)]]
    assert max(values) <= 4
    assert len(values) == 40


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (-1, ValueError), (1.5, TypeError), ("3", TypeError)])
def test_invalid_max_tasks_per_worker_is_rejected(value, error):
    with pytest.raises(error, match="max_tasks_per_worker must be"):
        interpool.Pool(1, max_tasks_per_worker=value)
