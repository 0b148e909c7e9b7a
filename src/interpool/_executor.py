"""interpool.InterpreterPoolExecutor: the stdlib's signature on interpool's engine."""

from ._pool import Pool, default_workers

__all__ = ["InterpreterPoolExecutor"]


class InterpreterPoolExecutor(Pool):
    """A drop-in for ``concurrent.futures.InterpreterPoolExecutor`` (3.14) on 3.12+.

    Args:
        max_workers: number of worker interpreters; defaults to
            ``min(32, cpu_count + 4)`` as in the stdlib.
        thread_name_prefix: prefix of the worker threads' OS names.
        initializer: called in each worker interpreter before its first task.
        initargs: arguments for ``initializer``.

    Differences from the stdlib are deliberate and listed in the README:
    workers start eagerly, all at once, in parallel; arguments of the builtin
    types are copied natively rather than pickled; ``cancel()`` fails once a
    worker has started the task.
    """

    _counter = 0

    def __init__(self, max_workers=None, thread_name_prefix="", initializer=None, initargs=()):
        if max_workers is None:
            max_workers = min(32, default_workers() + 4)
        elif isinstance(max_workers, int) and not isinstance(max_workers, bool) and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        type(self)._counter += 1
        self._thread_name_prefix = thread_name_prefix or f"InterpreterPoolExecutor-{type(self)._counter}_"
        self._max_workers = max_workers
        super().__init__(max_workers, initializer=initializer, initargs=initargs)


InterpreterPoolExecutor.__module__ = "interpool"
