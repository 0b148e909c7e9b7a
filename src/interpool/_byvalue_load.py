"""The receiving half of functions sent by value: light enough for every worker.

``interpool._byvalue`` pickles functions with cloudpickle, but has them
rebuilt by the helpers here, which import nothing: a worker that receives a
lambda, a closure or a notebook's function does not import cloudpickle (56
modules, about 60 ms per worker on a busy 2-core machine).  Classes sent by
value still rebuild with cloudpickle's own helpers, which its pickle names,
so the worker imports cloudpickle when the first one arrives.

The state format is cloudpickle's (``cloudpickle.cloudpickle._function_getstate``);
``set_function_state`` mirrors its ``_function_setstate``.
"""

import sys
import types

__all__ = ["main_globals", "make_cell", "make_function", "set_function_state", "set_main_function_state", "subimport"]


def main_globals():
    """The ``__main__`` namespace of this interpreter (a worker has its own)."""
    return sys.modules["__main__"].__dict__


def make_function(code, globals, name, argdefs, closure):
    globals["__builtins__"] = __builtins__
    return types.FunctionType(code, globals, name, argdefs, closure)


_EMPTY = object()


def make_cell(value=_EMPTY):
    return types.CellType() if value is _EMPTY else types.CellType(value)


def subimport(name):
    __import__(name)
    return sys.modules[name]


def set_function_state(func, state):
    """Fill in a function made by ``make_function`` (cloudpickle's state format)."""
    state, slotstate = state
    func.__dict__.update(state)
    func_globals = slotstate.pop("__globals__")
    closure = slotstate.pop("__closure__")
    slotstate.pop("_cloudpickle_submodules", None)  # imported by now: that was their purpose
    func.__globals__.update(func_globals)
    func.__globals__["__builtins__"] = __builtins__
    if closure is not None:
        for i, cell in enumerate(closure):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            func.__closure__[i].cell_contents = value
    for key, value in slotstate.items():
        setattr(func, key, value)


# Name -> the object that last arrived for it in this interpreter's __main__.
_received = {}
_ABSENT = object()


def set_main_function_state(func, state):
    """``set_function_state`` for a function of the sender's ``__main__``.

    Its globals are this interpreter's ``__main__``.  Each global that came
    with it is stored there, unless the name is bound here to something
    other than what last arrived for it: code here (an initializer, a task)
    rebound it, and that value stays, as it would in an imported script.
    """
    state, slotstate = state
    namespace = func.__globals__
    for name, value in slotstate["__globals__"].items():
        current = namespace.get(name, _ABSENT)
        if current is not _ABSENT and current is not value and current is not _received.get(name, _ABSENT):
            continue
        namespace[name] = value
        _received[name] = value
    slotstate["__globals__"] = {}
    set_function_state(func, (state, slotstate))
