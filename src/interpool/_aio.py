"""asyncio support: completing asyncio futures from the engine, in batches.

The engine's delivery thread hands results to a :class:`LoopBridge`, one per
event loop.  The bridge collects them and wakes its loop once per batch: one
``call_soon_threadsafe`` serves every result that arrived meanwhile.
"""

import asyncio
import collections.abc
import inspect
import sys
import threading
import types
import weakref

from . import _core, _errors
from ._isolated import isolated

__all__ = ["LoopBridge", "RunFuture", "bridge_for", "check_not_coroutine", "running_loop", "warm_up_task_parser"]

# The running loop of this thread, or None: the cheap form of get_running_loop().
running_loop = asyncio.events._get_running_loop


class RunFuture(asyncio.Future):
    """What ``Pool.run()`` returns inside a running event loop.

    An asyncio Future, so ``await``, ``asyncio.gather`` and ``wait_for`` use
    it as it is (no Task per call), and also a coroutine, so that
    ``TaskGroup.create_task`` and ``loop.create_task`` accept it: driving it
    as a coroutine drives its own ``__await__``.  Cancelling it cancels the
    work if no worker has started it, and interrupts it if one has.
    """

    __slots__ = ("_interpool_task", "_awaiting")
    _interpool_task: _core.Task

    def cancel(self, msg=None):
        task = getattr(self, "_interpool_task", None)
        if task is not None and not self.done() and not task.cancel():
            task.interrupt()  # already running: stop it in the worker
        return super().cancel(msg)

    # The coroutine protocol (send/throw/close), over self.__await__().
    def _awaiter(self):
        try:
            return self._awaiting
        except AttributeError:
            self._awaiting = self.__await__()
            return self._awaiting

    def send(self, value):
        return self._awaiter().send(value)

    def throw(self, typ, val=None, tb=None):
        if val is None and tb is None:
            return self._awaiter().throw(typ)
        return self._awaiter().throw(typ, val, tb)

    def close(self):
        self._awaiter().close()


collections.abc.Coroutine.register(RunFuture)


# How long a loop holds results back, at most, while their pools still have
# queued work (LoopBridge._woken).  Epoll counts whole milliseconds.
HOLD_SECONDS = 0.001


class LoopBridge:
    """Completes futures of one event loop with results from other threads.

    It holds its loop weakly: the registry below maps each loop to its
    bridge, and a bridge that kept its loop alive would keep every loop that
    ever used a pool alive for good.  Work in flight keeps the loop alive
    anyway, through its futures.

    The loop watches the bridge's LoopWaker (an eventfd) with
    ``add_reader``.  Workers post the finished tasks of this loop's calls
    to the waker, and the loop decodes and completes them on its own
    thread: one hop from worker to loop.  Results that come through the
    delivery thread (cancellations, a broken pool) are queued on
    ``_pending`` under the loop's GIL, and the eventfd is signalled only
    after that thread has released the GIL, so the woken loop never waits
    for it.  One signal serves everything queued before the loop drains.
    A loop without ``add_reader`` is woken with ``call_soon_threadsafe``.
    """

    __slots__ = ("_loop", "_pending", "_lock", "_waker", "_hold", "__weakref__")

    def __init__(self, loop):
        # Made on the loop's own thread (bridge_for runs in the running loop).
        self._loop = weakref.ref(loop)
        self._pending = []
        self._lock = threading.Lock()  # guards _pending: pushers run on other threads
        self._waker = None
        self._hold = None  # the timer that ends a hold (see _woken)
        try:
            waker = _core.LoopWaker()
            loop.add_reader(waker.fileno(), self._woken)
        except (NotImplementedError, AttributeError, OSError):
            return  # a loop that cannot watch a file descriptor
        self._waker = waker

    @property
    def waker(self):
        """The LoopWaker this loop watches, or None: the engine posts the
        tasks of this bridge straight to it (part of the binding's contract)."""
        return self._waker

    def push(self, future, outcome, is_exception):
        """Queue one result for ``future``; called with the GIL held, any thread."""
        waker = self.push_many([_core.Delivery(future=future, outcome=outcome, is_exception=is_exception)])
        if waker is not None:
            waker.signal()

    def push_many(self, items):
        """Queue results, a list of ``_core.Delivery``; any thread.

        Only the first results of a batch need a wake-up.  Returns the
        LoopWaker the caller must signal (the engine's delivery thread does
        so after releasing the GIL), or None when no signal is needed.  If
        the loop is closed, the results are dropped: nobody can await them
        any more.
        """
        with self._lock:
            first = not self._pending
            self._pending.extend(items)
        if not first:
            return None
        loop = self._loop()
        try:
            if loop is None or loop.is_closed():  # gone, with every future that belonged to it
                raise RuntimeError("the event loop is closed")
            if self._waker is not None:
                return self._waker
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed
            self.discard()
        return None

    def discard(self):
        """Drop the queued results (the loop is closed)."""
        with self._lock:
            self._pending.clear()
        if self._waker is not None:
            self._waker.discard()

    def _woken(self):
        # Workers post finished tasks to the waker (one hop, no delivery
        # thread): deliver() answers the signal and completes their futures
        # right here, on the loop's thread.  The delivery thread queues the
        # rest on _pending (under this interpreter's GIL, which this code
        # holds, so the unlocked look is safe; a push that comes later signals
        # again).
        #
        # While the pools that post here still have queued work, the loop
        # holds results back (deliver() returns True): the workers stay busy
        # with that queue anyway, so the loop need not wake for each result.
        # What finishes meanwhile posts without a write, and the loop takes
        # it all at once, when the hold ends: at HOLD_SECONDS, or as soon
        # as a pool finds its queue empty (its workers may go idle waiting
        # for this loop's next calls), whichever comes first.
        hold = self._hold
        if hold is not None:
            hold.cancel()
            self._hold = None
        if self._waker.deliver(_errors.rebuild, asyncio.CancelledError):
            self._hold = self._loop().call_later(HOLD_SECONDS, self._woken)
        if self._pending:
            self._drain()

    def _drain(self):
        with self._lock:
            batch, self._pending = self._pending, []
        for item in batch:
            future, outcome = item.future, item.outcome
            if future.done():  # cancelled by whoever awaited it
                continue
            if not item.is_exception:
                future.set_result(outcome)
            elif isinstance(outcome, asyncio.CancelledError):
                future.cancel()
            elif isinstance(outcome, StopIteration):
                # asyncio futures refuse StopIteration (3.12 raises TypeError
                # here, which would strand the rest of the batch); 3.13+
                # converts it the same way.
                exc = RuntimeError("StopIteration raised in a task")
                exc.__cause__ = outcome
                future.set_exception(exc)
            else:
                future.set_exception(outcome)


# loop -> its LoopBridge.  Weak keys, and values that hold their loop only
# weakly, so a loop that ended (say, one asyncio.run() of many) can be freed.
_bridges = weakref.WeakKeyDictionary()
_last = (None, None)  # (weakref to loop, bridge): most programs have one loop


def bridge_for(loop):
    """The bridge of ``loop``, made on first use."""
    global _last
    last_ref, bridge = _last
    if last_ref is not None and last_ref() is loop:
        return bridge
    bridge = _bridges.get(loop)
    if bridge is None:
        _discard_closed()
        bridge = _bridges.setdefault(loop, LoopBridge(loop))
    _last = (bridge._loop, bridge)
    return bridge


def _discard_closed():
    """Drop what still waits for loops that closed before draining it.

    A result queued just as its loop closed would hold a future, and so the
    loop, for good; a new loop's first use sweeps them.
    """
    for loop, bridge in list(_bridges.items()):
        if loop.is_closed():
            bridge.discard()  # its pending list and the tasks posted to its waker


_COROUTINE_FLAGS = inspect.CO_COROUTINE | inspect.CO_ITERABLE_COROUTINE | inspect.CO_ASYNC_GENERATOR
_PLAIN_TYPES = (types.BuiltinFunctionType, type)


def check_not_coroutine(fn, method):
    """Raise a TypeError with a hint for a coroutine (function) where a plain callable belongs."""
    # Fast paths for what is submitted most: plain functions and builtins.
    kind = type(fn)
    if kind is types.FunctionType:
        if not fn.__code__.co_flags & _COROUTINE_FLAGS:
            return
    elif kind in _PLAIN_TYPES:
        return
    if inspect.iscoroutine(fn):
        fn.close()  # it will never run: no "never awaited" warning
        raise TypeError(
            f"{method}() got a coroutine object; pass the function and its arguments "
            f"separately, as {method}(fn, x) rather than {method}(fn(x))"
        )
    if isinstance(fn, isolated):  # the mark hides what it wraps from inspect
        fn = fn.__wrapped__
    if inspect.iscoroutinefunction(fn):
        raise TypeError(
            f"{method}() got a coroutine function ({getattr(fn, '__qualname__', fn)!r}); "
            "its result would be an un-run coroutine. Run coroutine functions with "
            "interpool.AsyncPool.run(), which runs them in worker event loops"
        )


_warmed_up = False


def warm_up_task_parser():
    """Create one asyncio Task with keyword arguments in this interpreter.

    CPython before 3.12.4 (gh-119213) stores the keyword tuple of a C
    function's argument parser in process-wide state, allocated by whichever
    interpreter first passes keywords; if that is a worker, the main
    interpreter frees foreign memory at exit and the process aborts.
    AsyncPool workers create Tasks, so the caller creates one first.
    """
    global _warmed_up
    if _warmed_up or sys.version_info >= (3, 12, 4):
        return
    _warmed_up = True

    async def nothing():
        pass

    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not None:  # creating the Task is what matters; let it finish there
        running.create_task(nothing(), name="interpool-warm-up")
        return
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(loop.create_task(nothing(), name="interpool-warm-up"))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
