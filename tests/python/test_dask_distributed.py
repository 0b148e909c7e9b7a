"""dask.distributed: interpool.dask runs a worker's tasks in interpreters.

Real clusters: a LocalCluster of worker processes, and `dask scheduler` plus
`dask worker` started as separate processes over TCP on 127.0.0.1.  Waits are
distributed's own (Client connecting, wait_for_workers, results); timeouts
are hang guards only.
"""

import os
import shutil
import subprocess
import sys
import traceback

import pytest

dask = pytest.importorskip("dask")
db = pytest.importorskip("dask.bag")
distributed = pytest.importorskip("distributed")

import _dask_tasks as tasks  # noqa: E402
import interpool  # noqa: E402
import interpool.dask  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
GUARD = 240  # seconds: a hang guard on a loaded 2-core machine, never an expectation

# dask.bag imports fsspec, which imports ctypes, and CPython 3.12's _ctypes
# refuses subinterpreters: there, bag tasks fail with interpool's clear error.
BAG_LOADS = sys.version_info >= (3, 13)


def worker_env(**extra):
    """Environment for worker processes: they import _dask_tasks like we do."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([HERE, *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def cluster():
    """One worker process with 2 threads, on a LocalCluster of processes."""
    # Sample the running tasks every millisecond, not every 10: the profiler
    # must stay on and harmless while interpreters run.
    with dask.config.set({"distributed.worker.profile.interval": "1ms"}):
        cluster = distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        )
    try:
        yield cluster
    finally:
        cluster.close(timeout=GUARD)


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster, timeout=GUARD) as client:
        client.wait_for_workers(1, timeout=GUARD)
        yield client
        if "interpool" in client.run_on_scheduler(tasks.worker_plugins_of):
            client.unregister_worker_plugin("interpool")


def only(values):
    (value,) = set(values)
    return value


def check_runs_in_interpreters(client):
    assert client.submit(tasks.in_subinterpreter, pure=False).result(timeout=GUARD) is True
    assert client.submit(tasks.distributed_imported, pure=False).result(timeout=GUARD) is False
    bag = db.from_sequence(range(100), npartitions=8).map(tasks.inc).filter(tasks.is_even)
    if BAG_LOADS:
        assert bag.sum().compute(timeout=GUARD) == sum(x + 1 for x in range(100) if (x + 1) % 2 == 0)
        assert only(db.from_sequence(range(8), npartitions=4).map(tasks.in_subinterpreter).compute()) is True
    else:
        with pytest.raises(ImportError, match=r"which cannot run in a worker interpreter: module _ctypes") as info:
            bag.sum().compute(timeout=GUARD)
        assert "interpool.HybridPool" in str(info.value)
    d = dask.delayed
    a = d(tasks.inc)(1)
    graph = d(tasks.total)([d(tasks.square)(a), d(tasks.add)(a, 10), {"k": d(tasks.inc)(a)}["k"]])
    assert graph.compute() == 4 + 12 + 3
    futures = client.map(tasks.square, range(20))
    assert client.gather(futures) == [x * x for x in range(20)]
    assert all(f.status == "finished" for f in futures)
    with pytest.raises(tasks.TaskFailed, match=r"^task got 3"):
        client.submit(tasks.fail, 3).result(timeout=GUARD)


@pytest.mark.timeout(GUARD * 2)
def test_plugin_as_default_executor(client):
    client.register_plugin(interpool.dask.InterpreterPlugin())
    info = client.run(tasks.executor_of)
    assert list(info.values()) == [("InterpreterExecutor", 2)]  # the worker's --nthreads
    check_runs_in_interpreters(client)


@pytest.mark.timeout(GUARD * 2)
def test_plugin_as_named_executor(client):
    client.register_plugin(interpool.dask.InterpreterPlugin("named"))
    assert only(client.run(tasks.executor_of).values())[0] == "ThreadPoolExecutor"
    assert only(client.run(tasks.executor_of, name="interpool").values()) == ("InterpreterExecutor", 2)
    probe = dask.delayed(tasks.in_subinterpreter)
    assert only(dask.compute(*[probe(i) for i in range(4)])) is False
    with dask.annotate(executor="interpool"):
        assert only(dask.compute(*[probe(i) for i in range(4, 8)])) is True
    with dask.annotate(executor="interpool"):
        future = client.submit(tasks.in_subinterpreter, pure=False)
    assert future.result(timeout=GUARD) is True
    assert client.submit(tasks.in_subinterpreter, pure=False).result(timeout=GUARD) is False


@pytest.mark.timeout(GUARD * 2)
def test_removing_the_plugin_puts_the_threads_back(client):
    client.register_plugin(interpool.dask.InterpreterPlugin())
    assert client.submit(tasks.in_subinterpreter, pure=False).result(timeout=GUARD) is True
    client.unregister_worker_plugin("interpool")
    assert only(client.run(tasks.executors_of).values()) == ("actor", "default", "offload")
    assert client.submit(tasks.in_subinterpreter, pure=False).result(timeout=GUARD) is False


@pytest.mark.timeout(GUARD * 2)
def test_task_errors_come_back_with_type_and_worker_traceback(client):
    client.register_plugin(interpool.dask.InterpreterPlugin())
    future = client.submit(tasks.fail, 7)
    with pytest.raises(tasks.TaskFailed, match=r"^task got 7") as info:
        future.result(timeout=GUARD)
    assert future.status == "error"
    text = "".join(traceback.format_exception(info.value))
    assert 'in fail\n    raise TaskFailed(f"task got {x}")' in text, text
    assert "Traceback in the worker interpreter" in text
    # A failed task leaves the worker as it was.
    assert client.submit(tasks.inc, 7).result(timeout=GUARD) == 8
    with pytest.raises(tasks.TaskFailed):
        dask.delayed(tasks.total)([dask.delayed(tasks.fail)(i) for i in (1, 2)]).compute()


def psutil_refuses_subinterpreters():
    pytest.importorskip("psutil")
    with interpool.Pool(1) as pool:
        try:
            pool.submit(tasks.uses_psutil).result(timeout=GUARD)
        except ImportError:
            return
    pytest.skip("this psutil loads in subinterpreters: no function to refuse")


@pytest.mark.timeout(GUARD * 2)
def test_a_function_that_cannot_load_fails_with_a_clear_error(client):
    psutil_refuses_subinterpreters()
    client.register_plugin(interpool.dask.InterpreterPlugin())
    with pytest.raises(ImportError) as info:
        client.submit(tasks.uses_psutil, pure=False).result(timeout=GUARD)
    message = str(info.value)
    assert "_dask_tasks.uses_psutil, which cannot run in a worker interpreter" in message
    assert "does not support loading in subinterpreters" in message
    assert "interpool.HybridPool" in message and "fallback='threads'" in message
    assert client.submit(tasks.inc, 1).result(timeout=GUARD) == 2


@pytest.mark.timeout(GUARD * 2)
def test_fallback_threads_runs_such_functions_on_threads(client):
    psutil_refuses_subinterpreters()
    client.register_plugin(interpool.dask.InterpreterPlugin(fallback="threads"))
    for _ in range(2):  # the second call goes to a thread at once
        assert client.submit(tasks.uses_psutil, pure=False).result(timeout=GUARD) is True
    assert client.submit(tasks.in_subinterpreter, pure=False).result(timeout=GUARD) is True


@pytest.mark.timeout(GUARD * 2)
def test_the_profiler_samples_running_tasks(client):
    client.register_plugin(interpool.dask.InterpreterPlugin())
    # CPU-bound tasks in interpreters while the worker's profiler walks the
    # process's threads every millisecond.
    assert client.gather(client.map(tasks.spin, [300_000 + i for i in range(8)]), errors="raise") == [
        tasks.spin(300_000 + i) for i in range(8)
    ]
    assert only(client.run(tasks.profile_count).values()) > 0
    assert only(client.run(tasks.in_subinterpreter).values()) is False  # the worker lives


@pytest.fixture
def executors():
    """Factory ``executors(workers, **options)`` of InterpreterExecutors, shut down after the test."""
    made = []

    def make(workers, **options):
        made.append(interpool.dask.InterpreterExecutor(workers, **options))
        return made[-1]

    yield make
    for executor in made:
        executor.shutdown()


@pytest.fixture
def spec():
    """dask's task spec (dask._task_spec), which older dask releases lack."""
    return pytest.importorskip("dask._task_spec")


@pytest.mark.timeout(GUARD * 2)
def test_worker_executor_argument(executors):
    # Worker(executor=...): here through LocalCluster's worker keywords, in
    # this process (an executor does not travel to another one).
    executor = executors(2)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, executor=executor, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster, timeout=GUARD) as client,
    ):
        check_runs_in_interpreters(client)
        with pytest.raises(tasks.TaskFailed):
            client.submit(tasks.fail, 1).result(timeout=GUARD)
        assert executor.pool.stats().done > 0


def test_options_are_checked(executors):
    with pytest.raises(ValueError, match="fallback must be 'error' or 'threads', not 'thread'"):
        interpool.dask.InterpreterExecutor(1, fallback="thread")
    with pytest.raises(ValueError, match="executor must be 'default' or 'named', not 'interpool'"):
        interpool.dask.InterpreterPlugin("interpool")
    with pytest.raises(ValueError, match="workers must be greater than 0"):
        interpool.dask.InterpreterPlugin(workers=0)
    executor = executors(3)
    assert executor.max_workers == executor._max_workers == 3
    assert "ThreadPoolExecutor" not in str(type(executor))  # distributed's thread path is not for it
    assert executor.submit(tasks.thread_name).result(timeout=GUARD).startswith("interpool-dask-")


def run_task(executor, task, data):
    """What a Worker does with its executor: distributed's runner, through submit()."""
    from distributed.worker import _run_task_simple

    return executor.submit(_run_task_simple, task, data, 0.0).result(timeout=GUARD)


@pytest.mark.timeout(GUARD)
def test_a_task_is_taken_apart_into_its_calls(spec, executors):
    executor = executors(2)
    data = {"a": 3, "b": 4}
    nested = spec.Task(
        "k",
        tasks.total,
        spec.List(spec.Task(None, tasks.square, spec.TaskRef("a")), spec.TaskRef("b"), spec.DataNode(None, 5)),
    )
    msg = run_task(executor, nested, data)
    assert (msg["op"], msg["result"]) == ("task-finished", 9 + 4 + 5)
    where = spec.Task(
        "w", tasks.where_and_items, spec.Dict({"x": spec.TaskRef("a"), "y": spec.Task(None, tasks.inc, 1)})
    )
    assert run_task(executor, where, data)["result"] == (True, [("x", 3), ("y", 2)])
    flat = spec.Task("f", tasks.add, spec.TaskRef("a"), y=spec.TaskRef("b"))
    assert run_task(executor, flat, data)["result"] == 7
    assert run_task(executor, spec.Alias("x", "b"), data)["result"] == 4  # no call: nothing to send
    failed = run_task(executor, spec.Task("e", tasks.fail, spec.TaskRef("a")), data)
    assert failed["op"] == "task-erred"
    assert type(failed["actual_exception"]) is tasks.TaskFailed
    assert "in fail" in "".join(traceback.format_exception(failed["actual_exception"]))
    assert executor.pool.stats().done == 3 and executor.pool.stats().failed == 1  # the alias never went


def script_function(module):
    """A function as distributed rebuilds the client's script functions in a worker: by value, with
    ``__module__`` ``module`` and globals of its own."""
    namespace = {"__name__": module, "SCALE": 3}
    exec("def scaled(x, items):\n    return (x + len(items)) * SCALE\n", namespace)
    return namespace["scaled"]


@pytest.mark.timeout(GUARD)
def test_functions_of_the_clients_script_run_without_cloudpickle_in_the_interpreter(spec, executors):
    executor = executors(1)
    fn = script_function("__main__")
    data = {"x": 2, "items": list(range(10))}
    for _ in range(3):  # the codec sends it by value, and again from its cache
        msg = run_task(executor, spec.Task("m", fn, spec.TaskRef("x"), spec.TaskRef("items")), data)
        assert (msg["op"], msg["result"]) == ("task-finished", (2 + 10) * 3)
    nested = spec.Task("n", tasks.inc, spec.Task(None, fn, spec.TaskRef("x"), spec.TaskRef("items")))
    assert run_task(executor, nested, data)["result"] == (2 + 10) * 3 + 1
    # Rebuilt by the codec's light loader: the interpreter never imported cloudpickle.
    probe = run_task(executor, spec.Task("p", tasks.module_loaded, "cloudpickle"), {})
    assert (probe["op"], probe["result"]) == ("task-finished", False)
    assert executor.pool.stats().done == 5


@pytest.mark.timeout(GUARD)
def test_functions_of_the_worker_processs_mp_main_are_sent_whole(spec, executors):
    # A spawned worker process knows the client's script as __mp_main__, a
    # name no interpreter can import: such a task goes as one cloudpickle.
    executor = executors(1)
    fn = script_function("__mp_main__")
    data = {"x": 1, "items": [0] * 4}
    msg = run_task(executor, spec.Task("s", fn, spec.TaskRef("x"), spec.TaskRef("items")), data)
    assert (msg["op"], msg["result"]) == ("task-finished", (1 + 4) * 3)
    nested = spec.Task("t", tasks.total, spec.List(spec.Task(None, fn, spec.TaskRef("x"), spec.TaskRef("items")), 5))
    assert run_task(executor, nested, data)["result"] == (1 + 4) * 3 + 5


@pytest.mark.timeout(GUARD)
def test_shutdown_without_waiting_still_finishes_the_work(spec):
    from distributed.worker import _run_task_simple

    executor = interpool.dask.InterpreterExecutor(1)
    futures = [executor.submit(_run_task_simple, spec.Task(i, tasks.spin, 20_000 + i), {}, 0.0) for i in range(4)]
    executor.shutdown(wait=False)
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(tasks.inc, 1)
    assert [f.result(timeout=GUARD)["result"] for f in futures] == [tasks.spin(20_000 + i) for i in range(4)]


# ------------------------------------------------ `dask scheduler` + `dask worker`


def dask_cli():
    exe = os.path.join(os.path.dirname(sys.executable), "dask")
    if not os.path.exists(exe):
        exe = shutil.which("dask")
    if exe is None:
        pytest.skip("the dask command is not installed")
    return exe


@pytest.fixture
def processes():
    started = []
    yield started
    for proc in started:
        proc.kill()
    for proc in started:
        proc.wait(timeout=GUARD)


@pytest.mark.timeout(GUARD * 3)
@pytest.mark.parametrize(
    "preload_args",
    [[], ["--interpool-executor", "named", "--interpool-fallback", "threads", "--interpool-workers", "2"]],
    ids=["default", "named"],
)
def test_dask_scheduler_and_worker_processes(tmp_path, processes, preload_args):
    exe = dask_cli()
    scheduler_file = tmp_path / "scheduler.json"
    env = worker_env(DASK_DISTRIBUTED__WORKER__PROFILE__INTERVAL="1ms")
    log = open(tmp_path / "cluster.log", "w")
    processes.append(
        subprocess.Popen(
            [
                exe,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    )
    try:
        # Client waits for the scheduler file and the connection; then for the worker.
        with distributed.Client(scheduler_file=str(scheduler_file), timeout=GUARD) as client:
            # The address comes first, as users type it (the preload's options follow).
            address = client.scheduler.address
            assert address.startswith("tcp://127.0.0.1:")
            processes.append(
                subprocess.Popen(
                    [
                        exe,
                        "worker",
                        address,
                        "--nthreads",
                        "3",
                        "--host",
                        "127.0.0.1",
                        "--no-dashboard",
                        "--preload",
                        "interpool.dask",
                        *preload_args,
                    ],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=tmp_path,
                )
            )
            client.wait_for_workers(1, timeout=GUARD)
            (worker,) = client.scheduler_info()["workers"].values()
            assert worker["host"] == "127.0.0.1"
            if preload_args:
                assert only(client.run(tasks.executor_of).values())[0] == "ThreadPoolExecutor"
                assert only(client.run(tasks.executor_details).values()) == (2, "threads", 2)
                with dask.annotate(executor="interpool"):
                    future = client.submit(tasks.in_subinterpreter, pure=False)
                    spins = client.map(tasks.spin, range(30))
                assert future.result(timeout=GUARD) is True
                assert client.submit(tasks.in_subinterpreter, pure=False).result(timeout=GUARD) is False
                assert client.gather(spins) == [tasks.spin(i) for i in range(30)]
            else:
                assert only(client.run(tasks.executor_of).values()) == ("InterpreterExecutor", 3)  # --nthreads
                assert only(client.run(tasks.executor_details).values()) == (3, "error", 3)
                check_runs_in_interpreters(client)
                assert client.gather(client.map(tasks.spin, [1_000_000 + i for i in range(6)])) == [
                    tasks.spin(1_000_000 + i) for i in range(6)
                ]
                assert only(client.run(tasks.profile_count).values()) > 0  # it sampled the tasks' threads
                with pytest.raises(tasks.TaskFailed, match=r"^task got 3"):
                    client.submit(tasks.fail, 3).result(timeout=GUARD)
            assert all(proc.poll() is None for proc in processes)
    finally:
        log.close()
        if any(proc.poll() is not None for proc in processes):
            print((tmp_path / "cluster.log").read_text())


# ------------------------------------------------ the bench section


@pytest.mark.timeout(GUARD * 3)
def test_bench_section_runs_every_setup():
    from interpool.bench import _harness as h
    from interpool.bench import bench_dask

    result = bench_dask.run(h.Config(quick=True, scale=0.01, workers=2, repeats=1, progress=None))
    (setups,) = result.data.values()
    assert [m.key for m in setups] == ["interpool", "threads", "processes"]
    if not BAG_LOADS:
        assert setups[0].status == "n/a" and "3.13" in setups[0].detail
        setups = setups[1:]
    assert all(m.ok for m in setups), [(m.key, m.detail) for m in setups]
    assert len({m.answer for m in setups}) == 1
    assert set(result.params["worker_rss_mb"]) == {m.key for m in setups}
    assert all(mb > 0 for mb in result.params["worker_rss_mb"].values())
    assert set(result.params["job_overhead_s"]) == {m.key for m in setups}
    assert all(s > 0 for s in result.params["job_overhead_s"].values())
    text = result.render(quick=True)
    assert "1 process × 2 interpreters" in text and "worker RSS (MiB)" in text and "per-job cost (s)" in text
    statuses = {t.status for t in result.targets}
    assert statuses == {"n/a"} if not BAG_LOADS else statuses <= {"PASS", "FAIL"}


def test_bench_section_says_when_other_work_shared_the_cores(monkeypatch):
    from interpool.bench import bench_dask

    if not hasattr(os, "getloadavg") or not os.path.exists("/proc/sys/kernel/sched_autogroup_enabled"):
        pytest.skip("no load average or autogroup setting here")
    monkeypatch.setattr(bench_dask.os, "getloadavg", lambda: (40.0, 20.0, 10.0))
    note = bench_dask._busy_machine_note(2)
    assert note.startswith("BUSY MACHINE: load average 40.0 on ") and "fewer than N cores" in note
    monkeypatch.setattr(bench_dask.os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert bench_dask._busy_machine_note(2) is None


def test_bench_section_says_why_it_is_skipped(monkeypatch):
    from interpool.bench import _harness as h
    from interpool.bench import bench_dask

    monkeypatch.setattr(bench_dask, "_missing", lambda: "dask or distributed is not installed (No module named 'dask')")
    result = bench_dask.run(h.Config(quick=True, workers=2, progress=None))
    text = result.render()
    assert "section skipped: dask or distributed is not installed" in text
    assert "pip install 'dask[bag]' distributed" in text
    assert result.data == {} and result.targets == []
