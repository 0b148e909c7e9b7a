"""interpool.Future: a concurrent.futures.Future backed by an engine task."""

from __future__ import annotations

import threading
import time
from concurrent.futures import _base

__all__ = ["Future"]

# For type checkers, which read a name TYPE_CHECKING as typing's (importing
# typing here would cost every caller that never type-checks).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    from . import _core

    _T = TypeVar("_T")

_PENDING = _base.PENDING
_FINISHED = _base.FINISHED


class FutureContract:
    """Every name of a Future that the binding touches, written down once.

    The engine completes most futures without calling ``set_result``: a
    future that nobody has observed yet (no thread waits on it, no waiter of
    ``wait``/``as_completed`` and no done-callback is registered) needs no
    notification, so the binding (``src/python/delivery.cpp``:
    ``complete_unobserved``, the one C++ function that does it) sets its
    ``state`` to ``finished`` and its ``result`` (or ``exception``) straight
    in its ``__dict__``, all while holding the GIL.  That is sound because:

    * ``observed``: ``Future._condition`` (below, the one Python function
      that marks a future observed) creates the Condition lazily under this
      name, and ``concurrent.futures._base`` reaches ``_waiters`` and
      ``_done_callbacks`` only through ``_condition`` (``wait`` and
      ``as_completed`` through ``_AcquireFutures``).  The fast path refuses a
      future whose ``__dict__`` holds it, and ``set_result`` runs instead.
    * ``state``, ``result``, ``exception``, ``pending`` and ``finished`` are
      the names and constants of ``concurrent.futures._base.Future``, which
      reads them back in ``done()``, ``result()``, ``add_done_callback`` and
      ``wait``.
    * ``future_type``: the fast path completes instances of it only
      (interpool.Future); any other future gets ``set_result``.
    * ``mark_cancelled`` is the method the binding calls to cancel a future
      whose task the engine dropped.

    The binding reads this class on its first delivery in an interpreter;
    ``tests/python/test_future_contract.py`` pins it against the running
    Python's ``concurrent.futures._base``.
    """

    __slots__ = ()
    future_type: type | None = None  # interpool.Future, set below
    observed = "_cond"
    state = "_state"
    result = "_result"
    exception = "_exception"
    pending = _PENDING
    finished = _FINISHED
    mark_cancelled = "_mark_cancelled"


# Generic for type checkers: _base.Future["_T"] is _base.Future at run time.
class Future(_base.Future["_T"]):
    """A ``concurrent.futures.Future`` for work running in a worker interpreter.

    It is a real Future: ``concurrent.futures.wait``, ``as_completed``,
    ``add_done_callback`` and ``asyncio.wrap_future`` work as usual.  Two things
    differ from a plain Future, both invisible to correct callers:

    * ``result()`` and ``exception()`` wait in the engine without holding the
      GIL and take the result straight from the worker, so a caller blocked on
      one future does not depend on the pool's delivery thread.
    * ``running()`` reports whether a worker is running the task right now,
      and ``cancel()`` succeeds only while the task is still queued.

    And one thing a plain Future cannot do: :meth:`interrupt` stops a task
    that already runs.
    """

    _task: _core.Task | None = None  # the engine's handle, set by the pool right after creation

    def __init__(self) -> None:
        # As _base.Future.__init__, less the Condition: most futures are
        # completed before anyone waits on them, so it is made on first use
        # (see FutureContract).
        self._state = _PENDING
        self._result = None
        self._exception = None
        self._waiters = []
        self._done_callbacks: list[Callable[[Future[_T]], object]] = []

    @property
    def _condition(self):
        # Whoever waits, registers a waiter or adds a callback goes through
        # here first.  The engine completes a future without notifying only
        # while "_cond" (FutureContract.observed) is absent, so no one can be
        # left waiting.  setdefault is atomic: racing creators all get the
        # same Condition.
        cond = self.__dict__.get("_cond")
        if cond is None:
            cond = self.__dict__.setdefault("_cond", threading.Condition())
        return cond

    _interrupt_on_cancel = False  # asyncio.to_thread(isolated(f)): a cancel also interrupts

    def cancel(self) -> bool:
        """Cancel the task if no worker has started it.  Returns whether it is cancelled."""
        task = self._task
        if task is not None and self._state == _PENDING:
            if not task.cancel():
                if self._interrupt_on_cancel:
                    # asyncio cancelled the awaiting side: stop the work too,
                    # while keeping cancel()'s contract (False once running).
                    task.interrupt()
                return False
            self._mark_cancelled()
            return True
        return super().cancel()

    def interrupt(self) -> bool:
        """Stop the task, even if it already runs.

        A queued task is cancelled.  A running one gets
        :class:`interpool.TaskInterrupted` raised in its Python code, within
        milliseconds even in a tight loop; once it has stopped, this future
        is cancelled.  A task that finishes first keeps its result.  Code
        blocked in C (``time.sleep``, a blocking read) cannot see the
        exception: if the task has not stopped after the pool's
        ``interrupt_grace``, its worker is abandoned and replaced, and this
        future is cancelled.

        Returns True if the task was cancelled or asked to stop, False if it
        had already finished.
        """
        if self.cancel():
            return True
        task = self._task
        return task is not None and self._state == _PENDING and task.interrupt()

    def _mark_cancelled(self):
        # The engine already dropped the task: move the future to
        # CANCELLED_AND_NOTIFIED, waking result() callers and wait() waiters.
        if super().cancel():
            self.set_running_or_notify_cancel()

    def running(self) -> bool:
        task = self._task
        if task is not None and self._state == _PENDING:
            return task.running
        return super().running()

    def done(self) -> bool:
        task = self._task
        if task is not None and self._state == _PENDING and task.finished:
            task.settle(0.0)
        return super().done()

    def _settle(self, timeout):
        """Wait for the task and deliver its outcome; returns the time left."""
        task = self._task
        if task is None or self._state != _PENDING:
            return timeout
        if timeout is None:
            task.settle(None)
            return None
        end = time.monotonic() + timeout
        if not task.settle(timeout):
            raise TimeoutError()
        return max(0.0, end - time.monotonic())

    def result(self, timeout: float | None = None) -> _T:
        if self._state == _PENDING:
            timeout = self._settle(timeout)
        if self._state == _FINISHED:
            if self._exception is not None:
                try:
                    raise self._exception
                finally:
                    self = None  # type: ignore[assignment]  # break the frame <-> exception cycle, as _base does
            return self._result  # type: ignore[return-value]  # _T, as the state is FINISHED
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if self._state == _PENDING:
            timeout = self._settle(timeout)
        if self._state == _FINISHED:
            return self._exception
        return super().exception(timeout)

    result.__doc__ = _base.Future.result.__doc__
    exception.__doc__ = _base.Future.exception.__doc__


FutureContract.future_type = Future
Future.__module__ = "interpool"
