"""The README's examples run as written (each in a fresh interpreter)."""

import importlib.util
import os
import re

import pytest

import _child
from conftest import child_env

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def blocks_after(heading, language, count):
    """The first ``count`` ```language blocks after the line ``heading``."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    start = text.index(heading + "\n")
    return re.compile(rf"```{language}\n(.*?)```", re.S).findall(text, start)[:count]


def python_block_after(heading):
    """The first ```python block after the line ``heading`` in the README."""
    (block,) = blocks_after(heading, "python", 1)
    return block


def run_example(tmp_path, heading, limit=300):
    """Run the first ```python block after ``heading`` as a script in ``tmp_path``; it must exit 0.

    Returns its stdout lines.
    """
    done = _child.run_python(tmp_path, python_block_after(heading), name="example.py", limit=limit)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("heading", ["## The API in short", "## Stopping work"])
def test_readme_example_runs(heading, tmp_path):
    lines = run_example(tmp_path, heading)
    if heading == "## Stopping work":
        assert lines[0] == "the task ran past its timeout of 0.5 s"
        assert lines[1] == "True"
        assert lines[2] == "cancelled the await, and interrupted the task"
        assert lines[3].startswith("PoolStats(") and "timed_out=1" in lines[3]


def test_readme_notebook_session(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    tasks, notebook = blocks_after("### A notebook session", "python", 2)
    (expected,) = blocks_after("### A notebook session", "text", 1)
    (tmp_path / "tasks.py").write_text(tasks)
    sources = [cell.strip() for cell in re.split(r"^# In \[\d+\]:\n", notebook, flags=re.M) if cell.strip()]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    env = child_env()
    nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute(env=env)
    cell = nb.cells[1]
    streams = {
        name: "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == name)
        for name in ("stdout", "stderr")
    }
    (result,) = [o.data["text/plain"] for o in cell.outputs if o.output_type == "execute_result"]
    *prints, record, value = expected.splitlines()
    assert streams["stdout"].splitlines() == prints
    # Either worker may run the task.
    assert re.fullmatch(record.replace("interpool-0", r"interpool-\d") + "\n", streams["stderr"])
    assert result == value


def test_readme_check_command():
    (block,) = blocks_after("### Which modules load in a worker: `python -m interpool check`", "sh", 1)
    lines = block.splitlines()
    command, *report, status_command, status = lines
    assert command == "$ python -m interpool check numpy json yaml" and status_command == "$ echo $?"
    if importlib.util.find_spec("numpy") is None or importlib.util.find_spec("yaml") is None:
        pytest.skip("numpy or PyYAML is not installed here")
    if importlib.util.find_spec("yaml._yaml") is None:
        pytest.skip("this PyYAML has no LibYAML extension")
    done = _child.run(["-m", "interpool", "check", "numpy", "json", "yaml"], limit=300)
    assert done.stdout.splitlines() == report
    assert str(done.returncode) == status


@pytest.mark.timeout(600)
def test_readme_dask_example_runs(tmp_path):
    pytest.importorskip("dask.bag")
    pytest.importorskip("distributed")
    assert run_example(tmp_path, "### Dask", limit=540) == ["True", "285", "285", "True", "385"]


def test_readme_notebook_example_runs_as_a_notebook_would():
    # Fed on stdin, as a notebook cell or a REPL holds it: everything in __main__.
    code = python_block_after("### Functions from notebooks, `-c` and lambdas")
    done = _child.run(["-"], stdin=code, limit=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[0, 10, 20, 30]", "True 6 2", "200"]
