"""Volume and concurrency: many tiny tasks, bounded memory, submitting from many threads."""

import operator
import threading

import pytest

import _tasks
import interpool


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


MB = 1 << 20


@pytest.mark.timeout(90)
def test_a_million_tiny_tasks_through_map():
    with interpool.Pool(2) as pool:
        before = rss_bytes()
        results = pool.map(operator.neg, range(1_000_000))
        for i, value in enumerate(results):
            if value != -i:
                pytest.fail(f"item {i}: {value!r} != {-i}")
        assert i == 999_999
        growth = rss_bytes() - before
    assert growth < 500 * MB, f"RSS grew by {growth / MB:.0f} MB"


@pytest.mark.timeout(90)
def test_a_hundred_thousand_submits_with_every_result_checked():
    with interpool.Pool(2) as pool:
        before = rss_bytes()
        futures = [pool.submit(operator.neg, i) for i in range(100_000)]
        for i, future in enumerate(futures):
            assert future.result(timeout=60) == -i
        del futures
        growth = rss_bytes() - before
    assert growth < 500 * MB, f"RSS grew by {growth / MB:.0f} MB"


@pytest.mark.timeout(90)
def test_repeated_batches_do_not_leak():
    """After a warm-up batch, further batches of the same size leave RSS flat."""
    with interpool.Pool(2) as pool:

        def batch():
            futures = [pool.submit(_tasks.identity, (i, "x" * 100)) for i in range(20_000)]
            assert all(f.result(timeout=60)[0] == i for i, f in enumerate(futures))

        batch()
        batch()
        before = rss_bytes()
        for _ in range(3):
            batch()
        growth = rss_bytes() - before
    assert growth < 50 * MB, f"RSS grew by {growth / MB:.0f} MB over 60,000 tasks"


@pytest.mark.timeout(60)
def test_submit_from_eight_threads_concurrently(sized_pool):
    per_thread = 300
    barrier = threading.Barrier(8)
    errors = []
    results = {}

    def worker(tid):
        try:
            barrier.wait(10)
            futures = [sized_pool.submit(_tasks.add, i, tid * 1_000_000) for i in range(per_thread)]
            results[tid] = [f.result(timeout=60) for f in futures]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(tid,)) for tid in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(results) == list(range(8))
    for tid, values in results.items():
        assert values == [i + tid * 1_000_000 for i in range(per_thread)]


@pytest.mark.timeout(60)
def test_map_from_several_threads_concurrently(pool):
    errors = []
    outputs = {}

    def worker(tid):
        try:
            outputs[tid] = list(pool.map(_tasks.mul, range(2000), [tid] * 2000))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(tid,)) for tid in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for tid in range(4):
        assert outputs[tid] == [i * tid for i in range(2000)]


@pytest.mark.timeout(60)
def test_results_waited_from_other_threads(pool):
    futures = [pool.submit(_tasks.sleep_then_return, 0.001 * (i % 5), i) for i in range(200)]
    seen = [None] * 200
    errors = []

    def waiter(start):
        try:
            for i in range(start, 200, 4):
                seen[i] = futures[i].result(timeout=30)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=waiter, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert seen == list(range(200))


@pytest.mark.timeout(60)
def test_many_pools_created_and_shut_down_in_sequence():
    for n in range(10):
        with interpool.Pool(2) as pool:
            assert pool.submit(_tasks.add, n, 1).result(timeout=30) == n + 1
