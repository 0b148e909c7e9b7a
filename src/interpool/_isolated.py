"""interpool.isolated: the mark that sends a callable to a worker interpreter.

Its own module, apart from HybridPool: a marked callable travels to workers
by value or by name, and unpickling it there imports this module alone.  A
worker that imported _hybrid would load Pool, concurrent.futures, logging
and asyncio, which a worker never needs.
"""

from __future__ import annotations

import functools

__all__ = ["isolated"]

TYPE_CHECKING = False  # for type checkers, which read it as typing's
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class isolated:
    """Mark ``fn`` to run in a worker interpreter when a HybridPool runs it.

    Use as a decorator on a module-level function, or as ``isolated(fn)``
    at the call site::

        @interpool.isolated
        def crunch(data): ...

        loop.set_default_executor(interpool.HybridPool())
        await asyncio.to_thread(crunch, data)             # in an interpreter
        await asyncio.to_thread(interpool.isolated(f), x)  # also
        await asyncio.to_thread(g, x)                     # on a thread

    Calling the marked object calls ``fn`` directly.  Context variables do
    not cross into the interpreter.
    """

    __wrapped__: Callable[..., Any]

    def __init__(self, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise TypeError(f"isolated() takes a callable, not {type(fn).__name__}")
        if isinstance(fn, isolated):
            fn = fn.__wrapped__
        functools.update_wrapper(self, fn)

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        return self.__wrapped__(*args, **kwargs)

    def __repr__(self) -> str:
        return f"interpool.isolated({self.__wrapped__!r})"

    def __reduce__(self) -> str | tuple[Any, ...]:
        # As a decorator, the module attribute is this object: pickle it by
        # name.  Otherwise send the function and mark it again on arrival.
        import sys

        module = sys.modules.get(getattr(self, "__module__", None) or "")
        target = module
        for part in getattr(self, "__qualname__", "").split("."):
            target = getattr(target, part, None)
        if target is self:
            return self.__qualname__  # type: ignore[attr-defined]  # set by update_wrapper
        return (isolated, (self.__wrapped__,))


isolated.__module__ = "interpool"
