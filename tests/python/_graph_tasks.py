"""Task helpers for the object-identity and callable-state tests.

Workers import this module by name, so it imports only the stdlib (never
pytest).  ``shape(x)`` describes an object graph: its values, and which of its
parts are one object (identity), so that two graphs compare equal when they
have the same values and the same sharing, cycles included.
"""

import gc
import weakref

# ------------------------------------------------------------ object graphs


class Box:
    """A picklable object that is not a builtin container (pickled, not native)."""

    def __init__(self, item=None):
        self.item = item

    def __repr__(self):
        return f"Box(<{type(self.item).__name__}>)"


_MUTABLE = (list, dict, set, bytearray, Box)


def _holds_mutable(t):
    # A tuple cannot hold itself except through a mutable container, where
    # this stops: no cycle to guard against.
    return any(type(i) in _MUTABLE or (type(i) is tuple and _holds_mutable(i)) for i in t)


def shape(x):
    """The values and identity structure of ``x``, as nested tuples.

    Mutable containers (and Box), and tuples that hold one, are numbered in
    the order a depth-first walk first meets them; meeting one again gives
    ("ref", number).  Tuples of immutable values and frozensets compare by
    value only: their identity is not observable except through ``is``.
    """
    seen = {}
    keep = []  # ids must not be reused during the walk

    def walk(o):
        t = type(o)
        tracked = t in _MUTABLE or (t is tuple and _holds_mutable(o))
        if tracked:
            if id(o) in seen:
                return ("ref", seen[id(o)])
            seen[id(o)] = len(seen)
            keep.append(o)
        if t is list:
            return ("list", tuple(walk(i) for i in o))
        if t is tuple:
            return ("tuple", tuple(walk(i) for i in o))
        if t is dict:
            return ("dict", tuple((k, walk(v)) for k, v in o.items()))
        if t is set:
            return ("set", frozenset(o))
        if t is frozenset:
            return ("frozenset", o)
        if t is bytearray:
            return ("bytearray", bytes(o))
        if t is Box:
            return ("Box", walk(o.item))
        return ("atom", t.__name__, repr(o))

    return walk(x)


def shape_and_value(x):
    """What the worker received (its shape), and the value itself, to send back."""
    return shape(x), x


def same_object(pair):
    return pair[0] is pair[1]


def positional_is_keyword(value, key):
    return value is key


# ----------------------------------------------------------- callable state


def append_and_len(lst, _=None):
    lst.append(1)
    return len(lst)


class CallCounter:
    """A callable instance whose state a call changes."""

    def __init__(self):
        self.calls = 0

    def __call__(self, _=None):
        self.calls += 1
        return self.calls

    def bump(self, _=None):
        self.calls += 1
        return self.calls


class Sentinel:
    """Bound into a partial; the worker tracks live ones by weak reference."""

    def __init__(self, payload=b""):
        self.payload = payload


_live = weakref.WeakSet()


def track(sentinel, _=None):
    _live.add(sentinel)
    return len(sentinel.payload)


def live_sentinels(_=None):
    """How many Sentinels that track() saw are still alive in this worker."""
    gc.collect()
    return len(_live)
