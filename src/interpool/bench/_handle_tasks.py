"""Task functions for the share, buffer and queue benchmarks.

Same rules as :mod:`._tasks`: importable in a fresh interpreter (sub-
interpreter or child process), module-level functions only, standard library
imports only, and every module global a task needs referenced from the
task's own top-level code (CPython 3.14's InterpreterPoolExecutor would
otherwise ship the function as bare code; see ``_tasks``'s docstring).
"""

from . import _tasks

__all__ = ["set_grid", "check_loop_preset", "head_and_length", "pong"]

# ---------------------------------------------------------------------------
# Grid search with the grid set once per worker (the initializer trick)
# ---------------------------------------------------------------------------

_GRID = None


def set_grid(grid):
    """Initializer: keep ``grid`` in this worker for later tasks."""
    global _GRID
    _GRID = grid


def check_loop_preset(start, cell):
    """``check_loop`` on the grid the initializer stored in this worker."""
    grid = _GRID
    check = _tasks.check_loop
    return check(grid, start, cell)


# ---------------------------------------------------------------------------
# Buffer transport
# ---------------------------------------------------------------------------


def head_and_length(data):
    """Read the length and the first 4 bytes: the cost is getting ``data`` here."""
    view = memoryview(data)
    try:
        return len(view), bytes(view[:4])
    finally:
        view.release()


# ---------------------------------------------------------------------------
# Queue ping-pong
# ---------------------------------------------------------------------------


def pong(inbox, outbox, n):
    """Get an item from ``inbox`` and put it on ``outbox``, ``n`` times."""
    get = inbox.get
    put = outbox.put
    for _ in range(n):
        put(get())
    return n
