"""interpool.Pool: a concurrent.futures.Executor over own-GIL worker interpreters."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import os
import sys
import threading
import time
from concurrent.futures import _base

from . import _core, _errors, _output
from ._future import Future

__all__ = ["Pool", "default_workers"]

TYPE_CHECKING = False  # for type checkers, which read it as typing's
if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Iterable, Iterator
    from types import TracebackType
    from typing import Any, Literal, TypeVar

    _R = TypeVar("_R")


def default_workers() -> int:
    """The number of CPUs this process may use."""
    if hasattr(os, "process_cpu_count"):  # 3.13+
        return os.process_cpu_count() or 1
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# interpool._aio (and with it asyncio), imported on first use: a pool that
# never meets an event loop (a pool started inside a task, say) never pays
# for asyncio, and no event loop can run before asyncio is imported.
_aio = None


def _load_aio():
    global _aio
    from . import _aio as aio

    _aio = aio
    return aio


# The C++ types behind integer options: Py_ssize_t (counts, sizes) and
# uint32_t (AsyncPool concurrency).
SSIZE_MAX = sys.maxsize
UINT32_MAX = 2**32 - 1

# A worker is an OS thread running an interpreter of a few MB of its own.
_WORKER_MEMORY = 8 << 20


def _check_positive(name, value, high=SSIZE_MAX, *, optional=True):
    """An int in [1, high] (the range of the C++ type it goes into), or None where *optional*."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        wanted = "an int or None" if optional else "an int"
        raise TypeError(f"{name} must be {wanted}, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be greater than 0, got {value}")
    if value > high:
        raise ValueError(f"{name} must be at most {high}, got {value}")


def worker_limit():
    """``(limit, reason)``: the most workers this system can run, and what sets it.

    Each worker is an OS thread with its own interpreter, so the bound is the
    lowest of: the kernel's thread limit, the user's process limit
    (RLIMIT_NPROC, which counts threads on Linux), and physical memory at
    8 MiB per worker.
    """
    limits = [(SSIZE_MAX, "the range of the C++ worker count")]
    try:
        with open("/proc/sys/kernel/threads-max") as f:
            limits.append((int(f.read()), "the kernel's thread limit (/proc/sys/kernel/threads-max)"))
    except (OSError, ValueError):
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
        if soft != resource.RLIM_INFINITY and soft > 0:
            limits.append((soft, "RLIMIT_NPROC, the processes and threads this user may run (ulimit -u)"))
    except (ImportError, AttributeError, OSError, ValueError):
        pass
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if memory > 0:
            limits.append(
                (
                    max(1, memory // _WORKER_MEMORY),
                    f"physical memory ({memory >> 20} MiB at {_WORKER_MEMORY >> 20} MiB per worker interpreter)",
                )
            )
    except (AttributeError, OSError, ValueError):
        pass
    return min(limits)


def _check_workers(name, value):
    """Check a worker count: an int in [1, what the system can run], or None."""
    _check_positive(name, value)
    if value is None:
        return
    limit, reason = worker_limit()
    if value > limit:
        raise ValueError(
            f"{name}={value} is more than this system can run: at most {limit}, set by {reason}. "
            "Ask for fewer workers (the default is one per CPU)"
        )


def _check_seconds(name, value, *, allow_none=True):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be a number of seconds{' or None' if allow_none else ''}, not {type(value).__name__}"
        )
    if not value > 0 or value > 1e9:
        raise ValueError(f"{name} must be greater than 0 seconds (and at most 1e9), got {value!r}")
    return float(value)


def _check_buffersize(buffersize):
    # Word for word the stdlib's Executor.map checks.
    if buffersize is None:
        return
    if isinstance(buffersize, bool) or not isinstance(buffersize, int):
        raise TypeError("buffersize must be an integer or None")
    if buffersize < 1:
        raise ValueError("buffersize must be None or > 0")
    if buffersize > SSIZE_MAX:
        raise ValueError(f"buffersize must be at most {SSIZE_MAX}, got {buffersize}")


class _Calls:
    """The calls that take per-call options, written once for :class:`Pool` and
    :class:`CallOptions` (``pool.options(...)``): each passes ``self._timeout``,
    the per-call task timeout (None on a pool: its ``task_timeout``), to the
    pool's ``_submit``, ``_run``, ``_map_async`` or ``_map``."""

    __slots__ = ()
    _timeout: float | None = None

    if TYPE_CHECKING:

        def _submit(self, fn, args, kwargs, timeout): ...
        def _run(self, fn, args, kwargs, timeout): ...
        def _map_async(self, fn, iterable, ordered, chunksize, timeout): ...
        def _map(self, fn, iterables, timeout, chunksize, buffersize, task_timeout): ...

    def submit(self, fn: Callable[..., _R], /, *args: Any, **kwargs: Any) -> Future[_R]:
        """Schedule ``fn(*args, **kwargs)`` in a worker; return its Future.

        Raises:
            TypeError: ``fn`` or an argument cannot be sent to another interpreter.
            RuntimeError: the pool was shut down.
            BrokenPool: a worker failed to start.
        """
        return self._submit(fn, args, kwargs, self._timeout)

    def run(self, fn: Callable[..., _R], /, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, _R]:
        """Run ``fn(*args, **kwargs)`` in a worker; await the result: ``await pool.run(f, x)``.

        Called in a running event loop, it submits at once and returns a
        :class:`~interpool._aio.RunFuture`: an asyncio Future that ``await``
        and ``asyncio.gather`` take as it is, and that TaskGroups and
        ``create_task`` also take, as a coroutine.  Called with no running
        loop (``asyncio.run(pool.run(f))``), it returns a coroutine that
        submits when it runs.  Results reach the event loop in batches with
        others that completed meanwhile; while the pool still has queued
        work (its workers are all busy), a result may wait up to a
        millisecond for the next ones, so that many calls cost one wake-up.
        Cancelling it (``asyncio.timeout``, ``wait_for``, a failing
        TaskGroup sibling) cancels the work if no worker has started it,
        and interrupts it if one has.  Each call belongs to the loop it was
        made in; another thread's loop can make its own calls on the same
        pool.

        Under trio (and anyio on trio) it returns a coroutine that submits
        when awaited.  Cancelling it drops the work if it is still queued;
        a running task is interrupted, and the await ends once it has
        stopped (``trio.Cancelled``), as ``trio.to_thread.run_sync`` does.
        """
        return self._run(fn, args, kwargs, self._timeout)

    def map_async(
        self,
        fn: Callable[[Any], _R],
        iterable: Iterable[Any] | AsyncIterable[Any],
        *,
        ordered: bool = True,
        chunksize: int | None = None,
    ) -> AsyncIterator[_R]:
        """Asynchronously iterate over ``fn(item)`` for each item: ``async for r in pool.map_async(f, xs)``.

        Args:
            fn: a callable that can be sent to a worker.
            iterable: the items; an iterable or an async iterable.
            ordered: yield results in input order (True) or as they complete.
            chunksize: items per task; None picks one as ``map`` does.

        Closing or cancelling the iteration (``break`` included) cancels the
        work not yet started and interrupts the work that runs.
        """
        return self._map_async(fn, iterable, ordered, chunksize, self._timeout)

    def map(
        self,
        fn: Callable[..., _R],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = None,
        buffersize: int | None = None,
    ) -> Iterator[_R]:
        """Return an iterator of ``fn(*args)`` for args from ``zip(*iterables)``, in order.

        Args:
            fn: a callable that can be sent to a worker.
            *iterables: iterables to zip into argument tuples.
            timeout: seconds, from this call, after which ``__next__`` raises
                TimeoutError if the next result is not ready.  None: no limit.
            chunksize: items per task.  None picks one: about 16 tasks per
                worker, at most 1024 items each (1 item per task when
                ``buffersize`` is set and the input has no length).
            buffersize: at most this many chunks are submitted ahead of the
                results consumed; the input is then read lazily.  None reads
                and submits all input at once, like the stdlib.

        If ``fn`` raises, the iterator yields the results before that item and
        then raises the exception; unfinished tasks are cancelled.  When
        ``timeout`` expires, the tasks still queued are cancelled and the
        running ones are interrupted.
        """
        return self._map(fn, iterables, timeout, chunksize, buffersize, self._timeout)


class Pool(_Calls, _base.Executor):
    """Run Python callables on every core, one own-GIL interpreter per worker.

    Args:
        workers: number of worker interpreters (each on its own OS thread).
            Defaults to the number of CPUs this process may use.
        initializer: called as ``initializer(*initargs)`` inside each worker
            interpreter before it runs tasks.  Module globals it sets are
            those that later tasks in that worker see.  If it raises, the pool
            becomes broken (:class:`interpool.BrokenPool`).
        initargs: arguments for ``initializer``.
        max_tasks_per_worker: replace a worker's interpreter with a fresh one
            after it ran this many tasks (a ``map`` chunk counts as its items).
            ``None`` keeps interpreters for the pool's life.
        output: ``"forward"`` (the default): what workers write to
            ``sys.stdout`` and ``sys.stderr`` is written to this interpreter's
            current ``sys.stdout`` and ``sys.stderr``, line by line, in order
            per worker, and a task's output is written before its future is
            done; worker ``logging`` records go to this interpreter's
            handlers.  ``"inherit"``: workers write to file descriptors 1
            and 2 themselves.

    Callables and arguments cross interpreters by value: natively for the
    builtin containers and scalars, by pickle otherwise.  What a worker can
    import goes by name (module-level functions and classes, builtins);
    what it cannot (anything defined in ``__main__``: a notebook, a script,
    ``python -c``; lambdas, closures, local functions and classes) goes by
    value with cloudpickle.  What cannot be pickled at all (a lock, an open
    file, a generator) makes ``submit`` raise ``TypeError`` at once.
    """

    _thread_name_prefix = "interpool-"
    _local_threads = 0  # HybridPool: threads that run callables in this interpreter
    _lazy_workers = False  # HybridPool: worker interpreters start on demand
    _stateless_functions = False  # InterpreterPoolExecutor: also send stateless functions as code
    _rebuild = staticmethod(_errors.rebuild)
    _workers_option = "workers"  # the argument's name, for errors

    def __init__(
        self,
        workers: int | None = None,
        *,
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        max_tasks_per_worker: int | None = None,
        task_timeout: float | None = None,
        interrupt_grace: float = 1.0,
        output: Literal["forward", "inherit"] = "forward",
    ) -> None:
        _output.check_output(output)
        _check_workers(self._workers_option, workers)
        _check_positive("max_tasks_per_worker", max_tasks_per_worker)
        task_timeout = _check_seconds("task_timeout", task_timeout)
        interrupt_grace = _check_seconds("interrupt_grace", interrupt_grace, allow_none=False)
        if initializer is not None and not callable(initializer):
            raise TypeError(f"initializer must be a callable or None, not {type(initializer).__name__}")
        try:
            initargs = tuple(initargs)
        except TypeError:
            raise TypeError(f"initargs must be an iterable, not {type(initargs).__name__}") from None
        self._workers = workers if workers is not None else default_workers()
        # How many tasks run at once, under the stdlib executors' attribute
        # name, which Dask (dask.threaded, dask.base.get_scheduler) reads.
        self._max_workers = self._workers
        self._engine = _core.Engine(
            workers=self._workers,
            max_tasks=max_tasks_per_worker or 0,
            sys_path=list(sys.path),
            setup={"argv": list(sys.argv), "output": _output.worker_config(output)},
            initializer=initializer,
            initargs=initargs,
            rebuild=self._rebuild,
            broken_type=_errors.BrokenPool,
            name_prefix=self._thread_name_prefix,
            local_threads=self._local_threads,
            lazy_workers=self._lazy_workers,
            stateless=self._stateless_functions,
            task_timeout=task_timeout or 0.0,
            interrupt_grace=interrupt_grace,
            forward_output=output == "forward",
        )
        self._shutdown_lock = threading.Lock()

    @property
    def workers(self) -> int:
        """The number of worker interpreters (for a HybridPool, the most: it
        starts them as isolated work arrives)."""
        return self._workers

    @property
    def max_workers(self) -> int:
        """How many tasks run at once (``_max_workers``, the name the stdlib
        executors use and Dask reads)."""
        return self._max_workers

    @property
    def _broken(self):
        # The stdlib executors' private flag: a message once broken, else False.
        return self._engine.broken_reason or False

    def _submit(self, fn, args, kwargs, timeout):
        future = Future()
        try:
            future._task = self._start(future, fn, args, kwargs, None, timeout)
        except TypeError:
            (_aio or _load_aio()).check_not_coroutine(fn, "submit")
            raise
        return future

    def _start(self, future, fn, args, kwargs, bridge=None, timeout=None):
        """Queue ``fn(*args, **kwargs)`` to complete ``future``; returns the engine task."""
        return self._engine.submit(future, fn, args, kwargs or None, bridge, timeout)

    def _submit_chunk(self, fn, items, future=None, bridge=None, timeout=None):
        """Submit one map chunk; its future's result is (values, exception or None)."""
        if future is None:
            future = Future()
        future._task = self._engine.submit_map(future, fn, items, bridge, timeout)
        return future

    def options(self, *, timeout: float | None = None) -> CallOptions:
        """This pool's calls with per-call settings: ``pool.options(timeout=0.5).submit(f, x)``.

        Args:
            timeout: seconds a task may run once a worker starts it (each map
                chunk counts as one task).  When it is up, ``TaskInterrupted``
                is raised in the task's code and its future raises the builtin
                ``TimeoutError``.  None: the pool's ``task_timeout``.

        The returned object has ``submit``, ``map``, ``run`` and ``map_async``
        with the pool's signatures; the user function's own keyword arguments
        are never taken for options.
        """
        return CallOptions(self, _check_seconds("timeout", timeout))

    def stats(self) -> PoolStats:
        """A snapshot of what the pool does now: a :class:`PoolStats`.

        Counts cover tasks (a map chunk counts as one) since the pool
        started; ``workers`` lists each worker's current task.
        """
        raw = self._engine.stats()
        workers = tuple(WorkerStats(**w) for w in raw.pop("workers"))
        return PoolStats(workers=workers, **raw)

    def _run(self, fn, args, kwargs, timeout):
        aio = _aio or _load_aio()
        aio.check_not_coroutine(fn, "run")
        loop = aio.running_loop()
        if loop is not None:  # _run_in_loop, inline: the hot path of every await
            future = aio.RunFuture(loop=loop)
            future._interpool_task = self._start(future, fn, args, kwargs, aio.bridge_for(loop), timeout)
            return future
        if _async_library() == "trio":  # trio, or anyio on trio
            from . import _trio

            return _trio.run(self, fn, args, kwargs, timeout)
        return self._run_when_awaited(fn, args, kwargs, timeout)

    def _run_in_loop(self, loop, fn, args, kwargs, timeout):
        aio = _aio or _load_aio()
        future = aio.RunFuture(loop=loop)
        future._interpool_task = self._start(future, fn, args, kwargs, aio.bridge_for(loop), timeout)
        return future

    async def _run_when_awaited(self, fn, args, kwargs, timeout):
        # Made outside any event loop (asyncio.run(pool.run(f))): the library
        # that awaits it is known only now.
        loop = (_aio or _load_aio()).running_loop()
        if loop is not None:
            return await self._run_in_loop(loop, fn, args, kwargs, timeout)
        library = _async_library()
        if library == "trio":
            from . import _trio

            return await _trio.run(self, fn, args, kwargs, timeout)
        raise RuntimeError(
            f"run() was awaited under {library or 'an unknown event loop'}; interpool supports "
            "asyncio and trio (and anyio on either)"
        )

    async def _map_async(self, fn, iterable, ordered, chunksize, timeout):
        import asyncio

        aio = _aio or _load_aio()
        aio.check_not_coroutine(fn, "map_async")
        _check_positive("chunksize", chunksize)
        if hasattr(iterable, "__aiter__"):
            items = [(item,) async for item in iterable]
        else:
            items = [(item,) for item in iterable]
        size = chunksize or self._auto_chunksize(len(items))
        loop = aio.running_loop()
        if loop is None:
            raise RuntimeError(
                "map_async() needs a running asyncio event loop (asyncio, or anyio on asyncio); "
                "under trio, await pool.run() for each item in a nursery"
            )
        bridge = aio.bridge_for(loop)
        pending = []
        try:
            for i in range(0, len(items), size):
                pending.append(self._submit_chunk(fn, items[i : i + size], loop.create_future(), bridge, timeout))
            del items
            if ordered:
                for future in pending:
                    values, exc = await future
                    for value in values:
                        yield value
                    if exc is not None:
                        raise exc
            else:
                for next_done in asyncio.as_completed(pending):
                    values, exc = await next_done
                    for value in values:
                        yield value
                    if exc is not None:
                        raise exc
        finally:
            for future in pending:
                if not future.done():
                    _stop_task(future._task)
                    future.cancel()

    def _auto_chunksize(self, n):
        # Enough chunks (16 per worker) to balance uneven items, few enough
        # that per-task overhead vanishes for tiny ones.
        return max(1, min(1024, n // (self._workers * 16)))

    def _map(self, fn, iterables, timeout, chunksize, buffersize, task_timeout):
        _check_positive("chunksize", chunksize)
        _check_buffersize(buffersize)
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        end_time = None if timeout is None else timeout + time.monotonic()
        items = zip(*iterables)

        if buffersize is None:
            items = list(items)
            size = chunksize or self._auto_chunksize(len(items))
            futures = collections.deque(
                self._submit_chunk(fn, items[i : i + size], timeout=task_timeout) for i in range(0, len(items), size)
            )
            return _chunk_results(futures, end_time)

        if chunksize is None:
            lengths = [len(it) for it in iterables if hasattr(it, "__len__")]
            chunksize = self._auto_chunksize(min(lengths)) if len(lengths) == len(iterables) and lengths else 1
        window = collections.deque()
        source = iter(items)

        def refill():
            while len(window) < buffersize:
                chunk = list(itertools.islice(source, chunksize))
                if not chunk:
                    return
                window.append(self._submit_chunk(fn, chunk, timeout=task_timeout))

        refill()
        return _chunk_results(window, end_time, refill)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False, interrupt: bool = False) -> None:
        """Stop taking work and release the workers' interpreters.

        Args:
            wait: block until every running and queued task has finished and
                every worker interpreter has ended.  Ctrl-C during the wait
                abandons the wait (the pool still shuts down).  Called from
                one of the pool's own threads (a done-callback, a HybridPool
                thread task), it does not wait: that thread cannot wait for
                itself.
            cancel_futures: cancel every task that has not started.  Tasks
                still running when the process exits are then interrupted
                rather than waited for.
            interrupt: also interrupt the running tasks now (see
                :meth:`Future.interrupt`).
        """
        with self._shutdown_lock:
            for future, bridge in self._engine.shutdown(False, cancel_futures, interrupt):
                if bridge is None:
                    future._mark_cancelled()
                else:  # a bridge exists, so asyncio was imported
                    bridge.push(future, sys.modules["asyncio"].CancelledError(), True)
        if wait and not self._engine.on_own_thread:
            self._engine.shutdown(True, False)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> Literal[False]:
        # On Ctrl-C (or any non-Exception) do not run what is still queued,
        # and stop what runs.
        interrupted = exc_type is not None and not issubclass(exc_type, Exception)
        self.shutdown(wait=True, cancel_futures=interrupted, interrupt=interrupted)
        return False

    def __repr__(self) -> str:
        if self._engine.broken:
            state = "broken"
        elif self._engine.accepting:
            state = "running"
        else:
            state = "shut down"
        return f"<{type(self).__module__}.{type(self).__qualname__} {state}, workers={self._workers}>"


def _async_library():
    """The async library running in this thread, as sniffio names it ("trio"), or
    None.  Asked only when no asyncio loop runs, so asyncio pays nothing for it."""
    try:
        import sniffio
    except ImportError:  # trio and anyio depend on it: neither runs
        return None
    try:
        return sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return None


def _stop_task(task):
    """Cancel an engine task if it is queued, else interrupt it if it runs."""
    if task is not None and not task.cancel():
        task.interrupt()


def _stop_rest(futures, interrupt):
    """Cancel the futures whose tasks have not started; with ``interrupt``,
    also interrupt the ones that run (a map's deadline passed, or Ctrl-C).

    Every cancel comes before any interrupt: a worker freed by an interrupt
    would otherwise take the next queued chunk before its cancel."""
    running = [future for future in futures if not future.cancel()]
    if interrupt:
        for future in running:
            if not future.done():
                future.interrupt()


def _chunk_results(window, end_time, refill=None):
    """Yield the values of the chunks in ``window`` (a deque of chunk futures)
    in order, calling ``refill`` (which may append more) as each is taken;
    cancel what is left on exit."""
    interrupt = False
    try:
        while window:
            timeout = None if end_time is None else end_time - time.monotonic()
            values, exc = window[0].result(timeout)
            window.popleft()
            if refill is not None:
                refill()
            yield from values
            if exc is not None:
                raise exc
    except (TimeoutError, KeyboardInterrupt, SystemExit):
        interrupt = True
        raise
    finally:
        _stop_rest(window, interrupt)


class CallOptions(_Calls):
    """A pool's calls with per-call settings (see :meth:`Pool.options`): ``submit``,
    ``map``, ``run`` and ``map_async``, as the pool's."""

    __slots__ = ("_pool", "_timeout")

    def __init__(self, pool: Pool, timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout

    # The hooks of _Calls: this pool's calls, with these options.
    def _submit(self, fn, args, kwargs, timeout):
        return self._pool._submit(fn, args, kwargs, timeout)

    def _run(self, fn, args, kwargs, timeout):
        return self._pool._run(fn, args, kwargs, timeout)

    def _map_async(self, fn, iterable, ordered, chunksize, timeout):
        return self._pool._map_async(fn, iterable, ordered, chunksize, timeout)

    def _map(self, fn, iterables, timeout, chunksize, buffersize, task_timeout):
        return self._pool._map(fn, iterables, timeout, chunksize, buffersize, task_timeout)

    def __repr__(self) -> str:
        return f"<interpool options timeout={self._timeout!r} of {self._pool!r}>"


@dataclasses.dataclass(frozen=True)
class WorkerStats:
    """One worker in :meth:`Pool.stats`."""

    index: int
    future: object  #: the Future of the task it runs, or None
    initializing: bool  #: running its initializer
    seconds: float  #: how long it has run its current task (or initializer)
    native_id: int  #: its OS thread id (threading.get_native_id() there)


@dataclasses.dataclass(frozen=True)
class PoolStats:
    """A snapshot of a pool (see :meth:`Pool.stats`)."""

    queued: int  #: tasks waiting for a worker
    running: int  #: tasks running in worker interpreters
    done: int  #: tasks that returned
    failed: int  #: tasks that raised
    cancelled: int  #: tasks cancelled before they ran
    interrupted: int  #: tasks stopped by interrupt(), shutdown or Ctrl-C
    timed_out: int  #: tasks stopped by their timeout
    workers_replaced: int  #: workers abandoned because they did not stop, and replaced
    workers: tuple[WorkerStats, ...]  #: a WorkerStats per worker


# Join every pool's threads and end its interpreters before this interpreter
# finalizes, whether or not the user called shutdown().  threading's atexit
# hooks run before the interpreter starts tearing down.
threading._register_atexit(_core.shutdown_all)  # type: ignore[attr-defined]

for _cls in (Pool, CallOptions, PoolStats, WorkerStats):
    _cls.__module__ = "interpool"
del _cls
