"""Task functions for the Dask tests: importable by name in worker interpreters,
in worker processes of a Dask cluster and in `dask worker` processes."""

import threading


class TaskFailed(ValueError):
    """An exception of this module's own, to see that the type comes back."""


def inc(x):
    return x + 1


def add(x, y):
    return x + y


def total(items):
    return sum(items)


def square(x):
    return x * x


def fail(x):
    raise TaskFailed(f"task got {x}")


def spin(n):
    """Pure-Python CPU work."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def in_subinterpreter(_=None):
    """True when called in an interpreter other than the main one."""
    try:
        import _interpreters as interpreters  # 3.13+
    except ImportError:
        import _xxsubinterpreters as interpreters  # 3.12

    current, main = interpreters.get_current(), interpreters.get_main()
    ident = lambda i: i[0] if isinstance(i, tuple) else int(i)  # noqa: E731
    return ident(current) != ident(main)


def thread_name(_=None):
    return threading.current_thread().name


def distributed_imported(_=None):
    """Whether this interpreter has imported distributed (a worker interpreter must not)."""
    import sys

    return "distributed" in sys.modules


def module_loaded(name):
    """Whether this interpreter has imported the module ``name``."""
    import sys

    return name in sys.modules


def uses_psutil(_=None):
    """Needs psutil, whose C extension refuses subinterpreters."""
    import psutil

    return psutil.cpu_count() > 0


def executor_of(dask_worker, name="default"):
    """(type name, max_workers) of a worker's executor; for client.run."""
    executor = dask_worker.executors.get(name)
    if executor is None:
        return None
    return type(executor).__name__, getattr(executor, "max_workers", None)


def executor_details(dask_worker, name="interpool"):
    executor = dask_worker.executors[name]
    return executor.max_workers, executor.fallback, executor.pool.workers


def profile_count(dask_worker):
    """Samples the worker's task profiler took, in this cycle and the finished ones."""
    return dask_worker.profile_recent["count"] + sum(p["count"] for _, p in dask_worker.profile_history)


def executors_of(dask_worker):
    return tuple(sorted(dask_worker.executors))


def worker_plugins_of(dask_scheduler):
    return tuple(sorted(dask_scheduler.worker_plugins))


def is_even(x):
    return x % 2 == 0


def where_and_items(mapping):
    """(whether in a subinterpreter, the mapping's items in order)."""
    return in_subinterpreter(), sorted(mapping.items())
