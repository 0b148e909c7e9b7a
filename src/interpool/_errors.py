"""Exceptions of interpool, and how a worker's exception is rebuilt in the caller.

A task's exception crosses interpreters as a description (see
``interpool._worker.describe_exception``): its pickled form when it pickles,
plus its type name, message and formatted traceback.  The caller gets the
original type back, with the worker's traceback attached as ``__cause__`` and
as a note.  An exception that cannot be rebuilt becomes :class:`RemoteError`.
"""

import pickle
import queue as _queue
from concurrent.futures import BrokenExecutor
from concurrent.futures.thread import BrokenThreadPool

try:  # 3.14+: let `except BrokenInterpreterPool` catch ours too
    from concurrent.futures.interpreter import BrokenInterpreterPool as _StdlibBroken
except ImportError:
    _StdlibBroken = BrokenThreadPool

__all__ = ["BrokenPool", "QueueClosed", "RemoteError", "RemoteTraceback"]


class BrokenPool(_StdlibBroken):
    """The pool can run no more tasks: a worker interpreter failed to start.

    Raised by ``submit`` and ``map`` of a broken pool, and set on every future
    that was still pending when the pool broke.  ``__cause__`` is the
    exception that broke it (for example the one its initializer raised).
    """


class QueueClosed(getattr(_queue, "ShutDown", Exception)):
    """The interpool.Queue was closed: put() raises it at once, get() once the
    items left are drained.

    On Python 3.13+ it is also a ``queue.ShutDown``, the stdlib's exception
    for a shut-down queue.
    """


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in a worker interpreter."""

    def __init__(self, tb: str):
        super().__init__(tb)
        self.tb = tb

    def __str__(self):
        return self.tb


class RemoteError(Exception):
    """A task raised an exception that could not be sent back as itself.

    Attributes:
        type_name: qualified name of the original exception type.
        message: ``str()`` of the original exception.
        traceback: the formatted traceback from the worker.
    """

    def __init__(self, type_name: str, message: str, traceback: str = ""):
        super().__init__(type_name, message, traceback)
        self.type_name = type_name
        self.message = message
        self.traceback = traceback

    def __str__(self):
        return f"{self.type_name}: {self.message}" if self.message else self.type_name

    def __reduce__(self):
        return (type(self), (self.type_name, self.message, self.traceback))


def rebuild(info):
    """Turn an exception description from a worker into an exception object."""
    if info[0] == "broken":
        _, reason, cause = info
        exc = BrokenPool(reason)
        if cause is not None:
            exc.__cause__ = rebuild(cause)
        return exc

    _, data, type_name, message, tb = info
    exc = None
    if data is not None:
        try:
            exc = pickle.loads(data)
        except Exception as error:  # its class may not import here, say
            message = f"{message} (could not be rebuilt here: {type(error).__name__}: {error})"
    if not isinstance(exc, BaseException):
        exc = RemoteError(type_name, message, tb)
    if tb:
        exc.__cause__ = RemoteTraceback(tb)
        exc.add_note("Traceback in the worker interpreter:\n" + tb.rstrip("\n"))
    return exc


# Users see interpool.BrokenPool, not interpool._errors.BrokenPool.
for _cls in (BrokenPool, QueueClosed, RemoteError, RemoteTraceback):
    _cls.__module__ = "interpool"
del _cls, BrokenExecutor
