"""interpool: every core from Python, through own-GIL subinterpreters.

>>> import interpool
>>> with interpool.Pool(2) as pool:
...     list(pool.map(abs, [-1, -2, 3]))
[1, 2, 3]
"""

from ._core import Barrier, Event, Lock, Queue, RLock, Semaphore, Shared, SharedBuffer, share
from ._errors import BrokenPool, QueueClosed, RemoteError, RemoteTraceback, TaskInterrupted
from ._async_pool import AsyncPool
from ._default import default_pool, to_interpreter
from ._executor import InterpreterPoolExecutor
from ._future import Future
from ._hybrid import HybridPool, isolated
from ._pool import CallOptions, Pool, PoolStats, WorkerStats, default_workers

# The names the asyncio world knows these by.
InterpreterThreadPoolExecutor = HybridPool
interpreter = isolated


def BoundedSemaphore(value=1):
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
