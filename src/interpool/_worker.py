"""Code that runs inside every worker interpreter.

Imported by the engine in each worker, right after ``sys.path`` is copied from
the interpreter that created the pool.  Keep its imports light: each worker
pays for them at start.
"""

import sys

__all__ = ["setup", "teardown", "describe_exception"]

_SUBINTERPRETER_HINT = (
    "interpool: this module cannot be imported in a worker interpreter because it does not "
    "support subinterpreters (it uses single-phase init or declares no per-interpreter GIL "
    "support). Run this function on threads (interpool.HybridPool, ThreadPoolExecutor) or in "
    "processes (ProcessPoolExecutor) instead, or use a version of the module that supports "
    "subinterpreters."
)


# True while this worker imports the caller's main script (see setup()).
importing_main = False


def _guard_getsignal():
    """Keep signal.getsignal() from leaking the main interpreter's handlers.

    CPython's signal.getsignal() returns the handler objects of the main
    interpreter even when called in a subinterpreter; touching them from here
    corrupts memory (asyncio.run() calls it, for one).  Signal handlers can
    only be set in the main interpreter, so in a worker none is "installed
    from Python": report None, as the signal module documents for that case.

    The C module is patched, not signal.py: signal.getsignal() calls
    _signal.getsignal() each time, and importing signal here would import
    enum into every worker, which needs neither.
    """
    import _signal

    valid = _signal.valid_signals()

    def getsignal(signalnum, /):
        if signalnum not in valid:
            raise ValueError("signal number out of range")
        return None

    getsignal.__doc__ = _signal.getsignal.__doc__
    _signal.getsignal = getsignal


# Stdlib extension modules that are single-phase init on 3.12 and have a
# pure-Python twin that the stdlib falls back to on ImportError.
_REFUSED_ON_312 = {"_datetime": "_pydatetime", "_decimal": "_pydecimal"}


class _Py312ExtensionGuard:
    """A sys.meta_path finder for 3.12 workers.

    CPython 3.12 runs a single-phase extension module's init function in a
    subinterpreter *before* it refuses the module; _datetime's init then
    writes into static types shared with the main interpreter, which frees
    the main interpreter's objects with this interpreter's allocator and
    crashes the process.  Refuse such modules before their init runs, so that
    datetime and decimal load their pure-Python versions.  The classes of
    _pydatetime are also renamed datetime.*, so that objects made here pickle
    as the caller's datetime types.
    """

    def find_spec(self, name, path=None, target=None):
        if name in _REFUSED_ON_312:
            raise ImportError(f"module {name} does not support loading in subinterpreters", name=name)
        if name == "_pydatetime":
            import importlib.machinery

            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is not None and spec.loader is not None:
                spec.loader = _RenamingLoader(spec.loader)
            return spec
        return None


class _RenamingLoader:
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        for name in ("date", "time", "datetime", "timedelta", "tzinfo", "timezone"):
            cls = getattr(module, name, None)
            if isinstance(cls, type) and cls.__module__ == "_pydatetime":
                cls.__module__ = "datetime"
        # The C timezone pickles as its constructor arguments alone; the
        # Python one adds its slots, which the C class cannot take back.
        timezone = module.timezone
        timezone.__reduce__ = lambda self: (timezone, self.__getinitargs__())


def setup(main, argv):
    """Prepare a fresh worker interpreter.

    ``main`` says how the caller's ``__main__`` was started: ``("path", file)``,
    ``("module", name)`` or ``None``.  Functions defined in ``__main__`` pickle by
    name; the first time a task needs one, the worker imports the main script
    as module ``__mp_main__`` (its ``if __name__ == "__main__":`` block does not
    run) and makes it this interpreter's ``__main__``, as multiprocessing's spawn
    does.
    """
    sys.argv[:] = list(argv)
    _guard_getsignal()
    if sys.version_info < (3, 13):
        sys.meta_path.insert(0, _Py312ExtensionGuard())
    if main is None:
        return
    main_module = sys.modules["__main__"]
    kind, value = main

    def __getattr__(name):
        loaded = _load_main(kind, value)
        if loaded is None or loaded is main_module:
            raise AttributeError(f"module '__main__' has no attribute {name!r}")
        return getattr(loaded, name)

    main_module.__getattr__ = __getattr__


_loaded_main = None


def _load_main(kind, value):
    global _loaded_main
    if _loaded_main is not None:
        return _loaded_main
    import importlib.util

    if kind == "module":
        spec = importlib.util.find_spec(value)
        origin = spec.origin if spec is not None else None
    else:
        origin = value
    if origin is None:
        return None
    global importing_main
    spec = importlib.util.spec_from_file_location("__mp_main__", origin)
    module = importlib.util.module_from_spec(spec)
    sys.modules["__mp_main__"] = module
    importing_main = True
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["__mp_main__"]
        raise
    finally:
        importing_main = False
    sys.modules["__main__"] = module
    _loaded_main = module
    return module


def teardown():
    """Run by the engine just before it ends this interpreter.

    On 3.13+, an engine thread that used threading.current_thread() here owns
    a _DummyThread whose cleanup object lives in a thread-local; dropped
    during interpreter teardown it would run after the threading module is
    gone.  Drop it now, while threading still works.
    """
    threading = sys.modules.get("threading")
    info = getattr(threading, "_thread_local_info", None)
    if info is not None:
        try:
            del info._track_dummy_thread_ref
        except AttributeError:
            pass


def encode_stateless(fn):
    """The marshalled code of a stateless function, for InterpreterPoolExecutor.

    As the stdlib's executor does, a function that pickle cannot send by name
    (a lambda, a local function) may still travel as its code if it needs no
    state: no closure, no defaults and no globals but builtins.  Raises
    TypeError otherwise.
    """
    import builtins
    import dis
    import marshal
    import types

    if type(fn) is not types.FunctionType:
        raise TypeError(f"{fn!r} is not a plain function")
    if fn.__closure__ or fn.__defaults__ or fn.__kwdefaults__:
        raise TypeError(f"{fn!r} has a closure or defaults, so it is not stateless")

    def check(code):
        for ins in dis.get_instructions(code):
            if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME") and not hasattr(builtins, ins.argval):
                raise TypeError(f"{fn!r} uses the global {ins.argval!r}, so it is not stateless")
            if ins.opname in ("STORE_GLOBAL", "DELETE_GLOBAL", "STORE_NAME", "DELETE_NAME"):
                raise TypeError(f"{fn!r} changes the global {ins.argval!r}, so it is not stateless")
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                check(const)

    check(fn.__code__)
    return marshal.dumps(fn.__code__)


def decode_stateless(data):
    """Rebuild a function sent by encode_stateless, against builtins only."""
    import builtins
    import marshal
    import types

    return types.FunctionType(marshal.loads(data), {"__builtins__": builtins, "__name__": "__main__"})


def describe_exception(exc):
    """Describe ``exc`` for the trip back to the caller's interpreter.

    Returns ``("exception", pickled or None, type name, message, traceback
    text, type's module, type's qualname)``.
    """
    import pickle
    import traceback

    if isinstance(exc, ImportError) and "does not support loading in subinterpreters" in str(exc):
        try:
            exc.add_note(_SUBINTERPRETER_HINT)
        except Exception:
            pass
    tb = "".join(traceback.format_exception(exc))
    try:
        data = pickle.dumps(exc, 5)
    except Exception:
        data = None
    cls = type(exc)
    type_name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    try:
        message = str(exc)
    except Exception:
        message = "<exception str() failed>"
    return ("exception", data, type_name, message, tb, cls.__module__, cls.__qualname__)
