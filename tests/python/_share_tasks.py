"""Task functions and classes for test_share.py and test_shared_buffer.py.

Workers import this module by name, so it imports only the standard library
and interpool (never pytest).  Module globals are per interpreter: a worker's
counters and stored objects are its own.
"""

import array
import struct
import time
import weakref

import interpool

# ------------------------------------------------------------------ basics


def ident(x):
    return x


def object_id(x):
    """id() of the object the task received, in this worker interpreter."""
    return id(x)


_held = []  # objects received by hold(), kept alive so that no id() is reused


def hold(x):
    """Keep x; return how many distinct objects and how many receipts so far."""
    _held.append(x)
    return len({id(o) for o in _held}), len(_held)


def type_and_value(x):
    return type(x).__name__, x


def length(x):
    return len(x)


def interp_id():
    """This interpreter's ID (distinct for every worker interpreter ever made)."""
    try:
        import _interpreters as interpreters  # 3.13+
    except ImportError:
        import _xxsubinterpreters as interpreters  # 3.12

    current = interpreters.get_current()
    return current[0] if isinstance(current, tuple) else int(current)


def id_in_interp(x):
    return interp_id(), id(x), x


def is_same(a, b):
    return a is b


def same_objects(container):
    """For ``[x, {"k": x}, Box(x)]``: whether the three are one object, and it."""
    first, mapping, box = container
    return first is mapping["k"] is box.content, first


def append_marker(x):
    """Mutate the received copy in place; return it as the task now sees it."""
    x.append("changed by a task")
    return x


def sleep_then_value(seconds, x):
    time.sleep(seconds)
    return x


def solve(args):
    """The README's shape: ``pool.map(solve, ((start, node, grid) for node in path))``."""
    start, node, grid = args
    return type(grid).__name__, grid[node] - grid[start]


def solve3(start, node, grid):
    return grid[node] - grid[start]


class Box:
    """A picklable custom object that carries a value (pickled, not native)."""

    def __init__(self, content):
        self.content = content

    def __eq__(self, other):
        return type(other) is Box and other.content == self.content

    def __repr__(self):
        return f"Box({self.content!r})"


class Holder:
    """An object whose pickling fails even by value: it holds a lock."""

    def __init__(self):
        import threading

        self.lock = threading.Lock()


# ---------------------------------------------- initializer: value set once

_INIT_VALUE = None


def init_store(value):
    global _INIT_VALUE
    _INIT_VALUE = value


def init_value_is(x):
    """Whether the task's argument is the very object the initializer received."""
    return _INIT_VALUE is x, _INIT_VALUE


def init_value_len(_=None):
    return len(_INIT_VALUE)


# ------------------------------------- tracking when a materialized copy dies


class Tracked:
    """A picklable, weak-referenceable value; ``event`` (optional) is an
    interpool.Event that the worker sets once its copy has been released."""

    def __init__(self, label, event=None, payload=()):
        self.label = label
        self.event = event
        self.payload = payload

    def __eq__(self, other):
        return type(other) is Tracked and (other.label, other.payload) == (self.label, self.payload)

    def __hash__(self):
        return hash(self.label)


_watched = set()  # id()s of objects with a finalizer registered in this interpreter
_released = []  # labels of watched objects that died in this interpreter


def _on_release(label, event):
    _released.append(label)
    if event is not None:
        event.set()


def watch(x):
    """Register (once) a finalizer on the received object; return (id, label)."""
    if id(x) not in _watched:
        _watched.add(id(x))
        weakref.finalize(x, _on_release, x.label, x.event)
    return id(x), x.label


def watch_and_hold(x, started, go, timeout=30.0):
    """watch(x), signal ``started``, keep using x until ``go`` is set."""
    watch(x)
    started.set()
    if not go.wait(timeout):
        raise TimeoutError("go was never set")
    return x.label, list(_released)


def released(_=None):
    """Labels of watched objects released in this interpreter so far."""
    return list(_released)


# ---------------------------------------------------------------- buffers

_kept = []  # buffers a worker keeps beyond one task


def buffer_info(buf):
    return type(buf).__name__, len(buf), buf.nbytes, buf.readonly


def fill(buf, byte):
    """Write ``byte`` over the whole buffer through a memoryview."""
    with memoryview(buf) as view:
        view[:] = bytes([byte]) * len(view)
    return len(buf)


def pack_into(buf, fmt, offset, *values):
    struct.pack_into(fmt, buf, offset, *values)


def unpack_from(buf, fmt, offset=0):
    return struct.unpack_from(fmt, buf, offset)


def array_values(buf, typecode):
    """The buffer's contents as ``array.array(typecode)`` items (a copy)."""
    a = array.array(typecode)
    a.frombytes(buf)
    return a.tolist()


def write_doubles(buf, values):
    """Write through a typed view: ``buf.cast('d')``."""
    view = buf.cast("d")
    try:
        for i, v in enumerate(values):
            view[i] = v
        return view.format, view.itemsize, len(view)
    finally:
        view.release()


def matrix_rows(buf):
    """``buf.cast('i', shape=[2, 3])`` read in the worker."""
    view = buf.cast("i", shape=[2, 3])
    try:
        return view.shape, view.tolist()
    finally:
        view.release()


def fill_item(mapping, key, byte):
    """fill() the buffer stored at ``mapping[key]``."""
    return fill(mapping[key], byte)


def make_buffer(size, byte):
    """A SharedBuffer created inside the task, filled with ``byte``, returned."""
    buf = interpool.SharedBuffer(size)
    fill(buf, byte)
    return buf


def make_readonly_buffer(data):
    return interpool.SharedBuffer(data, readonly=True)


def head_and_length(buf):
    """Read only the length and a few bytes: the per-call cost is transport."""
    return len(buf), bytes(memoryview(buf)[:4])


def try_write(buf):
    """Attempt a write; return the exception type name and message, or None."""
    try:
        with memoryview(buf) as view:
            view[0] = 1
    except Exception as exc:  # noqa: BLE001 - reported to the caller
        return type(exc).__name__, str(exc)
    return None


def release_while_viewed(buf):
    """In a worker: release() with a live memoryview is a BufferError, not a crash."""
    view = memoryview(buf)
    try:
        buf.release()
    except BufferError as exc:
        outcome = ("BufferError", str(exc))
    else:
        outcome = None
    view.release()
    buf.release()
    return outcome, buf.released


def keep(buf):
    """Keep the buffer in this worker beyond the task."""
    _kept.append(buf)
    return len(_kept)


def kept_bytes(index=-1):
    return bytes(_kept[index])


def fill_kept(byte, index=-1):
    return fill(_kept[index], byte)


def share_in_task(label):
    """A Shared made inside a task and returned: the caller receives its value."""
    return interpool.share(Tracked(label))


def send_shared(q, label):
    """Put a Shared on ``q`` and drop it: the queue holds the last reference."""
    q.put(interpool.share(Tracked(label)))


def send_shared_then_raise(q, taken, label):
    """Put a Shared on ``q``; once the caller took it, raise with it in this frame.

    The exception holds this frame, and so the Shared, through its traceback.
    """
    shared = interpool.share(Tracked(label))
    q.put(shared)
    assert taken.wait(30), "the caller never took the Shared"
    raise LookupError(label)


# AsyncPool coroutines.  Each ends in a loop callback that holds the Shared
# a little longer than the coroutine does (asyncio's, not the coroutine's).


async def gather_shared(label):
    """Return a Shared in a list that asyncio.gather made: its future holds the list too."""
    import asyncio

    async def make():
        return interpool.share(Tracked(label))

    return await asyncio.gather(make())


async def send_shared_then_cancel(q, taken, label):
    """Put a Shared on ``q``; once the caller took it, end cancelled with it in this frame.

    The CancelledError that asyncio throws in holds this frame, and so the
    Shared, through its traceback.
    """
    import asyncio

    shared = interpool.share(Tracked(label))
    q.put(shared)
    assert taken.wait(30), "the caller never took the Shared"
    asyncio.current_task().cancel()
    await asyncio.sleep(0)  # the CancelledError is thrown in here
    return shared


def get_from(q):
    x = q.get(timeout=30)
    return type(x).__name__, x


# ------------------------------------------- identity instead of timing


def where_and_id(x):
    """(native id of this worker's thread, id(x)): a handle decoded once per worker keeps its id."""
    import threading

    return threading.get_native_id(), id(x)


def meet_then_value(barrier, x, timeout=60):
    """Wait at ``barrier`` (an interpool.Barrier) with the other tasks, then return ``x``:
    tasks that meet there run on as many workers at once."""
    barrier.wait(timeout)
    return x


def write_wait_read(buf, written, go, timeout=60):
    """Write 0xAB at buf[0], set ``written``, wait for ``go``, return buf[-1]: both sides see one memory."""
    with memoryview(buf) as view:
        view[0] = 0xAB
        written.set()
        if not go.wait(timeout):
            raise TimeoutError("go was never set")
        return view[-1]
