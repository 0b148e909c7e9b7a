"""The Future fast path, pinned against the running Python's concurrent.futures._base.

The engine completes a future that nobody has observed by writing its state
straight into its ``__dict__`` (``src/python/delivery.cpp``:
``complete_unobserved``), under the names that ``interpool._future.FutureContract``
declares.  These tests fail if CPython renames one of those names or
constants, adds state to ``Future.__init__`` that interpool.Future does not
make, or lets ``_base`` reach waiters or callbacks without going through
``_condition``; and they check that futures completed by the fast path (and,
once observed, by ``set_result``) work with everything that reads them.
"""

import asyncio
import concurrent.futures as cf
import threading
import types
from concurrent.futures import _base

import pytest

import _probe
import interpool
from _delivery_tasks import WAIT, finish_when
from conftest import EXECUTOR_KINDS
from interpool._future import FutureContract as C

# Tests that submit run on each executor kind with one worker (conftest.PoolKind).
pytestmark = [pytest.mark.kinds(*EXECUTOR_KINDS), pytest.mark.workers(1)]


@pytest.fixture
def submit(pool):
    """submit(fn, *args) on a one-worker pool of each kind (HybridPool: marked isolated)."""
    return pool.submit


# -------------------------------------------------- the names and constants


def test_the_contract_names_the_states_of_base():
    assert C.pending is _base.PENDING
    assert C.finished is _base.FINISHED
    assert C.future_type is interpool.Future
    assert issubclass(C.future_type, _base.Future)
    for name in ("observed", "state", "result", "exception", "mark_cancelled"):
        assert type(getattr(C, name)) is str, name


def test_base_future_keeps_its_outcome_under_the_contract_names():
    fresh = _base.Future()
    assert vars(fresh)[C.state] is C.pending
    done = _base.Future()
    done.set_result(42)
    assert vars(done)[C.state] is C.finished
    assert vars(done)[C.result] == 42
    failed = _base.Future()
    error = ValueError("boom")
    failed.set_exception(error)
    assert vars(failed)[C.state] is C.finished
    assert vars(failed)[C.exception] is error


def test_interpool_future_makes_what_base_future_makes_less_the_condition():
    # interpool.Future.__init__ copies _base.Future.__init__ but makes the
    # Condition lazily: should CPython add state there, it must be added here.
    base = set(vars(_base.Future()))
    ours = set(vars(interpool.Future()))
    assert ours == base - {"_condition"}
    assert {C.state, C.result, C.exception} <= ours
    assert C.observed not in ours


def test_the_condition_is_made_under_the_observed_name():
    f = interpool.Future()
    cond = f._condition
    assert vars(f)[C.observed] is cond
    assert f._condition is cond


def test_mark_cancelled_cancels_and_notifies():
    f = interpool.Future()
    called = []
    f.add_done_callback(called.append)
    getattr(f, C.mark_cancelled)()
    assert f.cancelled() and called == [f]


def _functions_of_base():
    """(qualified name, function) of every function and method _base defines."""
    for name, obj in vars(_base).items():
        if isinstance(obj, types.FunctionType) and obj.__module__ == _base.__name__:
            yield name, obj
        elif isinstance(obj, type) and obj.__module__ == _base.__name__:
            for attr, member in vars(obj).items():
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                elif isinstance(member, property):
                    member = member.fget
                if isinstance(member, types.FunctionType):
                    yield f"{name}.{attr}", member


def _names(code):
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


# Functions of _base that touch waiters or callbacks without naming
# _condition themselves, and why that is safe for the fast path.
_OUTSIDE_CONDITION = {
    # Called only by wait() and as_completed() while they hold every future's
    # condition (_AcquireFutures); checked below.
    "_create_and_install_waiters",
    # Runs the callbacks once the state is final; its callers hold the
    # condition while they change the state.
    "Future._invoke_callbacks",
}


def test_base_reaches_waiters_and_callbacks_only_through_the_condition():
    functions = dict(_functions_of_base())
    unguarded = {
        name
        for name, fn in functions.items()
        if _names(fn.__code__) & {"_waiters", "_done_callbacks"}
        and "_condition" not in _names(fn.__code__)
        and name != "Future.__init__"
    }
    assert unguarded == _OUTSIDE_CONDITION, (
        "concurrent.futures._base now touches waiters or done-callbacks outside "
        "_condition: check that the fast path (interpool._future.FutureContract) is still sound"
    )
    installers = {name for name, fn in functions.items() if "_create_and_install_waiters" in _names(fn.__code__)}
    assert installers == {"wait", "as_completed"}
    for name in installers:
        assert "_AcquireFutures" in _names(functions[name].__code__), name
    assert "_condition" in _names(functions["_AcquireFutures.__enter__"].__code__)


# ------------------------------------- futures that the fast path completed


def _completed_unobserved(submit, fn, *args):
    """A future that the fast path completed: done, and never observed."""
    future = submit(fn, *args)
    # result() and exception() wait in the engine, not on the Condition.
    future.exception(WAIT)
    assert C.observed not in vars(future), "the future was completed by set_result, not the fast path"
    assert vars(future)[C.state] is C.finished
    assert future.done()
    return future


def test_a_fast_path_result_reads_back_everywhere(submit):
    go = interpool.Event()
    go.set()
    f = _completed_unobserved(submit, finish_when, go, "value")
    assert f.result() == "value" and f.exception() is None
    assert not f.cancelled() and not f.running()
    called = []
    f.add_done_callback(called.append)
    assert called == [f]
    done, not_done = cf.wait([f], timeout=WAIT)
    assert done == {f} and not not_done
    assert cf.wait([f], return_when=cf.FIRST_EXCEPTION).done == {f}
    assert list(cf.as_completed([f], timeout=WAIT)) == [f]
    assert asyncio.run(_await(f)) == "value"
    assert "finished returned str" in repr(f)


def test_a_fast_path_exception_reads_back_everywhere(submit):
    f = _completed_unobserved(submit, finish_when, None, "value")  # None.wait: AttributeError
    error = f.exception()
    assert isinstance(error, AttributeError)
    with pytest.raises(AttributeError):
        f.result()
    called = []
    f.add_done_callback(called.append)
    assert called == [f]
    done, _ = cf.wait([f], timeout=WAIT, return_when=cf.FIRST_EXCEPTION)
    assert done == {f}
    assert list(cf.as_completed([f], timeout=WAIT)) == [f]
    with pytest.raises(AttributeError):
        asyncio.run(_await(f))
    assert "finished raised AttributeError" in repr(f)


async def _await(future):
    return await asyncio.wrap_future(future)


# --------------------------------- observed first: set_result must notify


def test_a_callback_added_before_completion_runs(submit):
    go = interpool.Event()
    f = submit(finish_when, go, "value")
    called = threading.Event()
    f.add_done_callback(lambda _: called.set())
    assert C.observed in vars(f)
    go.set()
    assert called.wait(WAIT), "a done-callback registered before completion never ran"
    assert f.result() == "value"


@pytest.mark.parametrize("how", ["wait", "as_completed"])
def test_a_waiter_installed_before_completion_wakes(submit, how):
    go = interpool.Event()
    f = submit(finish_when, go, "value")
    seen = []

    def waiter():
        if how == "wait":
            seen.extend(cf.wait([f], timeout=WAIT).done)
        else:
            seen.extend(cf.as_completed([f], timeout=WAIT))

    thread = threading.Thread(target=waiter)
    thread.start()
    try:
        # _base installs the waiter holding the future's Condition.
        _probe.wait_for(lambda: f._waiters, f"{how}() installed its waiter")
        assert C.observed in vars(f)
    finally:
        go.set()
        thread.join(WAIT)
    assert not thread.is_alive(), f"{how}() never woke"
    assert seen == [f]
    assert f.result() == "value"
