"""Ctrl-C and process exit with work that will not stop by itself.

Each scenario runs in a child process (a crash or hang must fail the test,
not pytest).  The child says when its task runs; the test then sends
SIGINT, or lets the child exit, and checks how the child ended.  How fast
is measured by ``python -m interpool.bench`` (Ctrl-C to prompt); here only
a hang fails, after a generous limit.
"""

import signal
import subprocess
import sys
import textwrap

import pytest

import _probe
from conftest import child_env

HANG = 120  # seconds: only a hung child reaches this

PRELUDE = """
import signal, sys, time
import interpool
import _probe
import _stop_tasks as tasks
"""


def start(body):
    code = PRELUDE + "if __name__ == '__main__':\n" + textwrap.indent(textwrap.dedent(body), "    ")
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def expect_line(child, line):
    got = child.stdout.readline().strip()
    if got != line:
        child.kill()
        out, err = child.communicate()
        pytest.fail(f"expected {line!r} from the child, got {got!r}\n{out}\n{err}")


def finish(child):
    try:
        out, err = child.communicate(timeout=HANG)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        pytest.fail(f"the child hung\n{out}\n{err}")
    return child.returncode, out, err


def test_ctrl_c_in_a_with_block_interrupts_running_and_cancels_queued():
    child = start(
        """
        started = interpool.Event()
        pool = interpool.Pool(2)
        try:
            with pool:
                results = pool.map(tasks.spin_item, [0] * 8, [started] * 8, chunksize=1)
                started.wait()
                print("running", flush=True)
                list(results)
        except KeyboardInterrupt:
            stats = pool.stats()
            print("stopped", stats.interrupted >= 1, stats.cancelled >= 1, stats.running, flush=True)
            sys.exit(7)
        """
    )
    expect_line(child, "running")
    child.send_signal(signal.SIGINT)
    rc, out, err = finish(child)
    assert rc == 7, err
    assert out.strip() == "stopped True True 0"


def test_a_second_ctrl_c_abandons_a_shutdown_wait():
    child = start(
        """
        # The test signals until this process ends.  Ctrl-C raises
        # KeyboardInterrupt twice at most (all that a shutdown wait needs);
        # later ones are ignored, so that one landing while the process
        # leaves cannot end it with the signal's status instead.
        hits = 0
        def on_sigint(signum, frame):
            global hits
            hits += 1
            if hits <= 2:
                raise KeyboardInterrupt
        signal.signal(signal.SIGINT, on_sigint)
        started = interpool.Event()
        pool = interpool.Pool(1, interrupt_grace=3600)  # the stuck task is not given up on by itself
        future = pool.submit(tasks.sleep_in_c, started)
        started.wait()
        # An interrupt that lands before time.sleep begins stops the task
        # (it is still in Python code), and shutdown would then return.
        _probe.wait_until_in_sleep(pool.stats().workers[0].native_id, what="the task asleep in time.sleep")
        try:
            print("waiting", flush=True)
            pool.shutdown(wait=True, interrupt=True)
        except KeyboardInterrupt:
            # Past this point, a SIGINT landing after finalization restored
            # the default handler would end the process with status -2.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            print("abandoned the wait", flush=True)
            sys.exit(5)
        """
    )
    expect_line(child, "waiting")
    # Only once the child sleeps in the shutdown wait: a signal that landed
    # before shutdown() began would leave a pool that was never asked to
    # stop, whose exit then waits (as the stdlib's does) for its task.
    try:
        _probe.wait_until_asleep(
            child.pid, pid=child.pid, futex=True, what="the child's main thread in the shutdown wait"
        )
    except pytest.fail.Exception as failed:
        child.kill()
        out, err = child.communicate()
        pytest.fail(f"{failed}\nthe child's status: {child.returncode}\n{out}\n{err}")
    while child.poll() is None:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
    rc, out, err = finish(child)
    assert rc == 5, err
    assert "abandoned the wait" in out


# A task that swallows every interrupt holds its worker; the main thread then leaves.
SWALLOWING = """
    started, release = interpool.Event(), interpool.Event()
    pool = interpool.Pool(1)
    pool.submit(tasks.swallow_interrupts, started, release)
    started.wait()
    pool.shutdown(wait=False, cancel_futures=True)
"""


@pytest.mark.parametrize(
    "scenario, status",
    [
        ("swallowing", 0),
        ("sleeping", 0),
        ("sys.exit(3)", 3),
        ("hung initializer", 0),
    ],
)
def test_exit_is_not_held_by_work_that_does_not_stop(scenario, status):
    body = {
        "swallowing": SWALLOWING,
        "sleeping": """
            started = interpool.Event()
            pool = interpool.Pool(1)
            pool.submit(tasks.sleep_in_c, started)
            started.wait()
            pool.shutdown(wait=False, cancel_futures=True)
        """,
        "sys.exit(3)": SWALLOWING,
        "hung initializer": """
            started = interpool.Event()
            pool = interpool.Pool(1, initializer=tasks.hang_initializer, initargs=(started,))
            started.wait()
            pool.shutdown(wait=False, cancel_futures=True)
        """,
    }[scenario]
    body = textwrap.dedent(body) + 'print("leaving", flush=True)\n'
    if status:
        body += f"sys.exit({status})\n"
    rc, out, err = finish(start(body))
    assert rc == status, err
    assert out.strip() == "leaving"
    assert "Fatal Python error" not in err and "Traceback" not in err
