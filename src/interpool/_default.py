"""interpool.to_interpreter: asyncio.to_thread, in a worker interpreter."""

from __future__ import annotations

import os
import threading

from ._pool import Pool

__all__ = ["to_interpreter", "default_pool"]

TYPE_CHECKING = False  # for type checkers, which read it as typing's
if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from typing import Any, TypeVar

    _R = TypeVar("_R")

_lock = threading.Lock()
_pool: Pool | None = None


def default_pool() -> Pool:
    """The process-wide Pool behind to_interpreter(), created on first use.

    It has one worker per usable CPU and is shut down when the interpreter
    exits, like every pool.
    """
    global _pool
    pool = _pool
    if pool is None:
        with _lock:
            if _pool is None:
                _pool = Pool()
            pool = _pool
    return pool


def _forget_after_fork():
    # In a forked child the parent's default pool has no workers (its engine
    # is an orphan, see fork_guard.cpp): the child starts its own on first use.
    global _lock, _pool
    _lock = threading.Lock()
    _pool = None


os.register_at_fork(after_in_child=_forget_after_fork)


def to_interpreter(fn: Callable[..., _R], /, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, _R]:
    """Run ``fn(*args, **kwargs)`` in a worker interpreter: ``await interpool.to_interpreter(f, x)``.

    The interpreter counterpart of ``asyncio.to_thread``, on
    :func:`default_pool`; it returns what :meth:`Pool.run` returns, an
    awaitable that TaskGroups also take.  ``fn`` and the arguments are sent
    as for :meth:`Pool.submit`; context variables do not cross interpreters.
    It works under asyncio, trio, and anyio on either (see :meth:`Pool.run`
    for how each cancels).
    """
    pool = _pool or default_pool()
    return pool._run(fn, args, kwargs, None)  # Pool.run's own path, one call less
