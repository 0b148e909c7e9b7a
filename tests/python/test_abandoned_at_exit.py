"""A worker abandoned while it waits on an interpool Event does not crash the exit.

Its wait wakes every 100 ms (to answer signals) and asks for its GIL again.
If that happens while the runtime finalizes, CPython 3.12 and 3.13 end the
thread with pthread_exit(); the unwinding must reach the engine, which parks
the thread, and never abort the process.  The child keeps its finalization
busy for a while (a module global whose __del__ sleeps), so that the
abandoned worker's wait surely wakes during it.
"""

import subprocess
import sys
import textwrap

from conftest import child_env

SCRIPT = textwrap.dedent(
    """
    import time
    import interpool

    def wait_swallowing_interrupts(started, release):
        while True:
            try:
                started.set()
                if release.wait():
                    return "released"
            except BaseException:  # TaskInterrupted too: the worker gets abandoned
                pass

    class SlowToFinalize:
        def __del__(self):
            time.sleep(0.5)  # runs while the runtime finalizes (module globals are cleared then)

    def abandon_one():
        # A worker left behind in release.wait(); False if the interrupt landed
        # where the task could not swallow it (it then simply stopped).
        pool = interpool.Pool(1, interrupt_grace=0.05)
        started = interpool.Event()
        release = interpool.Event()
        future = pool.submit(wait_swallowing_interrupts, started, release)
        assert started.wait(60)
        pool.shutdown(wait=True, cancel_futures=True, interrupt=True)
        assert future.cancelled()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            if pool.stats().workers_replaced == 1:  # counted just after the pool let the thread go
                return True
            time.sleep(0.001)
        return False

    if __name__ == "__main__":
        assert any(abandon_one() for _ in range(20)), "no worker was ever abandoned"
        keep = SlowToFinalize()
        print("left the worker behind")
    """
)


def test_exit_with_a_worker_abandoned_in_event_wait(tmp_path):
    script = tmp_path / "abandon.py"
    script.write_text(SCRIPT)
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, str(script)], env=child_env(), capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "left the worker behind"
