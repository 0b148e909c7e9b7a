"""Task functions for the tests of stopping work (test_interrupt.py).

They run in worker interpreters, which import them by name.  Each signals
the test through an interpool.Event when it has started, so that tests wait
on events rather than on time.
"""

import time

import interpool


def spin_forever(started):
    """A tight pure-Python loop that `except Exception` cannot leave."""
    started.set()
    n = 0
    while True:
        try:
            n += 1
        except Exception:  # TaskInterrupted is a BaseException: not caught here
            pass


def spin_then_catch(started):
    """Catches TaskInterrupted and returns normally: the task keeps its result."""
    import interpool

    try:
        started.set()  # inside the try: the interrupt may land as set() returns
        while True:
            pass
    except interpool.TaskInterrupted as exc:
        return f"caught: {exc}"


def swallow_interrupts(started, release):
    """Never stops for an interrupt: every one is swallowed, until the test
    sets ``release`` (so that the abandoned thread ends before the test run does)."""
    while True:
        try:
            started.set()  # inside the try: even an interrupt as set() returns is swallowed
            while not release.is_set():
                pass
            return "released"
        except BaseException:
            pass


def sleep_in_c(started, seconds=1e6):
    """Blocked in C code (time.sleep), where no interrupt can land."""
    started.set()
    time.sleep(seconds)
    return "woke up"


def wait_for(event):
    """Blocks until the test sets ``event`` (an interpool.Event)."""
    event.wait()
    return "released"


def interrupted_type_info():
    import interpool

    return (
        interpool.TaskInterrupted.__name__,
        issubclass(interpool.TaskInterrupted, BaseException),
        issubclass(interpool.TaskInterrupted, Exception),
    )


def spin_item(x, started):
    """A map item: the item 0 spins for ever, the others return."""
    if x == 0:
        spin_forever(started)
    return x


def hang_initializer(started):
    started.set()
    while True:
        pass


def spin_item_kw(x, started=None):
    return spin_item(x, started)


def wait_on_interpool(started, how):
    """Block in one of interpool's own waits, which nothing ever satisfies."""
    if how == "Event.wait":
        blocker = interpool.Event()
        started.set()
        blocker.wait()
    elif how == "Queue.get":
        blocker = interpool.Queue()
        started.set()
        blocker.get()
    else:  # "Lock.acquire"
        blocker = interpool.Lock()
        blocker.acquire()
        started.set()
        blocker.acquire()
    return "the wait ended"
