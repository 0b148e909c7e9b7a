"""Integer options are checked against the range of the C++ type they go into.

An out-of-range value raises a ValueError that names the option, at once and
before anything is allocated: never a silent wrap (concurrency=2**32+2 running
2 at a time), never a pool that starts allocating 2**40 workers.
"""

import asyncio
import sys

import pytest

import interpool
from interpool._pool import worker_limit

SSIZE_MAX = sys.maxsize
UINT32_MAX = 2**32 - 1


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda n: interpool.Pool(n), id="Pool"),
        pytest.param(lambda n: interpool.InterpreterPoolExecutor(n), id="InterpreterPoolExecutor"),
        pytest.param(lambda n: interpool.HybridPool(n), id="HybridPool"),
        pytest.param(lambda n: interpool.AsyncPool(n), id="AsyncPool"),
    ],
)
@pytest.mark.parametrize("workers", [2**40, 2**70], ids=["2**40", "2**70"])
@pytest.mark.timeout(10)
def test_worker_count_beyond_what_the_system_can_run_is_refused_naming_the_limit(make, workers):
    limit, reason = worker_limit()
    with pytest.raises(ValueError, match="workers") as info:
        make(workers)
    message = str(info.value)
    assert str(workers) in message
    if workers <= SSIZE_MAX:
        assert f"at most {limit}" in message and reason in message


def test_worker_limit_names_a_positive_bound_below_the_cpp_range():
    limit, reason = worker_limit()
    assert 1 <= limit < SSIZE_MAX
    assert reason


# The integer options (make(value) builds with one), with their names in
# errors and their C++ ranges' tops.
INTEGER_OPTIONS = [
    pytest.param(lambda v: interpool.AsyncPool(1, concurrency=v), "concurrency", UINT32_MAX, id="concurrency"),
    pytest.param(
        lambda v: interpool.Pool(1, max_tasks_per_worker=v), "max_tasks_per_worker", SSIZE_MAX, id="max_tasks"
    ),
    pytest.param(lambda v: interpool.Queue(v), "Queue maxsize", SSIZE_MAX, id="queue_maxsize"),
    pytest.param(lambda v: interpool.Semaphore(v), "Semaphore value", 2**31 - 1, id="semaphore_value"),
    pytest.param(lambda v: interpool.Barrier(v), "Barrier parties", UINT32_MAX, id="barrier_parties"),
    pytest.param(lambda v: interpool.SharedBuffer(v), "SharedBuffer size", SSIZE_MAX, id="shared_buffer_size"),
]


@pytest.mark.parametrize(("make", "option", "high"), INTEGER_OPTIONS)
@pytest.mark.parametrize("excess", [1, 2, 2**64], ids=["max+1", "max+2", "max+2**64"])
def test_integer_option_past_its_cpp_range_is_a_value_error(make, option, high, excess):
    with pytest.raises(ValueError, match=rf"^{option} must be .*{high}, got {high + excess}$"):
        make(high + excess)


@pytest.mark.parametrize(("make", "option", "high"), INTEGER_OPTIONS)
@pytest.mark.parametrize("value", [True, 1.0, "3"], ids=["bool", "float", "str"])
def test_integer_option_of_another_type_is_a_type_error(make, option, high, value):
    with pytest.raises(TypeError, match=r"\bint\b"):
        make(value)


@pytest.mark.parametrize(("value", "kind"), [(None, "NoneType"), (1.5, "float")])
def test_concurrency_has_no_none_and_its_error_says_so(value, kind):
    # AsyncPool's concurrency has no "unbounded" None, unlike the pools' optional
    # limits: its error must not offer None as a choice.
    with pytest.raises(TypeError, match=rf"^concurrency must be an int, not {kind}$"):
        interpool.AsyncPool(1, concurrency=value)


@pytest.mark.timeout(30)
def test_concurrency_at_the_top_of_its_range_is_kept_as_given():
    pool = interpool.AsyncPool(1, concurrency=UINT32_MAX)
    try:
        assert pool.concurrency == UINT32_MAX
    finally:
        pool.shutdown()


@pytest.mark.parametrize("option", ["chunksize", "buffersize"])
@pytest.mark.timeout(30)
def test_map_size_option_past_ssize_max_is_a_value_error(pools, option):
    pool = pools(1)
    with pytest.raises(ValueError, match=rf"{option} must be at most {SSIZE_MAX}"):
        pool.map(abs, [1], **{option: SSIZE_MAX + 1})


@pytest.mark.timeout(30)
def test_map_async_chunksize_past_ssize_max_is_a_value_error(pools):
    pool = pools(1)

    async def main():
        async for _ in pool.map_async(abs, [1], chunksize=SSIZE_MAX + 1):
            pass

    with pytest.raises(ValueError, match=f"chunksize must be at most {SSIZE_MAX}"):
        asyncio.run(main())


def test_negative_sizes_keep_the_stdlib_words():
    with pytest.raises(ValueError, match="^semaphore initial value must be >= 0"):
        interpool.Semaphore(-1)
    with pytest.raises(ValueError, match="^parties must be > 0"):
        interpool.Barrier(0)
    assert interpool.Queue(-5).maxsize == 0  # as queue.Queue: <= 0 means unbounded
