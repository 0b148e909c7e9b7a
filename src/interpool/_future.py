"""interpool.Future: a concurrent.futures.Future backed by an engine task."""

import time
from concurrent.futures import _base

__all__ = ["Future"]

_PENDING = _base.PENDING


class Future(_base.Future):
    """A ``concurrent.futures.Future`` for work running in a worker interpreter.

    It is a real Future: ``concurrent.futures.wait``, ``as_completed``,
    ``add_done_callback`` and ``asyncio.wrap_future`` work as usual.  Two things
    differ from a plain Future, both invisible to correct callers:

    * ``result()`` and ``exception()`` wait in the engine without holding the
      GIL and take the result straight from the worker, so a caller blocked on
      one future does not depend on the pool's delivery thread.
    * ``running()`` reports whether a worker is running the task right now,
      and ``cancel()`` succeeds only while the task is still queued.
    """

    _task = None  # the engine's handle, set by the pool right after creation

    def cancel(self):
        """Cancel the task if no worker has started it.  Returns whether it is cancelled."""
        task = self._task
        if task is not None and self._state == _PENDING:
            if not task.cancel():
                return False
            self._mark_cancelled()
            return True
        return super().cancel()

    def _mark_cancelled(self):
        # The engine already dropped the task: move the future to
        # CANCELLED_AND_NOTIFIED, waking result() callers and wait() waiters.
        if super().cancel():
            self.set_running_or_notify_cancel()

    def running(self):
        task = self._task
        if task is not None and self._state == _PENDING:
            return task.running
        return super().running()

    def done(self):
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

    def result(self, timeout=None):
        return super().result(self._settle(timeout))

    def exception(self, timeout=None):
        return super().exception(self._settle(timeout))

    result.__doc__ = _base.Future.result.__doc__
    exception.__doc__ = _base.Future.exception.__doc__


Future.__module__ = "interpool"
