"""interpool.joblib: the joblib backend "interpool".

Behaviour only: results, order, generators, batching, errors, aborting,
nesting and the pools it runs on.  Speed is measured by
``python -m interpool.bench --only joblib``.
"""

import sys
import threading

import pytest

import _probe

joblib = pytest.importorskip("joblib")

from joblib import Parallel, delayed  # noqa: E402

import _joblib_tasks as jt  # noqa: E402
import interpool  # noqa: E402
import interpool.joblib  # noqa: E402
from interpool import RemoteTraceback  # noqa: E402

PATIENCE = 60


@pytest.fixture
def config():
    with joblib.parallel_config(backend="interpool", n_jobs=2):
        yield


wait_until = _probe.wait_for


def test_ordered_results_in_worker_interpreters(config):
    assert Parallel()(delayed(jt.square)(i) for i in range(100)) == [i * i for i in range(100)]
    infos = Parallel(batch_size=1)(delayed(jt.where)(i) for i in range(20))
    assert [info["x"] for info in infos] == list(range(20))
    assert all(info["modules_id"] != id(sys.modules) for info in infos)


def test_generators(config):
    gen = Parallel(return_as="generator")(delayed(jt.square)(i) for i in range(50))
    assert not isinstance(gen, list)
    assert list(gen) == [i * i for i in range(50)]
    unordered = Parallel(return_as="generator_unordered")(delayed(jt.square)(i) for i in range(50))
    assert sorted(unordered) == [i * i for i in range(50)]


def test_auto_batching_groups_tiny_calls(config, monkeypatch):
    sizes = []
    submit = interpool.joblib.InterpoolBackend.submit

    def counting_submit(self, func, callback=None):
        sizes.append(len(func))
        return submit(self, func, callback)

    monkeypatch.setattr(interpool.joblib.InterpoolBackend, "submit", counting_submit)
    assert Parallel(batch_size="auto")(delayed(jt.square)(i) for i in range(3000)) == [i * i for i in range(3000)]
    assert sum(sizes) == 3000
    assert max(sizes) > 1 and len(sizes) < 3000  # batches grew past one call


def test_exception_keeps_type_message_and_remote_traceback(config):
    with pytest.raises(ValueError, match="bad item 7") as info:
        Parallel()(delayed(jt.fail_on)(i, 7) for i in range(20))
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "fail_on" in cause.tb and "_joblib_tasks.py" in cause.tb


def test_a_failure_interrupts_the_calls_still_running():
    started = interpool.Event()
    with interpool.Pool(2) as pool:
        with joblib.parallel_config(backend="interpool", pool=pool):
            with pytest.raises(RuntimeError, match="stop"):
                Parallel(batch_size=1)(
                    [delayed(jt.spin_until_interrupted)(started), delayed(jt.fail_after)(started, "stop")]
                )
        wait_until(lambda: pool.stats().interrupted == 1 and pool.stats().running == 0, "the spinner stopped")


def test_only_the_users_calls_reach_the_worker(config):
    # A batch arrives as [(fn, args, kwargs)]: the worker runs abs without
    # importing joblib (which it would, to unpickle joblib's batch object).
    with interpool.Pool(1) as pool:
        with joblib.parallel_config(backend="interpool", pool=pool):
            assert Parallel()(delayed(abs)(-i) for i in range(10)) == list(range(10))
        assert pool.submit(eval, "'joblib' in __import__('sys').modules", {}).result(PATIENCE) is False


@pytest.mark.parametrize("inner_backend", [None, "interpool", "loky"])
def test_nested_parallel_runs_sequentially(config, inner_backend):
    results = Parallel(batch_size=1)(delayed(jt.nested)(4, inner_backend) for _ in range(3))
    for inner, outer in results:
        assert inner == [outer] * 4  # every inner call ran on the task's own thread


def test_functions_without_an_importable_home_go_by_value(config):
    offset = 10
    assert Parallel()(delayed(lambda x: x + offset)(i) for i in range(5)) == [10, 11, 12, 13, 14]


def test_one_job_runs_sequentially_here():
    with joblib.parallel_config(backend="interpool", n_jobs=1):
        threads = Parallel()(delayed(threading.get_ident)() for _ in range(3))
    assert threads == [threading.get_ident()] * 3


def test_runs_on_the_pool_given():
    with interpool.Pool(2) as pool:
        with joblib.parallel_config(backend="interpool", pool=pool):
            assert Parallel(batch_size=1)(delayed(jt.square)(i) for i in range(8)) == [i * i for i in range(8)]
        wait_until(lambda: pool.stats().done == 8, "the pool ran the eight batches")
    with pytest.raises(TypeError, match="interpool.Pool"):
        with joblib.parallel_config(backend="interpool", pool="not a pool"):
            Parallel()(delayed(abs)(1) for _ in range(2))


def test_a_pool_that_cannot_take_work_fails_the_call():
    pool = interpool.Pool(2)
    pool.shutdown()
    with joblib.parallel_config(backend="interpool", pool=pool):
        with pytest.raises(RuntimeError, match="shutdown"):
            Parallel()(delayed(abs)(-i) for i in range(10))


def test_default_n_jobs_uses_every_cpu():
    with joblib.parallel_config(backend="interpool"):
        assert joblib.effective_n_jobs() == interpool.default_workers()
        assert Parallel()(delayed(abs)(-i) for i in range(10)) == list(range(10))


def test_negative_n_jobs_counts_from_the_cpus():
    backend = interpool.joblib.InterpoolBackend()
    assert backend.effective_n_jobs(-1) == interpool.default_workers()
    with pytest.raises(ValueError):
        backend.effective_n_jobs(0)


def test_readme_example(tmp_path):
    from test_readme_examples import run_example

    assert run_example(tmp_path, "### joblib") == [str([i * i for i in range(10)]), "[0, 1, 4, 9, 16]"]
