"""Functions with no importable home go by value (cloudpickle), wherever they were defined.

Notebooks, IPython, ``python -c``, stdin, ``exec`` into a fresh ``__main__``,
``python -m pkg`` with tasks in ``pkg/__main__.py``, pools created at exit,
lambdas, closures, local functions and classes.
"""

import functools
import os
import textwrap

import pytest

import _byvalue_tasks
import _child
import _tasks
import interpool
from conftest import child_env

# A program as a notebook or ``python -c`` holds it: everything in __main__.
PROGRAM = """\
import interpool

SCALE = 3


def triple(x):
    return x * SCALE


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def norm1(self):
        return abs(self.x) + abs(self.y)

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


def make_point(x):
    return Point(x, -x)


def shifted(p, dx):
    return Point(p.x + dx, p.y)


def run():
    with interpool.Pool(2) as pool:
        print("SUBMIT", pool.submit(triple, 7).result(timeout=60))
        print("MAP", list(pool.map(triple, range(4))))
        offset = 10
        print("LAMBDA", pool.submit(lambda v: v + offset, 1).result(timeout=60))
        p = pool.submit(make_point, 2).result(timeout=60)
        print("RETURNED", type(p).__name__, isinstance(p, Point), p.norm1())
        q = pool.submit(shifted, Point(1, 1), 5).result(timeout=60)
        print("BOTHWAYS", isinstance(q, Point), q == Point(6, 1))
        print("METHOD", pool.submit(Point(3, 4).norm1).result(timeout=60))
"""

EXPECTED = [
    "SUBMIT 21",
    "MAP [0, 3, 6, 9]",
    "LAMBDA 11",
    "RETURNED Point True 4",
    "BOTHWAYS True True",
    "METHOD 7",
]


def run_python(args, cwd, stdin=None, timeout=120):
    return _child.run(args, cwd=cwd, stdin=stdin, limit=timeout)


def check(proc):
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == EXPECTED, proc.stdout + proc.stderr


@pytest.mark.timeout(150)
def test_dash_c(tmp_path):
    check(run_python(["-c", PROGRAM + "run()\n"], tmp_path))


@pytest.mark.timeout(150)
def test_stdin(tmp_path):
    check(run_python(["-"], tmp_path, stdin=PROGRAM + "run()\n"))


@pytest.mark.timeout(150)
def test_exec_into_a_fresh_main_module(tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import sys, types\n"
        "main = types.ModuleType('__main__')\n"
        "sys.modules['__main__'] = main\n"
        f"exec(compile({PROGRAM + 'run()' + chr(10)!r}, '<cell>', 'exec'), main.__dict__)\n"
    )
    check(run_python([str(driver)], tmp_path))


@pytest.mark.timeout(150)
def test_python_dash_m_package_with_tasks_in_its_main(tmp_path):
    package = tmp_path / "notebookish"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(PROGRAM + "\nif __name__ == '__main__':\n    run()\n")
    check(run_python(["-m", "notebookish"], tmp_path))


@pytest.mark.timeout(150)
def test_pool_created_in_an_atexit_handler(tmp_path):
    script = tmp_path / "at_exit.py"
    script.write_text(PROGRAM + "\nimport atexit\natexit.register(run)\n")
    check(run_python([str(script)], tmp_path))


@pytest.mark.timeout(150)
def test_guarded_script_is_not_imported_by_workers(tmp_path):
    # Its top-level code runs once, in the caller only.
    script = tmp_path / "script.py"
    script.write_text("print('TOP-LEVEL', flush=True)\n" + PROGRAM + "\nif __name__ == '__main__':\n    run()\n")
    proc = run_python([str(script)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["TOP-LEVEL", *EXPECTED]


INITIALIZER_SCRIPT = """\
import interpool

MODEL = None


def load(name):
    global MODEL
    MODEL = name.upper()


def predict(x):
    return f"{MODEL}:{x}"


if __name__ == "__main__":
    with interpool.Pool(2, initializer=load, initargs=("m",)) as pool:
        print(sorted(set(pool.map(predict, range(3)))))
        print(pool.submit(predict, 9).result(timeout=60))
"""


@pytest.mark.timeout(150)
def test_globals_set_by_an_initializer_are_seen_by_main_functions(tmp_path):
    # As when multiprocessing's workers import the script: one __main__
    # namespace per worker, shared by the initializer and the tasks.
    script = tmp_path / "init_script.py"
    script.write_text(INITIALIZER_SCRIPT)
    proc = run_python([str(script)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["['M:0', 'M:1', 'M:2']", "M:9"]


NOTEBOOK_EDITS = """\
import interpool

rate = 2
data = [1, 2]


def scaled(x):
    return x * rate


def total():
    return sum(data)


with interpool.Pool(1) as pool:
    print(pool.submit(scaled, 5).result(timeout=60))
    rate = 3                     # the next cell rebinds a global
    print(pool.submit(scaled, 5).result(timeout=60))
    print(pool.submit(total).result(timeout=60))
    data.append(4)               # or changes one in place
    print(pool.submit(total).result(timeout=60))

    def scaled(x):               # or defines the function again
        return -x

    print(pool.submit(scaled, 5).result(timeout=60))
"""


@pytest.mark.timeout(150)
def test_each_call_sees_the_callers_current_globals(tmp_path):
    proc = run_python(["-c", NOTEBOOK_EDITS], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["10", "15", "3", "7", "-5"]


NUMPY_SCRIPT = """\
import numpy as np  # refuses subinterpreters: the workers must never import it

import interpool


def square(x):
    return x * x


def uses_numpy(x):
    return int(np.int64(x) * 2)


if __name__ == "__main__":
    with interpool.Pool(2) as pool:
        print("MAP", list(pool.map(square, range(5))))
        print("SUM", int(np.sum(list(pool.map(square, range(5))))))
        exc = pool.submit(uses_numpy, 1).exception(timeout=60)
        print("ERROR", type(exc).__name__)
        print("NOTES", " ".join(getattr(exc, "__notes__", [])).replace(chr(10), " "))
"""


def _numpy_refused():
    """Whether numpy is installed and refuses to load in a worker, on this Python."""
    pytest.importorskip("numpy")
    with interpool.Pool(1) as pool:
        return isinstance(pool.submit(_byvalue_tasks.call, _import_numpy).exception(timeout=120), ImportError)


def _import_numpy():
    import numpy

    return numpy.__name__


@pytest.mark.timeout(200)
def test_script_importing_numpy_at_the_top_maps_a_pure_python_function(tmp_path):
    pytest.importorskip("numpy")
    refused = _numpy_refused()
    script = tmp_path / "numpy_script.py"
    script.write_text(NUMPY_SCRIPT)
    proc = run_python([str(script)], tmp_path, timeout=180)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["MAP [0, 1, 4, 9, 16]", "SUM 30"]
    if not refused:
        assert lines[2] == "ERROR NoneType"  # numpy loads in workers on this Python
        return
    assert lines[2] == "ERROR ImportError"
    notes = lines[3]
    assert "numpy" in notes and "does not support subinterpreters" in notes
    assert "interpool.HybridPool" in notes and "ProcessPoolExecutor" in notes
    assert "python -m interpool check numpy" in notes


@pytest.mark.parametrize("library", ["joblib", "pandas"])
@pytest.mark.timeout(200)
def test_script_importing_a_refusing_library_at_the_top_still_maps(tmp_path, library):
    pytest.importorskip(library)
    script = tmp_path / "lib_script.py"
    script.write_text(
        f"import {library}\nimport interpool\n\n\ndef square(x):\n    return x * x\n\n\n"
        "if __name__ == '__main__':\n    with interpool.Pool(2) as pool:\n        print(list(pool.map(square, range(5))))\n"
    )
    proc = run_python([str(script)], tmp_path, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[0, 1, 4, 9, 16]"]


@pytest.mark.timeout(120)
def test_refused_module_error_names_the_module_and_the_fix(make_pool):
    pytest.importorskip("numpy")
    if not _numpy_refused():
        pytest.skip("numpy loads in worker interpreters on this Python")
    pool = make_pool(1)
    exc = pool.submit(lambda: _import_numpy()).exception(timeout=120)
    assert isinstance(exc, ImportError)
    notes = "\n".join(exc.__notes__)
    assert "interpool: numpy (its extension module numpy." in notes
    assert "interpool.HybridPool" in notes
    assert "`python -m interpool check numpy`" in notes


# ------------------------------------------------ in this process's pools


def _make_counter():
    count = 0

    def counter():
        nonlocal count
        count += 1
        return count

    return counter


@pytest.mark.timeout(60)
def test_lambda_and_closure_with_defaults(pool):
    base = 100

    def add(x, y=1, *, z=10):
        return base + x + y + z

    assert pool.submit(add, 1).result(timeout=30) == 112
    assert pool.submit(add, 1, 2, z=3).result(timeout=30) == 106
    assert list(pool.map(lambda x: x * base, range(3))) == [0, 100, 200]


@pytest.mark.timeout(60)
def test_recursive_local_function(pool):
    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    assert pool.submit(fib, 15).result(timeout=30) == 610


@pytest.mark.timeout(60)
def test_local_class_instances_go_both_ways(pool):
    class Vector:
        def __init__(self, *xs):
            self.xs = xs

        def scaled(self, k):
            return Vector(*(k * x for x in self.xs))

    back = pool.submit(Vector.scaled, Vector(1, 2), 3).result(timeout=30)
    assert isinstance(back, Vector)
    assert back.xs == (3, 6)


@pytest.mark.timeout(60)
def test_closure_that_rebinds_its_cells_starts_fresh_for_every_task(make_pool):
    pool = make_pool(1)  # one worker: a cached copy would count on
    counter = _make_counter()
    assert [pool.submit(counter).result(timeout=30) for _ in range(5)] == [1] * 5
    assert counter() == 1  # the caller's own stays untouched


@pytest.mark.timeout(60)
def test_partial_of_a_lambda_holding_a_list_starts_fresh_for_every_task(make_pool):
    pool = make_pool(1)
    fn = functools.partial(lambda acc: (acc.append(0), len(acc))[1], [])
    assert [pool.submit(fn).result(timeout=30) for _ in range(5)] == [1] * 5


_RATE = 2


@pytest.mark.timeout(60)
def test_rebinding_a_global_sends_the_new_value(pool):
    global _RATE
    fn = lambda x: x * _RATE  # noqa: E731
    try:
        assert pool.submit(fn, 5).result(timeout=30) == 10
        _RATE = 3
        assert pool.submit(fn, 5).result(timeout=30) == 15
    finally:
        _RATE = 2


@pytest.mark.timeout(60)
def test_by_value_functions_pass_through_by_name_ones(pool):
    # A lambda as an argument of a module function, and back.
    assert pool.submit(_byvalue_tasks.call, lambda a, b: a - b, 5, 3).result(timeout=30) == 2
    assert pool.submit(_byvalue_tasks.call, _tasks.return_lambda).result(timeout=30)() == 42


@pytest.mark.timeout(60)
def test_function_with_builtins_of_its_own_is_refused(pool):
    import types

    source = lambda: len([1, 2, 3])  # noqa: E731
    fn = types.FunctionType(source.__code__, {"__builtins__": {"len": lambda obj: 42}})
    with pytest.raises(TypeError, match="has builtins of its own"):
        pool.submit(fn)


CLOUDPICKLE_IMPORTS = """\
import interpool, _byvalue_tasks
has = _byvalue_tasks.has_module


class Local:
    pass


with interpool.Pool(1) as pool:
    print(pool.submit(has, "cloudpickle").result(timeout=60), "cloudpickle" in __import__("sys").modules)
    pool.submit(lambda: None).result(timeout=60)  # a function: rebuilt without cloudpickle
    print(pool.submit(has, "interpool._byvalue_load").result(timeout=60), pool.submit(has, "cloudpickle").result(timeout=60))
    pool.submit(_byvalue_tasks.call, lambda x: None, Local()).result(timeout=60)  # a class by value
    print(pool.submit(has, "cloudpickle").result(timeout=60))
"""


@pytest.mark.timeout(120)
def test_workers_import_cloudpickle_only_for_classes_by_value(tmp_path):
    proc = run_python(["-c", CLOUDPICKLE_IMPORTS], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["False False", "True False", "True"]


@pytest.mark.timeout(60)
def test_hybrid_pool_isolated_lambda_runs_by_value():
    with interpool.HybridPool(1) as pool:
        assert pool.submit(interpool.isolated(lambda: os.getpid())).result(timeout=30) == os.getpid()
        assert pool.submit(interpool.isolated(lambda: _tasks.is_main_interpreter())).result(timeout=30) is False


ASYNC_PROGRAM = textwrap.dedent(
    """\
    import asyncio, interpool

    async def double(x):
        await asyncio.sleep(0)
        return 2 * x

    async def main():
        async with interpool.AsyncPool(1) as apool:
            print(await apool.run(double, 21))

    asyncio.run(main())
    """
)


@pytest.mark.timeout(120)
def test_async_pool_runs_a_coroutine_function_from_main(tmp_path):
    proc = run_python(["-c", ASYNC_PROGRAM], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["42"]


NOTEBOOK_CELLS = [
    "import interpool\npool = interpool.Pool(2)",
    "class Point:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n\n"
    "def shift(p, dx):\n    return Point(p.x + dx, p.y)\n\nscale = 10",
    "print(list(pool.map(lambda x: x * scale, range(4))))",
    "p = pool.submit(shift, Point(1, 2), 5).result(timeout=60)\nprint(type(p) is Point, p.x, p.y)",
    "def init_model():\n    global model\n    model = 'fitted'\n\ndef predict(x):\n    return f'{model}:{x}'\n\n"
    "with interpool.Pool(1, initializer=init_model) as p2:\n    print(p2.submit(predict, 3).result(timeout=60))",
    "pool.shutdown()",
]


@pytest.mark.timeout(240)
def test_functions_defined_in_a_jupyter_notebook(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS])
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=child_env())
    printed = [
        output["text"].strip()
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream" and output.get("name") == "stdout"
    ]
    assert printed == ["[0, 10, 20, 30]", "True 6 2", "fitted:3"]
