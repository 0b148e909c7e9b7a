"""await pool.run(...) and await interpool.to_interpreter(...) under anyio,
on both of its backends (asyncio and trio), and under trio itself.

Tests wait on events and on pool.stats(), never on time.
"""

import pytest

import _probe

anyio = pytest.importorskip("anyio")

import _async_tasks as t  # noqa: E402
import _stop_tasks  # noqa: E402
import interpool  # noqa: E402
from conftest import EXECUTOR_KINDS  # noqa: E402

PATIENCE = 60


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    if request.param == "trio":
        pytest.importorskip("trio")
    return request.param


# ``pool`` is each executor kind (conftest.PoolKind: Pool,
# InterpreterPoolExecutor, HybridPool with isolated callables) with 3 workers
# (as in test_asyncio.py: delivery to a loop does not depend on the count).
pytestmark = [pytest.mark.kinds(*EXECUTOR_KINDS), pytest.mark.workers(3)]


wait_until = _probe.wait_for  # poll a probe of engine state (pool.stats()); fail after its deadline


async def wait_started(event):
    assert await anyio.to_thread.run_sync(event.wait, PATIENCE), "the task never started"


@pytest.mark.anyio
async def test_to_interpreter_and_run(pool):
    assert await interpool.to_interpreter(t.square, 7) == 49
    assert await pool.run(t.describe_call, 1, k=2) == ((1,), {"k": 2})
    with pytest.raises(ValueError, match="invalid literal"):
        await pool.run(int, "x")


@pytest.mark.anyio
async def test_many_concurrent_calls(pool):
    results = {}

    async def one(i):
        results[i] = await pool.run(t.square, i)

    async with anyio.create_task_group() as tg:
        for i in range(200):
            tg.start_soon(one, i)
    assert results == {i: i * i for i in range(200)}


@pytest.mark.anyio
async def test_hybrid_pool_runs_both_kinds(anyio_backend):
    with interpool.HybridPool(1) as hybrid:
        plain = await hybrid.run(t.where, 1)
        isolated = await hybrid.run(interpool.isolated(t.where), 2)
    assert plain["modules_id"] != isolated["modules_id"]
    assert (plain["args"], isolated["args"]) == ((1,), (2,))


@pytest.mark.anyio
async def test_cancelling_the_await_interrupts_the_running_task(pool, anyio_backend):
    started = interpool.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(pool.run, _stop_tasks.spin_forever, started)
        await wait_started(started)
        tg.cancel_scope.cancel()
    if anyio_backend == "trio":
        # trio's rule: once the cancelled call returns, nothing of it runs on.
        stats = pool.stats()
        assert (stats.interrupted, stats.running) == (1, 0)
    else:
        wait_until(lambda: pool.stats().interrupted == 1 and pool.stats().running == 0, "the task stopped")
    assert await pool.run(abs, -1) == 1  # the worker goes on


@pytest.mark.anyio
async def test_cancelling_a_queued_call_drops_it():
    with interpool.Pool(1) as pool:
        release = interpool.Event()
        started = interpool.Event()
        blocker = pool.submit(_stop_tasks.wait_for, release)
        async with anyio.create_task_group() as tg:
            tg.start_soon(pool.run, t.sleep_then, "never", 0, started)
            await anyio.to_thread.run_sync(wait_until, lambda: pool.stats().queued == 1, "the call is queued")
            tg.cancel_scope.cancel()
        assert pool.stats().cancelled == 1
        release.set()
        assert blocker.result(PATIENCE) == "released"
    assert not started.is_set()


@pytest.mark.anyio
async def test_a_timeout_scope_interrupts(pool):
    started = interpool.Event()
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:

            async def cancel_once_started():
                await wait_started(started)
                scope.cancel()

            tg.start_soon(cancel_once_started)
            await pool.run(_stop_tasks.spin_forever, started)
    assert scope.cancelled_caught
    wait_until(lambda: pool.stats().interrupted == 1, "the task was interrupted")


def test_plain_trio_run_takes_the_run_method():
    trio = pytest.importorskip("trio")
    with interpool.Pool(1) as pool:
        # trio.run calls pool.run inside the run: this used to recurse forever.
        assert trio.run(pool.run, t.square, 6) == 36
        assert trio.run(interpool.to_interpreter, t.square, 5) == 25


def test_shutdown_with_cancel_futures_fails_a_waiting_trio_call():
    trio = pytest.importorskip("trio")
    import concurrent.futures as cf

    async def main(pool):
        release = interpool.Event()
        pool.submit(_stop_tasks.wait_for, release)
        async with trio.open_nursery() as nursery:
            outcome = []

            async def waiter():
                try:
                    await pool.run(abs, -1)
                except cf.CancelledError:
                    outcome.append("cancelled")

            nursery.start_soon(waiter)
            await trio.to_thread.run_sync(wait_until, lambda: pool.stats().queued == 1, "queued")
            pool.shutdown(wait=False, cancel_futures=True)
            release.set()
        return outcome

    pool = interpool.Pool(1)
    assert trio.run(main, pool) == ["cancelled"]
    pool.shutdown(wait=True)


def test_readme_example(tmp_path):
    pytest.importorskip("trio")
    from test_readme_examples import run_example

    expected = str(sum(i * i for i in range(10**6)))
    assert run_example(tmp_path, "### anyio and trio") == [expected, "stopped"] * 2


def test_awaited_outside_asyncio_and_trio_says_what_is_supported(pool):
    coro = pool.run(abs, -1)  # no loop runs: the library is known only when awaited
    with pytest.raises(RuntimeError, match="supports asyncio and trio"):
        coro.send(None)  # driven by hand, as by an event loop interpool does not know
    assert pool.stats().queued == 0 and pool.stats().done == 0  # nothing was submitted
