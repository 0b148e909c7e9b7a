"""Whole-process behaviour, in subprocesses: Ctrl-C while waiting, and exiting without shutdown."""

import signal
import subprocess
import sys
import textwrap
import time

import pytest

import _probe
from conftest import child_env

# The child prints "ready", then blocks in .result(), list(map(...)) or
# cf.wait(); the test waits until the child's main thread sleeps in a futex
# (_probe), then sends SIGINT.  Every task waits at a gate that only the
# child's KeyboardInterrupt handler opens, so no task can end before the
# signal: what ran and what was cancelled does not depend on timing.  After
# the pool's with-block the child reports how many tasks ever started.
CTRL_C_SCRIPT = textwrap.dedent(
    """
    import sys
    import threading
    import time

    import interpool
    import _tasks

    def open_gate_once_cancelled():
        end = time.monotonic() + 60
        while not all(f.done() or f.running() for f in futures) and time.monotonic() < end:
            time.sleep(0.001)
        gate.set()

    mode = sys.argv[1]
    gate, lock = interpool.Event(), interpool.Lock()
    started = interpool.SharedBuffer(8)
    args = (gate, started, lock)
    futures = []
    try:
        with interpool.{cls}(2) as pool:
            try:
                if mode == "result":
                    futures = [pool.submit(_tasks.count_and_wait_for_gate, i, *args) for i in range(200)]
                    print("ready", flush=True)
                    futures[-1].result()
                elif mode == "map":
                    n = 200
                    results = pool.map(_tasks.count_and_wait_for_gate, range(n), [gate] * n, [started] * n,
                                       [lock] * n, chunksize={chunksize})
                    print("ready", flush=True)  # everything is submitted: the wait comes next
                    list(results)
                elif mode == "wait":
                    import concurrent.futures as cf
                    futures = [pool.submit(_tasks.count_and_wait_for_gate, i, *args) for i in range(200)]
                    print("ready", flush=True)
                    cf.wait(futures)
                print("NOT INTERRUPTED", flush=True)
            except KeyboardInterrupt:
                print("caught", flush=True)
                if mode == "map":
                    gate.set()  # map cancelled what was left as the interrupt left it
                else:
                    # The with-block cancels the queued tasks on its way out;
                    # only then may the running ones end.
                    threading.Thread(target=open_gate_once_cancelled).start()
                raise
    except KeyboardInterrupt:
        print("exited-with", "KeyboardInterrupt", flush=True)
    print("started", memoryview(started).cast("q")[0], flush=True)
    print("cancelled", sum(f.cancelled() for f in futures), flush=True)
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
        # The child's main thread (tid == pid) blocks in the wait: then Ctrl-C.
        _probe.wait_until_asleep(proc.pid, pid=proc.pid, futex=True, what=f"the child blocked in {mode}")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    fields = {k: v.strip() for k, v in (ln.partition(" ")[::2] for ln in out.splitlines())}
    return proc.returncode, out, err, fields


def check_interrupted(rc, out, err, fields, most_started):
    assert "NOT INTERRUPTED" not in out
    assert "caught" in fields, out + err
    assert rc == 0, err
    assert err == ""
    assert fields.get("exited-with") == "KeyboardInterrupt", out
    # Leaving the with-block on Ctrl-C cancelled the queued work: only what
    # the workers had taken before the signal ever started.
    assert int(fields["started"]) <= most_started, out


@pytest.mark.timeout(400)
@pytest.mark.parametrize("cls", ["Pool", "InterpreterPoolExecutor"])
def test_ctrl_c_interrupts_result_and_exits_cleanly(tmp_path, cls):
    rc, out, err, fields = run_ctrl_c(tmp_path, "result", cls)
    check_interrupted(rc, out, err, fields, most_started=2)
    assert int(fields["cancelled"]) >= 198, out


@pytest.mark.timeout(400)
@pytest.mark.parametrize("chunksize", [1, 5])
def test_ctrl_c_interrupts_map_and_exits_cleanly(tmp_path, chunksize):
    rc, out, err, fields = run_ctrl_c(tmp_path, "map", chunksize=chunksize)
    # A chunk that started runs to its end once the gate opens.
    check_interrupted(rc, out, err, fields, most_started=2 * chunksize)


@pytest.mark.timeout(400)
def test_ctrl_c_interrupts_concurrent_futures_wait(tmp_path):
    rc, out, err, fields = run_ctrl_c(tmp_path, "wait")
    check_interrupted(rc, out, err, fields, most_started=2)
    assert int(fields["cancelled"]) >= 198, out


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
    proc, _ = run_exit_script(tmp_path, mode)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "end of script" in proc.stdout


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
