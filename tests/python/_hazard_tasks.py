"""Task functions for test_fork.py and test_frames.py (workers import them by name)."""

import sys
import threading


def square(x):
    return x * x


def count_up(n):
    """Pure-Python work: keeps a worker running bytecode."""
    total = 0
    for i in range(n):
        total += i
    return total


def wait_for(event, limit=60.0):
    """Block in a task until `event` (an interpool.Event) is set; report this worker's thread."""
    if not event.wait(limit):
        raise TimeoutError("the test never released this task")
    return threading.get_ident()


def announce_then_wait(started, release, limit=60.0):
    """Set `started`, then block until `release`; return this worker's thread id."""
    started.set()
    return wait_for(release, limit)


def sample_threads(rounds):
    """Call the thread walkers in a worker while other workers run Python.

    Returns the thread ids sys._current_frames() saw on the last round and
    this worker's own thread id."""
    seen = None
    for _ in range(rounds):
        seen = sorted(sys._current_frames())
        sys._current_exceptions()
    return seen, threading.get_ident()


async def plus_one(x):
    return x + 1
