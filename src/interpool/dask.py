"""interpool.dask: a Dask worker that runs its tasks in own-GIL interpreters.

Three ways to set it up, each giving one worker process N interpreters:

* ``dask worker SCHEDULER --nthreads 4 --preload interpool.dask`` (options
  after it: ``--interpool-executor default|named``,
  ``--interpool-fallback error|threads``, ``--interpool-workers N``);
* ``client.register_plugin(interpool.dask.InterpreterPlugin())`` on a running
  cluster;
* ``Worker(..., executor=interpool.dask.InterpreterExecutor(4))``, or
  ``executor={"interpool": ...}`` for a named executor only.

As the default executor, every task runs in an interpreter; as the named
executor ``"interpool"``, only the tasks in ``with dask.annotate(executor=
"interpool"):`` do, and the others stay on the worker's threads.

distributed hands an executor its own runner, ``_run_task_simple(task, data,
delay)``.  The runner stays on a thread of the worker process, so timings,
results, errors and task states take distributed's usual path.  Only the
task's function and its input values go into an interpreter: the task is
taken apart into plain calls (``interpool._dask_call``) there, so workers
never import distributed (whose psutil refuses subinterpreters).
"""

import threading
import weakref
from concurrent import futures

import click
from distributed.diagnostics.plugin import WorkerPlugin
from distributed.worker import Worker, _run_task_simple

from . import _dask_call
from ._pool import Pool, _check_workers, default_workers

try:
    from dask._task_spec import Alias, DataNode, Dict, GraphNode, List, Set, Task, TaskRef, Tuple
except ImportError:  # a Dask without the task spec (before 2024.12)
    Alias = DataNode = Dict = GraphNode = List = Set = Task = TaskRef = Tuple = None  # type: ignore[misc,assignment]

__all__ = ["InterpreterExecutor", "InterpreterPlugin", "dask_setup"]

FALLBACKS = ("error", "threads")

# CPython's message for an extension module that refuses subinterpreters.
_REFUSED = "does not support loading in subinterpreters"

_CONTAINERS = {}
if Task is not None:
    _CONTAINERS = {
        List: (_dask_call.build, list),
        Tuple: (_dask_call.build, tuple),
        Set: (_dask_call.build, set),
        Dict: (_dask_call.build_dict,),
    }


class InterpreterExecutor(futures.Executor):
    """The executor of a Dask worker that runs each task's function in an interpreter.

    Args:
        workers: worker interpreters, hence tasks at once; give the worker's
            ``nthreads``.  Defaults to the number of usable CPUs.
        fallback: what happens to a task whose function cannot load in an
            interpreter (it imports an extension module that refuses
            subinterpreters, such as psutil or numpy today): ``"error"``
            fails the task with an ImportError that says so, ``"threads"``
            runs it on a thread of the worker process instead, and later
            calls of that function go straight there.
        **pool_options: passed to :class:`interpool.Pool`
            (``initializer``, ``max_tasks_per_worker``, ``task_timeout`` ...).

    Each running task holds one thread of the worker process, which waits
    (without the GIL) for its interpreter and then reports to distributed as
    a thread task would.  Anything else distributed submits (its own
    helpers) runs on those threads, never in an interpreter.

    Its type name deliberately lacks "ThreadPoolExecutor": distributed sends
    such executors a context-carrying lambda; this one gets
    ``_run_task_simple(task, data, delay)``, which it can take apart.
    """

    def __init__(self, workers=None, *, fallback="error", **pool_options):
        _check_workers("workers", workers)
        if fallback not in FALLBACKS:
            raise ValueError(f"fallback must be 'error' or 'threads', not {fallback!r}")
        workers = workers or default_workers()
        self._max_workers = workers
        self.fallback = fallback
        self.pool = Pool(workers, **pool_options)
        self._threads = futures.ThreadPoolExecutor(workers, thread_name_prefix="interpool-dask-")
        self._worker = None  # the distributed Worker, once known: its profiler watches our threads
        self._on_threads = weakref.WeakSet()  # functions that cannot load in an interpreter
        self._lock = threading.Lock()
        self._shutdown = False

    @property
    def max_workers(self):
        """How many tasks run at once (``_max_workers``, which Dask also reads)."""
        return self._max_workers

    def attach(self, worker):
        """Tell the executor its Worker, whose profiler then samples the threads of running tasks."""
        self._worker = worker

    def submit(self, fn, /, *args, **kwargs):
        """Run a task of distributed in an interpreter, anything else on a thread."""
        if fn is _run_task_simple:
            if self._worker is None:
                self._worker = _find_worker(self)
            return self._threads.submit(self._run, *args, **kwargs)
        return self._threads.submit(fn, *args, **kwargs)

    def shutdown(self, wait=True, *, cancel_futures=False):
        """Stop taking work; as ThreadPoolExecutor.shutdown, for the threads and the interpreters."""
        with self._lock:
            first, self._shutdown = not self._shutdown, True
        if first and cancel_futures:
            self.pool.shutdown(wait=False, cancel_futures=True)
        self._threads.shutdown(wait=wait, cancel_futures=cancel_futures)
        if wait:
            self.pool.shutdown(wait=True)
        elif first:
            # Tasks still queued on our threads go to the pool: shut it only
            # once they have, without holding the caller.
            threading.Thread(target=self._shutdown_later, name="interpool-dask-shutdown").start()

    def _shutdown_later(self):
        self._threads.shutdown(wait=True)
        self.pool.shutdown(wait=True)

    def _run(self, task, data, time_delay):
        # distributed's runner, on this thread, with a task whose call runs
        # in an interpreter: it measures, reports errors and results as usual.
        worker = self._worker
        key = getattr(task, "key", None)
        if worker is None or key is None:
            return _run_task_simple(_InInterpreter(self, task), data, time_delay)
        ident = threading.get_ident()
        with worker.active_threads_lock:
            worker.active_threads[ident] = key
        try:
            return _run_task_simple(_InInterpreter(self, task), data, time_delay)
        finally:
            with worker.active_threads_lock:
                worker.active_threads.pop(ident, None)

    def __repr__(self):
        return f"<interpool.dask.InterpreterExecutor workers={self._max_workers} fallback={self.fallback!r}>"


def _find_worker(executor):
    """The Worker that uses ``executor`` (given as ``Worker(executor=...)``), or None."""
    for worker in list(Worker._instances):
        if any(e is executor for e in worker.executors.values()):
            return worker
    return None


class _InInterpreter:
    """A task of the graph whose call runs in one of the executor's interpreters."""

    __slots__ = ("_executor", "_task")

    def __init__(self, executor, task):
        self._executor = executor
        self._task = task

    def __repr__(self):
        return repr(self._task)

    def __call__(self, data):
        executor, task = self._executor, self._task
        plan = _plan(task, data)
        if type(plan) is not _dask_call.Call:
            return plan  # data or an alias: nothing to run
        fn = plan.func
        if _in_set(executor._on_threads, fn):
            return task(data)
        try:
            return _submit(executor.pool, plan).result()
        except ImportError as exc:
            if _REFUSED not in str(exc):
                raise
            if executor.fallback == "threads":
                _add_to_set(executor._on_threads, fn)
                return task(data)
            raise ImportError(
                f"interpool: task {getattr(task, 'key', '?')!r} calls {_name(fn)}, which cannot run in a worker "
                f"interpreter: {exc}. Run such tasks on threads of the worker process: start the executor "
                "with fallback='threads' (InterpreterExecutor(fallback='threads'), InterpreterPlugin"
                "(fallback='threads'), or dask worker --preload interpool.dask --interpool-fallback threads), "
                "as interpool.HybridPool does with callables not marked isolated; or keep the worker's default "
                "executor on threads and send only the other tasks to interpreters with "
                "--interpool-executor named and dask.annotate(executor='interpool')",
                name=exc.name,
            ) from exc


def _submit(pool, plan):
    """Submit a Call tree: the function itself when its arguments are values, else the tree.

    Functions of ``__main__`` (the client's script or notebook, which
    distributed rebuilt by value in this process) need nothing here: the
    codec sends them by value itself and reuses their bytes from task to
    task, and the interpreter rebuilds them without importing cloudpickle.
    """
    calls = [type(a) is _dask_call.Call for a in plan.args] + [type(v) is _dask_call.Call for v in plan.kwargs.values()]
    try:
        if _calls_mp_main(plan):
            # The worker process's copy of the client's script, which a
            # spawned worker imported as __mp_main__: no interpreter can
            # import that name, and the codec sends by value only what
            # names __main__.  Rare (distributed ships the client's own
            # functions by value): the whole tree goes as one cloudpickle.
            raise TypeError("a function of __mp_main__")
        if not any(calls):
            return pool.submit(plan.func, *plan.args, **plan.kwargs)
        return pool.submit(_dask_call.evaluate, plan)
    except TypeError as exc:
        # A function with no importable home (defined in the client's
        # __main__ or a notebook, which distributed sent by value) or such an
        # argument: send it the way distributed did, with cloudpickle.
        import cloudpickle

        try:
            blob = cloudpickle.dumps(plan, protocol=5)
        except Exception:
            raise exc from None
        return pool.submit(_dask_call.run_pickled, blob)


def _calls_mp_main(plan):
    """Whether a function of the Call tree comes from the worker process's ``__mp_main__``."""
    if getattr(plan.func, "__module__", None) == "__mp_main__":
        return True
    nested = [a for a in plan.args if type(a) is _dask_call.Call]
    nested += [v for v in plan.kwargs.values() if type(v) is _dask_call.Call]
    return any(_calls_mp_main(c) for c in nested)


def _plan(node, values):
    """The Call tree of a graph node, with its inputs taken from ``values``."""
    kind = type(node)
    if TaskRef is not None:
        if kind is TaskRef:
            return values[node.key]
        if kind is DataNode:
            return node.value
        if kind is Alias:
            return values[node.target]
        if kind is Task:
            args = tuple(_arg(a, values) for a in node.args)
            kwargs = {k: _arg(v, values) for k, v in node.kwargs.items()}
            return _dask_call.Call(node.func, args, kwargs)
        container = _CONTAINERS.get(kind)
        if container is not None:
            items = tuple(_arg(a, values) for a in node.args)
            return _dask_call.Call(container[0], container[1:] + items)
        if isinstance(node, GraphNode):
            # A node type interpool does not know: it runs whole in the
            # interpreter, with the inputs it names.
            return _dask_call.Call(_dask_call.call_node, (node, {k: values[k] for k in node.dependencies}))
    if callable(node):  # an old-style task of some other Dask: run it as the worker would
        return _dask_call.Call(_dask_call.call_node, (node, values))
    return node


def _arg(arg, values):
    if TaskRef is not None and isinstance(arg, (GraphNode, TaskRef)):
        return _plan(arg, values)
    return arg


def _in_set(known, fn):
    try:
        return fn in known
    except TypeError:
        return False


def _add_to_set(known, fn):
    try:
        known.add(fn)
    except TypeError:
        pass  # not weak-referenceable: try the interpreter each time


def _name(fn):
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if module and qualname:
        return f"{module}.{qualname}"
    return repr(fn)


class InterpreterPlugin(WorkerPlugin):
    """Give each worker of a cluster an :class:`InterpreterExecutor`:
    ``client.register_plugin(interpool.dask.InterpreterPlugin())``.

    Args:
        executor: ``"default"`` runs every task in interpreters (the executor
            is also named ``"interpool"``); ``"named"`` adds it as the
            executor ``"interpool"`` only, for the tasks annotated with
            ``dask.annotate(executor="interpool")``.
        fallback: ``"error"`` or ``"threads"``, as for InterpreterExecutor.
        workers: interpreters per worker; None: the worker's ``nthreads``.

    Removing the plugin (or closing the worker) puts back the executor it
    replaced.
    """

    name = "interpool"

    def __init__(self, executor="default", *, fallback="error", workers=None):
        if executor not in ("default", "named"):
            raise ValueError(f"executor must be 'default' or 'named', not {executor!r}")
        if fallback not in FALLBACKS:
            raise ValueError(f"fallback must be 'error' or 'threads', not {fallback!r}")
        _check_workers("workers", workers)
        self.executor = executor
        self.fallback = fallback
        self.workers = workers
        self._installed = weakref.WeakKeyDictionary()  # worker -> (our executor, the default it replaced)

    def setup(self, worker):
        executor = InterpreterExecutor(self.workers or worker.state.nthreads, fallback=self.fallback)
        executor.attach(worker)
        replaced = None
        worker.executors["interpool"] = executor
        if self.executor == "default":
            replaced = worker.executors.get("default")
            worker.executors["default"] = executor
        self._installed[worker] = (executor, replaced)

    def teardown(self, worker):
        installed = self._installed.pop(worker, None)
        if installed is None:
            return
        executor, replaced = installed
        if worker.executors.get("interpool") is executor:
            del worker.executors["interpool"]
        if replaced is not None and worker.executors.get("default") is executor:
            worker.executors["default"] = replaced
        executor.shutdown(wait=False)

    def __getstate__(self):
        return {"executor": self.executor, "fallback": self.fallback, "workers": self.workers}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._installed = weakref.WeakKeyDictionary()


@click.command(context_settings={"ignore_unknown_options": False})
@click.option(
    "--interpool-executor",
    type=click.Choice(["default", "named"]),
    default="default",
    show_default=True,
    help="default: every task runs in an interpreter; named: only tasks annotated executor='interpool'.",
)
@click.option(
    "--interpool-fallback",
    type=click.Choice(FALLBACKS),
    default="error",
    show_default=True,
    help="For tasks whose function cannot load in an interpreter: fail them, or run them on threads.",
)
@click.option(
    "--interpool-workers",
    type=click.IntRange(min=1),
    default=None,
    help="Interpreters per worker (default: --nthreads).",
)
async def dask_setup(worker, interpool_executor, interpool_fallback, interpool_workers):
    """``dask worker --preload interpool.dask``: run the worker's tasks in interpreters."""
    plugin = InterpreterPlugin(interpool_executor, fallback=interpool_fallback, workers=interpool_workers)
    await worker.plugin_add(plugin=plugin, name=plugin.name, catch_errors=False)


for _cls in (InterpreterExecutor, InterpreterPlugin):
    _cls.__module__ = "interpool.dask"
del _cls
