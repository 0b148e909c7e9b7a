"""Task functions for the delivery and memory tests.

Workers import these by name, so this module imports only the stdlib and
interpool (never pytest), and it stays small: the memory tests count what a
worker interpreter costs.  Every wait has a timeout, so a bug fails a task
instead of hanging its pool.
"""

import sys

WAIT = 60  # seconds: how long a test waits for a task before it fails
TASK_WAIT = 2 * WAIT  # how long a task waits for the test: longer, so the test reports first


def finish_when(go, value):
    """Return ``value`` once the test sets the interpool.Event ``go``."""
    if not go.wait(TASK_WAIT):
        raise TimeoutError("finish_when: the test never set the event")
    return value


def block_after_start(started, release, value):
    """Say that this task runs (``started``), then block until ``release``."""
    started.set()
    if not release.wait(TASK_WAIT):
        raise TimeoutError("block_after_start: the test never released the task")
    return value


def imported(name):
    """Whether module ``name`` is imported in this interpreter."""
    return name in sys.modules


def modules():
    """The names of the modules imported in this interpreter, sorted."""
    return sorted(sys.modules)


def nested_pool_modules():
    """sys.modules of this interpreter after it ran a task on a pool of its own."""
    import interpool

    with interpool.Pool(1) as pool:
        pool.submit(abs, -1).result()
    return sorted(sys.modules)


def nothing():
    return None


def import_module(name):
    """Import module ``name`` in this interpreter."""
    __import__(name)
