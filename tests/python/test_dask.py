"""Dask on one machine: interpool executors as Dask's local scheduler pool."""

import sys
import traceback

import pytest

dask = pytest.importorskip("dask")
db = pytest.importorskip("dask.bag")

import _dask_tasks as tasks  # noqa: E402
import interpool  # noqa: E402

KINDS = ["Pool", "InterpreterPoolExecutor", "HybridPool"]

# dask.bag imports fsspec, which imports ctypes, and CPython 3.12's _ctypes
# refuses subinterpreters: there, bag tasks fail in interpreters, saying so.
BAG_LOADS = sys.version_info >= (3, 13)
CTYPES_REFUSED = r"module _ctypes does not support loading in subinterpreters"


def make(kind, workers):
    if kind == "Pool":
        return interpool.Pool(workers)
    if kind == "InterpreterPoolExecutor":
        return interpool.InterpreterPoolExecutor(max_workers=workers)
    return interpool.HybridPool(workers)


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


@pytest.fixture
def executor(kind):
    pool = make(kind, 2)
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


def isolated_if_hybrid(executor, fn):
    """HybridPool runs only isolated callables in interpreters."""
    return interpool.isolated(fn) if isinstance(executor, interpool.HybridPool) else fn


def check_bag(executor, run):
    if BAG_LOADS or isinstance(executor, interpool.HybridPool):  # HybridPool: on threads
        assert run() == BAG_RESULT
    else:
        with pytest.raises(ImportError, match=CTYPES_REFUSED):
            run()


def bag_job():
    return db.from_sequence(range(100), npartitions=8).map(tasks.inc).filter(tasks.is_even).sum()


def delayed_job():
    # A diamond with shared inputs: a graph, not a chain.
    d = dask.delayed
    a = d(tasks.inc)(1)
    b = d(tasks.square)(a)
    c = d(tasks.add)(a, 10)
    return d(tasks.total)([b, c, d(tasks.spin)(100)])


DELAYED_RESULT = 4 + 12 + sum(i * i for i in range(100))
BAG_RESULT = sum(x + 1 for x in range(100) if (x + 1) % 2 == 0)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("workers", [1, 3])
def test_max_workers_is_what_dask_reads(kind, workers):
    pool = make(kind, workers)
    try:
        assert pool._max_workers == workers
        assert pool.max_workers == workers
        with pytest.raises(AttributeError):
            pool.max_workers = 5  # a read-only property
    finally:
        pool.shutdown()


@pytest.mark.timeout(120)
def test_compute_with_the_executor_as_scheduler(executor):
    check_bag(executor, lambda: bag_job().compute(scheduler=executor))
    assert delayed_job().compute(scheduler=executor) == DELAYED_RESULT
    assert dask.compute(delayed_job(), delayed_job(), scheduler=executor) == (DELAYED_RESULT, DELAYED_RESULT)


@pytest.mark.timeout(120)
def test_config_scheduler(executor):
    with dask.config.set(scheduler=executor):
        check_bag(executor, lambda: bag_job().compute())
        assert delayed_job().compute() == DELAYED_RESULT


@pytest.mark.timeout(120)
@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_config_pool(executor, scheduler):
    # dask.threaded.get and dask.multiprocessing.get both take config's pool
    # and read its _max_workers.
    with dask.config.set(pool=executor, scheduler=scheduler):
        check_bag(executor, lambda: bag_job().compute())
        assert delayed_job().compute() == DELAYED_RESULT


@pytest.mark.timeout(120)
def test_tasks_run_in_interpreters(executor):
    probe = isolated_if_hybrid(executor, tasks.in_subinterpreter)
    jobs = [dask.delayed(probe)(i) for i in range(8)]
    if isinstance(executor, interpool.HybridPool):
        # Dask's local scheduler submits its own batch function, a plain
        # callable: HybridPool runs it on a thread, here.
        assert set(dask.compute(*jobs, scheduler=executor)) == {False}
    else:
        assert set(dask.compute(*jobs, scheduler=executor)) == {True}
        with dask.config.set(pool=executor, scheduler="threads"):
            assert set(dask.compute(*jobs)) == {True}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["compute", "config-scheduler", "config-pool-threads", "config-pool-processes"])
def test_errors_keep_their_type_and_traceback(executor, how):
    if BAG_LOADS or isinstance(executor, interpool.HybridPool):
        job = db.from_sequence([1, 2, 3], npartitions=3).map(tasks.fail)
    else:
        job = dask.delayed(tasks.total)([dask.delayed(tasks.fail)(i) for i in (1, 2, 3)])
    with pytest.raises(tasks.TaskFailed, match=r"^task got \d(\n|$)") as info:
        if how == "compute":
            job.compute(scheduler=executor)
        elif how == "config-scheduler":
            with dask.config.set(scheduler=executor):
                job.compute()
        else:
            with dask.config.set(pool=executor, scheduler=how.rpartition("-")[2]):
                job.compute()
    text = "".join(traceback.format_exception(info.value))
    assert 'in fail\n    raise TaskFailed(f"task got {x}")' in text, text
    assert "_dask_tasks.py" in text


@pytest.mark.timeout(120)
def test_delayed_error_and_the_pool_keeps_working(executor):
    bad = dask.delayed(tasks.fail)(dask.delayed(tasks.inc)(1))
    with pytest.raises(tasks.TaskFailed, match=r"^task got 2(\n|$)") as info:
        bad.compute(scheduler=executor)
    assert "in fail" in "".join(traceback.format_exception(info.value))
    assert delayed_job().compute(scheduler=executor) == DELAYED_RESULT
