"""Code that runs inside every worker interpreter.

Imported by the engine in each worker, right after ``sys.path`` is copied from
the interpreter that created the pool.  Keep its imports light: each worker
pays for them at start.
"""

import io  # loaded at every interpreter's start-up: costs nothing here
import sys

__all__ = ["setup", "teardown", "describe_exception"]

_REFUSAL = "does not support loading in subinterpreters"


def _refused_module(exc):
    """The module named by "module X does not support loading in subinterpreters" in ``exc`` or its causes."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ImportError):
            text = str(exc)
            at = text.find(_REFUSAL)
            if at >= 0:
                words = text[:at].split()
                if len(words) >= 2 and words[-2] == "module":
                    return words[-1]
                return exc.name or "?"
        exc = exc.__cause__ or exc.__context__
    return None


def _refusal_hint(module):
    package = module.partition(".")[0]
    inner = "" if package == module else f" (its extension module {module})"
    return (
        f"interpool: {package}{inner} cannot be imported in a worker interpreter: it does not support "
        "subinterpreters (single-phase init, or no per-interpreter GIL support), so any task that uses it "
        "fails here, whatever the rest of the message says. Run the tasks that use it on threads in your "
        "interpreter with interpool.HybridPool (callables not marked @interpool.isolated run there), or in "
        "processes (concurrent.futures.ProcessPoolExecutor). "
        f"`python -m interpool check {package}` says in advance which modules load in a worker."
    )


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
            return _patched_spec(name, path, _patch_pydatetime)
        return None


class _PatchOnImport:
    """A sys.meta_path finder: hands module ``name`` to ``patch`` once it is
    first imported, so that a worker that never imports it never pays for it."""

    def __init__(self, name, patch):
        self._name = name
        self._patch = patch

    def find_spec(self, name, path=None, target=None):
        if name != self._name:
            return None
        return _patched_spec(name, path, self._patch)


def _patch_module(name, patch):
    """Hand module ``name`` to ``patch``: now if it is loaded (by sitecustomize,
    say), else when it is first imported."""
    module = sys.modules.get(name)
    if module is not None:
        patch(module)
    else:
        sys.meta_path.insert(0, _PatchOnImport(name, patch))


def _patched_spec(name, path, patch):
    """The path finder's spec for ``name``, loaded through a :class:`_PatchingLoader`."""
    import importlib.machinery

    spec = importlib.machinery.PathFinder.find_spec(name, path)
    if spec is not None and spec.loader is not None:
        spec.loader = _PatchingLoader(spec.loader, patch)
    return spec


class _PatchingLoader:
    """Loads a module with ``loader``, then hands it to ``patch``."""

    def __init__(self, loader, patch):
        self._loader = loader
        self._patch = patch

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._patch(module)


def _patch_pydatetime(module):
    for name in ("date", "time", "datetime", "timedelta", "tzinfo", "timezone"):
        cls = getattr(module, name, None)
        if isinstance(cls, type) and cls.__module__ == "_pydatetime":
            cls.__module__ = "datetime"
    # The C timezone pickles as its constructor arguments alone; the
    # Python one adds its slots, which the C class cannot take back.
    timezone = module.timezone
    timezone.__reduce__ = lambda self: (timezone, self.__getinitargs__())


def setup(*, argv, output=None):
    """Prepare a fresh worker interpreter.

    ``output``: None when the pool lets workers write to file descriptors 1
    and 2 themselves; else the configuration of output forwarding (see
    :func:`_forward_output`).

    Functions and classes of the caller's ``__main__`` arrive by value
    (interpool._byvalue), so the worker never imports the main script: its
    top-level code and imports do not run here.
    """
    sys.argv[:] = list(argv)
    if output is not None:
        _forward_output(output)
    _guard_getsignal()
    if sys.version_info < (3, 13):
        sys.meta_path.insert(0, _Py312ExtensionGuard())
    _patch_module("multiprocessing.process", _patch_process_start)


class _ForwardedStream(io.TextIOBase):
    """A worker's sys.stdout or sys.stderr: text goes to the caller's stream.

    Complete lines are sent as they are written, the rest when ``flush()``
    is called or the task ends (the engine pushes it before the task's future
    completes).  ``fileno()`` is the process's file descriptor (1 or 2), for
    code that hands it to a child process.
    """

    encoding = "utf-8"
    errors = "strict"
    newlines = None
    line_buffering = True
    mode = "w"

    def __init__(self, kind, tty):
        from . import _core

        self._kind = kind
        self._tty = tty
        self._write = _core.output_write
        self._flush = _core.output_flush

    @property
    def name(self):
        return "<stdout>" if self._kind == 1 else "<stderr>"

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        self._write(self._kind, s)
        return len(s)

    def flush(self):
        self._flush(self._kind)

    def writable(self):
        return True

    def isatty(self):
        return self._tty

    def fileno(self):
        return self._kind

    @property
    def buffer(self):
        """Bytes written here are decoded as UTF-8 (undecodable bytes as
        ``\\xNN``) and forwarded as text."""
        return _ForwardedBuffer(self)

    def __repr__(self):
        return f"<interpool worker {self.name}, forwarded to the caller>"


class _ForwardedBuffer(io.RawIOBase):
    """``sys.stdout.buffer`` of a forwarding worker."""

    def __init__(self, text):
        self._text = text

    def writable(self):
        return True

    def write(self, b):
        data = bytes(memoryview(b))
        self._text.write(data.decode("utf-8", "backslashreplace"))
        return len(data)

    def flush(self):
        self._text.flush()

    def fileno(self):
        return self._text.fileno()


# The engine thread's ident: records it logs are named after the worker.
_task_thread = None
_log_level = 30


def _forward_output(config):
    """Send this worker's sys.stdout, sys.stderr and logging records to the caller.

    ``config``: ``{"log_level": int, "stdout_tty": bool, "stderr_tty": bool}``.
    logging is not imported for this: the handler is installed when the
    task's code first imports logging (or now, if something already did).
    """
    global _task_thread, _log_level
    import _thread

    _task_thread = _thread.get_ident()
    _log_level = config["log_level"]
    sys.stdout = _ForwardedStream(1, config["stdout_tty"])
    sys.stderr = _ForwardedStream(2, config["stderr_tty"])
    _patch_module("logging", _hook_logging)


def _hook_logging(logging):
    """Give the worker's root logger a handler that sends records to the caller.

    The root level is the lowest level set on any of the caller's loggers
    when the pool started; the caller applies its own levels to each record.
    """

    class ForwardingHandler(logging.Handler):
        def emit(self, record):
            try:
                _send_record(logging, record)
            except RecursionError:
                raise
            except Exception:
                self.handleError(record)

    root = logging.getLogger()
    root.addHandler(ForwardingHandler())
    root.setLevel(_log_level)


_PLAIN = (str, int, float, bool, type(None))


def _send_record(logging, record):
    import marshal

    from . import _core

    attrs = {}
    for key, value in record.__dict__.items():
        if isinstance(value, _PLAIN) and type(value) in _PLAIN:
            attrs[key] = value
        elif key not in ("args", "exc_info", "msg"):
            try:
                attrs[key] = repr(value)
            except Exception:
                pass
    attrs["msg"] = record.getMessage()
    attrs["args"] = None
    attrs["exc_info"] = None
    if record.exc_info and not record.exc_text:
        attrs["exc_text"] = logging.Formatter().formatException(record.exc_info)
    if record.thread == _task_thread:
        attrs["_interpool_task_thread"] = True
    _core.output_record(marshal.dumps(attrs))


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


def decode_stateless(data):
    """Rebuild a function sent by interpool._callables.encode_stateless, against builtins only."""
    import builtins
    import marshal
    import types

    return types.FunctionType(marshal.loads(data), {"__builtins__": builtins, "__name__": "__main__"})


_THREADS_AND_FORK_HINT = (
    "interpool: this task runs in a worker interpreter (an isolated subinterpreter, PEP 684), where "
    "CPython allows neither fork() nor daemon threads. multiprocessing and ProcessPoolExecutor need "
    "them to start their processes: create process pools in the main interpreter and send them work "
    "from there, or use interpool itself (a task may start its own interpool.Pool) or plain threads "
    "inside the task."
)

_MULTIPROCESSING_HINT = (
    "multiprocessing cannot start processes from inside an interpool worker: the task runs in an "
    "isolated subinterpreter (PEP 684), where CPython refuses fork() and daemon threads, and where "
    "a spawned child cannot import the main script as multiprocessing expects. Create the process "
    "pool (multiprocessing.Pool, ProcessPoolExecutor) in the main interpreter and send it work from "
    "there, or run this work with interpool itself (a task may start its own interpool.Pool) or on "
    "threads."
)


def _refuse_process_start(self):
    raise RuntimeError(_MULTIPROCESSING_HINT)


def _patch_process_start(module):
    """Make multiprocessing (``multiprocessing.process``) refuse to start processes.

    Left alone, multiprocessing in a worker fails obscurely (fork: "not
    supported for isolated subinterpreters"; spawn Pool: "daemon threads are
    disabled in this interpreter") or starts children that cannot load the
    main script and leave the task waiting.  :func:`setup` patches
    ``BaseProcess.start`` when multiprocessing.process is first imported,
    so that workers that never use multiprocessing never import it.
    """
    module.BaseProcess.start = _refuse_process_start


def _type_names(cls):
    """(module, qualname, display name) of an exception type, safely."""
    try:
        module = str(cls.__module__)
    except BaseException:
        module = "builtins"
    try:
        qualname = str(cls.__qualname__)
    except BaseException:
        qualname = getattr(cls, "__name__", "Exception")
    if module == "__mp_main__":  # the caller knows the main script as __main__
        module = "__main__"
    name = qualname if module == "builtins" else f"{module}.{qualname}"
    return module, qualname, name


def describe_exception(exc):
    """Describe ``exc`` for the trip back to the caller's interpreter.

    Returns a ``_core.Failure`` of kind ``"exception"`` (the one Python
    place that builds one; the binding builds the others, see
    ``src/python/failure.hpp``), which ``interpool._errors.rebuild`` turns
    back into an exception.  Never raises, whatever the exception's
    ``__reduce__``, ``__str__`` or notes do: the caller always gets the
    qualified type name, the message and the traceback text.
    """
    import pickle
    import traceback

    from . import _core

    cls = type(exc)
    module, qualname, type_name = _type_names(cls)
    try:
        message = str(exc)
    except BaseException:
        message = "<exception str() failed>"
    try:
        refused = _refused_module(exc) if isinstance(exc, ImportError) else None
        if refused is not None:
            exc.add_note(_refusal_hint(refused))
        elif isinstance(exc, RuntimeError) and (
            "daemon threads are disabled" in message or "not supported for isolated subinterpreters" in message
        ):
            exc.add_note(_THREADS_AND_FORK_HINT)
    except BaseException:
        pass
    try:
        tb = "".join(traceback.format_exception(exc))
    except BaseException:
        try:
            tb = "".join(traceback.format_tb(exc.__traceback__)) + f"{type_name}: {message}\n"
        except BaseException:
            tb = f"{type_name}: {message}\n"
    try:
        data = pickle.dumps(exc, 5)
    except BaseException:
        data = None
        if "interpool._byvalue" in sys.modules:  # an exception class that came by value
            try:
                data = sys.modules["interpool._byvalue"].dumps(exc)
            except BaseException:
                pass
    return _core.Failure(
        kind="exception",
        pickled=data,
        type_name=type_name,
        message=message,
        traceback=tb,
        module=module,
        qualname=qualname,
    )
