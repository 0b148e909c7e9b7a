"""Functions for the joblib backend tests.  Imported by name in the workers.

Like a user's script, this module imports joblib at the top: a worker that
loads it must be able to import joblib (without its process backends).
"""

import sys
import threading

import joblib


def square(x):
    return x * x


def fail_on(x, bad):
    if x == bad:
        raise ValueError(f"bad item {x}")
    return x


def where(x):
    """The interpreter and thread that ran this call."""
    return {"x": x, "modules_id": id(sys.modules), "thread": threading.get_ident()}


def nested(n, backend=None):
    """A task that runs its own Parallel: (inner thread ids, this thread id)."""
    if backend == "interpool":
        import interpool.joblib  # noqa: F401  (registers the backend in this interpreter)
    inner = joblib.Parallel(n_jobs=2, backend=backend)(joblib.delayed(threading.get_ident)() for _ in range(n))
    return inner, threading.get_ident()


def spin_until_interrupted(started):
    started.set()
    while True:
        pass


def fail_after(started, message):
    started.wait(60)
    raise RuntimeError(message)
