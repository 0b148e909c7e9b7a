"""asyncio on interpool.Pool: ``await pool.run(...)``, ``pool.map_async(...)``,
``interpool.to_interpreter(...)``, and what happens with wrong input, other
threads' loops and closed loops.

Every test drives its own loop with ``asyncio.run`` under a timeout, so a
lost result fails the test instead of hanging it.
"""

import asyncio
import contextlib
import functools
import gc
import json
import os
import sys
import textwrap
import threading
import time
import warnings

import pytest

import _async_tasks as t
import _probe
import interpool
from _child import run_python

try:  # 3.14+: InterpreterPoolExecutor chains from this, like the stdlib's
    from concurrent.interpreters import ExecutionFailed
except ImportError:
    ExecutionFailed = None
from conftest import EXECUTOR_KINDS

TIMEOUT = 30


def arun(coro, timeout=TIMEOUT):
    """asyncio.run(coro), failing with TimeoutError after ``timeout`` seconds."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def wait_for_file(path, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout} s")
        await asyncio.sleep(0.005)


async def run_until_started(pool, value, gate, tmp_path):
    """``pool.run(t.wait_for_gate, value, gate, ...)`` as a task, once a worker runs it (until ``gate`` opens)."""
    started = str(tmp_path / f"started-{value}")
    task = asyncio.ensure_future(pool.run(t.wait_for_gate, value, gate, started))
    await wait_for_file(started)
    return task


# ``pool`` is each executor kind (conftest.PoolKind: Pool,
# InterpreterPoolExecutor, HybridPool with isolated callables) with 3
# workers: how results reach a loop does not depend on how many workers
# produce them, and a second worker count would add a sixth of the suite's
# time.  Tests that order work behind one busy worker run with 1 instead.
pytestmark = [pytest.mark.kinds(*EXECUTOR_KINDS), pytest.mark.workers(3)]
ONE_WORKER = pytest.mark.workers(1)
# A coroutine object given to Pool.run/submit: a HybridPool reaches its
# interpreter lane only through interpool.isolated(), which refuses a
# coroutine object (not callable) before Pool's own check could run.
INTERPRETER_EXECUTORS = pytest.mark.kinds("Pool", "InterpreterPoolExecutor")


# ---------------------------------------------------------------- Pool.run


def test_run_returns_the_result(pool):

    async def main():
        assert await pool.run(t.square, 7) == 49
        assert await pool.run(t.describe_call, 1, "a", key=[2, 3]) == ((1, "a"), {"key": [2, 3]})
        info = await pool.run(t.where)
        return info

    info = arun(main())
    # It ran in a worker interpreter: its own sys.modules and its own copy of _async_tasks.
    assert info["modules_id"] != id(sys.modules)
    assert info["thread"] != threading.get_ident()


def test_run_happens_in_a_worker_interpreter(pool, monkeypatch):
    monkeypatch.setattr(t, "MARKER", "set in main")

    async def main():
        return await pool.run(t.where)

    assert arun(main())["marker"] == "default"


def test_run_exception_keeps_type_and_remote_traceback(pool, pool_kind):

    async def main():
        with pytest.raises(t.Boom, match="kaboom") as info:
            await pool.run(t.boom, "kaboom")
        return info.value

    exc = arun(main())
    assert type(exc) is t.Boom
    # The same cause as Pool.submit gives (InterpreterPoolExecutor follows the
    # stdlib there on 3.14).
    sync_exc = pool.submit(t.boom, "kaboom").exception(TIMEOUT)
    assert type(exc.__cause__) is type(sync_exc.__cause__)
    assert "kaboom" in str(exc.__cause__)
    if pool_kind == "Pool":
        assert type(exc.__cause__) is interpool.RemoteTraceback
        assert "in boom" in str(exc.__cause__)


def test_run_exception_same_as_submit(pool):
    sync_exc = pool.submit(t.boom, "x").exception(TIMEOUT)

    async def main():
        try:
            await pool.run(t.boom, "x")
        except t.Boom as exc:
            return exc
        raise AssertionError("no exception")

    async_exc = arun(main())
    assert type(async_exc) is type(sync_exc)
    assert async_exc.args == sync_exc.args
    # InterpreterPoolExecutor chains as the stdlib's does: ExecutionFailed on 3.14+.
    expected_cause = interpool.RemoteTraceback
    if isinstance(pool, interpool.InterpreterPoolExecutor) and ExecutionFailed is not None:
        expected_cause = ExecutionFailed
    assert type(async_exc.__cause__) is type(sync_exc.__cause__) is expected_cause


def test_run_in_task_group(pool):
    async def main():
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(pool.run(t.square, i)) for i in range(100)]
        return [task.result() for task in tasks]

    assert arun(main()) == [i * i for i in range(100)]


def test_task_group_reports_a_failing_run(pool):
    async def main():
        async with asyncio.TaskGroup() as tg:
            tg.create_task(pool.run(t.square, 3))
            tg.create_task(pool.run(t.boom, "in a group"))

    with pytest.raises(ExceptionGroup) as info:
        arun(main())
    assert info.group_contains(t.Boom, match="in a group")


def test_run_with_gather(pool):
    async def main():
        return await asyncio.gather(*(pool.run(t.square, i) for i in range(500)))

    assert arun(main()) == [i * i for i in range(500)]


def test_gather_return_exceptions(pool):
    async def main():
        return await asyncio.gather(
            pool.run(t.fail_on, 1, bad=2), pool.run(t.fail_on, 2, bad=2), return_exceptions=True
        )

    first, second = arun(main())
    assert first == 10
    assert isinstance(second, ValueError) and "bad item 2" in str(second)


def _count_wakeups(loop):
    """Count the loop's wake-ups for results: calls of its bridge's _woken.

    Returns the list each wake-up appends to.  The bridge is made here, on
    the loop's thread, and its instance's class is patched for this loop
    only; the loop's reader is registered again, with the patched method.
    """
    calls = []
    from interpool import _aio

    bridge = _aio.bridge_for(loop)
    original = type(bridge)._woken

    def counting(self):
        if self is bridge:
            calls.append(None)
        return original(self)

    type(bridge)._woken = counting
    _restore.append(lambda: setattr(type(bridge), "_woken", original))
    fd = bridge._waker.fileno()
    loop.remove_reader(fd)
    loop.add_reader(fd, bridge._woken)
    return calls


_restore = []


@pytest.fixture(autouse=True)
def _restore_patches():
    yield
    while _restore:
        _restore.pop()()


def test_results_are_batched_per_wakeup(pool):
    """1,000 results that complete while the loop is busy reach it in a few wake-ups."""
    n = 1000

    counter, lock = interpool.SharedBuffer(8), interpool.Lock()

    async def main():
        calls = _count_wakeups(asyncio.get_running_loop())
        tasks = [asyncio.ensure_future(pool.run(t.square_and_count, i, counter, lock)) for i in range(n)]
        await asyncio.sleep(0)  # every task submits its work
        assert not calls
        # Block the loop until the workers have finished everything and
        # handed it over (they and the delivery thread are idle).
        _probe.wait_for(lambda: memoryview(counter).cast("q")[0] == n, "every task ran")
        _probe.wait_until_quiet(what="the workers and the delivery thread idle")
        results = await asyncio.gather(*tasks)
        return results, len(calls)

    results, wakeups = arun(main())
    assert results == [i * i for i in range(n)]
    assert 1 <= wakeups <= 10, wakeups


def test_results_are_batched_in_a_plain_gather(pool):
    """Without any help from the test, far fewer wake-ups than results."""
    n = 1000

    async def main():
        await asyncio.gather(*(pool.run(t.noop) for _ in range(4)))  # workers import the module
        calls = _count_wakeups(asyncio.get_running_loop())
        results = await asyncio.gather(*(pool.run(t.noop) for _ in range(n)))
        return results, len(calls)

    results, wakeups = arun(main())
    assert results == [None] * n
    assert wakeups < n // 10, wakeups


@ONE_WORKER  # the work under test queues behind one busy worker
def test_cancelling_the_awaiting_task_cancels_queued_work(pool, tmp_path):
    gate = interpool.Event()
    side_effect = tmp_path / "queued-ran"

    async def main():
        busy = await run_until_started(pool, "busy", gate, tmp_path)  # the only worker, until the gate opens
        queued = asyncio.ensure_future(pool.run(t.write_file, str(side_effect)))
        await asyncio.sleep(0)  # submitted, waiting in the queue
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        gate.set()
        assert await busy == "busy"
        # The pool stays usable and the worker is free: a later task runs.
        assert await pool.run(t.square, 5) == 25
        return queued

    queued = arun(main())
    assert queued.cancelled()
    pool.shutdown(wait=True)
    assert not side_effect.exists(), "the cancelled work item ran"


@ONE_WORKER  # the work under test queues behind one busy worker
def test_cancelling_a_running_call_drops_its_result(pool, tmp_path):
    gate = interpool.Event()

    async def main():
        running = await run_until_started(pool, "late", gate, tmp_path)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        gate.set()
        # The running call finishes; its result arrives to a cancelled future, silently.
        assert await pool.run(t.square, 4) == 16

    arun(main())


@ONE_WORKER  # the work under test queues behind one busy worker
def test_stop_iteration_from_a_task_does_not_lose_the_batch(pool):
    counter, lock = interpool.SharedBuffer(8), interpool.Lock()

    async def main():
        bad = asyncio.ensure_future(pool.run(next, iter([])))
        rest = [asyncio.ensure_future(pool.run(t.square_and_count, i, counter, lock)) for i in range(20)]
        await asyncio.sleep(0)
        # Block the loop until all 21 results are handed over: one batch.
        _probe.wait_for(lambda: memoryview(counter).cast("q")[0] == 20, "every task ran")
        _probe.wait_until_quiet(what="the worker and the delivery thread idle")
        async with asyncio.timeout(TIMEOUT):
            values = await asyncio.gather(*rest)
            with pytest.raises(Exception) as info:  # noqa: PT011 - any exception, but not a hang
                await bad
        return values, info.value

    values, exc = asyncio.run(main())
    assert values == [i * i for i in range(20)]
    assert isinstance(exc, (StopIteration, RuntimeError))


def _posted_to_the_loop(loop):
    """True when results reach ``loop`` straight from the workers (its LoopWaker)."""
    from interpool import _aio

    return _aio.bridge_for(loop).waker is not None


@ONE_WORKER
def test_stop_iteration_from_a_task_becomes_runtime_error(pool):
    """asyncio futures refuse StopIteration: the loop gets RuntimeError, caused by it."""

    async def main():
        assert _posted_to_the_loop(asyncio.get_running_loop())
        with pytest.raises(RuntimeError, match="StopIteration") as info:
            await pool.run(next, iter([]))
        assert await pool.run(t.square, 3) == 9  # the loop still takes results
        return info.value

    exc = arun(main())
    assert isinstance(exc.__cause__, StopIteration)


@ONE_WORKER
def test_interrupting_a_running_call_cancels_its_future(pool, tmp_path):
    """A call stopped in the worker (here by shutdown(interrupt=True)) cancels
    the future it would have completed; the awaiting task sees CancelledError."""
    started = str(tmp_path / "started")
    gate = interpool.Event()

    async def main():
        assert _posted_to_the_loop(asyncio.get_running_loop())
        call = pool.run(t.wait_for_gate, "never", gate, started)
        running = asyncio.ensure_future(call)
        await wait_for_file(started)
        pool.shutdown(wait=False, interrupt=True)
        with pytest.raises(asyncio.CancelledError):
            await running
        return call

    call = arun(main())
    assert call.cancelled()


@ONE_WORKER  # calls queue behind the only worker
def test_a_result_held_back_behind_queued_work_still_arrives(pool, tmp_path):
    """While its pool has queued work the loop holds results back, but not for good.

    The only worker finishes ``first`` with two calls queued behind it, so
    the loop holds that result back; then it runs ``quick`` and blocks in
    ``last`` for as long as the test likes.  Both held results still arrive.
    """
    first_started, last_started = str(tmp_path / "first"), str(tmp_path / "last")
    gate_first, gate_last = interpool.Event(), interpool.Event()
    holds = []
    from interpool import _aio

    original = _aio.LoopBridge._woken

    def woken(self):
        original(self)
        holds.append(self._hold is not None)

    _aio.LoopBridge._woken = woken  # before the loop's bridge is made: its reader calls this
    _restore.append(lambda: setattr(_aio.LoopBridge, "_woken", original))

    async def main():
        assert _posted_to_the_loop(asyncio.get_running_loop())
        first = asyncio.ensure_future(pool.run(t.wait_for_gate, "first", gate_first, first_started))
        await wait_for_file(first_started)
        quick = asyncio.ensure_future(pool.run(t.square, 7))
        last = asyncio.ensure_future(pool.run(t.wait_for_gate, "last", gate_last, last_started))
        # pool.run submits at once in a running loop: both wait behind `first`.
        assert pool.stats().queued == 2
        gate_first.set()
        assert await first == "first"
        assert await quick == 49
        await wait_for_file(last_started)
        assert not last.done()
        gate_last.set()
        return await last

    assert arun(main()) == "last"
    assert any(holds), holds


@ONE_WORKER  # the work under test queues behind one busy worker
def test_shutdown_cancel_futures_cancels_awaiting_tasks(pool, tmp_path):
    gate = interpool.Event()

    async def main():
        busy = await run_until_started(pool, "busy", gate, tmp_path)  # the only worker, until the gate opens
        queued = [asyncio.ensure_future(pool.run(t.square, i)) for i in range(5)]
        await asyncio.sleep(0)  # submitted, waiting in the queue
        pool.shutdown(wait=False, cancel_futures=True)
        gate.set()
        outcomes = await asyncio.gather(*queued, return_exceptions=True)
        return await busy, outcomes

    busy, outcomes = arun(main())
    assert busy == "busy"  # the running call finished
    assert all(isinstance(o, asyncio.CancelledError) for o in outcomes), outcomes


def test_run_in_executor_keeps_working(pool):
    async def main():
        loop = asyncio.get_running_loop()
        single = await loop.run_in_executor(pool, t.square, 9)
        many = await asyncio.gather(*(loop.run_in_executor(pool, t.square, i) for i in range(200)))
        with pytest.raises(t.Boom):
            await loop.run_in_executor(pool, t.boom, "via executor")
        return single, many

    single, many = arun(main())
    assert single == 81
    assert many == [i * i for i in range(200)]


def test_run_after_shutdown_raises(pool):
    pool.shutdown(wait=True)

    async def main():
        with pytest.raises(RuntimeError):
            await pool.run(t.square, 1)

    arun(main())


# ---------------------------------------------------------------- map_async


@pytest.mark.parametrize("chunksize", [None, 1, 7, 1000])
def test_map_async_ordered(pool, chunksize):
    async def main():
        return [x async for x in pool.map_async(t.square, range(300), chunksize=chunksize)]

    assert arun(main()) == [i * i for i in range(300)]


@pytest.mark.parametrize("chunksize", [None, 1, 7])
def test_map_async_unordered_same_multiset(pool, chunksize):
    items = [i % 50 for i in range(300)]

    async def main():
        return [x async for x in pool.map_async(t.square, items, ordered=False, chunksize=chunksize)]

    got = arun(main())
    assert sorted(got) == sorted(i * i for i in items)


def test_map_async_ordered_waits_for_a_slow_first_item(pool):
    async def main():
        items = [("slow", 0.5)] + [(i, 0.0) for i in range(5)]
        first = None
        async for value in pool.map_async(t.sleep_pair, items, chunksize=1):
            first = value
            break
        return first

    assert arun(main()) == "slow"


def test_map_async_unordered_yields_as_completed(pool):  # needs 2+ workers: the slow item holds one
    gate = interpool.Event()  # "slow" ends once the other five have been yielded

    async def main():
        items = [("slow", gate)] + [(i, None) for i in range(5)]
        got = []
        try:
            async for x in pool.map_async(t.gated_pair, items, ordered=False, chunksize=1):
                got.append(x)
                if len(got) == 5:
                    gate.set()
        finally:
            gate.set()
        return got

    got = arun(main())
    assert sorted(got, key=str) == sorted(["slow", 0, 1, 2, 3, 4], key=str)
    assert got[0] != "slow" and got[-1] == "slow"


@pytest.mark.parametrize("chunksize", [None, 1, 3])
def test_map_async_exception_after_earlier_results(pool, chunksize):
    async def main():
        got = []
        with pytest.raises(ValueError, match="bad item 5"):
            async for value in pool.map_async(functools.partial(t.fail_on, bad=5), range(20), chunksize=chunksize):
                got.append(value)
        return got

    assert arun(main()) == [i * 10 for i in range(5)]


def test_map_async_unordered_exception_propagates(pool):
    async def main():
        got = []
        with pytest.raises(ValueError, match="bad item 5"):
            async for value in pool.map_async(
                functools.partial(t.fail_on, bad=5), range(20), ordered=False, chunksize=1
            ):
                got.append(value)
        return got

    got = arun(main())
    assert 50 not in got
    assert set(got) <= {i * 10 for i in range(20)}


@pytest.mark.parametrize("how", ["aclosing", "plain break"])
@ONE_WORKER  # the work under test queues behind one busy worker
def test_map_async_breaking_out_cancels_the_rest(pool, tmp_path, how):
    ran = tmp_path / "ran"
    ran.mkdir()
    n = 20

    def started():
        return {int(p.name) for p in ran.iterdir()}

    async def main():
        # Item 0 returns at once; the others wait on the gate, so nothing
        # but the closing decides how many start, however slow the machine.
        agen = pool.map_async(functools.partial(t.touch_then_wait, str(ran), gate), range(n), chunksize=1)
        if how == "aclosing":
            async with contextlib.aclosing(agen) as it:
                async for first in it:
                    break
        else:
            async for first in agen:
                break
            del agen
            gc.collect()  # the loop's asyncgen finalizer schedules aclose()
            await _until_other_tasks_end()
        # Closed: what had not started by now never will.
        return first, started()

    gate = interpool.Event()
    first, at_close = arun(main())
    assert first == 0
    gate.set()  # an item that started (and was not interrupted) may finish
    pool.shutdown(wait=True)
    done = started()
    # Items start in order on the one worker; the one it may have been
    # taking as the iteration closed is the only newcomer.
    assert done == set(range(len(done))), done
    assert len(done) <= len(at_close) + 1, (sorted(at_close), sorted(done))
    assert len(done) < n, "nothing was cancelled"


async def _until_other_tasks_end():
    """Let the loop run until no task but the caller's is left (test code: yields with a backoff)."""
    me = asyncio.current_task()
    deadline = time.monotonic() + TIMEOUT
    pause = 0.0
    while any(task is not me and not task.done() for task in asyncio.all_tasks()):
        assert time.monotonic() < deadline, "the generator was never closed"
        await asyncio.sleep(pause)
        pause = min(max(pause * 2, 0.0005), 0.01)


def test_map_async_accepts_async_iterables(pool):
    async def numbers():
        for i in range(50):
            if i % 10 == 0:
                await asyncio.sleep(0)
            yield i

    async def main():
        ordered = [x async for x in pool.map_async(t.square, numbers(), chunksize=4)]
        unordered = [x async for x in pool.map_async(t.square, numbers(), ordered=False)]
        return ordered, unordered

    ordered, unordered = arun(main())
    assert ordered == [i * i for i in range(50)]
    assert sorted(unordered) == ordered


def test_map_async_empty(pool):
    async def main():
        return [x async for x in pool.map_async(t.square, [])]

    assert arun(main()) == []


def test_map_async_rejects_bad_chunksize(pool):
    async def main():
        with pytest.raises(ValueError):
            async for _ in pool.map_async(t.square, range(3), chunksize=0):
                pass

    arun(main())


# ---------------------------------------------------------------- to_interpreter


def test_to_interpreter_is_to_thread_in_an_interpreter(monkeypatch):
    monkeypatch.setattr(t, "MARKER", "set in main")

    async def main():
        value = await interpool.to_interpreter(t.describe_call, 1, 2, key="v")
        info = await interpool.to_interpreter(t.where)
        with pytest.raises(t.Boom) as exc:
            await interpool.to_interpreter(t.boom, "remote")
        many = await asyncio.gather(*(interpool.to_interpreter(t.square, i) for i in range(100)))
        return value, info, exc.value, many

    value, info, exc, many = arun(main())
    assert value == ((1, 2), {"key": "v"})
    assert info["marker"] == "default" and info["modules_id"] != id(sys.modules)
    assert type(exc.__cause__) is interpool.RemoteTraceback
    assert many == [i * i for i in range(100)]


def test_default_pool_is_one_lazily_created_pool():
    first = interpool.default_pool()
    assert isinstance(first, interpool.Pool)
    assert interpool.default_pool() is first
    assert first.workers == interpool.default_workers()

    seen = []
    barrier = threading.Barrier(4)

    def grab():
        barrier.wait()
        seen.append(interpool.default_pool())

    threads = [threading.Thread(target=grab) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(TIMEOUT)
    assert len(seen) == 4 and all(p is first for p in seen)


def test_default_pool_is_created_only_on_first_use(tmp_path):
    proc = run_python(
        tmp_path,
        """
        import threading
        import interpool
        import interpool._default as d
        before = (d._pool is None, threading.active_count())
        p = interpool.default_pool()
        print(before[0], before[1], p is interpool.default_pool())
        """,
        name="lazy.py",
    )
    assert proc.returncode == 0, proc.stderr
    lazy, threads, same = proc.stdout.split()
    assert lazy == "True" and threads == "1" and same == "True"
    assert proc.stderr == ""


def test_to_interpreter_process_exits_cleanly(tmp_path):
    proc = run_python(
        tmp_path,
        """
        import asyncio
        import interpool
        import _async_tasks as t

        async def main():
            a = await interpool.to_interpreter(t.square, 12)
            b = await asyncio.gather(*(interpool.to_interpreter(t.square, i) for i in range(50)))
            return a, sum(b)

        print(asyncio.run(main()))
        # No shutdown: the default pool ends at exit.
        """,
        name="use_default.py",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str((144, sum(i * i for i in range(50))))
    assert proc.stderr == ""


def test_to_interpreter_exit_with_work_still_running(tmp_path):
    """The loop ends while a to_interpreter call runs: the exit still is clean."""
    proc = run_python(
        tmp_path,
        """
        import asyncio
        import interpool
        import _stop_tasks as t

        async def main():
            started = interpool.Event()
            asyncio.ensure_future(interpool.to_interpreter(t.sleep_in_c, started, 0.3))
            # The task has started (and sleeps 0.3 s more) when the loop ends.
            if not await asyncio.to_thread(started.wait, 60):
                raise SystemExit("the task never started")
            return "left"

        print(asyncio.run(main()))
        """,
        name="exit_running.py",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "left"
    assert proc.stderr == ""


# ---------------------------------------------------------------- bad input


def _assert_closed(coro):
    # A closed coroutine has no frame: it will never warn "was never awaited".
    assert coro.cr_frame is None


@INTERPRETER_EXECUTORS
def test_coroutine_object_to_pool_run_is_a_type_error(pool):
    coro = t.acoro_square(3)

    async def main():
        with pytest.raises(TypeError, match="pass the function and its arguments") as info:
            await pool.run(coro)
        return str(info.value)

    message = arun(main())
    assert "run(fn, x)" in message
    _assert_closed(coro)


def test_coroutine_object_to_async_pool_run_is_a_type_error():
    coro = t.acoro_square(3)

    async def main():
        async with interpool.AsyncPool(1) as apool:
            with pytest.raises(TypeError, match=r"pass the (coroutine )?function and its arguments"):
                await apool.run(coro)

    arun(main())
    _assert_closed(coro)


def test_plain_function_to_async_pool_run_is_a_type_error():
    async def main():
        async with interpool.AsyncPool(1) as apool:
            with pytest.raises(TypeError) as info:
                await apool.run(t.not_a_coroutine_function, 1)
        return str(info.value)

    message = arun(main())
    assert "Pool.run" in message or "to_interpreter" in message


def test_coroutine_function_to_pool_run_is_a_type_error(pool):
    # HybridPool: the call is marked isolated (conftest), which must not hide
    # that it is a coroutine function.
    async def main():
        with pytest.raises(TypeError, match="AsyncPool"):
            await pool.run(t.acoro_square, 3)
        with pytest.raises(TypeError, match="AsyncPool"):
            async for _ in pool.map_async(t.acoro_square, [1]):
                pass
        with pytest.raises(TypeError, match="AsyncPool"):
            await interpool.to_interpreter(t.acoro_square, 3)
        # Still usable afterwards.
        return await pool.run(t.square, 3)

    assert arun(main()) == 9


@INTERPRETER_EXECUTORS
def test_coroutine_object_to_submit_is_a_type_error_with_hint(pool):
    coro = t.acoro_square(3)
    with pytest.raises(TypeError, match="pass the function and its arguments"):
        pool.submit(coro)
    _assert_closed(coro)


@INTERPRETER_EXECUTORS
def test_no_never_awaited_warning(pool):
    async def main():
        with pytest.raises(TypeError):
            await pool.run(t.acoro_square(1))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arun(main())
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_second_loop_in_another_thread(pool):
    """Two event loops in two threads await the same pool at the same time."""
    barrier = threading.Barrier(2, timeout=TIMEOUT)
    results = {}

    async def work(offset):
        barrier.wait()  # both loops are running now
        out = []
        for _ in range(5):
            out += await asyncio.gather(*(pool.run(t.square, offset + i) for i in range(100)))
        return out

    def other():
        try:
            results["thread"] = arun(work(1000))
        except BaseException as exc:  # pragma: no cover - reported below
            results["thread"] = exc

    th = threading.Thread(target=other)
    th.start()
    try:
        results["main"] = arun(work(0))
    finally:
        th.join(TIMEOUT)
    assert not th.is_alive()
    assert results["main"] == [i * i for i in range(100)] * 5
    assert results["thread"] == [(1000 + i) ** 2 for i in range(100)] * 5


CLOSED_LOOP_SCRIPT = textwrap.dedent(
    """
    import asyncio
    import gc
    import json
    import logging
    import sys
    import threading

    import interpool
    import _async_tasks as t

    problems = []
    sys.unraisablehook = lambda u: problems.append("unraisable: %r" % (u.exc_value,))
    threading.excepthook = lambda a: problems.append("thread: %r" % (a.exc_value,))
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logging.getLogger("asyncio").addHandler(Keep())
    logging.getLogger("asyncio").propagate = False

    pool = interpool.Pool(1)
    gate = interpool.Event()  # the first call, and all behind it, end after the loop closed

    async def start(loop):
        tasks = [asyncio.ensure_future(pool.run(t.wait_for_gate, "late", gate))]
        tasks += [asyncio.ensure_future(pool.run(t.square, i)) for i in range(100)]
        tasks.append(loop.run_in_executor(pool, t.sleep_then, "late", 0.05))
        agen = pool.map_async(t.square, range(100), chunksize=1)
        tasks.append(asyncio.ensure_future(agen.__anext__()))
        for _ in range(5):
            await asyncio.sleep(0)  # every call is submitted
        return tasks

    loop = asyncio.new_event_loop()
    tasks = loop.run_until_complete(start(loop))
    loop.close()  # with results in flight
    gate.set()
    pool.shutdown(wait=True)  # every result is delivered (to nowhere)
    pending = sum(not task.done() for task in tasks)

    # The loop was closed before results arrived: they were dropped.  A new
    # loop still works with the same pool object's siblings.
    pool2 = interpool.Pool(1)
    ok = asyncio.run(pool2.run(t.square, 6))
    pool2.shutdown()
    del tasks
    gc.collect()
    print(json.dumps({"pending": pending, "ok": ok, "problems": problems, "records": records}))
    """
)


def test_loop_closed_while_results_in_flight(tmp_path):
    proc = run_python(tmp_path, CLOSED_LOOP_SCRIPT, name="closed_loop.py")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    report = json.loads(proc.stdout)
    assert report["ok"] == 36
    assert report["problems"] == []
    assert report["pending"] > 0  # nothing completed on the closed loop
    # Only asyncio's own note about tasks destroyed while pending.
    assert all("destroyed but it is pending" in r for r in report["records"]), report["records"]


@ONE_WORKER  # the work under test queues behind one busy worker
def test_loop_closed_in_process_then_pool_still_works(pool):
    """Same as above in this process: the pool and other loops are unaffected."""
    loop = asyncio.new_event_loop()

    gate = interpool.Event()

    async def start():
        fut = asyncio.ensure_future(pool.run(t.wait_for_gate, "late", gate))
        await asyncio.sleep(0)  # submitted
        return fut

    fut = loop.run_until_complete(start())
    loop.close()
    gate.set()  # the call ends after its loop closed
    assert pool.submit(t.square, 3).result(TIMEOUT) == 9  # queued behind the late call
    assert not fut.done()
    fut._log_destroy_pending = False  # asyncio would log the pending task at GC

    async def again():
        return await pool.run(t.square, 8)

    assert arun(again()) == 64


# ------------------------------------------------- results for closed loops


def test_a_result_posted_to_a_closed_loop_is_dropped_and_the_loop_freed(pool):
    import select
    import weakref

    from _delivery_tasks import finish_when
    from interpool import _aio

    release = interpool.Event()
    seen = {}

    async def leave_work_behind():
        loop = asyncio.get_running_loop()
        seen["loop"] = weakref.ref(loop)
        seen["fd"] = _aio.bridge_for(loop)._waker.fileno()
        # Not awaited: asyncio.run() closes the loop while the task runs.
        seen["future"] = weakref.ref(pool.run(finish_when, release, 7))

    asyncio.run(leave_work_behind())
    assert seen["loop"]() is not None and seen["loop"]().is_closed()
    release.set()
    # The worker posts the result to the closed loop's waker: its eventfd
    # becomes readable (nobody watches it any more).
    readable, _, _ = select.select([seen["fd"]], [], [], TIMEOUT)
    assert readable, "the result never reached the closed loop's waker"
    gc.collect()
    assert seen["loop"]() is not None  # the posted task holds its future, which holds the loop

    async def use_again():
        return await pool.run(abs, -3)

    assert asyncio.run(use_again()) == 3  # a new loop's first use sweeps the closed one
    gc.collect()
    assert seen["future"]() is None and seen["loop"]() is None
