"""Exceptions raised by tasks come back to the caller as themselves, with the worker's traceback."""

import concurrent.futures as cf
import math
import re
import threading

import pytest

import _tasks
import interpool
from _child import run_python
from conftest import BEHAVIOUR

try:  # 3.14+: InterpreterPoolExecutor chains from this, like the stdlib's
    from concurrent.interpreters import ExecutionFailed
except ImportError:
    ExecutionFailed = None

# Every executor kind (conftest.PoolKind) with 1 and 3 workers.
pytestmark = BEHAVIOUR


def remote_traceback_text(pool, exc):
    """The worker's traceback from a task exception's __cause__.

    Pool chains from interpool.RemoteTraceback.  InterpreterPoolExecutor does
    the same before 3.14; from 3.14 it chains from the stdlib's
    concurrent.interpreters.ExecutionFailed, whose excinfo carries the text.
    """
    cause = exc.__cause__
    if isinstance(pool, interpool.InterpreterPoolExecutor) and ExecutionFailed is not None:
        assert type(cause) is ExecutionFailed
        return cause.excinfo.errdisplay
    assert type(cause) is interpool.RemoteTraceback
    assert cause.tb == str(cause)
    return str(cause)


def raised_by(pool, fn, *args):
    future = pool.submit(fn, *args)
    with pytest.raises(BaseException) as info:
        future.result(timeout=30)
    return info.value


def test_exception_comes_back_with_same_type_and_message(pool):
    with pytest.raises(ValueError) as info:
        pool.submit(_tasks.raise_value_error, "something went wrong").result(timeout=30)
    assert str(info.value) == "something went wrong"
    assert info.value.args == ("something went wrong",)


def test_exception_cause_is_remote_traceback_naming_the_raising_function(pool):
    exc = raised_by(pool, _tasks.raise_value_error, "boom")
    text = remote_traceback_text(pool, exc)
    assert "Traceback (most recent call last):" in text
    assert "in raise_value_error" in text
    assert "_tasks.py" in text
    assert "ValueError: boom" in text


def test_exception_notes_carry_the_worker_traceback(pool):
    exc = raised_by(pool, _tasks.raise_value_error, "boom")
    notes = getattr(exc, "__notes__", [])
    assert len(notes) == 1
    assert notes[0].startswith("Traceback in the worker interpreter:\n")
    assert "in raise_value_error" in notes[0]
    assert "ValueError: boom" in notes[0]


def test_custom_exception_class_comes_back_as_itself(pool):
    exc = raised_by(pool, _tasks.raise_custom, "custom message")
    assert type(exc) is _tasks.CustomError
    assert exc.args == ("custom message",)
    assert "in raise_custom" in str(exc.__cause__)


def test_exception_raised_by_builtin_callable(pool):
    with pytest.raises(ValueError) as local:
        math.sqrt(-1.0)  # the message differs between Python versions
    with pytest.raises(ValueError, match=f"^{re.escape(str(local.value))}"):
        pool.submit(math.sqrt, -1.0).result(timeout=30)


def test_type_error_from_wrong_arguments_is_reported(pool):
    with pytest.raises(TypeError, match="add"):
        pool.submit(_tasks.add, 1).result(timeout=30)


def test_future_exception_returns_the_exception(pool):
    future = pool.submit(_tasks.raise_custom, "via exception()")
    exc = future.exception(timeout=30)
    assert type(exc) is _tasks.CustomError
    assert str(exc) == "via exception()"
    assert future.done()
    assert not future.cancelled()


def test_future_exception_is_none_on_success(pool):
    future = pool.submit(_tasks.identity, 3)
    assert future.exception(timeout=30) is None
    assert future.result() == 3


def test_unpicklable_exception_becomes_remote_error(pool):
    exc = raised_by(pool, _tasks.raise_lock_holding, "holds a lock")
    assert type(exc) is interpool.RemoteError
    assert exc.type_name == "_tasks.LockHoldingError"
    assert exc.message == "holds a lock"
    assert "in raise_lock_holding" in exc.traceback
    assert str(exc) == "_tasks.LockHoldingError: holds a lock"
    assert "in raise_lock_holding" in remote_traceback_text(pool, exc)


def test_exception_that_fails_to_unpickle_becomes_remote_error(pool):
    exc = raised_by(pool, _tasks.raise_two_arg, "needs two args")
    assert type(exc) is interpool.RemoteError
    assert exc.type_name == "_tasks.TwoArgError"
    assert exc.message.startswith("needs two args (could not be rebuilt here: TypeError: ")
    assert "in raise_two_arg" in exc.traceback


def test_remote_error_is_an_exception_and_pickles():
    import pickle

    exc = interpool.RemoteError("pkg.Error", "msg", "tb text")
    assert isinstance(exc, Exception)
    back = pickle.loads(pickle.dumps(exc))
    assert (back.type_name, back.message, back.traceback) == ("pkg.Error", "msg", "tb text")
    assert str(interpool.RemoteError("pkg.Error", "")) == "pkg.Error"


@pytest.mark.timeout(30)
def test_system_exit_in_task_fails_only_that_task(make_pool):
    pool = make_pool(1)
    with pytest.raises(SystemExit) as info:
        pool.submit(_tasks.raise_system_exit, 3).result(timeout=30)
    assert info.value.code == 3
    assert pool.submit(_tasks.identity, "still alive").result(timeout=30) == "still alive"


@pytest.mark.timeout(30)
def test_keyboard_interrupt_in_task_fails_only_that_task(make_pool):
    pool = make_pool(1)
    future = pool.submit(_tasks.raise_keyboard_interrupt)
    assert isinstance(future.exception(timeout=30), KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        future.result(timeout=30)
    assert pool.submit(_tasks.identity, "still alive").result(timeout=30) == "still alive"


@pytest.mark.timeout(30)
def test_many_failures_do_not_break_the_pool(sized_pool):
    futures = [sized_pool.submit(_tasks.fail_at, i, i if i % 2 else -1) for i in range(40)]
    for i, future in enumerate(futures):
        if i % 2 == 1:
            with pytest.raises(ValueError) as info:
                future.result(timeout=30)
            assert str(info.value) == f"bad item {i}"
        else:
            assert future.result(timeout=30) == i * 10


def test_exception_reaches_done_callbacks_and_wait(pool):
    seen = []
    called = threading.Event()

    def callback(f):
        seen.append(type(f.exception()))
        called.set()

    future = pool.submit(_tasks.raise_value_error, "cb")
    future.add_done_callback(callback)
    done, not_done = cf.wait([future], timeout=30)
    assert done == {future} and not not_done
    assert called.wait(10)
    assert seen == [ValueError]


# ------------------------------------------- exceptions that resist the trip

import multiprocessing  # noqa: E402

import _error_tasks  # noqa: E402


@pytest.mark.parametrize(
    ("cls", "raised"),
    [
        pytest.param(_error_tasks.ExitsWhenRebuilt, "SystemExit", id="system_exit"),
        pytest.param(_error_tasks.InterruptsWhenRebuilt, "KeyboardInterrupt", id="keyboard_interrupt"),
        pytest.param(_error_tasks.GeneratorExitWhenRebuilt, "GeneratorExit", id="generator_exit"),
    ],
)
@pytest.mark.timeout(30)
def test_base_exception_raised_while_rebuilding_becomes_remote_error(pool, cls, raised):
    exc = raised_by(pool, _error_tasks.raise_it, cls, "the message")
    assert type(exc) is interpool.RemoteError
    assert exc.type_name == f"_error_tasks.{cls.__qualname__}"
    assert exc.message.startswith("the message (could not be rebuilt here: " + raised)
    assert "in raise_it" in exc.traceback
    assert pool.submit(_tasks.identity, "still alive").result(timeout=30) == "still alive"


@pytest.mark.parametrize(
    ("cls", "fn_args", "type_name"),
    [
        pytest.param(_error_tasks.ReduceRaises, None, "_error_tasks.ReduceRaises", id="reduce_raises"),
        pytest.param(_error_tasks.ReduceExits, None, "_error_tasks.ReduceExits", id="reduce_raises_system_exit"),
        pytest.param(None, "nested", "_error_tasks.Outer.NestedError", id="nested_class"),
    ],
)
@pytest.mark.timeout(30)
def test_remote_error_carries_qualified_name_message_and_traceback(pool, cls, fn_args, type_name):
    if cls is None:
        exc = raised_by(pool, _error_tasks.raise_nested, "boom")
    else:
        exc = raised_by(pool, _error_tasks.raise_it, cls, "boom")
    assert type(exc) is interpool.RemoteError
    assert exc.type_name == type_name
    assert exc.message == "boom"
    assert exc.traceback.startswith("Traceback (most recent call last):")
    assert "_error_tasks.py" in exc.traceback
    assert str(exc) == f"{type_name}: boom"


def test_remote_error_names_a_main_script_class_as_main(tmp_path):
    out = run_python(
        tmp_path,
        """
        import interpool
        class Unpicklable(Exception):
            def __reduce__(self):
                raise RuntimeError('no')
        def fail():
            raise Unpicklable('x')
        if __name__ == '__main__':
            with interpool.Pool(1) as pool:
                try:
                    pool.submit(fail).result(timeout=30)
                except interpool.RemoteError as exc:
                    print(exc.type_name)
        """,
        name="script.py",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "__main__.Unpicklable"


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        pytest.param(_error_tasks.start_multiprocessing_pool, (method,), id=f"multiprocessing_pool_{method}")
        for method in multiprocessing.get_all_start_methods()
    ]
    + [pytest.param(_error_tasks.start_process_pool_executor, (), id="process_pool_executor")],
)
@pytest.mark.timeout(60)
def test_multiprocessing_inside_a_task_explains_why_it_cannot_work(pool, fn, args):
    exc = raised_by(pool, fn, *args)
    assert type(exc) is RuntimeError
    message = str(exc)
    assert "multiprocessing cannot start processes from inside an interpool worker" in message
    assert "in the main interpreter" in message  # the fix
    assert pool.submit(_tasks.identity, "still alive").result(timeout=30) == "still alive"


@pytest.mark.timeout(30)
def test_daemon_thread_inside_a_task_gets_a_note_on_why(pool):
    exc = raised_by(pool, _error_tasks.start_daemon_thread)
    assert type(exc) is RuntimeError
    assert "daemon threads are disabled" in str(exc)
    assert any("allows neither fork() nor daemon threads" in note for note in exc.__notes__)


@pytest.mark.timeout(30)
def test_system_exit_raised_while_rebuilding_a_result_does_not_escape_result(pool):
    future = pool.submit(_error_tasks.return_exits_when_unpickled)
    with pytest.raises(RuntimeError, match="result could not be rebuilt here") as info:
        future.result(timeout=30)
    assert type(info.value.__cause__) is SystemExit and info.value.__cause__.code == 4
    assert pool.submit(_tasks.identity, "still alive").result(timeout=30) == "still alive"


# ------------------------------------- the Failure that a task's exception crosses as


def test_a_failure_is_built_by_keyword_and_read_by_name():
    from interpool import _core

    f = _core.Failure(
        kind="exception", type_name="pkg.Error", message="m", traceback="tb\n", module="pkg", qualname="Error"
    )
    assert (f.kind, f.type_name, f.message, f.traceback, f.module, f.qualname) == (
        "exception",
        "pkg.Error",
        "m",
        "tb\n",
        "pkg",
        "Error",
    )
    assert f.pickled is None and f.reason is None and f.cause is None and f.notice is False
    with pytest.raises(AttributeError):
        f.kind = "broken"
    with pytest.raises(TypeError, match="keyword arguments only"):
        _core.Failure("exception")
    with pytest.raises(ValueError, match="kind must be 'exception', 'broken' or 'cancelled'"):
        _core.Failure(kind="other")
    with pytest.raises(TypeError, match="needs type_name"):
        _core.Failure(kind="exception", message="m", traceback="")
    with pytest.raises(TypeError, match="needs reason"):
        _core.Failure(kind="broken")
    with pytest.raises(TypeError, match="cause must be a Failure or None"):
        _core.Failure(kind="broken", reason="r", cause=("exception", None))
    with pytest.raises(TypeError, match="pickled must be bytes or None"):
        _core.Failure(kind="exception", pickled="x", type_name="E", message="m", traceback="")


def test_rebuild_reads_each_kind_of_failure_by_name(caplog):
    import asyncio
    import logging
    import pickle

    from interpool import _core, _errors

    exc = _errors.rebuild(_core.Failure(kind="exception", type_name="pkg.Error", message="m", traceback="tb\n"))
    assert type(exc) is interpool.RemoteError
    assert (exc.type_name, exc.message, exc.traceback) == ("pkg.Error", "m", "tb\n")
    assert type(exc.__cause__) is interpool.RemoteTraceback

    cause = _core.Failure(
        kind="exception", pickled=pickle.dumps(ValueError("init")), type_name="ValueError", message="init", traceback=""
    )
    with caplog.at_level(logging.CRITICAL, logger="concurrent.futures"):
        quiet = _errors.rebuild(_core.Failure(kind="broken", reason="a worker failed", cause=cause))
        assert "Exception in initializer" not in caplog.text
        broken = _errors.rebuild(_core.Failure(kind="broken", reason="a worker failed", cause=cause, notice=True))
    assert "Exception in initializer" in caplog.text
    for b in (quiet, broken):
        assert type(b) is interpool.BrokenPool and str(b) == "a worker failed"
        assert type(b.__cause__) is ValueError and str(b.__cause__) == "init"

    assert type(_errors.rebuild(_core.Failure(kind="cancelled"))) is asyncio.CancelledError


def test_a_failure_crosses_interpreters_by_its_fields(pool):
    import pickle

    from interpool import _core

    f = pool.submit(_error_tasks.describe_raised, "boom").result(timeout=30)
    assert type(f) is _core.Failure  # the caller's own type: decoded, not pickled
    assert (f.kind, f.type_name, f.message, f.module, f.qualname) == (
        "exception",
        "ValueError",
        "boom",
        "builtins",
        "ValueError",
    )
    assert "in describe_raised" in f.traceback and f.traceback.endswith("ValueError: boom\n")
    assert type(pickle.loads(f.pickled)) is ValueError
    assert f.reason is None and f.cause is None and f.notice is False


@pytest.mark.timeout(60)
def test_a_describer_that_fails_leaves_what_the_binding_can_say():
    import asyncio

    async def main():
        async with interpool.AsyncPool(1, initializer=_error_tasks.break_the_describer) as apool:
            return await apool.run(_error_tasks.raise_value_error_async, "boom")

    with pytest.raises(interpool.RemoteError) as info:
        asyncio.run(main())
    assert (info.value.type_name, info.value.message, info.value.traceback) == ("ValueError", "boom", "")
