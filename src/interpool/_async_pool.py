"""interpool.AsyncPool: coroutines in event loops of worker interpreters."""

from __future__ import annotations

import asyncio
import inspect
import sys
import types
import weakref

from . import _aworker, _core, _errors, _output
from ._aio import RunFuture, bridge_for, running_loop, warm_up_task_parser
from ._pool import UINT32_MAX, _check_positive, _check_workers, default_workers

__all__ = ["AsyncPool"]

TYPE_CHECKING = False  # for type checkers, which read it as typing's
if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
    from typing import Any, Literal, Self, TypeVar

    _R = TypeVar("_R")


class AsyncPool:
    """Run coroutine functions concurrently in the event loops of worker interpreters.

    Args:
        workers: number of worker interpreters, each with its own event loop
            on its own thread.  Defaults to the number of usable CPUs.
        concurrency: coroutines each worker runs at once; further work waits
            in the pool's queue, where any idle worker can take it.
        initializer, initargs: called in each worker interpreter before its
            event loop starts.
        output: ``"forward"`` or ``"inherit"``, as for :class:`interpool.Pool`.

    Use it with ``async with``; leaving the block cancels the coroutines
    still running, waits for them, and shuts the workers down::

        async with interpool.AsyncPool(2) as apool:
            page = await apool.run(fetch_and_parse, url)
            async for digest in apool.map(fetch_and_hash, urls):
                ...

    Exceptions come back as from :class:`interpool.Pool`.  Cancelling the
    awaiting task cancels the remote coroutine.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        concurrency: int = 16,
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        output: Literal["forward", "inherit"] = "forward",
    ) -> None:
        _output.check_output(output)
        _check_workers("workers", workers)
        _check_positive("concurrency", concurrency, UINT32_MAX, optional=False)
        if initializer is not None and not callable(initializer):
            raise TypeError(f"initializer must be a callable or None, not {type(initializer).__name__}")
        self._workers = workers or default_workers()
        self._concurrency = concurrency
        warm_up_task_parser()
        self._engine = _core.Engine(
            workers=self._workers,
            max_tasks=0,
            sys_path=list(sys.path),
            setup={"argv": list(sys.argv), "output": _output.worker_config(output)},
            initializer=_aworker.start,
            initargs=(initializer, tuple(initargs)),
            rebuild=_errors.rebuild,
            broken_type=_errors.BrokenPool,
            name_prefix="interpool-async-",
            max_deferred=concurrency,
            finalizer=_aworker.stop,
            finalargs=(),
            forward_output=output == "forward",
        )
        # The futures of coroutines submitted and not yet collected, for
        # aclose() to cancel: weakly held, so completed ones cost nothing.
        self._running: weakref.WeakSet[_DeferredFuture] = weakref.WeakSet()

    @property
    def workers(self) -> int:
        return self._workers

    @property
    def concurrency(self) -> int:
        return self._concurrency

    def run(
        self, coro_fn: Callable[..., Coroutine[Any, Any, _R]], /, *args: Any, **kwargs: Any
    ) -> Coroutine[Any, Any, _R]:
        """Run ``await coro_fn(*args, **kwargs)`` in a worker's event loop and return its result.

        Called in a running event loop, it submits at once and returns an
        asyncio Future that ``await`` and ``gather`` take as it is (no Task
        per call) and that ``create_task`` and TaskGroups also take, as a
        coroutine; called with no running loop (``asyncio.run(apool.run(f))``)
        it returns a coroutine that submits when it runs.  Cancelling it
        cancels the remote coroutine.
        """
        _check_coroutine_function(coro_fn)
        loop = running_loop()
        if loop is None:
            return self._run_when_awaited(coro_fn, args, kwargs)
        future = _DeferredFuture(loop=loop)
        future._interpool_task = self._engine.submit_deferred(future, coro_fn, args, kwargs or None, bridge_for(loop))
        self._running.add(future)
        return future

    async def _run_when_awaited(self, coro_fn, args, kwargs):
        return await self.run(coro_fn, *args, **kwargs)

    async def map(
        self, coro_fn: Callable[[Any], Coroutine[Any, Any, _R]], iterable: Iterable[Any]
    ) -> AsyncIterator[_R]:
        """Asynchronously iterate over ``await coro_fn(item)`` for each item, in order.

        Every item is submitted at once; closing the iteration cancels the rest.
        """
        _check_coroutine_function(coro_fn)
        tasks = [asyncio.ensure_future(self.run(coro_fn, item)) for item in iterable]
        try:
            for task in tasks:
                yield await task
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _cancel_running(self):
        # Cancel everything running, whichever loop awaits it, but wait only
        # for this loop's futures: the others belong to their own loops (and
        # the engine's shutdown waits for all remote work anyway).
        loop = asyncio.get_running_loop()
        running = [future for future in list(self._running) if not future.done()]
        for future in running:
            task = future._interpool_task
            if not task.cancel():
                task.request_cancel()
        ours = [future for future in running if future.get_loop() is loop]
        if ours:
            await asyncio.gather(*ours, return_exceptions=True)

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking work; with ``wait``, block until the workers have ended."""
        self._engine.shutdown(False, False)
        if wait:
            self._engine.shutdown(True, False)

    async def aclose(self) -> None:
        """Cancel running coroutines, wait for them, and shut the workers down."""
        await self._cancel_running()
        self._engine.shutdown(False, False)
        await asyncio.to_thread(self._engine.shutdown, True, False)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> bool:
        await self.aclose()
        return False

    def __repr__(self) -> str:
        state = "running" if self._engine.accepting else "shut down"
        return f"<interpool.AsyncPool {state}, workers={self._workers}, concurrency={self._concurrency}>"


class _DeferredFuture(RunFuture):
    """What ``AsyncPool.run()`` returns in a running loop: cancelling it
    cancels the remote coroutine (or the queued task)."""

    __slots__ = ()

    def cancel(self, msg=None):
        task = getattr(self, "_interpool_task", None)
        if task is not None and not self.done() and not task.cancel():
            task.request_cancel()  # launched: cancel it in the worker's loop
        return asyncio.Future.cancel(self, msg)


def _check_coroutine_function(fn):
    if type(fn) is types.FunctionType and fn.__code__.co_flags & inspect.CO_COROUTINE:
        return  # the usual case, cheaply
    if inspect.iscoroutine(fn):
        fn.close()
        raise TypeError(
            "AsyncPool.run() got a coroutine object; pass the coroutine function and its "
            "arguments, as apool.run(fetch, url) rather than apool.run(fetch(url))"
        )
    if not callable(fn):
        raise TypeError(f"AsyncPool.run() needs a coroutine function, not {type(fn).__name__}")
    if not inspect.iscoroutinefunction(fn) and not inspect.iscoroutinefunction(getattr(fn, "__call__", None)):
        raise TypeError(
            f"AsyncPool.run() needs a coroutine function (async def), got {getattr(fn, '__qualname__', fn)!r}; "
            "run plain functions with interpool.Pool.run() or interpool.to_interpreter()"
        )


AsyncPool.__module__ = "interpool"
