"""Task functions and classes for the interpool test suite.

Workers receive callables by pickle-by-reference, so everything a test sends
to a worker lives here, in a module that imports only the stdlib and
interpool (never pytest: workers import this module too).
"""

import collections
import dataclasses
import enum
import os
import pickle
import threading
import time

# ------------------------------------------------------------------ basics


def identity(x):
    return x


def add(a, b):
    return a + b


def mul(a, b):
    return a * b


def neg(x):
    return -x


def describe_call(*args, **kwargs):
    """Return what the call received, to check args/kwargs transport."""
    return (args, kwargs)


def type_name(x):
    """The worker's view of the argument's type, by qualified name."""
    cls = type(x)
    return f"{cls.__module__}.{cls.__qualname__}"


def sleep_steps(seconds, step=0.01):
    """Sleep ``seconds`` in small steps, then return ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(min(step, max(0.0, end - time.monotonic())))
    return seconds


def sleep_then_return(seconds, value):
    sleep_steps(seconds)
    return value


def touch(path):
    """Create the file ``path`` (a visible side effect); return the path."""
    with open(path, "w") as f:
        f.write("ran")
    return path


def touch_and_wait(started, release, limit=30.0):
    """Create ``started``, then wait until ``release`` exists (or ``limit`` s)."""
    touch(started)
    end = time.monotonic() + limit
    while not os.path.exists(release):
        if time.monotonic() > end:
            raise TimeoutError(f"{release} never appeared")
        time.sleep(0.005)
    return "released"


def fail_at(x, bad):
    """Return ``x * 10``, raising ValueError when ``x == bad``."""
    if x == bad:
        raise ValueError(f"bad item {x}")
    return x * 10


def fail_slow_or_touch(x, directory):
    """Item 0 fails at once, item 1 takes a while, later items leave a file behind."""
    if x == 0:
        raise ValueError("first item fails")
    if x == 1:
        sleep_steps(0.5)
        return x
    touch(os.path.join(directory, str(x)))
    return x


def slow_first_or_touch(x, directory):
    """Item 0 returns at once, item 1 takes a while, later items leave a file behind."""
    if x == 0:
        return 0
    if x == 1:
        sleep_steps(0.5)
        return x
    touch(os.path.join(directory, str(x)))
    return x


# ----------------------------------------------------- picklable specimens

Point = collections.namedtuple("Point", "x y")


def make_point(x, y):
    return Point(x, y)


class Color(enum.IntEnum):
    RED = 1
    GREEN = 2


@dataclasses.dataclass(frozen=True)
class Record:
    name: str
    values: tuple = ()


class ZeroCopy:
    """Pickles its payload out-of-band under protocol 5 (PickleBuffer)."""

    def __init__(self, data):
        self.data = bytearray(data)

    def __reduce_ex__(self, protocol):
        if protocol >= 5:
            return type(self)._from_buffer, (pickle.PickleBuffer(self.data),), None
        return type(self), (bytes(self.data),)

    @classmethod
    def _from_buffer(cls, buf):
        return cls(memoryview(buf).tobytes())

    def __eq__(self, other):
        return type(other) is type(self) and other.data == self.data

    def __hash__(self):
        return hash(bytes(self.data))


def zerocopy_info(obj):
    """Return (type name, payload bytes) as the worker sees a ZeroCopy."""
    return type_name(obj), bytes(obj.data)


def make_zerocopy(data):
    return ZeroCopy(data)


class Multiplier:
    """A picklable object whose bound method is sent as a task."""

    def __init__(self, factor):
        self.factor = factor

    def times(self, x):
        return x * self.factor

    @staticmethod
    def static_double(x):
        return 2 * x

    @classmethod
    def class_name(cls, suffix):
        return cls.__name__ + suffix


# -------------------------------------------------------------- exceptions


class CustomError(Exception):
    """An exception class that importing _tasks makes available everywhere."""


def raise_value_error(message):
    raise ValueError(message)


def raise_custom(message):
    raise CustomError(message)


class LockHoldingError(Exception):
    """Cannot be pickled: it carries a lock."""

    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()


def raise_lock_holding(message):
    raise LockHoldingError(message)


class TwoArgError(Exception):
    """Pickles, but unpickling fails: __init__ needs two arguments, args holds one."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def raise_two_arg(message):
    raise TwoArgError(message, 42)


def raise_system_exit(code):
    raise SystemExit(code)


def raise_keyboard_interrupt():
    raise KeyboardInterrupt


def return_lambda():
    """Returns a lambda: it comes back by value."""
    return lambda: 42


def return_generator():
    """Returns something that cannot come back from the worker."""
    return (i for i in range(3))


# ------------------------------------------------------ per-worker globals

_global_value = None
_counter = 0
_init_calls = 0
_sentinel = object()


def set_global(value, *more):
    """Initializer: remember ``value`` (and extra initargs) in a module global."""
    global _global_value, _init_calls
    _init_calls += 1
    _global_value = (value, *more) if more else value


def get_global(_=None):
    return _global_value


def init_calls(_=None):
    return _init_calls


def bump(_=None):
    """Increment and return this interpreter's module counter."""
    global _counter
    _counter += 1
    return _counter


def bump_with_global(_=None):
    return bump(), _global_value


def sleep_then_bump(seconds):
    sleep_steps(seconds)
    return bump()


def get_sys_path():
    import sys

    return list(sys.path)


def sentinel_id(_=None):
    return id(_sentinel)


class InitError(Exception):
    pass


def failing_initializer(message="initializer failed on purpose"):
    raise InitError(message)


def touch_and_wait_then_fail(started, release):
    """Initializer: signal ``started``, wait for ``release``, then fail."""
    touch_and_wait(started, release)
    failing_initializer()


# ---------------------------------------------------- interpool in workers


def core_module_info():
    import interpool._core as core

    return core.__name__, sorted(name for name in ("Engine", "SharedBuffer", "Task") if hasattr(core, name))


def core_buffer_bytes(size):
    import interpool._core as core

    buf = core.SharedBuffer(size)
    view = memoryview(buf)
    for i in range(size):
        view[i] = i % 256
    view.release()
    return bytes(buf)


def fill_buffer(buf, byte):
    view = memoryview(buf)
    view[:] = bytes([byte]) * len(view)
    view.release()
    return len(buf)


def is_main_interpreter():
    """Whether this runs in the main interpreter (0) or a subinterpreter."""
    try:
        import _interpreters as interpreters  # 3.13+
    except ImportError:
        import _xxsubinterpreters as interpreters  # 3.12

    current = interpreters.get_current()
    main = interpreters.get_main()
    ident = lambda i: i[0] if isinstance(i, tuple) else int(i)  # noqa: E731
    return ident(current) == ident(main)


def thread_name():
    return threading.current_thread().name


# ------------------------------------------------ ordering without sleeping
# Tasks that block on an interpool.Event the test sets, so a test decides when
# a "slow" task ends instead of guessing how long it takes (see _probe.py).

GATE_WAIT = 60  # seconds: a gate the test forgets to open fails the task, never hangs it


def native_thread_id(_=None):
    """The native id of the thread running this task: what _probe looks at."""
    return threading.get_native_id()


def wait_for_gate(gate, value, started=None):
    """Set ``started`` (an interpool.Event) if given, wait until ``gate`` is set, return ``value``."""
    if started is not None:
        started.set()
    if not gate.wait(GATE_WAIT):
        raise TimeoutError(f"the test never opened the gate for {value!r}")
    return value


def gate_or_touch(x, directory, gate):
    """Item 0 returns at once, item 1 waits for ``gate``; later items leave a file behind."""
    if x == 0:
        return 0
    if x == 1:
        return wait_for_gate(gate, x)
    touch(os.path.join(directory, str(x)))
    return x


def fail_or_gate_or_touch(x, directory, gate):
    """Item 0 fails at once, item 1 waits for ``gate``; later items leave a file behind."""
    if x == 0:
        raise ValueError("first item fails")
    return gate_or_touch(x, directory, gate)


def meet_then_bump(barrier):
    """Wait at ``barrier`` (an interpool.Barrier) with the other tasks, then bump().

    Tasks that all wait here must run on as many workers at once: run one at a
    time, the barrier breaks after GATE_WAIT and the task fails.
    """
    barrier.wait(GATE_WAIT)
    return bump()


def count_and_wait_for_gate(value, gate, counter, lock):
    """Count this task as started (int64 0 of ``counter``), then wait for ``gate``; return ``value``."""
    with lock:
        memoryview(counter).cast("q")[0] += 1
    return wait_for_gate(gate, value)
