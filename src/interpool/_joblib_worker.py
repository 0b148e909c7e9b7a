"""The worker side of interpool.joblib: runs joblib's calls in an interpreter.

The backend sends the user's calls as ``[(fn, args, kwargs), ...]``, never
joblib's ``BatchedCalls``: unpickling that would import joblib and loky in
the worker, and loky imports ``faulthandler``, which cannot load in a
subinterpreter.  This module imports nothing heavy.

The main script often imports joblib at the top, and a worker imports that
script to find the functions defined there; a task may also use joblib
itself (nested ``Parallel``).  joblib can load in a worker only without its
multiprocessing backends, so importing this module in a worker installs an
import hook that makes joblib see no ``multiprocessing`` there (what
``JOBLIB_MULTIPROCESSING=0`` does, without changing the process
environment).  The worker imports this module when it decodes a batch's
callable, before the batch's functions.  Nested ``Parallel`` then runs
sequentially, as joblib does in its own workers; a nested
``backend="interpool"`` does the same (see :data:`running`).
"""

import sys

__all__ = ["run_calls", "run_pickled", "running"]

#: How many batches this interpreter runs now: the backend runs a nested
#: Parallel sequentially when it is non-zero.
running = 0

_HELPERS = "joblib._multiprocessing_helpers"


class _JoblibWithoutProcesses:
    """A meta path finder: ``joblib._multiprocessing_helpers`` loads as usual,
    then reports no multiprocessing (``mp = None``), so joblib does not
    import loky, which needs faulthandler."""

    def find_spec(self, name, path=None, target=None):
        if name != _HELPERS:
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _NoProcessesLoader(spec.loader)
        return spec


class _NoProcessesLoader:
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        module.mp = None  # no processes can start in a worker interpreter
        module.assert_spawning = None


def _prepare():
    if "interpool._worker" not in sys.modules or _HELPERS in sys.modules:
        return  # not a worker interpreter, or joblib is already there
    if not any(isinstance(finder, _JoblibWithoutProcesses) for finder in sys.meta_path):
        sys.meta_path.insert(0, _JoblibWithoutProcesses())


_prepare()


def run_calls(calls):
    """``[fn(*args, **kwargs) for fn, args, kwargs in calls]``: one joblib batch."""
    global running
    running += 1
    try:
        return [fn(*args, **kwargs) for fn, args, kwargs in calls]
    finally:
        running -= 1


def run_pickled(data):
    """:func:`run_calls` on a batch pickled by value (cloudpickle), for calls
    whose functions cannot be sent by name (lambdas, closures)."""
    import pickle

    return run_calls(pickle.loads(data))
