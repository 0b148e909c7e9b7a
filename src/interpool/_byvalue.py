"""Functions and classes with no importable home, sent by value with cloudpickle.

The codec pickles by name first (module-level functions and classes of
importable modules, builtins).  It comes here for what a worker could not
import by name: anything defined in ``__main__`` (a notebook, IPython,
``python -c``, stdin, a script, ``python -m pkg``), lambdas, closures, local
functions and classes.  cloudpickle sends their code, defaults, closure
cells and the globals they use; modules go by name.  A sender imports this
module (and cloudpickle) only when such an object leaves it.

Three things are added to cloudpickle:

- **One ``__main__`` namespace per interpreter.**  Functions whose globals
  are the sender's ``__main__`` get the receiver's ``__main__`` as globals,
  so an initializer that sets a global there is seen by the tasks, as when
  multiprocessing's workers import the main script.  A global arriving with
  a function replaces the receiver's value unless code on the receiver has
  rebound that name since (``_byvalue_load.set_main_function_state``).
- **A light receiving side.**  Functions, code, cells and modules rebuild
  with ``interpool._byvalue_load``, which imports nothing: a worker imports
  cloudpickle only when a class arrives by value (or when it sends something
  by value itself).
- **Encodings the caller may reuse.**  ``encode_callable`` also returns
  guards: the identity of everything the encoding captured (code, defaults,
  closure cells, each global used, recursively through other by-value
  functions and classes).  The engine reuses the bytes while every guard
  holds, so a notebook that rebinds a global gets the new value at the next
  call.  A function that reaches mutable data (a list, a dict, an instance)
  gets no guards: it is encoded afresh for each call.
"""

import builtins
import collections
import dis
import io
import marshal
import pickle
import sys
import types
import weakref

import cloudpickle
from cloudpickle import cloudpickle as _cp

from . import _byvalue_load as _load
from ._core import Guard

__all__ = ["ABSENT", "EncodedCallable", "dumps", "encode_callable"]


class _Absent:
    """A guard's expected value for a name that is not bound."""

    __slots__ = ()

    def __repr__(self):
        return "<absent>"


ABSENT = _Absent()


class _MainGlobals:
    """Stands for the sender's ``__main__`` namespace in a pickle."""

    __slots__ = ()

    def __reduce__(self):
        return _load.main_globals, ()


_MAIN_GLOBALS = _MainGlobals()


def _own_builtins(func):
    found = func.__builtins__
    return found is not vars(builtins) and found is not builtins


def _refuse_file(obj):
    # cloudpickle would send a text file's contents as a StringIO: not the file.
    raise TypeError(f"cannot pickle {type(obj).__name__!r} object (an open file)")


def _reduce_code(code):
    return marshal.loads, (marshal.dumps(code),)


def _reduce_cell(cell):
    try:
        return _load.make_cell, (cell.cell_contents,)
    except ValueError:  # empty
        return _load.make_cell, ()


def _reduce_module(module):
    if _cp._should_pickle_by_reference(module):
        return _load.subimport, (module.__name__,)
    return _cp._module_reduce(module)  # a dynamic module: by value


class _Pickler(cloudpickle.Pickler):
    # Functions, their code, cells and modules rebuild with interpool._byvalue_load,
    # so that the receiver need not import cloudpickle for them.
    dispatch_table = collections.ChainMap(
        {
            io.TextIOWrapper: _refuse_file,
            types.CodeType: _reduce_code,
            types.CellType: _reduce_cell,
            types.ModuleType: _reduce_module,
        },
        cloudpickle.Pickler.dispatch_table,
    )

    def _function_getnewargs(self, func):
        code, base_globals, name, argdefs, closure = super()._function_getnewargs(func)
        if func.__globals__ is _main_dict():
            base_globals = _MAIN_GLOBALS
        return code, base_globals, name, argdefs, closure

    def _dynamic_function_reduce(self, func):
        if _own_builtins(func):
            # It would get the receiver's builtins: another meaning.
            raise pickle.PicklingError(f"{func!r} has builtins of its own (__builtins__), which cannot be sent")
        setter = _load.set_main_function_state if func.__globals__ is _main_dict() else _load.set_function_state
        return _load.make_function, self._function_getnewargs(func), _cp._function_getstate(func), None, None, setter


def _main_dict():
    main = sys.modules.get("__main__")
    return getattr(main, "__dict__", None)


def dumps(obj, buffer_callback=None):
    """``obj`` pickled (protocol 5) with cloudpickle."""
    with io.BytesIO() as out:
        _Pickler(out, protocol=5, buffer_callback=buffer_callback).dump(obj)
        return out.getvalue()


class EncodedCallable:
    """What ``encode_callable`` gives the engine.

    Attributes:
        data: the pickle.
        guards: a tuple of ``_core.Guard``, or None.  The encoding may be
            reused while, for each guard, looking ``guard.key`` up in
            ``guard.container`` still gives ``guard.expected`` (``ABSENT``:
            unbound): a dict item, a cell's contents (key None), a
            function's code, defaults or keyword defaults (key 0, 1, 2), an
            item of a class's ``__dict__`` (a mappingproxy), else an
            attribute.  None: encode the callable again for each call.
        per_task: the callable holds state a call may change (a closure
            whose cells hold mutable objects or that rebinds them): workers
            decode it afresh for each task, as for a ``functools.partial``.
    """

    __slots__ = ("data", "guards", "per_task")

    def __init__(self, data, guards, per_task):
        self.data = data
        self.guards = guards
        self.per_task = per_task


def encode_callable(fn):
    """Pickle ``fn`` by value; see EncodedCallable."""
    data = dumps(fn)
    walk = _Walk()
    stable = walk.value(fn)
    per_task = (
        isinstance(fn, types.FunctionType)
        and fn.__closure__ is not None
        and (not stable or _rebinds_cells(fn.__code__))
    )
    return EncodedCallable(data, tuple(walk.guards) if stable else None, per_task)


# ----------------------------------------------------------------- guards

_IMMUTABLE = frozenset({type(None), bool, int, float, complex, str, bytes, range, type(Ellipsis), type(NotImplemented)})
# Objects that pickle by name and cannot change what they mean.
_BY_NAME = (
    types.ModuleType,
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.ClassMethodDescriptorType,
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
)
_GLOBAL_OPS = {dis.opmap[name] for name in ("LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL")}
_CELL_WRITES = {dis.opmap[name] for name in ("STORE_DEREF", "DELETE_DEREF")}
_names_cache = weakref.WeakKeyDictionary()


def _global_names(code):
    """The global names ``code`` and the code nested in it use (as cloudpickle finds them)."""
    names = _names_cache.get(code)
    if names is None:
        names = {ins.argval: None for ins in dis.get_instructions(code) if ins.opcode in _GLOBAL_OPS}
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                names.update(_global_names(const))
        names = tuple(names)
        _names_cache[code] = names
    return names


def _rebinds_cells(code):
    free = set(code.co_freevars)
    return any(ins.opcode in _CELL_WRITES and ins.argval in free for ins in dis.get_instructions(code))


def _by_reference(obj):
    """Whether cloudpickle pickles this function or class by name."""
    module_name = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module_name, str) or not isinstance(qualname, str) or module_name == "__main__":
        return False
    module = sys.modules.get(module_name)
    if module is None or _cp._is_registered_pickle_by_value(module):
        return False
    found = module
    try:
        for part in qualname.split("."):
            found = getattr(found, part)
    except AttributeError:
        return False
    return found is obj


class _Walk:
    """Collects the guards of an encoding; ``value`` says whether the guards cover it."""

    def __init__(self):
        self.guards = []
        self._seen = {}  # id -> object (kept alive while walking)

    def _guard(self, container, key, expected):
        self.guards.append(Guard(container=container, key=key, expected=expected))

    def value(self, obj):
        kind = type(obj)
        if kind in _IMMUTABLE:
            return True
        if kind is tuple or kind is frozenset:
            return all(self.value(item) for item in obj)
        if id(obj) in self._seen:
            return True
        self._seen[id(obj)] = obj
        if isinstance(obj, _BY_NAME):
            self_ = getattr(obj, "__self__", None)
            return (
                not isinstance(obj, types.BuiltinFunctionType)
                or self_ is None
                or isinstance(self_, (types.ModuleType, type))
            )
        if isinstance(obj, types.FunctionType):
            return _by_reference(obj) or self._function(obj)
        if isinstance(obj, type):
            return _by_reference(obj) or self._class(obj)
        if isinstance(obj, (staticmethod, classmethod)):
            return self.value(obj.__func__)
        if isinstance(obj, property):
            return all(self.value(f) for f in (obj.fget, obj.fset, obj.fdel))
        return False

    def _function(self, fn):
        guard = self._guard
        # Keys 0, 1, 2: the engine reads these three in place.
        guard(fn, 0, fn.__code__)
        guard(fn, 1, fn.__defaults__)
        guard(fn, 2, fn.__kwdefaults__)
        stable = self.value(fn.__defaults__)
        kwdefaults = fn.__kwdefaults__
        if kwdefaults:
            for key, value in kwdefaults.items():
                guard(kwdefaults, key, value)
                stable = self.value(value) and stable
        for cell in fn.__closure__ or ():
            try:
                contents = cell.cell_contents
            except ValueError:
                contents = ABSENT
            guard(cell, None, contents)
            stable = (contents is ABSENT or self.value(contents)) and stable
        namespace = fn.__globals__
        for name in _global_names(fn.__code__):
            current = namespace.get(name, ABSENT)
            guard(namespace, name, current)
            if current is not ABSENT:
                stable = self.value(current) and stable
        for key, value in fn.__dict__.items():
            guard(fn.__dict__, key, value)
            stable = self.value(value) and stable
        return stable

    def _class(self, cls):
        # Rebinding a class attribute (a method, say) is seen; a change made
        # in place to a mutable class attribute is not.
        guard = self._guard
        guard(cls, "__bases__", cls.__bases__)
        stable = all(self.value(base) for base in cls.__bases__)
        namespace = cls.__dict__
        for key, value in namespace.items():
            guard(namespace, key, value)
            if isinstance(value, (types.FunctionType, staticmethod, classmethod, property, type)):
                stable = self.value(value) and stable
        return stable
