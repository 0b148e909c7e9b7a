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
from conftest import EXECUTOR_KINDS

# The executors with one worker (conftest.PoolKind; HybridPool's callables are
# marked isolated).  AsyncPool is tested for this in test_async_pool.py.
pytestmark = [pytest.mark.kinds(*EXECUTOR_KINDS), pytest.mark.workers(1)]


class Scenario:
    """A short task, then a task that blocks until released, on one worker."""

    def __init__(self, pool):
        self.go = interpool.Event()
        self.started = interpool.Event()
        self.release = interpool.Event()
        self.pool = pool
        self.second = None

    def submit(self):
        # Both tasks are queued before the first can finish, so its worker
        # finds the second one waiting the moment the first is done.
        self.first = self.pool.submit(finish_when, self.go, "first")
        self.second = self.pool.submit(block_after_start, self.started, self.release, "second")
        return self.first, self.second

    def finish_first(self):
        """Let the first task end, and wait until the worker runs the second."""
        self.go.set()
        assert self.started.wait(WAIT), "the second task never started"


@pytest.fixture
def s(pool):
    """The Scenario on the pool under test; afterwards the second task is released and must end."""
    scenario = Scenario(pool)
    yield scenario
    scenario.release.set()
    if scenario.second is not None:  # submitted, as a concurrent.futures.Future
        assert scenario.second.result(WAIT) == "second"


def test_done_callback_fires_while_the_worker_runs_the_next_task(s):
    first, second = s.submit()
    called = threading.Event()
    first.add_done_callback(lambda f: called.set())
    s.finish_first()
    assert called.wait(WAIT), "the done-callback waited for the next task"
    assert not second.done()
    assert first.result() == "first"


def test_wait_returns_a_task_that_finished_before_a_blocked_one(s):
    first, second = s.submit()
    s.finish_first()
    done, not_done = cf.wait([first, second], timeout=WAIT, return_when=cf.FIRST_COMPLETED)
    assert done == {first}
    assert not_done == {second}


def test_as_completed_yields_a_task_while_the_next_one_blocks(s):
    first, second = s.submit()
    s.finish_first()
    completed = cf.as_completed([second, first], timeout=WAIT)
    assert next(completed) is first
    assert not second.done()


def test_wrap_future_completes_while_the_next_task_blocks(s):
    first, second = s.submit()

    async def main():
        wrapped = asyncio.wrap_future(first)
        await asyncio.get_running_loop().run_in_executor(None, s.finish_first)
        assert await asyncio.wait_for(wrapped, WAIT) == "first"
        assert not second.done()

    asyncio.run(main())


def test_await_pool_run_completes_while_the_next_task_blocks(pool, s):
    async def main():
        loop = asyncio.get_running_loop()
        first = pool.run(finish_when, s.go, "first")
        second = pool.run(block_after_start, s.started, s.release, "second")
        await loop.run_in_executor(None, s.finish_first)
        try:
            assert await asyncio.wait_for(first, WAIT) == "first"
            assert not second.done()
        finally:
            s.release.set()
        assert await second == "second"

    asyncio.run(main())
