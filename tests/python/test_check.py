"""python -m interpool check: which modules load in a worker interpreter."""

import importlib.util
import io
import json
import os
import subprocess
import sys

import pytest

from interpool import _check, _check_cli


def run(*args, cwd=None):
    env = dict(os.environ)
    tests = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (tests, env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "interpool", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


def by_module(proc):
    return {m["module"]: m for m in json.loads(proc.stdout)["modules"]}


def expected_yaml():
    if importlib.util.find_spec("yaml") is None:
        return "not-installed"
    # The LibYAML extension, where the wheel has it, is single-phase init.
    return "fallback" if importlib.util.find_spec("yaml._yaml") is not None else "loads"


def test_numpy_json_yaml():
    proc = run("check", "numpy", "json", "yaml", "--json")
    got = by_module(proc)
    assert got["json"]["status"] == "loads"
    if importlib.util.find_spec("numpy") is None:
        assert got["numpy"]["status"] == "not-installed"
    else:
        assert got["numpy"]["status"] == "refused"
        assert got["numpy"]["blocker"].startswith("numpy.")
        assert got["numpy"]["detail"] == f"{got['numpy']['blocker']} does not support subinterpreters"
    assert got["yaml"]["status"] == expected_yaml()
    if expected_yaml() == "fallback":
        assert got["yaml"]["blocker"] == "yaml._yaml"
    assert proc.returncode == (0 if got["numpy"]["status"] == "loads" else 1)
    assert json.loads(proc.stdout)["ok"] is (proc.returncode == 0)


def test_text_report_has_one_line_per_module():
    proc = run("check", "json", "yaml", "interpool_no_such_module")
    lines = proc.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["json", "yaml", "interpool_no_such_module"]
    assert lines[0] == "json                      loads"
    assert lines[2] == "interpool_no_such_module  not installed"
    if expected_yaml() == "fallback":
        assert lines[1].startswith(
            "yaml                      loads, without its C accelerator: yaml._yaml (the LibYAML"
        )
    assert proc.returncode == 1


def test_exit_status_zero_when_everything_loads():
    proc = run("check", "json", "collections.abc", "interpool")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [line.split()[-1] for line in proc.stdout.splitlines()] == ["loads"] * 3


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="3.12 workers refuse _datetime (see README)")
def test_datetime_falls_back_on_312():
    got = by_module(run("check", "datetime", "--json"))
    assert got["datetime"]["status"] == "fallback" and got["datetime"]["blocker"] == "_datetime"


def test_refused_stdlib_module():
    got = by_module(run("check", "faulthandler", "--json"))
    assert got["faulthandler"]["status"] == "refused"
    assert got["faulthandler"]["blocker"] == "faulthandler"


def test_a_crash_or_hang_is_reported_and_the_rest_still_checked(tmp_path):
    (tmp_path / "aborts_on_import.py").write_text("import os\nos.abort()\n")
    (tmp_path / "raises_on_import.py").write_text("raise ValueError('boom')\n")
    proc = run("check", "json", "aborts_on_import", "raises_on_import", "string", "--jobs", "2", "--json", cwd=tmp_path)
    got = by_module(proc)
    assert got["aborts_on_import"]["status"] == "crashed"
    assert got["aborts_on_import"]["detail"].startswith("SIGABRT")
    assert got["raises_on_import"] == {
        "module": "raises_on_import",
        "status": "error",
        "detail": "ValueError: boom",
        "blocker": None,
    }
    assert got["json"]["status"] == got["string"]["status"] == "loads"
    assert proc.returncode == 1


def test_an_import_that_never_ends_times_out(tmp_path):
    (tmp_path / "never_ends.py").write_text("import threading\nthreading.Event().wait()\n")
    got = by_module(run("check", "never_ends", "--timeout", "2", "--json", cwd=tmp_path))
    assert got["never_ends"]["status"] == "timeout"
    assert got["never_ends"]["detail"] == "did not finish importing within 2 s"


@pytest.mark.parametrize(
    "args, message",
    [
        (["check"], "error: name at least one module to check (for example: check numpy yaml), or use --installed"),
        (["check", "--bogus"], "error: unrecognized arguments: --bogus"),
        (["check", "json", "--installed"], "error: give module names or --installed, not both"),
        (["check", "not-a-module"], "error: not a module name: 'not-a-module'"),
        (["check", "json", "--jobs", "0"], "error: argument --jobs: must be at least 1, got 0"),
        (["check", "json", "--timeout", "x"], "error: argument --timeout: not a number: 'x'"),
        ([], "python -m interpool: error: name a command"),
        (["nope"], "python -m interpool: error: unknown command 'nope' (commands: check)"),
    ],
)
def test_usage_errors(args, message):
    proc = run(*args)
    assert proc.returncode == 2
    assert proc.stderr.rstrip().endswith(message)
    assert "usage: python -m interpool" in proc.stderr
    assert proc.stdout == ""


def test_help():
    proc = run("check", "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: python -m interpool check")


def test_installed_json():
    proc = run("check", "--installed", "--json")
    document = json.loads(proc.stdout)
    got = {m["module"]: m for m in document["modules"]}
    assert got["pytest"]["status"] == "loads" and got["pytest"]["distributions"] == ["pytest"]
    assert got["interpool"]["status"] == "loads"
    assert not any(name.startswith("_") for name in got)
    assert sum(document["summary"].values()) == len(got)
    assert proc.returncode == (0 if document["ok"] else 1)
    assert document["ok"] is all(m["status"] in ("loads", "fallback") for m in got.values())


def test_installed_modules_come_from_top_level_or_record():
    found = _check_cli.installed_modules()
    assert found["pytest"] == ["pytest"]  # RECORD (pytest ships no top_level.txt) or top_level.txt
    assert "interpool" in found


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_installed_shows_a_progress_bar_on_a_terminal_and_a_summary(monkeypatch, capsys):
    monkeypatch.setattr(_check_cli, "installed_modules", lambda: {"json": ["stdlib"], "string": ["stdlib"]})
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert _check_cli.main(["--installed", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "[###############...............] 1/2" in terminal.getvalue()
    assert "[##############################] 2/2" in terminal.getvalue()
    assert out.splitlines()[:2] == ["json    loads", "string  loads"]
    summary = out.splitlines()[3:]
    assert summary[0] == f"2 modules on Python {sys.version.split()[0]}:"
    assert [line.split() for line in summary[1:]] == [["loads", "2"]]


def test_no_progress_bar_when_not_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(_check_cli, "installed_modules", lambda: {"json": ["stdlib"]})
    plain = io.StringIO()
    monkeypatch.setattr(sys, "stderr", plain)
    assert _check_cli.main(["--installed"]) == 0
    assert plain.getvalue() == ""


def test_check_hint_names_the_command():
    assert _check.check_hint("numpy") == (
        "`python -m interpool check numpy` tells in advance which modules load in worker interpreters."
    )
