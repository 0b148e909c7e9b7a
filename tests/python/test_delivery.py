"""A finished task is delivered at once, whatever its worker does next.

Every test runs a short task and then, on the same single worker, a task that
blocks until the test releases it.  The first task's future must complete
(done-callbacks, wait, as_completed, asyncio) while the second one is still
blocked: a worker must not hold finished tasks back while it runs the next
one.  No timing is asserted: the tests wait on events, with a generous limit
only so that a regression fails instead of hanging.
"""

import asyncio
import concurrent.futures as cf
import threading

import pytest

import interpool
from _delivery_tasks import WAIT, block_after_start, finish_when

KINDS = ["Pool", "InterpreterPoolExecutor", "HybridPool"]


@pytest.fixture(params=KINDS)
def one_worker(request):
    """(pool with one worker, wrap): wrap(fn) is what to submit for fn (isolated for HybridPool)."""
    kind = request.param
    if kind == "Pool":
        pool, wrap = interpool.Pool(1), lambda fn: fn
    elif kind == "InterpreterPoolExecutor":
        pool, wrap = interpool.InterpreterPoolExecutor(max_workers=1), lambda fn: fn
    else:
        pool, wrap = interpool.HybridPool(1), interpool.isolated
    yield pool, wrap
    pool.shutdown(wait=True, cancel_futures=True)


class Scenario:
    """A short task, then a task that blocks until released, on one worker."""

    def __init__(self, pool, wrap):
        self.go = interpool.Event()
        self.started = interpool.Event()
        self.release = interpool.Event()
        self.pool, self.wrap = pool, wrap

    def submit(self):
        # Both tasks are queued before the first can finish, so its worker
        # finds the second one waiting the moment the first is done.
        self.first = self.pool.submit(self.wrap(finish_when), self.go, "first")
        self.second = self.pool.submit(self.wrap(block_after_start), self.started, self.release, "second")
        return self.first, self.second

    def finish_first(self):
        """Let the first task end, and wait until the worker runs the second."""
        self.go.set()
        assert self.started.wait(WAIT), "the second task never started"

    def end(self):
        self.release.set()
        assert self.second.result(WAIT) == "second"


def test_done_callback_fires_while_the_worker_runs_the_next_task(one_worker):
    s = Scenario(*one_worker)
    first, second = s.submit()
    called = threading.Event()
    first.add_done_callback(lambda f: called.set())
    s.finish_first()
    try:
        assert called.wait(WAIT), "the done-callback waited for the next task"
        assert not second.done()
        assert first.result() == "first"
    finally:
        s.end()


def test_wait_returns_a_task_that_finished_before_a_blocked_one(one_worker):
    s = Scenario(*one_worker)
    first, second = s.submit()
    s.finish_first()
    try:
        done, not_done = cf.wait([first, second], timeout=WAIT, return_when=cf.FIRST_COMPLETED)
        assert done == {first}
        assert not_done == {second}
    finally:
        s.end()


def test_as_completed_yields_a_task_while_the_next_one_blocks(one_worker):
    s = Scenario(*one_worker)
    first, second = s.submit()
    s.finish_first()
    try:
        completed = cf.as_completed([second, first], timeout=WAIT)
        assert next(completed) is first
        assert not second.done()
    finally:
        s.end()


def test_wrap_future_completes_while_the_next_task_blocks(one_worker):
    s = Scenario(*one_worker)
    first, second = s.submit()

    async def main():
        wrapped = asyncio.wrap_future(first)
        await asyncio.get_running_loop().run_in_executor(None, s.finish_first)
        assert await asyncio.wait_for(wrapped, WAIT) == "first"
        assert not second.done()

    try:
        asyncio.run(main())
    finally:
        s.end()


def test_await_pool_run_completes_while_the_next_task_blocks(one_worker):
    pool, wrap = one_worker
    s = Scenario(pool, wrap)

    async def main():
        loop = asyncio.get_running_loop()
        first = pool.run(wrap(finish_when), s.go, "first")
        s.second = pool.run(wrap(block_after_start), s.started, s.release, "second")
        await loop.run_in_executor(None, s.finish_first)
        try:
            assert await asyncio.wait_for(first, WAIT) == "first"
            assert not s.second.done()
        finally:
            s.release.set()
        assert await s.second == "second"

    asyncio.run(main())
