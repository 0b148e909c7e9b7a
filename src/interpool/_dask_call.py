"""What a Dask task becomes inside a worker interpreter: a tree of plain calls.

``interpool.dask`` turns a task of Dask's graph (``dask._task_spec.Task``,
with its nested tasks and containers) into :class:`Call` objects whose
arguments are already the task's input values.  A worker interpreter
evaluates them with :func:`evaluate`, so it imports the user's functions and
nothing of Dask or distributed.  Keep this module free of imports: every
worker that runs a nested Dask task loads it.
"""

__all__ = ["Call", "evaluate", "run_pickled", "build", "build_dict", "call_node"]


class Call:
    """``func(*args, **kwargs)``, where an argument that is a Call is evaluated first."""

    __slots__ = ("func", "args", "kwargs")

    def __init__(self, func, args=(), kwargs=None):
        self.func = func
        self.args = tuple(args)
        self.kwargs = kwargs or {}

    def __reduce__(self):
        return (Call, (self.func, self.args, self.kwargs))

    def __repr__(self):
        name = getattr(self.func, "__qualname__", None) or repr(self.func)
        return f"<interpool dask call {name}>"


def _value(arg):
    return evaluate(arg) if type(arg) is Call else arg


def evaluate(call):
    """Evaluate a :class:`Call` tree, innermost calls first, as Dask does."""
    args = [_value(a) for a in call.args]
    if call.kwargs:
        return call.func(*args, **{k: _value(v) for k, v in call.kwargs.items()})
    return call.func(*args)


def run_pickled(blob):
    """Evaluate a Call tree that was sent as a cloudpickle (functions with no importable home)."""
    import pickle

    tree = pickle.loads(blob)
    return evaluate(tree) if type(tree) is Call else tree


def build(constructor, *items):
    """A list, tuple or set from its evaluated items (Dask's List, Tuple, Set)."""
    return constructor(items)


def build_dict(*items):
    """A dict from evaluated ``key, value, key, value, ...`` (Dask's Dict)."""
    return dict(zip(items[::2], items[1::2]))


def call_node(node, values):
    """Run a graph node of a kind interpool does not take apart (this imports Dask here)."""
    return node(values)
