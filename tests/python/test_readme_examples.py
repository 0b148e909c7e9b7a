"""The README's examples run as written (each in a fresh interpreter)."""

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


def test_readme_notebook_example_runs_as_a_notebook_would():
    # Fed on stdin, as a notebook cell or a REPL holds it: everything in __main__.
    code = python_block_after("### Functions from notebooks, `-c` and lambdas")
    done = subprocess.run(
        [sys.executable, "-"], input=code, env=child_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[0, 10, 20, 30]", "True 6 2", "200"]
