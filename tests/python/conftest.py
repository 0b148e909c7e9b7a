"""Shared fixtures for the interpool test suite.

Task functions live in ``_tasks.py`` next to this file.  Workers import them
by name, and workers copy the caller's ``sys.path`` when a pool is created,
so this directory goes to the front of ``sys.path`` before any pool exists.

Pool kinds
----------
Behaviour tests are written once and run on every pool kind (``PoolKind``):
``Pool``, ``InterpreterPoolExecutor``, ``HybridPool`` (every callable marked
:func:`interpool.isolated`, so it runs in a worker interpreter) and
``AsyncPool`` (plain task functions run in its workers' event loops), each
with 1 and with 3 workers.  A test asks for them through the fixtures below:

* ``kind``: the ``PoolKind`` under test; ``kind.make(workers, **options)``
  makes a pool (shut down after the test), ``kind.fn(f)`` marks ``f`` as that
  kind needs.  ``pool`` is ``kind.make(kind.workers)``; ``make_pool`` is
  ``kind.make``; ``pool_kind`` is ``kind.name``.
* ``@pytest.mark.reuse_pool``: ``pool`` is one pool per kind and module, for
  modules whose tasks never outlive their test (it saves starting
  interpreters for every test).

Which kinds and worker counts a test gets is chosen by markers, closest wins:

* ``@pytest.mark.kinds(*EXECUTOR_KINDS)``: the kinds (``EXECUTOR_KINDS``:
  ``Pool``, ``InterpreterPoolExecutor``, ``HybridPool``; ``ALL_KINDS`` adds
  ``AsyncPool``).  ``BEHAVIOUR`` / ``ALL_BEHAVIOUR`` are the full matrix.
* ``@pytest.mark.workers(1, ...)``: the worker counts (``WORKER_COUNTS``: 1, 3).
* Without markers: ``UNREVIEWED_KINDS`` x ``UNREVIEWED_COUNTS`` (see there).
* ``@pytest.mark.needs("interrupt", ...)``: features a kind must have; a kind
  without one is skipped, with a reason that names the kind and the feature
  (see ``PoolKind.FEATURES``), never silently passed.

Tests that concern Pool itself (its own options) use ``pools``, a factory of
interpool.Pool objects; no module redefines ``pool``.
"""

import asyncio
import concurrent.futures
import contextvars
import functools
import os
import sys
import threading

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path[:1] != [HERE]:
    sys.path.insert(0, HERE)

import interpool  # noqa: E402

EXECUTOR_KINDS = ("Pool", "InterpreterPoolExecutor", "HybridPool")
ALL_KINDS = EXECUTOR_KINDS + ("AsyncPool",)
WORKER_COUNTS = (1, 3)
# Tests without kinds/workers markers keep what the suite had before the
# kinds matrix: Pool and InterpreterPoolExecutor with 2 workers.  Modules
# join the matrix one by one, once reviewed for 1 and 3 workers (a test
# that waits for another task to run needs 3).
UNREVIEWED_KINDS = ("Pool", "InterpreterPoolExecutor")
UNREVIEWED_COUNTS = (2,)
POOL_KINDS = ["Pool", "InterpreterPoolExecutor"]  # the engine-option-free pair make() spells


BEHAVIOUR = [pytest.mark.kinds(*EXECUTOR_KINDS), pytest.mark.workers(*WORKER_COUNTS)]
ALL_BEHAVIOUR = [pytest.mark.kinds(*ALL_KINDS), pytest.mark.workers(*WORKER_COUNTS)]


def make(kind, workers, **kwargs):
    """Create a pool of ``kind`` with ``workers`` workers, spelled as that class wants."""
    if kind == "Pool":
        return interpool.Pool(workers, **kwargs)
    if kind == "HybridPool":
        return interpool.HybridPool(workers, **kwargs)
    if kind != "InterpreterPoolExecutor":
        raise ValueError(f"make() makes executors, not {kind!r}")
    if "max_tasks_per_worker" in kwargs:
        raise ValueError("InterpreterPoolExecutor has no max_tasks_per_worker")
    return interpool.InterpreterPoolExecutor(max_workers=workers, **kwargs)


# ------------------------------------------------------------- the kinds


class IsolatingHybridPool(interpool.HybridPool):
    """A HybridPool whose every call is marked isolated, as its users mark them.

    Behaviour tests call ``pool.submit(f, ...)`` with plain functions; on a
    HybridPool those would run on threads of this interpreter and test
    nothing about interpreters.  This marks each callable at the call site
    (``interpool.isolated(f)``, the documented spelling) and changes nothing
    else.  Not marked: what asyncio.to_thread submits (its caller marks the
    function it passes) and non-callables (the pool's own check refuses them).
    """

    def submit(self, fn, /, *args, **kwargs):
        return super().submit(_mark(fn), *args, **kwargs)

    def map(self, fn, *iterables, **kwargs):
        return super().map(_mark(fn), *iterables, **kwargs)

    def run(self, fn, /, *args, **kwargs):
        return super().run(_mark(fn), *args, **kwargs)

    def map_async(self, fn, iterable, **kwargs):
        return super().map_async(_mark(fn), iterable, **kwargs)

    def options(self, **kwargs):
        return _IsolatingOptions(super().options(**kwargs))


def _is_to_thread_call(fn):
    """Whether ``fn`` is what asyncio.to_thread submits: partial(context.run, f, ...)."""
    return type(fn) is functools.partial and isinstance(getattr(fn.func, "__self__", None), contextvars.Context)


def _mark(fn):
    """``fn`` marked isolated, unless it is a to_thread call or not callable."""
    if not callable(fn) or _is_to_thread_call(fn):
        return fn
    return interpool.isolated(fn)


class _IsolatingOptions:
    """``IsolatingHybridPool.options(...)``: the same calls, each callable marked isolated."""

    def __init__(self, options):
        self._options = options

    def submit(self, fn, /, *args, **kwargs):
        return self._options.submit(_mark(fn), *args, **kwargs)

    def map(self, fn, *iterables, **kwargs):
        return self._options.map(_mark(fn), *iterables, **kwargs)

    def run(self, fn, /, *args, **kwargs):
        return self._options.run(_mark(fn), *args, **kwargs)

    def map_async(self, fn, iterable, **kwargs):
        return self._options.map_async(_mark(fn), iterable, **kwargs)


class AsyncPoolDriver:
    """An AsyncPool driven from synchronous test code, as an executor.

    ``submit(f, *args)`` runs ``await _kind_tasks.call(f, args, kwargs)`` in a
    worker's event loop through ``AsyncPool.run``, called in an event loop on
    a thread of the test process; it returns a concurrent.futures.Future and
    raises what ``AsyncPool.run`` raises (an unsendable argument).
    ``concurrency=1`` (by default) gives each worker one task at a time, as
    the executors do: a task that blocks (in ``Queue.get``, ``Lock.acquire``)
    blocks its worker's loop, and a second task queued in the same loop would
    wait behind it instead of taking a free worker.
    """

    def __init__(self, workers, concurrency=1, **options):
        self.apool = interpool.AsyncPool(workers, concurrency=concurrency, **options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="test-asyncpool-loop", daemon=True)
        self._thread.start()
        self._closed = False

    @property
    def workers(self):
        return self.apool.workers

    def submit(self, fn, /, *args, **kwargs):
        """Run ``fn(*args, **kwargs)`` through ``AsyncPool.run``; raise what submitting raises."""
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        import _kind_tasks

        submitted, result = concurrent.futures.Future(), concurrent.futures.Future()

        def start():  # on the loop's thread, in the running loop: AsyncPool.run submits at once
            try:
                remote = self.apool.run(_kind_tasks.call, fn, args, kwargs)
            except BaseException as exc:
                submitted.set_exception(exc)
                return
            submitted.set_result(None)
            remote.add_done_callback(functools.partial(_settle, result))
            result.add_done_callback(lambda f: f.cancelled() and self._loop.call_soon_threadsafe(remote.cancel))

        self._loop.call_soon_threadsafe(start)
        submitted.result()
        return result

    def map(self, fn, *iterables, timeout=None):
        futures = [self.submit(fn, *items) for items in zip(*iterables)]

        def results():
            try:
                for future in futures:
                    yield future.result(timeout)
            finally:
                for future in futures:
                    future.cancel()

        return results()

    def shutdown(self, wait=True, *, cancel_futures=False, interrupt=False):
        if self._closed:
            return
        self._closed = True
        if cancel_futures or interrupt:
            asyncio.run_coroutine_threadsafe(self.apool.aclose(), self._loop).result(120)
        else:
            self.apool.shutdown(wait=wait)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(120)
        self._loop.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()
        return False

    def __repr__(self):
        return f"<AsyncPoolDriver of {self.apool!r}>"


def _settle(result, remote):
    """Complete the concurrent.futures.Future ``result`` as the asyncio future ``remote`` ended."""
    if result.done():
        return
    if remote.cancelled():
        result.cancel()
    elif remote.exception() is not None:
        result.set_exception(remote.exception())
    else:
        result.set_result(remote.result())


class PoolKind:
    """One kind of pool with one worker count: how to make it and what it supports."""

    #: Features some kinds lack, and the kinds that have each.
    FEATURES = {
        # interpool's Future (interrupt()), pool.stats(), pool.options(timeout=...).
        # AsyncPool cancels the remote coroutine instead and has no stats.
        "interrupt": set(EXECUTOR_KINDS),
        # await pool.run(f) and pool.map_async(f, ...) on plain functions
        # (AsyncPool.run takes coroutine functions).
        "run": set(EXECUTOR_KINDS),
        # task_timeout, interrupt_grace, max_tasks_per_worker in the
        # constructor (InterpreterPoolExecutor keeps the stdlib's signature).
        "engine_options": {"Pool", "HybridPool"},
    }

    def __init__(self, name, workers):
        self.name = name
        self.workers = workers
        self.made = []

    def __repr__(self):
        return f"PoolKind({self.name!r}, {self.workers})"

    def supports(self, feature):
        return self.name in self.FEATURES[feature]

    def require(self, *features):
        """Skip the test, naming the kind and the feature, unless this kind has every one."""
        for feature in features:
            if not self.supports(feature):
                pytest.skip(f"{self.name} has no {feature!r} (see PoolKind.FEATURES)")

    def make(self, workers=None, **options):
        """A new pool of this kind (``workers`` defaults to this kind's count), shut down after the test."""
        workers = self.workers if workers is None else workers
        if self.name == "Pool":
            pool = interpool.Pool(workers, **options)
        elif self.name == "InterpreterPoolExecutor":
            engine_options = sorted(set(options) - {"initializer", "initargs", "output", "thread_name_prefix"})
            if engine_options:
                pytest.skip(f"InterpreterPoolExecutor's constructor (the stdlib's) has no {', '.join(engine_options)}")
            pool = interpool.InterpreterPoolExecutor(workers, **options)
        elif self.name == "HybridPool":
            pool = IsolatingHybridPool(workers, **options)
        elif self.name == "AsyncPool":
            pool = AsyncPoolDriver(workers, **options)
        else:
            raise ValueError(f"no pool kind {self.name!r}")
        self.made.append(pool)
        return pool

    def fn(self, f):
        """``f`` as this kind runs it in an interpreter (HybridPool: marked isolated)."""
        return interpool.isolated(f) if self.name == "HybridPool" else f

    def close(self):
        for pool in self.made:
            pool.shutdown(wait=True, cancel_futures=True, interrupt=True)
        self.made.clear()


def _closest_args(definition, name, default):
    marker = definition.get_closest_marker(name)
    return tuple(marker.args) if marker is not None and marker.args else default


def pytest_configure(config):
    config.addinivalue_line("markers", "kinds(*names): the pool kinds a behaviour test runs on (conftest.py)")
    config.addinivalue_line("markers", "workers(*counts): the worker counts a behaviour test runs with")
    config.addinivalue_line("markers", "reuse_pool: the pool fixture is one pool per module and kind")
    config.addinivalue_line("markers", "needs(*features): skip pool kinds without these features, naming them")


def _uses_our_kind(metafunc):
    """Whether ``kind`` in this test is conftest's fixture (a module may define or parametrize its own)."""
    if "kind" not in metafunc.fixturenames:
        return False
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0] if marker.args else marker.kwargs.get("argnames", "")
        if "kind" in ([n.strip() for n in names.split(",")] if isinstance(names, str) else names):
            return False
    defs = metafunc._arg2fixturedefs.get("kind")
    return bool(defs) and defs[-1].func.__module__ == __name__


def pytest_generate_tests(metafunc):
    if not _uses_our_kind(metafunc):
        return
    names = _closest_args(metafunc.definition, "kinds", UNREVIEWED_KINDS)
    # sized_pool had its own 1-and-2 axis; unreviewed tests that ask for it keep it.
    default_counts = (1, 2) if "sized_pool" in metafunc.fixturenames else UNREVIEWED_COUNTS
    counts = _closest_args(metafunc.definition, "workers", default_counts)
    unknown = set(names) - set(ALL_KINDS)
    if unknown:
        raise ValueError(f"{metafunc.definition.nodeid}: unknown pool kinds {sorted(unknown)}")
    params = [(name, count) for name in names for count in counts]
    metafunc.parametrize("kind", params, ids=[f"{n}-{c}" for n, c in params], indirect=True)


@pytest.fixture
def kind(request):
    """The ``PoolKind`` under test (parametrized by pytest_generate_tests)."""
    name, workers = request.param
    k = PoolKind(name, workers)
    marker = request.node.get_closest_marker("needs")
    if marker is not None:
        k.require(*marker.args)
    yield k
    k.close()


@pytest.fixture
def pool_kind(kind):
    """The name of the kind under test."""
    return kind.name


@pytest.fixture
def make_pool(kind):
    """Factory ``make_pool(workers=kind.workers, **kwargs)``; every pool is shut down after the test."""
    return kind.make


_REUSED = {}


@pytest.fixture
def pool(kind, request):
    """A pool of the kind under test, with its worker count.

    Fresh for each test, unless the test is marked ``reuse_pool``: then one
    pool per module and kind, for modules whose tasks never outlive their
    test and leave no state in a worker (starting 1 to 3 interpreters, an
    AsyncPool's with an event loop each, for every test of every kind would
    cost more than the tests).  Those are shut down at the module's end.
    """
    if request.node.get_closest_marker("reuse_pool") is None:
        return kind.make()
    key = (request.module.__name__, kind.name, kind.workers)
    if key not in _REUSED:
        holder = PoolKind(kind.name, kind.workers)
        _REUSED[key] = (holder, holder.make())  # _close_reused_pools shuts it down
    return _REUSED[key][1]


@pytest.fixture(scope="module", autouse=True)
def _close_reused_pools(request):
    yield
    for key in [k for k in _REUSED if k[0] == request.module.__name__]:
        _REUSED.pop(key)[0].close()


@pytest.fixture
def pools():
    """Factory for interpool.Pool objects that are shut down after the test."""
    made = []

    def factory(workers=1, **kwargs):
        pool = interpool.Pool(workers, **kwargs)
        made.append(pool)
        return pool

    yield factory
    for pool in made:
        pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def sized_pool(pool):
    """The pool of each kind and worker count (unmarked tests: 1 and 2 workers, as before)."""
    return pool


def child_env():
    """Environment for a child Python that imports interpool and _tasks like we do."""
    env = dict(os.environ)
    import interpool as pkg

    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(pkg.__file__)))
    parts = [HERE, pkg_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.pop("PYTHONWARNINGS", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env
