"""interpool.HybridPool (= InterpreterThreadPoolExecutor) and interpool.isolated (= interpreter).

One set of worker threads: callables marked isolated run in the worker's own
interpreter, everything else on the worker thread in the caller's
interpreter.  "Which interpreter" is told apart by ``_async_tasks.MARKER``, a
module global the tests change in the main interpreter only, and by
``id(sys.modules)``.
"""

import asyncio
import concurrent.futures as cf
import pickle
import sys
import threading
import warnings

import pytest

import _async_tasks as t
import _probe
import _stop_tasks
import interpool

TIMEOUT = 30


def arun(coro, timeout=TIMEOUT):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture
def marker(monkeypatch):
    """MARKER is 'main' in this interpreter (workers' copies keep 'default')."""
    monkeypatch.setattr(t, "MARKER", "main")
    return "main"


@pytest.fixture
def hybrid():
    pool = interpool.HybridPool(2)
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


def in_main(info):
    return info["marker"] == "main" and info["modules_id"] == id(sys.modules)


def in_worker_interpreter(info):
    return info["marker"] == "default" and info["modules_id"] != id(sys.modules)


def test_aliases():
    assert interpool.InterpreterThreadPoolExecutor is interpool.HybridPool
    assert interpool.interpreter is interpool.isolated
    assert issubclass(interpool.HybridPool, cf.ThreadPoolExecutor)
    assert issubclass(interpool.HybridPool, interpool.Pool)


def test_default_executor_to_thread_isolated_runs_in_an_interpreter(marker):
    async def main():
        loop = asyncio.get_running_loop()
        pool = interpool.HybridPool(2)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # asyncio accepts it without a deprecation warning
            loop.set_default_executor(pool)
        t.CTX.set("from the caller")
        isolated = await asyncio.to_thread(interpool.isolated(t.where), 1, key="k")
        threaded = await asyncio.to_thread(t.where, 2, key="k")
        also = await asyncio.to_thread(interpool.interpreter(t.where), 4)
        both = await asyncio.gather(
            *(asyncio.to_thread(interpool.isolated(t.square), i) for i in range(20)),
            *(asyncio.to_thread(t.square, i) for i in range(20)),
        )
        return isolated, threaded, also, both

    isolated, threaded, also, both = arun(main())  # asyncio.run shuts the executor down

    assert in_worker_interpreter(isolated), isolated
    assert isolated["args"] == (1,) and isolated["kwargs"] == {"key": "k"}
    assert isolated["ctx"] == "unset"  # context variables do not cross interpreters

    assert in_main(threaded), threaded
    assert threaded["thread"] != threading.get_ident()  # a worker thread, not the loop's
    assert threaded["args"] == (2,) and threaded["kwargs"] == {"key": "k"}
    assert threaded["ctx"] == "from the caller"  # to_thread's context came along

    assert in_worker_interpreter(also)
    assert both == [i * i for i in range(20)] * 2


def test_thread_path_runs_on_the_pools_threads(hybrid, marker):
    # Plain callables run on the pool's own threads, at most `threads` of
    # them, never on the caller's.
    futures = [hybrid.submit(t.where) for _ in range(50)]
    idents = {f.result(TIMEOUT)["thread"] for f in futures}
    assert 1 <= len(idents) <= hybrid.threads
    assert threading.get_ident() not in idents


def test_submit_isolated_and_plain(hybrid, marker):
    iso = hybrid.submit(interpool.isolated(t.where), "a", k=1).result(TIMEOUT)
    plain = hybrid.submit(t.where, "b", k=2).result(TIMEOUT)
    assert in_worker_interpreter(iso) and iso["args"] == ("a",) and iso["kwargs"] == {"k": 1}
    assert in_main(plain) and plain["args"] == ("b",) and plain["kwargs"] == {"k": 2}
    assert isinstance(hybrid.submit(t.noop), interpool.Future)


def test_map_isolated_and_plain(hybrid, marker):
    assert list(hybrid.map(interpool.isolated(t.square), range(100))) == [i * i for i in range(100)]
    assert list(hybrid.map(t.square, range(100))) == [i * i for i in range(100)]
    assert list(hybrid.map(t.square, range(100), chunksize=7)) == [i * i for i in range(100)]
    iso = list(hybrid.map(interpool.isolated(t.where), range(6), chunksize=2))
    plain = list(hybrid.map(t.where, range(6), chunksize=2))
    assert all(in_worker_interpreter(i) for i in iso)
    assert all(in_main(p) for p in plain)
    assert [p["args"] for p in plain] == [(i,) for i in range(6)]


def test_exceptions_from_both_paths(hybrid):
    with pytest.raises(t.Boom, match="iso"):
        hybrid.submit(interpool.isolated(t.boom), "iso").result(TIMEOUT)
    with pytest.raises(t.Boom, match="thread"):
        hybrid.submit(t.boom, "thread").result(TIMEOUT)
    with pytest.raises(ValueError, match="bad item 3"):
        list(hybrid.map(t.fail_on, range(6), [3] * 6))
    with pytest.raises(ValueError, match="bad item 3"):
        list(hybrid.map(interpool.isolated(t.fail_on), range(6), [3] * 6))


def test_as_executor_with_concurrent_futures(hybrid, marker):
    futures = [hybrid.submit(interpool.isolated(t.square), i) for i in range(30)]
    futures += [hybrid.submit(t.square, i) for i in range(30)]
    done, not_done = cf.wait(futures, timeout=TIMEOUT)
    assert not not_done
    assert sorted(f.result() for f in cf.as_completed(futures)) == sorted([i * i for i in range(30)] * 2)


def test_run_coroutine_both_paths(hybrid, marker):
    async def main():
        iso = await hybrid.run(interpool.isolated(t.where), 1)
        plain = await hybrid.run(t.where, 2)
        many = await asyncio.gather(*(hybrid.run(t.square, i) for i in range(50)))
        return iso, plain, many

    iso, plain, many = arun(main())
    assert in_worker_interpreter(iso) and in_main(plain)
    assert many == [i * i for i in range(50)]


def test_decorator_keeps_the_function_callable(marker):
    assert isinstance(t.decorated_where, interpool.isolated)
    info = t.decorated_where(5)  # a direct call runs here
    assert in_main(info) and info["x"] == 5
    assert t.decorated_where.__name__ == "decorated_where"
    assert t.decorated_where.__module__ == "_async_tasks"
    assert "decorated_where" in repr(t.decorated_where)


def test_decorated_function_pickles_by_name():
    assert pickle.loads(pickle.dumps(t.decorated_where)) is t.decorated_where
    wrapped = interpool.isolated(t.square)  # not a module attribute: the function goes along
    copy = pickle.loads(pickle.dumps(wrapped))
    assert isinstance(copy, interpool.isolated) and copy.__wrapped__ is t.square


def test_isolated_of_isolated_and_non_callables():
    twice = interpool.isolated(interpool.isolated(t.square))
    assert twice.__wrapped__ is t.square
    assert twice(4) == 16
    with pytest.raises(TypeError):
        interpool.isolated(42)


def test_decorated_function_in_a_plain_pool(marker):
    with interpool.Pool(1) as pool:
        info = pool.submit(t.decorated_where, 9).result(TIMEOUT)
        mapped = list(pool.map(t.decorated_where, [1, 2]))
    assert in_worker_interpreter(info) and info["x"] == 9
    assert [m["x"] for m in mapped] == [1, 2] and all(in_worker_interpreter(m) for m in mapped)


@pytest.mark.parametrize("how", ["submit", "map", "run", "to_thread"])
def test_decorated_function_through_hybrid_pool(how, marker):
    async def via_to_thread():
        asyncio.get_running_loop().set_default_executor(interpool.HybridPool(1))
        return await asyncio.to_thread(t.decorated_where, 3)

    with interpool.HybridPool(1) as hybrid:
        if how == "submit":
            info = hybrid.submit(t.decorated_where, 3).result(TIMEOUT)
        elif how == "map":
            (info,) = hybrid.map(t.decorated_where, [3])
        elif how == "run":
            info = arun(hybrid.run(t.decorated_where, 3))
        else:
            info = arun(via_to_thread())
    assert in_worker_interpreter(info) and info["x"] == 3


def test_non_isolated_function_may_use_modules_unimportable_in_subinterpreters(hybrid):
    # The precondition: this module really refuses to load in a worker interpreter.
    with pytest.raises(ImportError, match="subinterpreters"):
        hybrid.submit(interpool.isolated(t.use_unimportable)).result(TIMEOUT)
    # On the thread path it is imported in the main interpreter and works.
    name = hybrid.submit(t.use_unimportable).result(TIMEOUT)
    assert name in sys.modules

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_default_executor(interpool.HybridPool(1))
        return await asyncio.to_thread(t.use_unimportable)

    assert arun(main()) == name


def test_thread_path_does_not_need_picklable_callables(hybrid):
    # Thread work stays in this interpreter: a closure is fine there.
    box = []
    lock = threading.Lock()  # and one that cannot be sent at all

    def closure(x):
        box.append(x)
        return x + 1

    assert hybrid.submit(closure, 1).result(TIMEOUT) == 2
    assert list(hybrid.map(closure, [10, 20])) == [11, 21]
    assert sorted(box) == [1, 10, 20]
    # Isolated, it goes by value: the worker appends to its own copy of box.
    assert hybrid.submit(interpool.isolated(closure), 1).result(TIMEOUT) == 2
    assert sorted(box) == [1, 10, 20]
    with pytest.raises(TypeError):
        hybrid.submit(interpool.isolated(lambda: lock), 1)


def test_shutdown_via_context_manager():
    with interpool.HybridPool(2) as pool:
        fs = [pool.submit(t.sleep_then, i, 0.01) for i in range(4)]
        fs += [pool.submit(interpool.isolated(t.sleep_then), i, 0.01) for i in range(4)]
    assert [f.result(0) for f in fs] == [0, 1, 2, 3] * 2
    with pytest.raises(RuntimeError):
        pool.submit(t.noop)


# ------------------------------------------------- threads for I/O, interpreters on demand


wait_until = _probe.wait_for  # poll a probe of engine state (pool.stats()); fail after its deadline


def meet(barrier):
    """Block until every party has arrived: only calls that run at once can pass."""
    return barrier.wait()


def test_thread_count_defaults_to_thread_pool_executors():
    with interpool.HybridPool(1) as pool:
        assert pool.threads == min(32, interpool.default_workers() + 4)
        assert pool.workers == 1
    with interpool.HybridPool(1, threads=3) as pool:
        assert pool.threads == 3
    with pytest.raises(ValueError, match="threads must be greater than 0"):
        interpool.HybridPool(1, threads=0)
    with pytest.raises(TypeError, match="threads must be an int"):
        interpool.HybridPool(1, threads="8")


def test_blocking_calls_run_concurrently_beyond_the_worker_count():
    # Eight calls that each wait for all eight: impossible on 2 threads, so
    # this passes only if plain callables get their own threads.
    barrier = threading.Barrier(8, timeout=TIMEOUT)

    async def main():
        pool = interpool.HybridPool(2, threads=8)
        asyncio.get_running_loop().set_default_executor(pool)
        return pool, await asyncio.gather(*(asyncio.to_thread(meet, barrier) for _ in range(8)))

    pool, arrivals = arun(main())
    assert sorted(arrivals) == list(range(8))  # nobody timed out and broke the barrier
    assert pool.stats().workers == ()  # and no interpreter was started for them


def test_thread_count_is_a_ceiling():
    # With threads=2, two blockers hold both threads: a third plain call
    # waits in the queue until one of them is released.
    with interpool.HybridPool(1, threads=2) as pool:
        gate = threading.Event()
        blockers = [pool.submit(gate.wait, TIMEOUT) for _ in range(2)]
        third = pool.submit(abs, -3)
        wait_until(lambda: pool.stats().queued == 1, "the third call is queued")
        assert not third.done()
        gate.set()
        assert third.result(TIMEOUT) == 3 and all(f.result(TIMEOUT) for f in blockers)


def test_interpreters_start_on_demand_up_to_workers(marker):
    with interpool.HybridPool(2) as pool:
        assert pool.stats().workers == ()  # none before isolated work
        assert pool.submit(t.square, 3).result(TIMEOUT) == 9
        assert pool.stats().workers == ()  # plain work starts none
        assert pool.submit(interpool.isolated(t.square), 4).result(TIMEOUT) == 16
        assert len(pool.stats().workers) == 1  # one was enough
        release = interpool.Event()
        waiting = [pool.submit(interpool.isolated(_stop_tasks.wait_for), release) for _ in range(5)]
        wait_until(lambda: pool.stats().running == 2, "two isolated tasks run")
        stats = pool.stats()
        assert len(stats.workers) == 2 and stats.queued == 3  # never more than `workers`
        release.set()
        assert [f.result(TIMEOUT) for f in waiting] == ["released"] * 5


def test_each_interpreter_is_owned_by_one_thread(marker):
    with interpool.HybridPool(2) as pool:
        infos = list(pool.map(interpool.isolated(t.where), range(200), chunksize=1))
    threads_of = {}
    for info in infos:
        assert in_worker_interpreter(info)
        threads_of.setdefault(info["modules_id"], set()).add(info["thread"])
    assert 1 <= len(threads_of) <= 2
    assert all(len(threads) == 1 for threads in threads_of.values())


def test_shutdown_with_nothing_started_does_not_hang():
    pool = interpool.HybridPool(4)
    pool.shutdown(wait=True)
    with pytest.raises(RuntimeError, match="shutdown"):
        pool.submit(abs, 1)


def test_plain_and_isolated_work_are_counted(marker):
    with interpool.HybridPool(1) as pool:
        assert pool.submit(abs, -1).result(TIMEOUT) == 1
        with pytest.raises(ValueError):
            pool.submit(int, "x").result(TIMEOUT)
        assert pool.submit(interpool.isolated(abs), -2).result(TIMEOUT) == 2
        wait_until(lambda: (pool.stats().done, pool.stats().failed) == (2, 1), "every call is counted")
