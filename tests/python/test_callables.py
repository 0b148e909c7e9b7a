"""What can be sent as a task: importable callables run; anything else is refused at submit."""

import functools
import math
import operator
import os
import threading

import pytest

import _tasks
from _child import run, run_python
from conftest import BEHAVIOUR

# Every executor kind (conftest.PoolKind) with 1 and 3 workers.
pytestmark = BEHAVIOUR

# ------------------------------------------------------------ sendable ones


@pytest.mark.parametrize(
    ("fn", "args", "expected"),
    [
        pytest.param(_tasks.add, (2, 3), 5, id="module_function"),
        pytest.param(math.sqrt, (16.0,), 4.0, id="builtin_math_sqrt"),
        pytest.param(len, ([1, 2, 3],), 3, id="builtin_len"),
        pytest.param(abs, (-7,), 7, id="builtin_abs"),
        pytest.param(operator.neg, (5,), -5, id="operator_neg"),
        pytest.param(operator.itemgetter(1), ("abc",), "b", id="itemgetter_instance"),
        pytest.param(_tasks.Record, ("r", (1,)), _tasks.Record("r", (1,)), id="class_as_callable"),
        pytest.param(dict, ([("a", 1)],), {"a": 1}, id="builtin_class"),
        pytest.param(_tasks.Multiplier(3).times, (7,), 21, id="bound_method"),
        pytest.param(functools.partial(_tasks.mul, 6), (7,), 42, id="partial"),
        pytest.param(functools.partial(_tasks.describe_call, 1, k=2), (3,), ((1, 3), {"k": 2}), id="partial_kwargs"),
        pytest.param(_tasks.Multiplier.static_double, (21,), 42, id="staticmethod"),
        pytest.param(_tasks.Multiplier.class_name, ("!",), "Multiplier!", id="classmethod"),
        pytest.param("-".join, (["a", "b"],), "a-b", id="builtin_bound_method"),
    ],
)
def test_importable_callable_runs_in_worker(pool, fn, args, expected):
    assert pool.submit(fn, *args).result(timeout=30) == expected


def test_builtin_with_keyword_arguments(pool):
    assert pool.submit(int, "ff", base=16).result(timeout=30) == 255


def test_same_callable_submitted_many_times_uses_fresh_arguments(pool):
    fn = functools.partial(_tasks.add, 100)
    assert [pool.submit(fn, i).result(timeout=30) for i in range(5)] == [100, 101, 102, 103, 104]
    other = functools.partial(_tasks.add, 200)
    assert pool.submit(other, 1).result(timeout=30) == 201


def test_tasks_run_in_a_subinterpreter_not_the_main_one(pool):
    assert _tasks.is_main_interpreter() is True
    assert pool.submit(_tasks.is_main_interpreter).result(timeout=30) is False


# --------------------------------------------------- functions in __main__

MAIN_SCRIPT = """\
import os
import sys

import interpool


def f(x):
    return x * 2


class Box:
    def __init__(self, value):
        self.value = value

    def get(self):
        return self.value


if __name__ == "__main__":
    print("MAIN-BLOCK-RAN", flush=True)
    with interpool.Pool(2) as pool:
        print("SUBMIT", pool.submit(f, 21).result(timeout=30), flush=True)
        print("MAP", list(pool.map(f, range(5))), flush=True)
        print("BOX", pool.submit(Box(7).get).result(timeout=30), flush=True)
        if "--return-instance" in sys.argv:
            try:
                print("CLASS", type(pool.submit(Box, 1).result(timeout=30)).__name__, flush=True)
            except Exception as exc:
                print("CLASS-ERROR", type(exc).__name__, exc, flush=True)
"""


@pytest.mark.timeout(90)
def test_function_defined_in_main_script_runs_in_workers(tmp_path):
    proc = run_python(tmp_path, MAIN_SCRIPT, name="main_script.py")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "SUBMIT 42" in lines
    assert "MAP [0, 2, 4, 6, 8]" in lines
    assert "BOX 7" in lines
    assert proc.stderr == ""


@pytest.mark.timeout(90)
def test_instance_of_main_script_class_comes_back_from_worker(tmp_path):
    proc = run_python(tmp_path, MAIN_SCRIPT, "--return-instance", name="main_script.py")
    assert "CLASS Box" in proc.stdout.splitlines(), proc.stdout


@pytest.mark.timeout(90)
def test_main_block_of_script_does_not_rerun_in_workers(tmp_path):
    proc = run_python(tmp_path, MAIN_SCRIPT, name="main_script.py")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("MAIN-BLOCK-RAN") == 1


@pytest.mark.timeout(90)
def test_function_defined_in_main_module_run_with_dash_m(tmp_path):
    (tmp_path / "main_mod.py").write_text(MAIN_SCRIPT)
    proc = run(["-m", "main_mod"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "SUBMIT 42" in proc.stdout.splitlines()
    assert proc.stdout.count("MAIN-BLOCK-RAN") == 1


@pytest.mark.timeout(90)
def test_script_run_from_another_directory(tmp_path):
    sub = tmp_path / "elsewhere"
    sub.mkdir()
    script = sub / "main_script.py"
    script.write_text(MAIN_SCRIPT)
    proc = run([os.path.relpath(script, tmp_path)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "SUBMIT 42" in proc.stdout.splitlines()


# ------------------------------------------------ by value, and unsendable
#
# What a worker cannot import by name (lambdas, closures, local functions
# and classes) goes by value with cloudpickle (test_by_value.py has more);
# what cannot be pickled at all is refused at submit.


def _closure_fn():
    y = 1

    def inner_closure(x):
        return x + y

    return inner_closure


def _local_instance():
    class LocalClass:
        def __eq__(self, other):
            return type(other).__name__ == "LocalClass"

    return LocalClass()


def _generator():
    yield 1


def _open_file():
    return open(os.devnull)


# Module state that lambdas below refer to: it travels with them.
OFFSET = 1


@pytest.mark.timeout(30)
def test_lambda_callable_runs_by_value(pool):
    assert pool.submit(lambda x: x + OFFSET, 1).result(timeout=30) == 2


@pytest.mark.timeout(30)
def test_interpreter_pool_executor_sends_stateless_functions_as_code_like_the_stdlib():
    import interpool

    def local_stateless(x):
        return [len(str(x)), abs(-x)]

    with interpool.InterpreterPoolExecutor(1) as executor:
        assert executor.submit(lambda: 42).result(timeout=10) == 42
        assert executor.submit(local_stateless, 12).result(timeout=10) == [2, 12]
        # and what needs state, by value
        assert executor.submit(lambda: OFFSET).result(timeout=10) == 1


@pytest.mark.timeout(30)
def test_closure_callable_runs_by_value(pool):
    assert pool.submit(_closure_fn(), 1).result(timeout=30) == 2


@pytest.mark.timeout(30)
def test_local_function_in_test_module_runs_by_value(pool):
    def local_fn():
        return OFFSET

    assert pool.submit(local_fn).result(timeout=30) == 1


@pytest.mark.parametrize(
    ("make_arg", "expected"),
    [
        pytest.param(lambda: lambda: None, None, id="lambda_argument"),
        pytest.param(_local_instance, "LocalClass", id="local_class_instance"),
    ],
)
@pytest.mark.timeout(30)
def test_argument_without_an_importable_home_goes_by_value(pool, make_arg, expected):
    arg = make_arg()
    back = pool.submit(_tasks.identity, arg).result(timeout=30)
    if callable(back) and expected is None:
        assert back() is None
    else:
        assert type(back).__name__ == expected


@pytest.mark.parametrize(
    ("make_arg", "named"),
    [
        pytest.param(threading.Lock, "lock", id="lock"),
        pytest.param(_generator, "generator", id="generator"),
        pytest.param(_open_file, "TextIOWrapper", id="open_file"),
    ],
)
@pytest.mark.timeout(10)
def test_unsendable_argument_is_refused_at_submit_naming_it(pool, make_arg, named):
    arg = make_arg()
    try:
        with pytest.raises(TypeError, match="cannot send object") as info:
            pool.submit(_tasks.identity, arg)
        message = str(info.value)
        assert named in message
        assert repr(arg) in message
    finally:
        if hasattr(arg, "close"):
            arg.close()


@pytest.mark.timeout(10)
def test_closure_over_a_lock_is_refused_at_submit(pool):
    lock = threading.Lock()

    def uses_lock():
        with lock:
            return 1

    with pytest.raises(TypeError, match=r"cannot send callable .*uses_lock.* to another interpreter") as info:
        pool.submit(uses_lock)
    assert "lock" in str(info.value)


@pytest.mark.timeout(10)
def test_unsendable_keyword_argument_is_refused_at_submit(pool):
    with pytest.raises(TypeError, match="cannot send object <unlocked _thread.lock object"):
        pool.submit(_tasks.describe_call, 1, lock=threading.Lock())


@pytest.mark.timeout(10)
def test_unsendable_argument_nested_in_a_container_is_refused(pool):
    with pytest.raises(TypeError, match="cannot send object"):
        pool.submit(_tasks.identity, {"ok": [1, 2, (threading.Lock(),)]})


@pytest.mark.timeout(10)
def test_refused_submit_queues_nothing(make_pool, tmp_path):
    pool = make_pool(1)
    marker = tmp_path / "ran"
    with pytest.raises(TypeError):
        pool.submit(_tasks.touch, str(marker), threading.Lock())
    with pytest.raises(TypeError):
        pool.submit(_tasks.touch, path=str(marker), bad=_generator())
    pool.shutdown(wait=True)
    assert not marker.exists()


@pytest.mark.timeout(10)
def test_pool_keeps_working_after_a_refused_submit(pool):
    with pytest.raises(TypeError):
        pool.submit(_tasks.identity, threading.Lock())
    assert pool.submit(_tasks.identity, "fine").result(timeout=30) == "fine"


@pytest.mark.timeout(10)
def test_unsendable_error_keeps_the_pickling_error_as_cause(pool):
    with pytest.raises(TypeError) as info:
        pool.submit(_tasks.identity, threading.Lock())
    assert info.value.__cause__ is not None
    assert "pickle" in str(info.value.__cause__)


@pytest.mark.timeout(10)
def test_non_callable_is_refused_at_submit(pool):
    with pytest.raises(TypeError, match="^fn must be callable, not int$"):
        pool.submit(42)


@pytest.mark.timeout(30)
def test_lambda_returned_by_a_task_comes_back_by_value(pool):
    assert pool.submit(_tasks.return_lambda).result(timeout=30)() == _tasks.return_lambda()()


@pytest.mark.timeout(10)
def test_unsendable_return_value_fails_the_future_with_type_error(pool):
    future = pool.submit(_tasks.return_generator)
    with pytest.raises(TypeError, match="cannot send object <generator object"):
        future.result(timeout=30)
    assert pool.submit(_tasks.identity, 1).result(timeout=30) == 1


# ------------------------------------------- callable state between tasks
#
# As with ProcessPoolExecutor, a callable that holds state (a partial, a
# callable instance, a bound method of an instance) is decoded afresh for each
# task: no task sees what an earlier one left in it.  Stateless callables
# (functions, classes, builtins) may be decoded once per worker.

import _graph_tasks  # noqa: E402


@pytest.mark.parametrize(
    "make_fn",
    [
        pytest.param(lambda: functools.partial(_graph_tasks.append_and_len, []), id="partial"),
        pytest.param(lambda: _graph_tasks.CallCounter(), id="callable_instance"),
        pytest.param(lambda: _graph_tasks.CallCounter().bump, id="bound_method_of_instance"),
    ],
)
@pytest.mark.timeout(30)
def test_stateful_callable_starts_fresh_for_every_task(make_pool, make_fn):
    pool = make_pool(1)  # one worker: every task would see a cached copy
    fn = make_fn()
    assert [pool.submit(fn).result(timeout=10) for _ in range(5)] == [1, 1, 1, 1, 1]


@pytest.mark.timeout(30)
def test_stateful_callable_is_decoded_once_per_map_chunk(make_pool):
    # Within one payload the callable is one object, as in ProcessPoolExecutor's chunks.
    pool = make_pool(1)
    fn = functools.partial(_graph_tasks.append_and_len, [])
    assert list(pool.map(fn, range(6), chunksize=3)) == [1, 2, 3, 1, 2, 3]


@pytest.mark.timeout(60)
def test_partials_binding_large_objects_are_freed_after_their_tasks(make_pool):
    pool = make_pool(1)
    sizes = [
        pool.submit(functools.partial(_graph_tasks.track, _graph_tasks.Sentinel(bytes(8 << 20)))).result(timeout=30)
        for _ in range(60)
    ]
    assert sizes == [8 << 20] * 60
    assert pool.submit(_graph_tasks.live_sentinels).result(timeout=30) == 0


# ---------------------------------- stateless code (InterpreterPoolExecutor)


@pytest.mark.timeout(20)
def test_function_using_a_module_global_that_shadows_a_builtin_goes_by_value_with_it():
    import _shadowing_module
    import interpool

    fn = _shadowing_module.lambda_using_shadowed_len()
    assert fn() == 42  # what the caller means
    with interpool.InterpreterPoolExecutor(1) as executor:
        # Not as code against the builtins (len would be the builtin): by
        # value, with the module's len.
        assert executor.submit(fn).result(timeout=10) == 42
        # A builtin that the module does not shadow still goes as code.
        assert executor.submit(_shadowing_module.lambda_using_abs()).result(timeout=10) == 3


@pytest.mark.timeout(20)
def test_function_whose_builtins_were_replaced_is_not_sent_as_code():
    import types

    import interpool

    source = lambda: len([1, 2, 3])  # noqa: E731
    fn = types.FunctionType(source.__code__, {"__builtins__": {"len": lambda obj: 42}})
    assert fn() == 42
    with interpool.InterpreterPoolExecutor(1) as executor:
        with pytest.raises(TypeError, match="cannot send callable"):
            executor.submit(fn)


def test_caller_encodes_stateless_code_without_importing_the_worker_module():
    code = (
        "import sys, interpool\n"
        "with interpool.InterpreterPoolExecutor(1) as ex:\n"
        "    assert ex.submit(lambda: 7).result(timeout=20) == 7\n"
        "print('interpool._worker' in sys.modules)\n"
    )
    out = run(["-c", code])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------- nested pools

NESTED_SCRIPT = """
import interpool


def double(x):
    return 2 * x


class Point:
    def __init__(self, x):
        self.x = x


def make_point(x):
    return Point(x)


def nested(n):
    # A pool started by a task: its workers load this same script.
    with interpool.Pool(1) as inner:
        point = inner.submit(make_point, n).result(timeout=30)
        return inner.submit(double, n).result(timeout=30), list(inner.map(double, range(n))), point.x


def twice_nested(n):
    with interpool.Pool(1) as inner:
        return inner.submit(nested, n).result(timeout=60)


if __name__ == "__main__":
    with interpool.Pool(1) as pool:
        print("NESTED", pool.submit(nested, 3).result(timeout=60), flush=True)
        print("TWICE", pool.submit(twice_nested, 2).result(timeout=90), flush=True)
"""


@pytest.mark.parametrize("how", ["script", "dash_m"])
@pytest.mark.timeout(120)
def test_pool_started_in_a_task_runs_functions_of_the_main_script(tmp_path, how):
    (tmp_path / "nested_main.py").write_text(NESTED_SCRIPT)
    args = [str(tmp_path / "nested_main.py")] if how == "script" else ["-m", "nested_main"]
    proc = run(args, cwd=tmp_path, limit=110)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "NESTED (6, [0, 2, 4], 3)" in lines
    assert "TWICE (4, [0, 2], 2)" in lines
