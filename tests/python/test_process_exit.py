"""Whole-process behaviour, in subprocesses: Ctrl-C while waiting, and exiting without shutdown."""

import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import child_env

# The child prints "ready", then blocks in .result() or list(map(...)); the
# test sends SIGINT.  Both sides read CLOCK_MONOTONIC (system-wide on Linux),
# so the child reports when it caught KeyboardInterrupt and the test compares
# with when it sent the signal.
CTRL_C_SCRIPT = textwrap.dedent(
    """
    import sys
    import time

    import interpool
    import _tasks

    mode = sys.argv[1]
    try:
        with interpool.{cls}(2) as pool:
            try:
                if mode == "result":
                    futures = [pool.submit(_tasks.sleep_steps, 0.2, 0.01) for _ in range(200)]
                    print("ready", flush=True)
                    futures[-1].result()
                elif mode == "map":
                    print("ready", flush=True)
                    list(pool.map(_tasks.sleep_steps, [0.2] * 200, chunksize={chunksize}))
                elif mode == "wait":
                    import concurrent.futures as cf
                    futures = [pool.submit(_tasks.sleep_steps, 0.2, 0.01) for _ in range(200)]
                    print("ready", flush=True)
                    cf.wait(futures)
                print("NOT INTERRUPTED", flush=True)
            except KeyboardInterrupt:
                print("caught", time.monotonic(), flush=True)
                raise
    except KeyboardInterrupt:
        print("exited-with", time.monotonic(), flush=True)
    """
)


def start_child(script_text, args, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(script_text)
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_ctrl_c(tmp_path, mode, cls="Pool", chunksize=1):
    proc = start_child(CTRL_C_SCRIPT.format(cls=cls, chunksize=chunksize), [mode], tmp_path)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ready", line + proc.stderr.read()
        time.sleep(0.3)  # let the child block in the wait
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
        exited = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    fields = dict(line.split(None, 1) for line in out.splitlines() if " " in line)
    return proc.returncode, out, err, sent, exited, fields


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cls", ["Pool", "InterpreterPoolExecutor"])
def test_ctrl_c_interrupts_result_promptly_and_exits_cleanly(tmp_path, cls):
    rc, out, err, sent, exited, fields = run_ctrl_c(tmp_path, "result", cls)
    assert "NOT INTERRUPTED" not in out
    assert "caught" in fields, out + err
    assert float(fields["caught"]) - sent < 0.5
    assert rc == 0, err
    assert err == ""
    assert "exited-with" in fields
    assert exited - sent < 5.0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("chunksize", [1, 5])
def test_ctrl_c_interrupts_map_promptly_and_exits_cleanly(tmp_path, chunksize):
    rc, out, err, sent, exited, fields = run_ctrl_c(tmp_path, "map", chunksize=chunksize)
    assert "caught" in fields, out + err
    assert float(fields["caught"]) - sent < 0.5
    assert rc == 0, err
    assert err == ""
    assert exited - sent < 5.0


@pytest.mark.timeout(60)
def test_ctrl_c_interrupts_concurrent_futures_wait(tmp_path):
    rc, out, err, sent, exited, fields = run_ctrl_c(tmp_path, "wait")
    assert "caught" in fields, out + err
    assert float(fields["caught"]) - sent < 0.5
    assert rc == 0, err
    assert err == ""
    assert exited - sent < 5.0


# ------------------------------------------------------ exit without shutdown

EXIT_SCRIPT = textwrap.dedent(
    """
    import gc
    import sys

    import interpool
    import _tasks

    mode = sys.argv[1]
    pool = interpool.Pool(2)
    futures = [pool.submit(_tasks.sleep_then_return, 0.05, i) for i in range(20)]
    if mode == "wait-one":
        print("first", futures[0].result(), flush=True)
    elif mode == "del":
        del pool
        gc.collect()
        print("results", [f.result(timeout=30) for f in futures], flush=True)
    elif mode == "del-unwaited":
        del pool, futures
        gc.collect()
    elif mode == "map-abandoned":
        it = pool.map(_tasks.neg, range(10_000))
        print("next", next(it), flush=True)
    elif mode == "pickled-result":
        # Nothing has been pickled in this interpreter yet: the worker pickles first.
        print("point", pool.submit(_tasks.make_point, 1, 2).result(timeout=30), flush=True)
    print("end of script", flush=True)
    """
)


def run_exit_script(tmp_path, mode):
    script = tmp_path / "exit_child.py"
    script.write_text(EXIT_SCRIPT)
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-W", "default", str(script), mode],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    return proc, time.monotonic() - start


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["submit-only", "wait-one", "del", "del-unwaited", "map-abandoned"])
def test_exit_without_shutdown_is_clean(tmp_path, mode):
    proc, elapsed = run_exit_script(tmp_path, mode)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "end of script" in proc.stdout
    assert elapsed < 10.0


@pytest.mark.timeout(60)
def test_deleted_pool_still_completes_submitted_work(tmp_path):
    proc, _ = run_exit_script(tmp_path, "del")
    assert proc.returncode == 0, proc.stderr
    assert f"results {list(range(20))}" in proc.stdout


@pytest.mark.timeout(60)
def test_exit_is_clean_when_a_worker_pickles_before_the_caller(tmp_path):
    proc, _ = run_exit_script(tmp_path, "pickled-result")
    assert "point Point(x=1, y=2)" in proc.stdout
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""

