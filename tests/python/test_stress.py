"""Volume and concurrency: many tiny tasks, bounded memory, submitting from many threads.

On every pool kind with 1 and 3 workers.  AsyncPool's tasks each cross the
test driver's thread hop (conftest.AsyncPoolDriver: about 100 us a task, 20
times an executor's submit), so the volume tests give it a tenth of the
tasks: the same paths, in a time the suite can afford on a loaded 2-core
machine.  Nothing here is timed; every wait has a deadline that fails the
test, and ordering comes from a gate the test opens (interpool.Event) and
from _probe, never from sleeping.
"""

import operator
import threading

import pytest

import _probe
import _tasks
import interpool
from conftest import ALL_BEHAVIOUR, EXECUTOR_KINDS

pytestmark = [pytest.mark.timeout(180), *ALL_BEHAVIOUR]

MB = 1 << 20
WAIT = 60  # seconds: a deadline for each result and thread; a loaded machine is slow, never this slow


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def volume(kind, tasks):
    """How many of ``tasks`` this kind runs (AsyncPool a tenth: see the module docstring)."""
    return tasks // 10 if kind.name == "AsyncPool" else tasks


def in_threads(count, work, while_running=None):
    """Run ``work(i)`` for i in range(count), each on its own thread, released at once; return {i: result}.

    ``while_running(threads)`` runs on this thread once they have started.
    Fails the test with the threads' errors, or if one is still running after WAIT.
    """
    barrier = threading.Barrier(count)
    results, errors = {}, []

    def body(i):
        try:
            barrier.wait(WAIT)
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,), name=f"stress-{i}", daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    try:
        if while_running is not None:
            while_running(threads)
    finally:
        for t in threads:
            t.join(WAIT)
    assert not [t.name for t in threads if t.is_alive()], "threads still running"
    assert not errors, errors
    assert sorted(results) == list(range(count))
    return results


# A million items through map: the executors send them in chunks and keep a
# window of chunks in flight.  AsyncPool.map makes an asyncio task per item,
# all at once (its documented contract), so a million is not a volume for it.
@pytest.mark.kinds(*EXECUTOR_KINDS)
def test_a_million_tiny_tasks_through_map(pool):
    before = rss_bytes()
    results = pool.map(operator.neg, range(1_000_000))
    count = 0
    for i, value in enumerate(results):
        if value != -i:
            pytest.fail(f"item {i}: {value!r} != {-i}")
        count += 1
    assert count == 1_000_000
    growth = rss_bytes() - before
    assert growth < 500 * MB, f"RSS grew by {growth / MB:.0f} MB"


def test_a_hundred_thousand_submits_with_every_result_checked(pool, kind):
    tasks = volume(kind, 100_000)
    before = rss_bytes()
    futures = [pool.submit(operator.neg, i) for i in range(tasks)]
    for i, future in enumerate(futures):
        assert future.result(timeout=WAIT) == -i
    del futures
    growth = rss_bytes() - before
    assert growth < 500 * MB, f"RSS grew by {growth / MB:.0f} MB over {tasks:,} tasks"


def test_repeated_batches_do_not_leak(pool, kind):
    """After two warm-up batches, three more of the same size leave RSS flat."""
    size = volume(kind, 20_000)

    def batch():
        futures = [pool.submit(_tasks.identity, (i, "x" * 100)) for i in range(size)]
        assert [f.result(timeout=WAIT)[0] for f in futures] == list(range(size))

    batch()
    batch()
    before = rss_bytes()
    for _ in range(3):
        batch()
    growth = rss_bytes() - before
    assert growth < 50 * MB, f"RSS grew by {growth / MB:.0f} MB over {3 * size:,} tasks"


def test_submit_from_eight_threads_concurrently(pool):
    per_thread = 300

    def submit_and_collect(tid):
        futures = [pool.submit(_tasks.add, i, tid * 1_000_000) for i in range(per_thread)]
        return [f.result(timeout=WAIT) for f in futures]

    results = in_threads(8, submit_and_collect)
    for tid, values in results.items():
        assert values == [i + tid * 1_000_000 for i in range(per_thread)]


def test_map_from_several_threads_concurrently(pool):
    outputs = in_threads(4, lambda tid: list(pool.map(_tasks.mul, range(2000), [tid] * 2000)))
    for tid, values in outputs.items():
        assert values == [i * tid for i in range(2000)]


def test_results_waited_from_other_threads_while_pending(pool):
    """Four threads block on 200 pending futures; once all four sleep, the gate opens and each gets its own."""
    gate = interpool.Event()
    futures = [pool.submit(_tasks.wait_for_gate, gate, i) for i in range(200)]

    def open_gate_once_all_wait(threads):
        try:
            for t in threads:
                _probe.wait_until_asleep(t.native_id, futex=True, what=f"{t.name} blocked in future.result()")
            assert not [f for f in futures if f.done()], "a result came before the gate opened"
        finally:
            gate.set()

    results = in_threads(
        4, lambda k: [futures[i].result(timeout=WAIT) for i in range(k, 200, 4)], open_gate_once_all_wait
    )
    for k, values in results.items():
        assert values == list(range(k, 200, 4))


def test_many_pools_created_and_shut_down_in_sequence(kind):
    """Ten pools, one after another: each answers, and once shut down its threads end."""
    before = set(_probe.threads())
    for n in range(10):
        with kind.make() as pool:
            assert pool.submit(_tasks.add, n, 1).result(timeout=WAIT) == n + 1
        # shutdown() has joined them; the kernel may list an exiting thread a moment longer.
        _probe.wait_for(lambda: set(_probe.threads()) <= before, f"the threads of pool {n} ended after shutdown")
