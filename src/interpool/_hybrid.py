"""interpool.HybridPool: one executor, two kinds of work.

Callables marked with :func:`isolated` run in worker interpreters, in
parallel with everything else: at most ``workers`` of them (one per CPU by
default), each owned by one thread, started as work arrives.  Other
callables run on threads in the caller's interpreter, like
ThreadPoolExecutor and with its default size (``min(32, CPUs + 4)``): for
I/O, and for libraries that cannot be imported in subinterpreters.
"""

from __future__ import annotations

import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor

from ._future import Future
from ._isolated import isolated
from ._pool import Pool, _check_workers, default_workers

__all__ = ["HybridPool", "isolated"]

TYPE_CHECKING = False  # for type checkers, which read it as typing's
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    _R = TypeVar("_R")


def _is_to_thread_call(fn):
    """Whether ``fn`` is what asyncio.to_thread submits: partial(context.run, f, ...)."""
    return (
        type(fn) is functools.partial
        and isinstance(getattr(fn.func, "__self__", None), contextvars.Context)
        and bool(fn.args)
    )


def _isolated_call(fn, args, kwargs):
    """The (fn, args, kwargs) to run in an interpreter, or None for a thread.

    The isolated object itself is sent, not the function it wraps: as a
    decorator it is the module attribute, so only it pickles by name.
    """
    if isinstance(fn, isolated):
        return fn, args, kwargs
    # asyncio.to_thread(f, *args) submits partial(context.run, f, *args).
    if _is_to_thread_call(fn) and isinstance(fn.args[0], isolated):
        return fn.args[0], fn.args[1:] + args, {**fn.keywords, **kwargs}
    return None


class HybridPool(Pool, ThreadPoolExecutor):  # type: ignore[override]  # Pool's read-only _broken
    """An executor that runs isolated callables in worker interpreters and
    all other callables on threads of the caller's interpreter.

    Args:
        workers: the most worker interpreters, each on its own thread,
            started when isolated work arrives and no worker is idle.
            Defaults to the number of usable CPUs.
        threads: the most threads for the other callables, started the same
            way.  Defaults to ThreadPoolExecutor's ``min(32, CPUs + 4)``.
        initializer, initargs, max_tasks_per_worker, task_timeout,
        interrupt_grace: as for :class:`Pool`; they concern the worker
            interpreters.

    It is a ``concurrent.futures.Executor`` and a good default executor for
    asyncio: ``loop.set_default_executor(interpool.HybridPool())``.  Blocking
    I/O then gets as many threads as with asyncio's own default, and
    CPU-bound isolated work every core.  (asyncio takes only
    ThreadPoolExecutor instances there, so HybridPool is one; none of
    ThreadPoolExecutor's own threads or methods are used.)  Thread work
    preserves context variables (asyncio.to_thread passes them).
    """

    _thread_name_prefix = "interpool-hybrid-"
    _lazy_workers = True

    def __init__(self, workers: int | None = None, *, threads: int | None = None, **options: Any) -> None:
        _check_workers("threads", threads)
        self._local_threads = threads if threads is not None else min(32, default_workers() + 4)
        super().__init__(workers, **options)

    @property
    def threads(self) -> int:
        """The most threads that run callables not marked isolated."""
        return self._local_threads

    def submit(self, fn: Callable[..., _R], /, *args: Any, **kwargs: Any) -> Future[_R]:
        """Schedule ``fn(*args, **kwargs)``: in an interpreter if ``fn`` is
        :func:`isolated`, else on a worker thread in this interpreter.

        Work submitted by ``asyncio.to_thread`` is interrupted when the
        awaiting task is cancelled, as :meth:`Pool.run` is."""
        future = self._submit(fn, args, kwargs, None)
        if _is_to_thread_call(fn):
            future._interrupt_on_cancel = True
        return future

    def _start(self, future, fn, args, kwargs, bridge=None, timeout=None):
        call = _isolated_call(fn, args, kwargs)
        if call is None:
            return self._engine.submit_local(future, fn, args, kwargs or None, bridge, timeout)
        return self._engine.submit(future, call[0], call[1], call[2] or None, bridge, timeout)

    def _submit_chunk(self, fn, items, future=None, bridge=None, timeout=None):
        if isinstance(fn, isolated):
            return super()._submit_chunk(fn, items, future, bridge, timeout)
        if future is None:
            future = Future()
        future._task = self._engine.submit_local(future, _run_items, (fn, items), None, bridge, timeout)
        return future


def _run_items(fn, items):
    """Run fn(*item) for each item on a thread, as a map chunk: (values, exception)."""
    values = []
    try:
        for item in items:
            values.append(fn(*item))
    except BaseException as exc:
        return values, exc
    return values, None


HybridPool.__module__ = "interpool"
