"""A joblib backend that runs ``Parallel`` calls in interpool worker interpreters.

Importing this module registers the backend ``"interpool"``::

    import joblib
    import interpool.joblib

    with joblib.parallel_config(backend="interpool", n_jobs=4):
        squares = joblib.Parallel()(joblib.delayed(pow)(i, 2) for i in range(100))

What joblib offers works as with its loky backend: ordered results,
``return_as="generator"`` and ``"generator_unordered"``, auto-batching,
exceptions raised in the caller with the worker's traceback as their
``__cause__``, ``timeout``, and aborting the rest of the work when a call
fails (queued batches are cancelled, running ones interrupted).

Each batch travels as the user's calls, ``[(fn, args, kwargs), ...]``, never
as joblib's own objects: a worker does not import joblib unless a task does.
Functions must be sendable as for :meth:`interpool.Pool.submit`; those that
are not (lambdas, closures) are sent by value with cloudpickle, as loky does.
A ``Parallel`` nested inside a task runs sequentially, as in loky's workers.

The workers belong to a pool kept between ``Parallel`` calls (one per
``n_jobs``, made on first use), as loky keeps its workers warm.  Pass
``pool=`` to use your own :class:`interpool.Pool` instead:
``joblib.parallel_config(backend="interpool", pool=my_pool)``.
"""

import concurrent.futures
import os
import threading

from joblib import register_parallel_backend
from joblib._parallel_backends import (
    AutoBatchingMixin,
    FallbackToBackend,
    ParallelBackendBase,
    SequentialBackend,
)

from . import _joblib_worker
from ._pool import Pool, default_workers

__all__ = ["InterpoolBackend", "register"]

_lock = threading.Lock()
_pools = {}  # n_jobs -> the warm pool shared by Parallel calls that bring none


def _shared_pool(n_jobs):
    """The shared pool of ``n_jobs`` workers, made on first use.

    One per size, never shut down before exit: a Parallel generator still
    being consumed keeps submitting to the pool it started on, so a pool
    cannot be replaced under it (loky's resizing executor fails such a
    generator instead).
    """
    with _lock:
        pool = _pools.get(n_jobs)
        if pool is None:
            pool = _pools[n_jobs] = Pool(n_jobs)
        return pool


def _forget_after_fork():
    # The parent's pools have no workers in a forked child.
    global _lock, _pools
    _lock = threading.Lock()
    _pools = {}


os.register_at_fork(after_in_child=_forget_after_fork)


class InterpoolBackend(AutoBatchingMixin, ParallelBackendBase):
    """joblib's ``ParallelBackendBase`` on interpool worker interpreters.

    Args:
        pool: an :class:`interpool.Pool` to run on.  None: a pool of
            ``n_jobs`` workers, shared by every Parallel call without one
            and kept between calls.
    """

    supports_retrieve_callback = True  # results are taken in the done-callback
    supports_inner_max_num_threads = False
    uses_threads = False
    supports_sharedmem = False
    default_n_jobs = -1

    # A batch costs tens of microseconds here, not the milliseconds of a
    # process pool: aim for shorter batches, which balance better.
    MIN_IDEAL_BATCH_DURATION = 0.05
    MAX_IDEAL_BATCH_DURATION = 1.0

    def __init__(self, nesting_level=None, inner_max_num_threads=None, pool=None, **kwargs):
        super().__init__(nesting_level=nesting_level, inner_max_num_threads=inner_max_num_threads, **kwargs)
        if pool is not None and not isinstance(pool, Pool):
            raise TypeError(f"pool must be an interpool.Pool, not {type(pool).__name__}")
        self._own_pool = pool
        self._pool = None
        self._futures = set()  # futures of this backend's batches not yet done
        self._futures_lock = threading.Lock()

    def effective_n_jobs(self, n_jobs):
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if _joblib_worker.running:
            return 1  # nested inside a task: sequential
        if self._own_pool is not None:
            return self._own_pool.workers
        if n_jobs is None:
            n_jobs = self.default_n_jobs
        if n_jobs < 0:
            n_jobs = max(default_workers() + 1 + n_jobs, 1)
        return n_jobs

    def configure(self, n_jobs=1, parallel=None, prefer=None, require=None, **backend_kwargs):
        """Pick the pool for this Parallel call; returns the number of workers."""
        n_jobs = self.effective_n_jobs(n_jobs)
        if n_jobs == 1 and self._own_pool is None:
            raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
        self.parallel = parallel
        self._pool = self._own_pool if self._own_pool is not None else _shared_pool(n_jobs)
        return n_jobs

    def submit(self, func, callback=None):
        """Send the batch's calls to a worker; ``callback`` runs when it is done."""
        calls = _unwrap(func)
        try:
            try:
                future = self._pool.submit(_joblib_worker.run_calls, calls)
            except TypeError:
                # A function with no importable home: send the batch by value.
                import cloudpickle

                future = self._pool.submit(_joblib_worker.run_pickled, cloudpickle.dumps(calls))
        except Exception as exc:
            # The pool is shut down or broken, or the batch cannot be sent:
            # the batch fails, so that Parallel raises instead of waiting for it.
            future = concurrent.futures.Future()
            future.set_exception(exc)
        with self._futures_lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)
        if callback is not None:
            future.add_done_callback(callback)
        return future

    def _forget(self, future):
        with self._futures_lock:
            self._futures.discard(future)

    def retrieve_result_callback(self, future):
        """The batch's list of results, or the exception of its failed call."""
        return future.result()

    def abort_everything(self, ensure_ready=True):
        """A call failed or timed out: cancel the queued batches, interrupt the running ones."""
        with self._futures_lock:
            futures, self._futures = self._futures, set()
        for future in futures:
            future.interrupt()

    def terminate(self):
        # The shared pool stays warm for the next Parallel call.
        self._pool = None
        self.reset_batch_stats()

    def get_nested_backend(self):
        # Only for a Parallel nested in this thread (a task's own nested
        # Parallel runs in its worker, sequentially, see _joblib_worker).
        return SequentialBackend(nesting_level=(self.nesting_level or 0) + 1), None


def _unwrap(batch):
    """The user's calls in a joblib batch: ``[(fn, args, kwargs), ...]``."""
    items = getattr(batch, "items", None)  # joblib.parallel.BatchedCalls
    if isinstance(items, list):
        return items
    return [(batch, (), {})]  # a plain callable


def register():
    """Register the backend as ``"interpool"`` (importing this module does it)."""
    register_parallel_backend("interpool", InterpoolBackend)


register()

InterpoolBackend.__module__ = "interpool.joblib"
