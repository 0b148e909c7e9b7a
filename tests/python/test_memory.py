"""Bounded memory: what a worker imports, what a recycled interpreter leaves
behind, and which event loops interpool keeps alive.

CPython itself leaks part of every isolated interpreter it ends (about
1.7 MB on 3.13.0): the memory tests measure that baseline in the same test,
with bare interpreters made by ``_interpreters`` in a fresh process, and
allow interpool 0.3 MB per interpreter on top of it.  They compare memory
figures only, never time.
"""

import asyncio
import gc
import subprocess
import sys
import weakref

import pytest

import _child
import interpool
from _delivery_tasks import import_module, imported, modules, nested_pool_modules, nothing
from conftest import child_env
from interpool.bench import bench_memory

# The probes are the memory benchmark's (interpool.bench.bench_memory); each
# runs in a fresh process, so that nothing the test suite did before (other
# pools, imports) blurs the figures.


def test_a_recycled_worker_leaks_no_more_than_a_bare_interpreter():
    # A recycling worker makes its interpreters one after another on one thread.
    bare = bench_memory.probe(bench_memory.BARE, 200, 0)
    recycled = bench_memory.probe(bench_memory.RECYCLED, 200)
    assert recycled <= bare + bench_memory.MARGIN_MB, (
        f"each replaced worker interpreter grew RSS by {recycled:.2f} MB; a bare interpreter by {bare:.2f} MB"
    )


def test_pool_cycles_grow_memory_no_more_than_their_interpreters_cost_cpython():
    # A pool makes its interpreters on new threads, four at once here.
    bare = bench_memory.probe(bench_memory.BARE, 30, 4) / 4
    per_cycle = bench_memory.probe(bench_memory.CYCLES, 30, "interpool")
    # What CPython itself keeps of each of the four interpreters, plus the
    # margin: nothing of interpool's may accumulate cycle after cycle.
    assert per_cycle <= 4 * (bare + bench_memory.MARGIN_MB), (
        f"RSS grew {per_cycle:.2f} MB per 'with Pool(4)' cycle after the first "
        f"(a bare interpreter on a thread costs {bare:.2f} MB)"
    )


@pytest.mark.parametrize("kind", ["Pool", "InterpreterPoolExecutor"])
def test_a_plain_worker_does_not_import_asyncio(kind):
    pool = interpool.Pool(1) if kind == "Pool" else interpool.InterpreterPoolExecutor(max_workers=1)
    with pool:
        assert pool.submit(nothing).result() is None
        assert pool.submit(imported, "asyncio").result() is False
        # The probe does see a module that a task imports.
        pool.submit(import_module, "asyncio").result()
        assert pool.submit(imported, "asyncio").result() is True


def test_the_package_api_is_unchanged_by_lazy_loading():
    names = {}
    exec("from interpool import *", names)
    assert set(interpool.__all__) <= set(names)
    for name in interpool.__all__:
        assert getattr(interpool, name) is names[name]
    assert set(interpool.__all__) <= set(dir(interpool))
    assert interpool.InterpreterThreadPoolExecutor is interpool.HybridPool
    assert interpool.interpreter is interpool.isolated
    assert interpool.Pool.__module__ == "interpool"
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        interpool.no_such_name


def test_importing_interpool_imports_no_asyncio():
    out = subprocess.run(
        [sys.executable, "-c", "import sys, interpool; print('asyncio' in sys.modules)"],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# What a worker that runs plain tasks must not import: each costs every worker
# start-up time and memory (asyncio alone about 6 MB and 100 ms of CPU).
HEAVY = ("asyncio", "logging", "cloudpickle", "concurrent", "inspect", "enum", "typing")


def heavy(names):
    return sorted(n for n in names if n.partition(".")[0] in HEAVY)


@pytest.mark.parametrize("kind", ["Pool", "InterpreterPoolExecutor", "HybridPool"])
def test_a_plain_worker_imports_only_the_extension_and_the_worker_module(kind):
    if kind == "Pool":
        pool, fn = interpool.Pool(1), modules
    elif kind == "InterpreterPoolExecutor":
        pool, fn = interpool.InterpreterPoolExecutor(max_workers=1), modules
    else:  # an isolated callable is unpickled in the worker: that must not load HybridPool
        pool, fn = interpool.HybridPool(1), interpool.isolated(modules)
    with pool:
        names = pool.submit(fn).result()
    assert "interpool._core" in names and "interpool._worker" in names  # it did run in a worker
    assert heavy(names) == []
    assert {n for n in names if n.startswith("interpool.")} == {"interpool._core", "interpool._worker"} | (
        {"interpool._isolated"} if kind == "HybridPool" else set()
    )


def test_a_pool_started_in_a_worker_imports_no_asyncio():
    with interpool.Pool(1) as pool:
        names = pool.submit(nested_pool_modules).result()
    assert "interpool._pool" in names  # the task did start a pool there
    assert not [n for n in names if n.partition(".")[0] == "asyncio"]


def test_creating_a_pool_imports_no_asyncio():
    source = (
        "import sys, interpool\n"
        "with interpool.Pool(1) as pool:\n"
        "    list(pool.map(abs, [-1, -2]))\n"
        "    pool.submit(abs, -1).result()\n"
        "print('asyncio' in sys.modules)\n"
    )
    out = _child.run(["-c", source], limit=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_event_loops_that_used_a_pool_are_freed():
    loops = []

    async def use(pool):
        loops.append(weakref.ref(asyncio.get_running_loop()))
        assert await pool.run(abs, -1) == 1
        assert await interpool.to_interpreter(abs, -2) == 2

    with interpool.Pool(1) as pool:
        for _ in range(500):
            asyncio.run(use(pool))
        gc.collect()
        alive = [ref for ref in loops if ref() is not None]
        assert alive == [], f"{len(alive)} of {len(loops)} event loops are still reachable"
