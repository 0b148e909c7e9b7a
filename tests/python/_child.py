"""Run a test's script in a fresh Python: a crash or a hang there fails the test, not the test run.

The child imports interpool and this directory's task modules as the test
process does (conftest.child_env).  Imported by the test process only.
"""

import subprocess
import sys
import textwrap

import pytest

from conftest import child_env


def run(args, *, cwd=None, stdin=None, limit=60):
    """Run ``python *args`` (``["-c", code]``, ``[script, ...]``, ``["-m", name]``); return the CompletedProcess (text).

    ``stdin`` is the child's input.  A child still running after ``limit``
    seconds fails the test with its output so far.
    """
    try:
        return subprocess.run(
            [sys.executable, *args],
            cwd=cwd,
            env=child_env(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=limit,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the program hung; output so far:\n{exc.stdout}\n{exc.stderr}", pytrace=False)


def run_python(tmp_path, body, *args, name="child.py", flags=(), limit=60):
    """Run the dedented ``body`` as ``tmp_path/name`` with ``args``, in ``tmp_path``; return the CompletedProcess.

    ``flags`` go to the interpreter before the script (``-W ...``).
    """
    script = tmp_path / name
    script.write_text(textwrap.dedent(body))
    return run([*flags, str(script), *args], cwd=tmp_path, limit=limit)


def run_script(tmp_path, body, *args, **options):
    """As ``run_python``, and the child must exit 0 without a fatal error; return its stdout lines."""
    proc = run_python(tmp_path, body, *args, **options)
    assert "Fatal Python error" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout.splitlines()
