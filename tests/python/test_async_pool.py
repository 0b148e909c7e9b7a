"""interpool.AsyncPool: coroutine functions run in event loops of worker interpreters."""

import asyncio
import functools
import os
import sys
import threading
import time

import pytest

import _async_tasks as t
import interpool
from _child import run_python

TIMEOUT = 30


def arun(coro, timeout=TIMEOUT):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def wait_for_files(paths, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not all(os.path.exists(p) for p in paths):
        if time.monotonic() > deadline:
            missing = [p for p in paths if not os.path.exists(p)]
            raise AssertionError(f"{missing} did not appear within {timeout} s")
        await asyncio.sleep(0.005)


async def start_await_cancel(apool, tmp_path, name=""):
    """Run t.await_cancel in ``apool`` until it has started; return its task and the file it writes if cancelled."""
    started, cancelled = str(tmp_path / f"started{name}"), str(tmp_path / f"cancelled{name}")
    task = asyncio.ensure_future(apool.run(t.await_cancel, started, cancelled))
    await wait_for_files([started])
    return task, cancelled


def test_properties_and_repr():
    apool = interpool.AsyncPool(2)
    try:
        assert apool.workers == 2 and apool.concurrency == 16
        assert "running" in repr(apool) and "concurrency=16" in repr(apool)
    finally:
        apool.shutdown()
    assert "shut down" in repr(apool)
    with pytest.raises(ValueError):
        interpool.AsyncPool(1, concurrency=0)
    with pytest.raises(TypeError):
        interpool.AsyncPool(1, initializer=42)


def test_run_returns_a_value_computed_in_the_worker_loop(monkeypatch):
    monkeypatch.setattr(t, "MARKER", "main")

    async def main():
        async with interpool.AsyncPool(2) as apool:
            return await apool.run(t.awhere, 5), await apool.run(t.acoro_square, 12)

    info, squared = arun(main())
    assert squared == 144
    assert info["x"] == 5 and info["loop_running"] is True
    assert info["modules_id"] != id(sys.modules)  # another interpreter
    assert info["marker"] == "default"  # its own copy of the module
    assert info["thread"] != threading.get_ident()


def test_kwargs_are_passed():
    async def main():
        async with interpool.AsyncPool(1) as apool:
            return await apool.run(t.asleep_interval, seconds=0.01)

    start, end = arun(main())
    assert end - start >= 0.009


def test_initializer_runs_in_each_worker():
    async def main():
        async with interpool.AsyncPool(2, initializer=t.set_marker, initargs=("from init",)) as apool:
            return await asyncio.gather(*(apool.run(t.awhere, i) for i in range(10)))

    infos = arun(main())
    assert {i["marker"] for i in infos} == {"from init"}
    assert [i["x"] for i in infos] == list(range(10))


def _rendezvous(workers, concurrency, n, parties):
    """Run ``n`` coroutines that meet in rounds of ``parties`` (_async_tasks.arendezvous)
    on AsyncPool(workers, concurrency): [(most ever running at once, worker thread)]."""
    buf, lock = interpool.SharedBuffer(24), interpool.Lock()

    async def main():
        async with interpool.AsyncPool(workers, concurrency=concurrency) as apool:
            return await asyncio.gather(*(apool.run(t.arendezvous, "r", buf, lock, parties) for _ in range(n)))

    return arun(main(), timeout=120)


def test_concurrency_limit_per_worker():
    """workers=1, concurrency=3: 9 coroutines run three at a time, never more."""
    # Each waits until three have arrived (in rounds of three): with a lower
    # limit they would wait for good (TimeoutError), with a higher one a
    # fourth would be counted running.
    outcomes = _rendezvous(1, 3, 9, 3)
    assert {most for most, _ in outcomes} == {3}, outcomes


def test_many_workers_share_the_load():
    # 8 coroutines that all wait for each other: 4 on each worker at once.
    outcomes = _rendezvous(2, 4, 8, 8)
    assert {most for most, _ in outcomes} == {8}, outcomes
    assert len({tid for _, tid in outcomes}) == 2, "one worker took everything"


def test_map_in_order():
    async def main():
        async with interpool.AsyncPool(2) as apool:
            return [x async for x in apool.map(t.acoro_square, range(100))]

    assert arun(main()) == [i * i for i in range(100)]


def test_map_exception_after_earlier_results():
    async def main():
        got = []
        async with interpool.AsyncPool(2) as apool:
            with pytest.raises(t.Boom, match="stop"):
                async for x in apool.map(functools.partial(t.asquare_fail_at, bad=3), range(10)):
                    got.append(x)
        return got

    assert arun(main()) == [0, 1, 4]


def test_exceptions_come_back_as_from_pool():
    async def main():
        async with interpool.AsyncPool(1) as apool:
            with pytest.raises(t.Boom, match="remote failure") as info:
                await apool.run(t.afail, "remote failure")
            # The pool survives the failure.
            return info.value, await apool.run(t.acoro_square, 3)

    exc, after = arun(main())
    assert type(exc) is t.Boom and after == 9
    assert type(exc.__cause__) is interpool.RemoteTraceback
    assert "in afail" in str(exc.__cause__)


def test_cancelling_the_awaiting_task_cancels_the_remote_coroutine(tmp_path):
    async def main():
        async with interpool.AsyncPool(1) as apool:
            task, cancelled = await start_await_cancel(apool, tmp_path)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await wait_for_files([cancelled])  # the remote coroutine saw CancelledError
            # The worker loop is healthy afterwards.
            return await apool.run(t.acoro_square, 6)

    assert arun(main()) == 36


def test_cancelling_a_queued_run_never_starts_it(tmp_path):
    # concurrency=1 and a busy worker: the second run waits in the pool's queue.
    s1, c1 = str(tmp_path / "s1"), str(tmp_path / "c1")
    s2, c2 = str(tmp_path / "s2"), str(tmp_path / "c2")
    gate = interpool.Event()

    async def main():
        async with interpool.AsyncPool(1, concurrency=1) as apool:
            first = asyncio.ensure_future(apool.run(t.await_gate, s1, c1, gate))
            await wait_for_files([s1])  # the only slot is taken until the gate opens
            second = asyncio.ensure_future(apool.run(t.await_cancel, s2, c2))
            await asyncio.sleep(0)  # submitted, waiting in the pool's queue
            second.cancel()
            with pytest.raises(asyncio.CancelledError):
                await second
            gate.set()
            return await first

    assert arun(main()) == "not cancelled"
    assert not os.path.exists(s2)


def test_leaving_async_with_cancels_running_coroutines_and_waits(tmp_path):
    n = 3

    async def main():
        async with interpool.AsyncPool(1) as apool:
            tasks, cancelled = zip(*[await start_await_cancel(apool, tmp_path, i) for i in range(n)])
        # Leaving the block waited for the remote coroutines' handlers to finish.
        seen = [os.path.exists(c) for c in cancelled]
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        with pytest.raises(RuntimeError):
            await apool.run(t.acoro_square, 1)  # shut down
        return seen, outcomes

    seen, outcomes = arun(main())
    assert seen == [True] * n
    assert all(isinstance(o, asyncio.CancelledError) for o in outcomes), outcomes


def test_leaving_async_with_on_an_exception_propagates_it(tmp_path):
    async def main():
        async with interpool.AsyncPool(1) as apool:
            await start_await_cancel(apool, tmp_path)
            raise KeyError("user code failed")

    with pytest.raises(KeyError, match="user code failed"):
        arun(main())
    assert os.path.exists(tmp_path / "cancelled")


def test_shutdown_without_async_with():
    apool = interpool.AsyncPool(2)

    async def main():
        return await asyncio.gather(*(apool.run(t.acoro_square, i) for i in range(20)))

    assert arun(main()) == [i * i for i in range(20)]
    # Reused from a second event loop.
    assert arun(main()) == [i * i for i in range(20)]
    apool.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        arun(main())


def test_many_coroutines_concurrently():
    # 400 coroutines that all wait for each other: both workers hold 200 at once.
    outcomes = _rendezvous(2, 200, 400, 400)
    assert len(outcomes) == 400
    assert {most for most, _ in outcomes} == {400}
    assert len({tid for _, tid in outcomes}) == 2


@pytest.mark.parametrize("shutdown", [True, False], ids=["shutdown", "no-shutdown"])
def test_unused_async_pool_exits_cleanly(tmp_path, shutdown):
    proc = run_python(
        tmp_path,
        f"""
        import interpool
        apool = interpool.AsyncPool(1)
        if {shutdown}:
            apool.shutdown()
        print("done")
        """,
        name="unused.py",
    )
    assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (0, "done", "")


def test_async_pool_program_exits_cleanly(tmp_path):
    """The usual program: asyncio.run, an AsyncPool inside it, then exit."""
    proc = run_python(
        tmp_path,
        """
        import asyncio
        import interpool
        import _async_tasks as t

        async def main():
            async with interpool.AsyncPool(2) as apool:
                return [x async for x in apool.map(t.acoro_square, range(10))]

        print(sum(asyncio.run(main())))
        """,
        name="program.py",
    )
    assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (0, "285", "")


def test_aclose_while_another_loop_awaits(tmp_path):
    started, cancelled = str(tmp_path / "started"), str(tmp_path / "cancelled")
    apool = interpool.AsyncPool(1)
    other = {}

    def in_other_thread():
        async def main():
            try:
                return await apool.run(t.await_cancel, started, cancelled, 2)
            except asyncio.CancelledError:
                return "cancelled"

        other["result"] = arun(main())

    th = threading.Thread(target=in_other_thread)
    th.start()
    try:

        async def main():
            while not os.path.exists(started):
                await asyncio.sleep(0.01)
            await apool.aclose()

        try:
            arun(main())
        finally:
            th.join(TIMEOUT)
        assert other["result"] == "cancelled"
        assert "shut down" in repr(apool)
    finally:
        apool.shutdown()
