"""interpool: every core from Python, through own-GIL subinterpreters.

>>> import interpool
>>> with interpool.Pool(2) as pool:
...     list(pool.map(abs, [-1, -2, 3]))
[1, 2, 3]
"""

# Every worker interpreter imports this package (for interpool._core and
# interpool._worker), so it imports only the extension module here; the rest
# loads on first use, through the module __getattr__ below, as
# concurrent.futures does for its executors.  A worker that never needs
# asyncio, logging or concurrent.futures never pays for them: each import
# costs every worker start-up time, and CPython leaks part of what a
# subinterpreter imported when the interpreter ends (its interned strings pin
# the arenas they live in), which max_tasks_per_worker multiplies.
from ._core import Barrier, Event, Lock, Queue, RLock, Semaphore, Shared, SharedBuffer, TaskInterrupted, share

# For type checkers and IDEs, which do not run __getattr__ (both read a name
# TYPE_CHECKING as typing's; importing typing here would cost every worker).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._async_pool import AsyncPool
    from ._default import default_pool, to_interpreter
    from ._errors import BrokenPool, QueueClosed, RemoteError, RemoteTraceback
    from ._executor import InterpreterPoolExecutor
    from ._future import Future
    from ._hybrid import HybridPool
    from ._hybrid import HybridPool as InterpreterThreadPoolExecutor
    from ._isolated import isolated
    from ._isolated import isolated as interpreter
    from ._pool import CallOptions, Pool, PoolStats, WorkerStats, default_workers

# name -> (submodule, attribute): loaded on first access.
_LAZY = {
    "AsyncPool": ("_async_pool", "AsyncPool"),
    "BrokenPool": ("_errors", "BrokenPool"),
    "Future": ("_future", "Future"),
    "HybridPool": ("_hybrid", "HybridPool"),
    "InterpreterPoolExecutor": ("_executor", "InterpreterPoolExecutor"),
    # The names the asyncio world knows these by.
    "InterpreterThreadPoolExecutor": ("_hybrid", "HybridPool"),
    "CallOptions": ("_pool", "CallOptions"),
    "Pool": ("_pool", "Pool"),
    "PoolStats": ("_pool", "PoolStats"),
    "WorkerStats": ("_pool", "WorkerStats"),
    "QueueClosed": ("_errors", "QueueClosed"),
    "RemoteError": ("_errors", "RemoteError"),
    "RemoteTraceback": ("_errors", "RemoteTraceback"),
    "default_pool": ("_default", "default_pool"),
    "default_workers": ("_pool", "default_workers"),
    # Its own module: workers unpickle it without loading HybridPool.
    "interpreter": ("_isolated", "isolated"),
    "isolated": ("_isolated", "isolated"),
    "to_interpreter": ("_default", "to_interpreter"),
}


# Hidden from type checkers, which would take every name for one it makes:
# they see the imports above instead, and a misspelt name is an error.
if not TYPE_CHECKING:

    def __getattr__(name):
        try:
            module_name, attribute = _LAZY[name]
        except KeyError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
        import importlib

        value = getattr(importlib.import_module(f".{module_name}", __name__), attribute)
        globals()[name] = value  # later lookups skip __getattr__
        return value


del TYPE_CHECKING


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


def BoundedSemaphore(value: int = 1) -> Semaphore:
    """A :class:`Semaphore` whose ``release()`` raises ``ValueError`` rather than
    exceed ``value`` (``threading.BoundedSemaphore``'s rule)."""
    return Semaphore(value, bounded=True)


__all__ = [
    "AsyncPool",
    "Barrier",
    "BoundedSemaphore",
    "BrokenPool",
    "CallOptions",
    "Event",
    "Future",
    "HybridPool",
    "InterpreterPoolExecutor",
    "InterpreterThreadPoolExecutor",
    "Lock",
    "Pool",
    "PoolStats",
    "Queue",
    "QueueClosed",
    "RLock",
    "RemoteError",
    "RemoteTraceback",
    "Semaphore",
    "Shared",
    "TaskInterrupted",
    "SharedBuffer",
    "WorkerStats",
    "default_pool",
    "default_workers",
    "interpreter",
    "isolated",
    "share",
    "to_interpreter",
]

__version__ = "0.1.0"
