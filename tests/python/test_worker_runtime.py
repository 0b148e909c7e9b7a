"""Inside a worker: interpool's own extension imports, and the interpreter is a fresh, isolated one."""

import sys

import pytest

import _tasks
import interpool
from conftest import BEHAVIOUR

# Every executor kind (conftest.PoolKind) with 1 and 3 workers.
pytestmark = BEHAVIOUR


@pytest.mark.timeout(30)
def test_core_extension_imports_in_worker(pool):
    name, types = pool.submit(_tasks.core_module_info).result(timeout=30)
    assert name == "interpool._core"
    assert types == ["Engine", "SharedBuffer", "Task"]


@pytest.mark.timeout(30)
def test_worker_creates_a_shared_buffer_and_returns_its_bytes(pool):
    assert pool.submit(_tasks.core_buffer_bytes, 16).result(timeout=30) == bytes(range(16))
    assert pool.submit(_tasks.core_buffer_bytes, 300).result(timeout=30) == bytes(i % 256 for i in range(300))


@pytest.mark.timeout(30)
def test_worker_sees_the_callers_sys_path(pool):
    path = pool.submit(_tasks.get_sys_path).result(timeout=30)
    assert [p for p in sys.path if isinstance(p, str)] == path


@pytest.mark.timeout(30)
def test_worker_module_state_is_separate_from_the_caller(make_pool):
    pool = make_pool(1)
    before = _tasks.bump()
    assert pool.submit(_tasks.bump).result(timeout=30) == 1
    assert pool.submit(_tasks.bump).result(timeout=30) == 2
    assert _tasks.bump() == before + 1


@pytest.mark.timeout(120)
def test_each_worker_has_its_own_module_state(make_pool):
    pool = make_pool(2)
    # Two tasks that meet at a barrier run on different workers: each counts from 1.
    barrier = interpool.Barrier(2)
    values = list(pool.map(_tasks.meet_then_bump, [barrier, barrier], chunksize=1))
    assert values == [1, 1]


@pytest.mark.timeout(120)
def test_two_workers_run_tasks_concurrently(make_pool):
    # Each task waits at a barrier of two: run one at a time, it would break.
    pool = make_pool(2)
    barrier = interpool.Barrier(2)
    futures = [pool.submit(_tasks.meet_then_bump, barrier) for _ in range(2)]
    assert [f.result(timeout=90) for f in futures] == [1, 1]
    assert not barrier.broken
