"""Executor.map: zip semantics, order, chunks, timeout, lazy buffersize, errors."""

import itertools
import operator
import time

import pytest

import _tasks
import interpool
import interpool._pool
from conftest import BEHAVIOUR

# Every executor kind (conftest.PoolKind) with 1 and 3 workers.
pytestmark = BEHAVIOUR


@pytest.mark.timeout(30)
def test_map_returns_results_in_order(sized_pool):
    assert list(sized_pool.map(_tasks.neg, range(500))) == [-i for i in range(500)]


@pytest.mark.timeout(30)
def test_map_results_in_order_when_tasks_finish_out_of_order(pool):
    delays = [0.05, 0.0, 0.03, 0.0, 0.01, 0.0]
    assert list(pool.map(_tasks.sleep_then_return, delays, range(6), chunksize=1)) == list(range(6))


def test_map_with_multiple_iterables(pool):
    assert list(pool.map(_tasks.add, [1, 2, 3], [10, 20, 30])) == [11, 22, 33]
    assert list(pool.map(pow, [2, 3], [3, 2], [5, 5])) == [3, 4]


def test_map_stops_at_the_shortest_iterable(pool):
    assert list(pool.map(_tasks.add, [1, 2, 3, 4], (10, 20))) == [11, 22]
    assert list(pool.map(_tasks.add, range(10), iter([100]))) == [100]


def test_map_of_empty_input_is_empty(pool):
    assert list(pool.map(_tasks.neg, [])) == []
    assert list(pool.map(_tasks.add, [], [1, 2])) == []
    assert list(pool.map(_tasks.neg, [], buffersize=2)) == []


def test_map_accepts_generators(pool):
    assert list(pool.map(_tasks.neg, (i for i in range(10)))) == [-i for i in range(10)]


@pytest.mark.parametrize("chunksize", [1, 2, 3, 7, 50, 1000])
def test_map_with_explicit_chunksize(pool, chunksize):
    assert list(pool.map(_tasks.mul, range(50), itertools.repeat(2), chunksize=chunksize)) == [2 * i for i in range(50)]


@pytest.mark.parametrize(("chunksize", "error"), [(0, ValueError), (-1, ValueError), (1.5, TypeError)])
def test_map_rejects_invalid_chunksize(pool, chunksize, error):
    with pytest.raises(error, match="chunksize must be"):
        pool.map(_tasks.neg, [1], chunksize=chunksize)


@pytest.mark.parametrize(("buffersize", "error"), [(0, ValueError), (-3, ValueError), (2.0, TypeError)])
def test_map_rejects_invalid_buffersize(pool, buffersize, error):
    with pytest.raises(error, match="buffersize must be"):
        pool.map(_tasks.neg, [1], buffersize=buffersize)


def test_map_rejects_non_callable(pool):
    with pytest.raises(TypeError, match="fn must be callable"):
        pool.map(42, [1])


def test_map_sends_a_lambda_by_value(pool):
    assert list(pool.map(lambda x: x + len(pytest.__name__), [1, 2])) == [7, 8]


def test_map_refuses_unsendable_callable(pool):
    import threading

    lock = threading.Lock()
    with pytest.raises(TypeError, match="cannot send callable"):
        list(pool.map(lambda x: lock, [1, 2]))


def test_map_refuses_unsendable_items(pool):
    import threading

    with pytest.raises(TypeError, match="cannot send object"):
        list(pool.map(_tasks.identity, [1, threading.Lock()]))


def test_map_with_builtin_and_keyword_free_callables(pool):
    assert list(pool.map(operator.neg, range(5))) == [0, -1, -2, -3, -4]
    assert list(pool.map(len, ["a", "bb", ""])) == [1, 2, 0]


class _Clock:
    """Stands in for the ``time`` module inside interpool._pool, whose ``map``
    reads the clock to compute and check its deadline: the test moves "now"
    instead of waiting for it (futures still wait on the real clock)."""

    def __init__(self):
        self.offset = 0.0

    def monotonic(self):
        return time.monotonic() + self.offset


@pytest.fixture
def map_clock(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(interpool._pool, "time", clock)
    return clock


@pytest.mark.timeout(120)
def test_map_timeout_raises_timeout_error(pool, map_clock):
    opened, gate = interpool.Event(), interpool.Event()
    opened.set()
    try:
        # "slow" waits for the gate, which opens only after the timeout was raised.
        called = time.monotonic()
        results = pool.map(_tasks.wait_for_gate, [opened, gate], ["fast", "slow"], timeout=1000, chunksize=1)
        assert next(results) == "fast"
        # Move "now" to half a (real) second before the deadline.
        start = time.monotonic()
        map_clock.offset = called + 1000 - 0.5 - start
        with pytest.raises(TimeoutError):
            next(results)
        assert time.monotonic() - start >= 0.49, "raised before the deadline"
    finally:
        gate.set()


@pytest.mark.timeout(120)
def test_map_timeout_counts_from_the_map_call(pool, map_clock):
    gate = interpool.Event()
    try:
        results = pool.map(_tasks.wait_for_gate, [gate], ["late"], timeout=1000)
        map_clock.offset = 1001  # the deadline, counted from the map call, has passed
        # Counted from next() instead, this would wait 1000 s: the test's timeout.
        with pytest.raises(TimeoutError):
            next(results)
    finally:
        gate.set()


@pytest.mark.timeout(30)
def test_map_with_timeout_that_is_long_enough(pool):
    assert list(pool.map(_tasks.neg, range(20), timeout=30)) == [-i for i in range(20)]


# ---------------------------------------------------------------- buffersize


@pytest.mark.timeout(20)
def test_map_with_buffersize_takes_from_an_infinite_iterator(pool):
    results = pool.map(_tasks.neg, itertools.count(), buffersize=2)
    assert list(itertools.islice(results, 10)) == [-i for i in range(10)]


@pytest.mark.timeout(20)
def test_map_with_buffersize_reads_input_lazily(pool):
    consumed = []

    def source():
        for i in itertools.count():
            consumed.append(i)
            yield i

    results = pool.map(_tasks.neg, source(), buffersize=2, chunksize=1)
    assert len(consumed) <= 2
    assert [next(results) for _ in range(3)] == [0, -1, -2]
    assert len(consumed) <= 3 + 2


@pytest.mark.timeout(20)
def test_map_with_buffersize_and_chunksize(pool):
    results = pool.map(_tasks.add, itertools.count(), itertools.repeat(1), buffersize=3, chunksize=4)
    assert list(itertools.islice(results, 25)) == list(range(1, 26))


@pytest.mark.timeout(20)
def test_map_with_buffersize_over_a_sized_input(pool):
    assert list(pool.map(_tasks.neg, range(1000), buffersize=4)) == [-i for i in range(1000)]


# --------------------------------------------------------------------- errors


@pytest.mark.timeout(30)
@pytest.mark.parametrize("chunksize", [1, 3, 100])
def test_map_error_yields_earlier_results_then_raises(pool, chunksize):
    results = pool.map(_tasks.fail_at, range(20), itertools.repeat(5), chunksize=chunksize)
    got = []
    with pytest.raises(ValueError) as info:
        for value in results:
            got.append(value)
    assert str(info.value) == "bad item 5"
    assert got == [0, 10, 20, 30, 40]


@pytest.mark.timeout(30)
def test_map_error_with_buffersize_yields_earlier_results_then_raises(pool):
    results = pool.map(_tasks.fail_at, itertools.count(), itertools.repeat(7), buffersize=2, chunksize=2)
    got = []
    with pytest.raises(ValueError, match="bad item 7"):
        for value in results:
            got.append(value)
    assert got == [0, 10, 20, 30, 40, 50, 60]


def assert_nothing_ran_after(pool, directory):
    """Once ``pool`` has shut down, no later item has left its file in ``directory`` (_tasks.gate_or_touch)."""
    pool.shutdown(wait=True)
    assert sorted(int(p.name) for p in directory.iterdir()) == []


@pytest.mark.timeout(30)
def test_map_error_cancels_later_chunks(make_pool, tmp_path):
    pool = make_pool(1)
    gate = interpool.Event()  # item 1 runs until the map has given up
    try:
        results = pool.map(
            _tasks.fail_or_gate_or_touch,
            range(12),
            itertools.repeat(str(tmp_path)),
            itertools.repeat(gate),
            chunksize=1,
        )
        with pytest.raises(ValueError, match="first item fails"):
            list(results)
    finally:
        gate.set()
    assert_nothing_ran_after(pool, tmp_path)


@pytest.mark.timeout(30)
def test_closing_the_map_iterator_cancels_what_is_left(make_pool, tmp_path):
    pool = make_pool(1)
    gate = interpool.Event()  # item 1 runs until the iterator is closed
    try:
        results = pool.map(
            _tasks.gate_or_touch, range(12), itertools.repeat(str(tmp_path)), itertools.repeat(gate), chunksize=1
        )
        assert next(results) == 0
        results.close()
    finally:
        gate.set()
    assert_nothing_ran_after(pool, tmp_path)


@pytest.mark.timeout(30)
def test_pool_works_after_a_failed_map(pool):
    with pytest.raises(ValueError):
        list(pool.map(_tasks.fail_at, range(10), itertools.repeat(3)))
    assert list(pool.map(_tasks.neg, range(3))) == [0, -1, -2]
