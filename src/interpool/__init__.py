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

# submodule -> the names it gives the package, loaded on first access: the
# imports above, module by module.
_LAZY = {
    "_async_pool": ("AsyncPool",),
    "_default": ("default_pool", "to_interpreter"),
    "_errors": ("BrokenPool", "QueueClosed", "RemoteError", "RemoteTraceback"),
    "_executor": ("InterpreterPoolExecutor",),
    "_future": ("Future",),
    "_hybrid": ("HybridPool",),
    # Its own module: workers unpickle it without loading HybridPool.
    "_isolated": ("isolated",),
    "_pool": ("CallOptions", "Pool", "PoolStats", "WorkerStats", "default_workers"),
}
# The names the asyncio world knows two of them by.
_ALIASES = {"InterpreterThreadPoolExecutor": "HybridPool", "interpreter": "isolated"}


# Hidden from type checkers, which would take every name for one it makes:
# they see the imports above instead, and a misspelt name is an error.
if not TYPE_CHECKING:

    def __getattr__(name):
        attribute = _ALIASES.get(name, name)
        module_name = next((module for module, names in _LAZY.items() if attribute in names), None)
        if module_name is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(f".{module_name}", __name__), attribute)
        globals()[name] = value  # later lookups skip __getattr__
        return value


del TYPE_CHECKING


def __dir__():
    return sorted(set(globals()).union(_ALIASES, *_LAZY.values()))


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
