"""interpool.share(obj) -> Shared: a frozen snapshot passed to tasks by handle.

What must hold:

* ``share(obj)`` encodes ``obj`` once; a task given the handle receives a real
  object equal to ``obj`` (unchanged task code works), whatever its nesting.
* Passing the handle costs O(1) whatever the size of ``obj``.
* Each worker decodes a handle once and reuses that object while the handle
  lives; the copy is released in every worker once the last handle is gone
  and no task uses it (idle workers are woken to drop it).
* Snapshot semantics: later changes to ``obj`` are not seen; a task that
  mutates its copy changes neither the caller's ``.value`` nor other workers.
* Unsendable objects fail at ``share()`` time with a TypeError naming them;
  plain ``pickle.dumps`` of a handle is a TypeError saying why.
"""

import asyncio
import collections
import fractions
import gc
import itertools
import pickle
import re
import threading
import weakref

import pytest

import _probe
import _share_tasks as t
import interpool
from conftest import ALL_KINDS

TIMEOUT = 30
# Every pool kind (conftest.PoolKind, AsyncPool included), with one worker
# and a fresh pool per test: these tests count what one interpreter holds
# across calls (t.hold, t.watch, t.released keep state in the worker), so
# every task must run in the same, new interpreter.  Tests about Pool's own
# options (max_tasks_per_worker, initializer) use ``pools``.
pytestmark = [pytest.mark.timeout(120), pytest.mark.kinds(*ALL_KINDS), pytest.mark.workers(1)]


def run(pool, fn, *args):
    return pool.submit(fn, *args).result(timeout=TIMEOUT)


# ------------------------------------------------------------ the handle


def test_share_returns_a_shared_handle_whose_value_equals_obj():
    obj = {"grid": ("#..", ".#."), "start": (0, 1)}
    shared = interpool.share(obj)
    assert type(shared) is interpool.Shared
    assert shared.value == obj
    assert shared.value is not obj  # a snapshot, decoded from engine memory


def test_value_is_decoded_once_in_the_caller():
    shared = interpool.share([1, [2, 3]])
    assert shared.value is shared.value


def test_shared_cannot_be_instantiated_directly():
    with pytest.raises(TypeError):
        interpool.Shared()


def test_repr_names_the_type_and_size():
    shared = interpool.share([1, 2, 3])
    assert shared.nbytes > 0
    assert repr(shared) == f"<interpool.Shared list snapshot, {shared.nbytes} bytes>"


# Values of the types interpool encodes natively, and values that need the
# pickle fallback: both must arrive as equal objects of the same type.
NATIVE = [
    None,
    True,
    False,
    0,
    -(2**63),
    2**100,
    1.5,
    -0.0,
    3 + 4j,
    "",
    "ascii",
    "ünïcödé ☃ \U0001f600",
    b"\x00bytes\xff",
    bytearray(b"mutable"),
    (),
    (1, "two", (3.0,)),
    [1, [2, [3, [4]]]],
    {"a": 1, 2: "b", (3, 4): [5]},
    {1, 2, 3},
    frozenset({"x", "y"}),
    {"nested": [({"deep": frozenset({1, (2, 3)})}, {b"k"}), bytearray(b"z")]},
    list(range(10_000)),
]
PICKLED = [
    fractions.Fraction(1, 3),
    collections.OrderedDict(b=1, a=2),
    collections.Counter("abracadabra"),
    t.Box([1, {"two": 2}]),
    [t.Box("inside a list"), {"k": fractions.Fraction(2, 3)}],
]


@pytest.mark.parametrize(
    "obj",
    [pytest.param(obj, id=f"native-{type(obj).__name__}") for obj in NATIVE]
    + [pytest.param(obj, id=f"pickle-{type(obj).__name__}") for obj in PICKLED],
)
def test_shared_values_arrive_as_equal_objects_of_the_same_type(pool, obj):
    shared = interpool.share(obj)
    name, value = run(pool, t.type_and_value, shared)
    assert name == type(obj).__name__
    assert type(value) is type(obj) and value == obj
    assert type(shared.value) is type(obj) and shared.value == obj


def test_self_referencing_value_is_shared_through_pickle(pool):
    obj = [1, 2]
    obj.append(obj)
    shared = interpool.share(obj)
    value = run(pool, t.ident, shared)
    assert value[:2] == [1, 2] and value[2] is value
    assert shared.value[2] is shared.value


# ---------------------------------------------- unchanged task code works


def test_task_code_is_unchanged_with_map_over_tuples(pools):
    grid = {node: node * node for node in range(200)}
    path = list(range(1, 200, 7))
    start = 0
    expected = [("dict", grid[node] - grid[start]) for node in path]
    pool = pools(2)
    shared_grid = interpool.share(grid)
    assert list(pool.map(t.solve, ((start, node, shared_grid) for node in path))) == expected
    assert list(pool.map(t.solve, ((start, node, grid) for node in path))) == expected  # plain


def test_map_with_a_shared_argument_repeated(pools):
    grid = list(range(100))
    shared = interpool.share(grid)
    pool = pools(2)
    got = list(pool.map(t.solve3, itertools.repeat(5), range(100), itertools.repeat(shared), chunksize=7))
    assert got == [node - 5 for node in range(100)]


def test_shared_as_keyword_argument(pool):
    shared = interpool.share([1, 2, 3])
    assert pool.submit(t.length, x=shared).result(timeout=TIMEOUT) == 3


@pytest.mark.parametrize("wrap", ["list", "dict", "custom"])
def test_shared_nested_in_an_argument_arrives_as_its_value(pool, wrap):
    shared = interpool.share({"grid": [1, 2, 3]})
    arg = {"list": [0, shared], "dict": {"k": shared}, "custom": t.Box(shared)}[wrap]
    value = run(pool, t.ident, arg)
    inner = {"list": lambda v: v[1], "dict": lambda v: v["k"], "custom": lambda v: v.content}[wrap](value)
    assert inner == {"grid": [1, 2, 3]}
    assert not isinstance(inner, interpool.Shared)


def test_one_handle_in_list_dict_and_custom_object_is_one_object_in_the_worker(pool):
    shared = interpool.share([1, 2, 3])
    same, value = run(pool, t.same_objects, [shared, {"k": shared}, t.Box(shared)])
    assert same is True
    assert value == [1, 2, 3]


# -------------------------------------------- materialized once per worker


def test_a_worker_reuses_one_object_while_the_handle_lives(pool):
    shared = interpool.share([[0] * 100 for _ in range(10)])
    ids = {run(pool, t.object_id, shared) for _ in range(5)}
    assert len(ids) == 1
    ids |= set(pool.map(t.object_id, [shared] * 20))
    assert len(ids) == 1
    # The worker keeps every object it receives, so a new object could not
    # reuse a freed one's id: one distinct object over all receipts.
    assert [run(pool, t.hold, shared) for _ in range(3)] == [(1, 1), (1, 2), (1, 3)]


def test_a_different_handle_is_a_different_object_in_the_worker(pool):
    a, b = interpool.share([1]), interpool.share([1])
    run(pool, t.hold, a)
    assert run(pool, t.hold, b) == (2, 2)
    assert run(pool, t.hold, a) == (2, 3)


def test_the_same_handle_twice_in_one_call_is_one_object(pool):
    shared = interpool.share(["x"])
    assert run(pool, t.is_same, shared, shared) is True


def test_two_shares_of_one_object_are_two_snapshots(pool):
    obj = ["x"]
    a, b = interpool.share(obj), interpool.share(obj)
    assert a != b
    assert run(pool, t.is_same, a, b) is False
    assert run(pool, t.ident, a) == run(pool, t.ident, b) == obj


def test_initializer_and_tasks_see_one_object(pools):
    shared = interpool.share(list(range(1000)))
    pool = pools(1, initializer=t.init_store, initargs=(shared,))
    same, value = run(pool, t.init_value_is, shared)
    assert same is True
    assert value == list(range(1000))
    assert run(pool, t.init_value_len) == 1000


def test_initializer_value_survives_the_caller_dropping_its_handle(pools):
    shared = interpool.share(list(range(10)))
    pool = pools(2, initializer=t.init_store, initargs=(shared,), max_tasks_per_worker=1)
    del shared
    gc.collect()
    # Every task runs in a new interpreter, which runs the initializer again.
    assert list(pool.map(t.init_value_len, range(6))) == [10] * 6


# ------------------------------------------------------- passing is O(1)


def _ids_per_worker(pool, arg, calls):
    """{worker thread: the ids the worker's tasks saw for ``arg``}, over ``calls`` tasks."""
    seen = {}
    for tid, ident in (run(pool, t.where_and_id, arg) for _ in range(calls)):
        seen.setdefault(tid, set()).add(ident)
    return seen


# What a handle saves in time is a benchmark figure (python -m interpool.bench,
# "share" and "gridsearch"); here: each worker decodes the object once, and
# every later task gets that same object, whatever its size.


def test_passing_a_shared_handle_does_not_copy_the_object(pool):
    big = bytes(64 * 1024 * 1024)
    shared = interpool.share(big)
    assert run(pool, t.length, shared) == len(big)  # the worker decodes it once here
    per_worker = _ids_per_worker(pool, shared, 20)
    assert all(len(ids) == 1 for ids in per_worker.values()), per_worker


def test_handle_cost_does_not_grow_with_size(pool):
    small = interpool.share(b"x" * 1024)
    large = interpool.share(b"x" * (32 * 1024 * 1024))
    for handle in (small, large):
        per_worker = _ids_per_worker(pool, handle, 10)
        assert all(len(ids) == 1 for ids in per_worker.values()), per_worker


# -------------------------------------------------------------- snapshots


def test_mutating_obj_after_share_does_not_change_the_snapshot(pool):
    obj = {"cells": [1, 2], "name": "grid"}
    shared = interpool.share(obj)
    obj["cells"].append(3)
    obj["name"] = "changed"
    assert shared.value == {"cells": [1, 2], "name": "grid"}
    assert run(pool, t.ident, shared) == {"cells": [1, 2], "name": "grid"}


def test_task_mutating_its_copy_leaves_caller_and_other_workers_unaffected(pools):
    shared = interpool.share([1, 2])
    caller_value = shared.value
    first = pools(1)
    assert run(first, t.append_marker, shared) == [1, 2, "changed by a task"]
    # Documented: tasks in the same worker share that worker's copy.
    assert run(first, t.ident, shared) == [1, 2, "changed by a task"]
    # The caller's value and the snapshot in engine memory are untouched.
    assert shared.value is caller_value and caller_value == [1, 2]
    fresh = pools(1)
    assert run(fresh, t.ident, shared) == [1, 2]


def test_a_replaced_worker_rematerializes_the_snapshot_not_the_mutated_copy(pools):
    shared = interpool.share([1, 2])
    pool = pools(1, max_tasks_per_worker=1)
    assert run(pool, t.append_marker, shared) == [1, 2, "changed by a task"]
    assert run(pool, t.ident, shared) == [1, 2]  # a new interpreter, a new copy


# ------------------------------------------------------------ release


def test_workers_release_their_copy_once_the_last_handle_is_gone(pool):
    shared = interpool.share(t.Tracked("grid", payload=tuple(range(100))))
    obj_id, label = run(pool, t.watch, shared)
    assert label == "grid"
    assert run(pool, t.watch, shared) == (obj_id, "grid")  # still the same copy
    assert run(pool, t.released) == []  # alive while the handle lives
    del shared
    gc.collect()
    assert run(pool, t.released) == ["grid"]


def test_idle_workers_are_woken_to_drop_released_copies(pools):
    pool = pools(2)
    released = interpool.Event()
    shared = interpool.share(t.Tracked("idle", released))
    # Each worker materializes the copy (two tasks that meet at a barrier run on both).
    barrier = interpool.Barrier(2)
    list(pool.map(t.meet_then_value, [barrier, barrier], [shared, shared], chunksize=1))
    for f in [pool.submit(t.watch, shared) for _ in range(8)]:
        f.result(timeout=TIMEOUT)
    assert not released.is_set()
    del shared
    gc.collect()
    # No task runs: an idle worker is woken and drops its copy.
    assert released.wait(TIMEOUT)


def test_a_copy_in_use_by_a_running_task_is_kept_until_the_task_ends(pool):
    released = interpool.Event()
    started, go = interpool.Event(), interpool.Event()
    shared = interpool.share(t.Tracked("busy", released))
    future = pool.submit(t.watch_and_hold, shared, started, go)
    assert started.wait(TIMEOUT)
    del shared
    gc.collect()
    # Give the engine every chance to drop the copy wrongly: wait until each
    # other thread (the task's included, in go.wait()) is idle.
    _probe.wait_until_quiet(what="the workers idle while the task waits")
    assert not released.is_set()
    go.set()
    label, released_during_task = future.result(timeout=TIMEOUT)
    assert (label, released_during_task) == ("busy", [])
    assert released.wait(TIMEOUT)
    assert run(pool, t.released) == ["busy"]


def test_handle_dropped_while_its_tasks_are_in_flight(pools):
    pool = pools(2)
    obj = {"grid": list(range(1000))}
    shared = interpool.share(obj)
    futures = [pool.submit(t.sleep_then_value, 0.05, shared) for _ in range(8)]
    del shared
    gc.collect()
    assert [f.result(timeout=TIMEOUT) for f in futures] == [obj] * 8


def test_handle_dropped_while_map_is_in_flight(pools):
    pool = pools(2)
    shared = interpool.share(list(range(50)))
    results = pool.map(t.sleep_then_value, [0.01] * 20, [shared] * 20, chunksize=2)
    del shared
    gc.collect()
    assert list(results) == [list(range(50))] * 20


def test_workers_replaced_by_max_tasks_per_worker_keep_working(pools):
    obj = [list(range(20)) for _ in range(20)]
    shared = interpool.share(obj)
    pool = pools(1, max_tasks_per_worker=1)
    seen = [run(pool, t.id_in_interp, shared) for _ in range(4)]
    assert len({interp for interp, _, _ in seen}) == 4  # a new interpreter each time
    assert all(value == obj for _, _, value in seen)
    pool2 = pools(2, max_tasks_per_worker=3)
    assert list(pool2.map(t.ident, [shared] * 30, chunksize=1)) == [obj] * 30


# -------------------------------------------------------------- errors


def _unsendable_message(type_pattern):
    return rf"^cannot send object <{type_pattern}.*> to another interpreter: "


def test_share_of_a_lambda_goes_by_value(pools):
    shared = interpool.share(lambda: 7)
    assert shared.value() == 7
    assert run(pools(1), t.ident, shared)() == 7  # to a worker and back


def test_share_of_a_closure_over_a_lock_raises_type_error_naming_it():
    lock = threading.Lock()
    with pytest.raises(TypeError, match=_unsendable_message(r"function .*<lambda>")):
        interpool.share(lambda: lock)


def test_share_of_a_lock_raises_type_error_naming_it():
    with pytest.raises(TypeError, match=_unsendable_message(r"unlocked _thread\.lock object")) as info:
        interpool.share(threading.Lock())
    assert "cannot pickle '_thread.lock' object" in str(info.value)


def test_share_of_an_object_holding_a_lambda_raises_type_error_naming_it():
    with pytest.raises(TypeError, match=_unsendable_message(r"_share_tasks\.Holder object")):
        interpool.share(t.Holder())


def test_share_of_a_container_with_an_unsendable_item_fails_at_share_time():
    with pytest.raises(TypeError, match=r"_thread\.lock"):
        interpool.share({"ok": [1, 2], "bad": [threading.Lock()]})


def test_plain_pickle_of_a_shared_raises_type_error_saying_why():
    shared = interpool.share([1])
    message = (
        "cannot pickle 'interpool.Shared': it stands for memory of this process and travels only to "
        "other interpreters of the same process, through interpool (tasks, Queue.put, share())"
    )
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        pickle.dumps(shared)
    with pytest.raises(TypeError, match=re.escape("cannot pickle 'interpool.Shared'")):
        pickle.dumps({"nested": [shared]})


def test_shared_handles_compare_and_hash_by_snapshot():
    a = interpool.share([1])
    b = interpool.share([1])
    assert a == a and a != b
    assert hash(a) == hash(a)
    assert len({a, a, b}) == 2


# ------------------------------------------------- other ways a handle travels


def test_shared_through_an_interpool_queue_arrives_as_its_value(pool):
    shared = interpool.share({"grid": [1, 2]})
    q = interpool.Queue()
    q.put(shared)
    assert run(pool, t.get_from, q) == ("dict", {"grid": [1, 2]})
    q.put(shared)
    assert q.get(timeout=TIMEOUT) == {"grid": [1, 2]}  # also back in the caller


def test_a_shared_made_in_a_task_arrives_in_the_caller_as_its_value(pool):
    value = run(pool, t.share_in_task, "made in a task")
    assert type(value) is t.Tracked and value.label == "made in a task"


def assert_released_with_the_last_reference(holder, label):
    """``holder`` (a one-item list) holds the caller's copy: emptying it releases the copy."""
    dead = []
    weakref.finalize(holder[0], dead.append, label)
    holder.clear()
    gc.collect()
    assert dead == [label], "the caller's SharedCache kept its copy"


def test_the_callers_copy_of_a_returned_shared_is_released_with_it(pool):
    assert_released_with_the_last_reference([run(pool, t.share_in_task, "returned")], "returned")


def test_a_shared_a_task_sent_through_a_queue_is_released_with_the_callers_copy(pool):
    q = interpool.Queue()
    run(pool, t.send_shared, q, "queued")
    # The task has ended: the item in the queue holds the last reference.
    assert_released_with_the_last_reference([q.get(timeout=TIMEOUT)], "queued")


def test_a_shared_a_failed_task_sent_is_released_with_the_callers_copy(pool):
    q, taken = interpool.Queue(), interpool.Event()
    future = pool.submit(t.send_shared_then_raise, q, taken, "sent")
    # Taken while the task holds it (so the queue's is not the last reference).
    copy = [q.get(timeout=TIMEOUT)]
    taken.set()
    with pytest.raises(LookupError) as info:
        future.result(timeout=TIMEOUT)
    assert info.value.args == ("sent",)
    del info
    assert_released_with_the_last_reference(copy, "sent")


# AsyncPool's own ways to end a coroutine, outside the driver: each test
# takes the caller's copy out of the event loop (asyncio.run), so that no
# future of the caller's loop holds it.


@pytest.fixture
def apool():
    pool = interpool.AsyncPool(1, concurrency=1)
    yield pool
    pool.shutdown()


def in_a_loop(coro_fn):
    return asyncio.run(asyncio.wait_for(coro_fn(), TIMEOUT))


def test_async_pool_a_shared_returned_through_gather_is_released_with_the_callers_copy(apool):
    async def main():
        return await apool.run(t.gather_shared, "gathered")

    assert_released_with_the_last_reference(in_a_loop(main), "gathered")


def test_async_pool_a_shared_a_cancelled_coroutine_sent_is_released_with_the_callers_copy(apool):
    q, taken = interpool.Queue(), interpool.Event()

    async def main():
        future = apool.run(t.send_shared_then_cancel, q, taken, "sent")
        # Taken while the coroutine holds it (so the queue's is not the last reference).
        copy = [q.get(timeout=TIMEOUT)]
        taken.set()
        with pytest.raises(asyncio.CancelledError):
            await future
        return copy

    assert_released_with_the_last_reference(in_a_loop(main), "sent")
