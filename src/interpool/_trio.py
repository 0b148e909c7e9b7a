"""trio support: ``await pool.run(...)`` and ``await to_interpreter(...)`` under trio.

Also what anyio's trio backend uses.  The shape is asyncio's (``_aio``): the
engine's delivery thread hands results to a :class:`TrioBridge`, one per
``trio.run``, which wakes trio once per batch with the run's
``TrioToken.run_sync_soon``; each awaiting task sleeps in
``trio.lowlevel.wait_task_rescheduled`` and is rescheduled with its outcome.

Cancellation follows trio's rules.  A call still queued is dropped at once.
A running one is interrupted (``TaskInterrupted`` in its code, see
:meth:`interpool.Future.interrupt`) and the await ends when it has stopped,
with ``trio.Cancelled``; as with ``trio.to_thread.run_sync``, nothing runs
on behind a cancelled call (code blocked in C is abandoned after the pool's
``interrupt_grace``).  A call that finished first returns its result, and
the cancelled scope raises at the next checkpoint.
"""

import asyncio
import concurrent.futures
import threading

import outcome
import trio

from . import _core

__all__ = ["run"]

_bridge_var = trio.lowlevel.RunVar("interpool_bridge")


class TrioBridge:
    """Completes the calls of one ``trio.run`` with results from other threads."""

    __slots__ = ("_token", "_pending", "_lock")
    waker = None  # no LoopWaker: the engine always calls push_many

    def __init__(self, token):
        self._token = token
        self._pending = []
        self._lock = threading.Lock()  # guards _pending: pushers run on other threads

    def push(self, call, value, is_exception):
        """Queue one outcome for ``call``; any thread, with the GIL."""
        self.push_many([_core.Delivery(future=call, outcome=value, is_exception=is_exception)])

    def push_many(self, items):
        """Queue outcomes, a list of ``_core.Delivery`` whose ``future`` is a
        ``_Call``; only the first of a batch wakes trio.  Dropped if the run
        has ended (nobody awaits them)."""
        with self._lock:
            first = not self._pending
            self._pending.extend(items)
        if first:
            try:
                self._token.run_sync_soon(self._drain)
            except trio.RunFinishedError:
                with self._lock:
                    self._pending.clear()

    def _drain(self):
        with self._lock:
            batch, self._pending = self._pending, []
        for item in batch:
            item.future.deliver(item.outcome, item.is_exception)


class _Call:
    """One awaited call: what the engine completes (through the bridge)."""

    __slots__ = ("task", "engine_task", "raise_cancel", "finished")

    def __init__(self, task):
        self.task = task
        self.engine_task = None
        self.raise_cancel = None  # set when trio cancelled the await
        self.finished = False

    def done(self):
        return self.finished

    def deliver(self, value, is_exception):
        """Reschedule the awaiting task with the call's outcome (in trio's thread)."""
        if self.finished:
            return
        self.finished = True
        if not is_exception:
            result = outcome.Value(value)
        elif isinstance(value, asyncio.CancelledError):  # the engine stopped or dropped it
            if self.raise_cancel is not None:
                result = outcome.capture(self.raise_cancel)  # trio.Cancelled, as trio wants
            else:  # shutdown(cancel_futures=True), or an interrupt() not from trio
                result = outcome.Error(concurrent.futures.CancelledError("the task was cancelled"))
        else:
            result = outcome.Error(value)
        trio.lowlevel.reschedule(self.task, result)


def _bridge():
    try:
        return _bridge_var.get()
    except LookupError:
        bridge = TrioBridge(trio.lowlevel.current_trio_token())
        _bridge_var.set(bridge)
        return bridge


async def run(pool, fn, args, kwargs, timeout):
    """Run ``fn(*args, **kwargs)`` on ``pool`` and await it in trio."""
    await trio.lowlevel.checkpoint_if_cancelled()
    call = _Call(trio.lowlevel.current_task())
    call.engine_task = pool._start(call, fn, args, kwargs, _bridge(), timeout)

    def abort(raise_cancel):
        call.raise_cancel = raise_cancel
        if call.engine_task.cancel():  # still queued: it will never run
            call.finished = True
            return trio.lowlevel.Abort.SUCCEEDED
        call.engine_task.interrupt()  # running: stop it, and wait until it has stopped
        return trio.lowlevel.Abort.FAILED

    return await trio.lowlevel.wait_task_rescheduled(abort)
