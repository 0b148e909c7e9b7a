"""Shared fixtures for the interpool test suite.

Task functions live in ``_tasks.py`` next to this file.  Workers import them
by name, and workers copy the caller's ``sys.path`` when a pool is created,
so this directory goes to the front of ``sys.path`` before any pool exists.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path[:1] != [HERE]:
    sys.path.insert(0, HERE)

import interpool  # noqa: E402

POOL_KINDS = ["Pool", "InterpreterPoolExecutor"]


def make(kind, workers, **kwargs):
    """Create a pool of ``kind`` with ``workers`` workers, spelled as that class wants."""
    if kind == "Pool":
        return interpool.Pool(workers, **kwargs)
    if "max_tasks_per_worker" in kwargs:
        raise ValueError("InterpreterPoolExecutor has no max_tasks_per_worker")
    return interpool.InterpreterPoolExecutor(max_workers=workers, **kwargs)


@pytest.fixture(params=POOL_KINDS)
def pool_kind(request):
    """The name of the executor class under test: both share every behaviour test."""
    return request.param


@pytest.fixture
def make_pool(pool_kind):
    """Factory ``make_pool(workers=2, **kwargs)``; every pool is shut down after the test."""
    pools = []

    def factory(workers=2, **kwargs):
        pool = make(pool_kind, workers, **kwargs)
        pools.append(pool)
        return pool

    yield factory
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def pool(make_pool):
    """A fresh 2-worker pool of each kind."""
    return make_pool(2)


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


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def sized_pool(request, make_pool):
    """A fresh pool of each kind, with 1 and with 2 workers."""
    return make_pool(request.param)


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
