"""interpool.InterpreterPoolExecutor: the stdlib's signature on interpool's engine."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from . import _errors
from ._pool import Pool, default_workers

try:
    from concurrent.interpreters import NotShareableError
except ImportError:  # before 3.14
    NotShareableError = None

__all__ = ["InterpreterPoolExecutor"]

TYPE_CHECKING = False  # for type checkers, which read it as typing's
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any, Literal


class InterpreterPoolExecutor(Pool, ThreadPoolExecutor):  # type: ignore[misc,override]
    """A drop-in for ``concurrent.futures.InterpreterPoolExecutor`` (3.14) on 3.12+.

    Args:
        max_workers: number of worker interpreters; defaults to
            ``min(32, cpu_count + 4)`` as in the stdlib.
        thread_name_prefix: prefix of the worker threads' OS names.
        initializer: called in each worker interpreter before its first task.
        initargs: arguments for ``initializer``.
        output: ``"forward"`` (the default: worker ``print()`` and ``logging``
            reach this interpreter's ``sys.stdout``, ``sys.stderr`` and
            handlers) or ``"inherit"`` (file descriptors 1 and 2, as the
            stdlib's workers write).  An interpool addition.

    As in the stdlib, it is a ThreadPoolExecutor subclass (asyncio's
    ``set_default_executor`` takes it), functions that need no state (a lambda
    or local function without closure, defaults or non-builtin globals) are
    sent as code, and a task's exception is chained from ``ExecutionFailed``
    on 3.14.  Differences from the stdlib are deliberate and listed in the
    README: workers start eagerly, all at once; a callable or argument that
    cannot be sent raises at ``submit()`` rather than from ``result()``.
    """

    _counter = 0
    _stateless_functions = True
    _rebuild = staticmethod(_errors.rebuild_stdlib)  # type: ignore[assignment]

    def _submit(self, fn, args, kwargs, timeout):
        try:
            return super()._submit(fn, args, kwargs, timeout)
        except TypeError as exc:
            if NotShareableError is None or isinstance(exc, NotShareableError):
                raise
            raise NotShareableError(str(exc)) from exc

    _workers_option = "max_workers"

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        *,
        output: Literal["forward", "inherit"] = "forward",
    ) -> None:
        if max_workers is None:
            max_workers = min(32, default_workers() + 4)
        elif isinstance(max_workers, int) and not isinstance(max_workers, bool) and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        type(self)._counter += 1
        self._thread_name_prefix = thread_name_prefix or f"InterpreterPoolExecutor-{type(self)._counter}_"
        self._max_workers = max_workers
        super().__init__(max_workers, initializer=initializer, initargs=initargs, output=output)


InterpreterPoolExecutor.__module__ = "interpool"
