"""Exceptions of interpool, and how a worker's exception is rebuilt in the caller.

A task's exception crosses interpreters as a description, a ``_core.Failure``
(see ``interpool._worker.describe_exception`` and ``src/python/failure.hpp``):
its pickled form when it pickles, plus its type name, message and formatted
traceback.  The caller gets the
original type back, with the worker's traceback attached as ``__cause__`` and
as a note.  An exception that cannot be rebuilt becomes :class:`RemoteError`.
"""

from __future__ import annotations

import logging
import pickle
import queue as _queue
import types
from concurrent.futures.thread import BrokenThreadPool

from ._core import TaskInterrupted

try:  # 3.14+: let `except BrokenInterpreterPool` catch ours too
    from concurrent.futures.interpreter import BrokenInterpreterPool as _StdlibBroken
except ImportError:
    _StdlibBroken = BrokenThreadPool

__all__ = ["BrokenPool", "QueueClosed", "RemoteError", "RemoteTraceback", "TaskInterrupted"]


class BrokenPool(_StdlibBroken):
    """The pool can run no more tasks: a worker interpreter failed to start.

    Raised by ``submit`` and ``map`` of a broken pool, and set on every future
    that was still pending when the pool broke.  ``__cause__`` is the
    exception that broke it (for example the one its initializer raised).
    """


class QueueClosed(getattr(_queue, "ShutDown", Exception)):  # type: ignore[misc]  # queue.ShutDown on 3.13+
    """The interpool.Queue was closed: put() raises it at once, get() once the
    items left are drained.

    On Python 3.13+ it is also a ``queue.ShutDown``, the stdlib's exception
    for a shut-down queue.
    """


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in a worker interpreter."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


class RemoteError(Exception):
    """A task raised an exception that could not be sent back as itself.

    Attributes:
        type_name: qualified name of the original exception type.
        message: ``str()`` of the original exception.
        traceback: the formatted traceback from the worker.
    """

    def __init__(self, type_name: str, message: str, traceback: str = "") -> None:
        super().__init__(type_name, message, traceback)
        self.type_name = type_name
        self.message = message
        self.traceback = traceback

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}" if self.message else self.type_name

    def __reduce__(self) -> tuple[type[RemoteError], tuple[str, str, str]]:
        return (type(self), (self.type_name, self.message, self.traceback))


_LOGGER = logging.getLogger("concurrent.futures")


def rebuild(failure, *, _cause=None):
    """Turn a ``_core.Failure`` (how a task failed) into an exception object.

    Kind ``"exception"``: the task's own exception, rebuilt from its pickle,
    else a :class:`RemoteError`.  Kind ``"broken"``: a :class:`BrokenPool`
    from its ``cause``; with ``notice`` true, the failure is also logged on
    the ``concurrent.futures`` logger, as the stdlib executors log a failing
    initializer.  Kind ``"cancelled"``: a task stopped on request, for an
    asyncio future.
    """
    if failure.kind == "cancelled":
        import asyncio

        return asyncio.CancelledError()
    if failure.kind == "broken":
        exc = BrokenPool(failure.reason)
        if failure.cause is not None:
            exc.__cause__ = (_cause or rebuild)(failure.cause)
        if failure.notice:
            _LOGGER.critical("Exception in initializer:", exc_info=exc.__cause__ or exc)
        return exc

    try:
        return _rebuilt(failure.pickled, failure.type_name, failure.message, failure.traceback)
    except BaseException as error:
        # Whatever rebuilding raised (SystemExit from an exception's
        # __reduce__, say), it must not escape result(): the task failed.
        message = f"{failure.message} (could not be rebuilt here: {_describe(error)})"
        return _remote_error(failure.type_name, message, failure.traceback)


def _rebuilt(data, type_name, message, tb):
    exc = None
    if data is not None:
        try:
            exc = pickle.loads(data)
        except BaseException as error:  # its class may not import here, or its reduce raises, even SystemExit
            message = f"{message} (could not be rebuilt here: {_describe(error)})"
            exc = None
    if not isinstance(exc, BaseException):
        return _remote_error(type_name, message, tb)
    if tb:
        exc.__cause__ = RemoteTraceback(tb)
        exc.add_note("Traceback in the worker interpreter:\n" + tb.rstrip("\n"))
    return exc


def _remote_error(type_name, message, tb):
    exc = RemoteError(type_name, message, tb)
    if tb:
        exc.__cause__ = RemoteTraceback(tb)
        exc.add_note("Traceback in the worker interpreter:\n" + tb.rstrip("\n"))
    return exc


def _describe(error):
    try:
        text = str(error)
    except BaseException:
        text = "<str() failed>"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def rebuild_stdlib(failure):
    """rebuild(), with the stdlib InterpreterPoolExecutor's cause on 3.14+.

    The stdlib chains a task's exception from
    ``concurrent.interpreters.ExecutionFailed``, whose ``excinfo`` names the
    type and message; InterpreterPoolExecutor does the same where that class
    exists, keeping the remote traceback in the notes.
    """
    exc = rebuild(failure, _cause=rebuild_stdlib)
    if failure.kind != "exception" or ExecutionFailed is None or failure.qualname is None:
        return exc
    type_name, message, qualname = failure.type_name, failure.message, failure.qualname
    excinfo = types.SimpleNamespace(
        type=types.SimpleNamespace(
            __name__=qualname.rpartition(".")[2], __qualname__=qualname, __module__=failure.module
        ),
        msg=message,
        formatted=f"{type_name}: {message}" if message else type_name,
        errdisplay=failure.traceback,
    )
    try:
        exc.__cause__ = ExecutionFailed(excinfo)
    except Exception:
        pass
    return exc


try:
    from concurrent.interpreters import ExecutionFailed
except ImportError:
    ExecutionFailed = None


# Users see interpool.BrokenPool, not interpool._errors.BrokenPool.
for _cls in (BrokenPool, QueueClosed, RemoteError, RemoteTraceback):
    _cls.__module__ = "interpool"
del _cls
