"""Cancelling asyncio work interrupts the task in its worker.

Covers Pool.run (Pool, InterpreterPoolExecutor, HybridPool with isolated
callables), to_interpreter, map_async and asyncio.to_thread through a
HybridPool.  Tests wait on events and on pool.stats(), never on time.
"""

import asyncio
import concurrent.futures
import functools

import pytest

import _probe
import _stop_tasks as tasks
import interpool
from conftest import ALL_KINDS
from test_interrupt import PATIENCE

# Every pool kind (conftest.PoolKind); each test makes its own one-worker
# pool.  AsyncPool is skipped, by name: its run() takes coroutine functions
# and it has no stats (its cancellation is tested in test_async_pool.py).
pytestmark = [pytest.mark.kinds(*ALL_KINDS), pytest.mark.workers(1), pytest.mark.needs("run", "interrupt")]


# Waits on a thread of its own: a pool under test may be the loop's default executor.
_WAITERS = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="test-waiter")


async def started_in_thread(event):
    ok = await asyncio.get_running_loop().run_in_executor(_WAITERS, event.wait, PATIENCE)
    assert ok, "the task never started"


def interrupted_once(pool):
    _probe.wait_for(lambda: pool.stats().interrupted == 1 and pool.stats().running == 0, "the task was interrupted")


async def start_then(start, stop):
    """Await ``stop(future)`` once ``future = start(started)`` runs its task (the task sets ``started``)."""
    started = interpool.Event()
    future = asyncio.ensure_future(start(started))
    await started_in_thread(started)
    await stop(future)


async def cancel(future):
    future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await future


async def time_out(future):
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(future, 0.01)


@pytest.mark.parametrize("stop", [cancel, time_out], ids=["cancel", "asyncio-timeout"])
def test_no_longer_awaiting_run_interrupts_the_running_task(kind, stop):
    pool = kind.make(1)
    asyncio.run(start_then(lambda started: pool.run(kind.fn(tasks.spin_forever), started), stop))
    interrupted_once(pool)


def test_a_failing_taskgroup_sibling_interrupts_the_task(kind):
    pool = kind.make(1)
    started = interpool.Event()

    async def fail_once_started():
        await started_in_thread(started)
        raise ValueError("sibling failed")

    async def main():
        async with asyncio.TaskGroup() as tg:
            tg.create_task(pool.run(kind.fn(tasks.spin_forever), started))
            tg.create_task(fail_once_started())

    with pytest.raises(ExceptionGroup) as caught:
        asyncio.run(main())
    assert caught.group_contains(ValueError)
    interrupted_once(pool)


def test_cancelling_to_interpreter_interrupts_the_task():
    pool = interpool.default_pool()
    before = pool.stats().interrupted
    asyncio.run(start_then(lambda started: interpool.to_interpreter(tasks.spin_forever, started), cancel))
    _probe.wait_for(lambda: pool.stats().interrupted == before + 1, "the task was interrupted")


@pytest.mark.parametrize("closing", ["break", "aclosing"])
def test_leaving_map_async_stops_what_is_left(kind, closing):
    pool = kind.make(2)
    started = interpool.Event()
    fn = kind.fn(functools.partial(tasks.spin_item_kw, started=started))

    async def main():
        items = pool.map_async(fn, [1, 0, 2, 3, 4, 5], chunksize=1)
        if closing == "aclosing":
            import contextlib

            async with contextlib.aclosing(items) as results:
                async for value in results:
                    assert value == 1
                    await started_in_thread(started)
                    break
        else:
            async for value in items:
                assert value == 1
                await started_in_thread(started)
                break
            await items.aclose()

    asyncio.run(main())
    _probe.wait_for(lambda: pool.stats().running == 0, "nothing runs any more")
    stats = pool.stats()
    assert stats.interrupted >= 1  # the spinning item; a quick one may be caught running too
    assert stats.done + stats.cancelled + stats.interrupted == 6


def test_cancelling_to_thread_of_an_isolated_function_interrupts_it():
    pool = interpool.HybridPool(1)
    try:

        async def main():
            asyncio.get_running_loop().set_default_executor(pool)
            await start_then(lambda started: asyncio.to_thread(interpool.isolated(tasks.spin_forever), started), cancel)

        asyncio.run(main())
        interrupted_once(pool)
    finally:
        pool.shutdown(wait=True, cancel_futures=True, interrupt=True)


def test_options_timeout_applies_to_run_and_map_async(kind):
    pool = kind.make(1)

    async def main():
        with pytest.raises(TimeoutError):
            await pool.options(timeout=0.05).run(kind.fn(tasks.spin_forever), interpool.Event())
        with pytest.raises(TimeoutError):
            async for _ in pool.options(timeout=0.05).map_async(
                kind.fn(functools.partial(tasks.spin_item_kw, started=interpool.Event())), [0]
            ):
                pass

    asyncio.run(main())
    assert pool.stats().timed_out == 2
