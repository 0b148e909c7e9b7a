"""shutdown(), the context manager, and cancelling futures."""

import concurrent.futures as cf

import pytest

import _probe
import _tasks
import interpool
from conftest import BEHAVIOUR

# Every executor kind (conftest.PoolKind) with 1 and 3 workers.
pytestmark = BEHAVIOUR


def wait_for_file(path):
    _probe.wait_for(path.exists, f"{path} appeared")


@pytest.fixture
def busy_pool(make_pool, tmp_path):
    """A 1-worker pool whose worker is held by a task until ``release`` is created."""
    pool = make_pool(1)
    started, release = tmp_path / "started", tmp_path / "release"
    blocker = pool.submit(_tasks.touch_and_wait, str(started), str(release))
    wait_for_file(started)
    yield pool, blocker, release
    release.touch()


@pytest.mark.timeout(30)
def test_shutdown_wait_waits_for_running_and_queued_tasks(pool):
    futures = [pool.submit(_tasks.sleep_then_return, 0.2, i) for i in range(4)]
    pool.shutdown(wait=True)
    assert all(f.done() for f in futures)
    assert [f.result(timeout=0) for f in futures] == [0, 1, 2, 3]


@pytest.mark.timeout(30)
def test_shutdown_without_wait_returns_at_once_and_work_completes(pool):
    gate = interpool.Event()  # the task cannot end before the test opens it
    future = pool.submit(_tasks.wait_for_gate, gate, "done later")
    try:
        pool.shutdown(wait=False)
        assert not future.done(), "shutdown(wait=False) waited for the task"
    finally:
        gate.set()
    assert future.result(timeout=30) == "done later"


@pytest.mark.timeout(30)
def test_submit_after_shutdown_raises_runtime_error(pool):
    pool.shutdown()
    with pytest.raises(RuntimeError, match="^cannot schedule new futures after shutdown$"):
        pool.submit(_tasks.identity, 1)


@pytest.mark.timeout(30)
def test_map_after_shutdown_raises_runtime_error(pool):
    pool.shutdown()
    with pytest.raises(RuntimeError, match="^cannot schedule new futures after shutdown$"):
        list(pool.map(_tasks.identity, [1, 2]))


@pytest.mark.timeout(30)
def test_shutdown_twice_is_harmless(pool):
    assert pool.submit(_tasks.identity, 1).result(timeout=30) == 1
    pool.shutdown()
    pool.shutdown()
    pool.shutdown(wait=False, cancel_futures=True)


@pytest.mark.timeout(30)
def test_shutdown_cancel_futures_cancels_queued_tasks(busy_pool, tmp_path):
    pool, blocker, release = busy_pool
    queued = [pool.submit(_tasks.touch, str(tmp_path / f"queued-{i}")) for i in range(5)]
    pool.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in queued)
    assert all(f.done() for f in queued)
    with pytest.raises(cf.CancelledError):
        queued[0].result(timeout=0)
    release.touch()
    pool.shutdown(wait=True)
    assert blocker.result(timeout=0) == "released"
    assert not any((tmp_path / f"queued-{i}").exists() for i in range(5))


@pytest.mark.timeout(30)
def test_cancelled_futures_wake_waiters(busy_pool):
    pool, _, _ = busy_pool
    queued = [pool.submit(_tasks.identity, i) for i in range(3)]
    pool.shutdown(wait=False, cancel_futures=True)
    done, not_done = cf.wait(queued, timeout=30)
    assert done == set(queued) and not not_done


@pytest.mark.timeout(30)
def test_context_manager_returns_the_pool_and_shuts_down(make_pool):
    pool = make_pool(2)
    with pool as entered:
        assert entered is pool
        future = pool.submit(_tasks.sleep_then_return, 0.2, "ok")
    assert future.done()
    assert future.result(timeout=0) == "ok"
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        pool.submit(_tasks.identity, 1)
    assert "shut down" in repr(pool)


@pytest.mark.timeout(30)
def test_context_manager_on_exception_still_runs_queued_work(make_pool):
    pool = make_pool(1)
    with pytest.raises(ZeroDivisionError):
        with pool:
            futures = [pool.submit(_tasks.sleep_then_return, 0.02, i) for i in range(5)]
            1 / 0
    assert [f.result(timeout=0) for f in futures] == list(range(5))


@pytest.mark.timeout(30)
def test_cancel_of_queued_task_returns_true_and_it_never_runs(busy_pool, tmp_path):
    pool, _, release = busy_pool
    marker = tmp_path / "should-not-exist"
    future = pool.submit(_tasks.touch, str(marker))
    after = pool.submit(_tasks.identity, "after")
    assert future.cancel() is True
    assert future.cancelled()
    assert future.done()
    assert not future.running()
    with pytest.raises(cf.CancelledError):
        future.result(timeout=0)
    release.touch()
    assert after.result(timeout=30) == "after"
    pool.shutdown(wait=True)
    assert not marker.exists()


@pytest.mark.timeout(30)
def test_cancel_twice_returns_true_both_times(busy_pool):
    pool, _, _ = busy_pool
    future = pool.submit(_tasks.identity, 1)
    assert future.cancel() is True
    assert future.cancel() is True


@pytest.mark.timeout(30)
def test_cancel_of_running_task_returns_false(busy_pool):
    pool, blocker, release = busy_pool
    assert blocker.running()
    assert blocker.cancel() is False
    assert not blocker.cancelled()
    release.touch()
    assert blocker.result(timeout=30) == "released"


@pytest.mark.timeout(30)
def test_cancel_of_finished_task_returns_false(pool):
    future = pool.submit(_tasks.identity, 1)
    assert future.result(timeout=30) == 1
    assert future.cancel() is False
    assert not future.cancelled()


@pytest.mark.timeout(30)
def test_cancelled_future_runs_done_callbacks(busy_pool):
    pool, _, _ = busy_pool
    future = pool.submit(_tasks.identity, 1)
    seen = []
    future.add_done_callback(seen.append)
    assert future.cancel()
    assert seen == [future]


@pytest.mark.timeout(30)
@pytest.mark.workers(1)  # it makes its own one-worker pool, held by nothing but the test
def test_garbage_collected_pool_finishes_its_queued_work(pool_kind, kind):
    import gc

    from conftest import make

    pool = make(pool_kind, 1)
    futures = [pool.submit(kind.fn(_tasks.sleep_then_return), 0.01, i) for i in range(5)]
    del pool
    gc.collect()
    assert [f.result(timeout=30) for f in futures] == list(range(5))
