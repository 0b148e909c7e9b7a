"""The README's examples run as written (each in a fresh interpreter)."""

import importlib.util
import os
import re
import subprocess
import sys

import pytest

from conftest import child_env

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def python_block_after(heading):
    """The first ```python block after the line ``heading`` in the README."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    start = text.index(heading + "\n")
    match = re.compile(r"```python\n(.*?)```", re.S).search(text, start)
    return match.group(1)


@pytest.mark.parametrize("heading", ["## The API in short", "## Stopping work"])
def test_readme_example_runs(heading, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(python_block_after(heading))
    done = subprocess.run(
        [sys.executable, str(script)], env=child_env(), capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    if heading == "## Stopping work":
        lines = done.stdout.splitlines()
        assert lines[0] == "the task ran past its timeout of 0.5 s"
        assert lines[1] == "True"
        assert lines[2] == "cancelled the await, and interrupted the task"
        assert lines[3].startswith("PoolStats(") and "timed_out=1" in lines[3]


def blocks_after(heading, language, count):
    """The first ``count`` ```language blocks after the line ``heading``."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    start = text.index(heading + "\n")
    return re.compile(rf"```{language}\n(.*?)```", re.S).findall(text, start)[:count]


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
    done = subprocess.run(
        [sys.executable, "-m", "interpool", "check", "numpy", "json", "yaml"],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stdout.splitlines() == report
    assert str(done.returncode) == status


@pytest.mark.timeout(600)
def test_readme_dask_example_runs(tmp_path):
    pytest.importorskip("dask.bag")
    pytest.importorskip("distributed")
    script = tmp_path / "example.py"
    script.write_text(python_block_after("### Dask"))
    done = subprocess.run(
        [sys.executable, str(script)], env=child_env(), capture_output=True, text=True, timeout=540, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["True", "285", "285", "True", "385"]


def test_readme_notebook_example_runs_as_a_notebook_would():
    # Fed on stdin, as a notebook cell or a REPL holds it: everything in __main__.
    code = python_block_after("### Functions from notebooks, `-c` and lambdas")
    done = subprocess.run(
        [sys.executable, "-"], input=code, env=child_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[0, 10, 20, 30]", "True 6 2", "200"]
