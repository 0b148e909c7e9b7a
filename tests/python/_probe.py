"""See whether a thread is asleep, from /proc: the tests' way to order events without sleeping.

The Python port of the C++ tests' futex probe (tests/cpp/test_support.hpp).
A test that must know "the worker is now blocked in get()" or "the engine is
idle" asks the kernel instead of sleeping for a while and hoping:

    tid = pool.submit(_tasks.native_thread_id).result()   # a worker's thread id
    future = pool.submit(tasks.get_or_closed, q)
    _probe.wait_until_asleep(tid, futex=True, what="the worker blocked in q.get()")

How tests learn native thread ids: a task returns ``threading.get_native_id()``
(``_tasks.native_thread_id``, or the tid a task records itself); a thread of
the test process calls it directly; a child process's main thread has the
child's pid as its tid (``wait_until_asleep(proc.pid, pid=proc.pid)``).

Waiting here polls /proc with a short backoff (test code only; the engine never
polls).  A condition must hold in ``settle`` consecutive samples, so that a
thread passing through a futex (a GIL or mutex hand-off) on its way elsewhere
is not taken for a thread that waits.  Every wait has a generous deadline and
then FAILS the test with what the thread was last seen doing: never a silent
pass.  This module is imported by the test process only, never by workers.
"""

import os
import platform
import threading
import time
from typing import NamedTuple

import pytest

# futex(2) (and futex_time64 / futex_waitv, which glibc and CPython may use) by
# architecture: /proc/<tid>/syscall reports the number of the call a thread
# blocks in.
_FUTEX_SYSCALLS = {
    "x86_64": {202, 449},
    "aarch64": {98, 449},
    "riscv64": {98, 449},
    "ppc64le": {221, 449},
    "s390x": {238, 449},
    "i686": {240, 422, 449},
    "armv7l": {240, 422, 449},
}.get(platform.machine(), set())

# nanosleep(2) and clock_nanosleep(2): where time.sleep blocks.
_SLEEP_SYSCALLS = {
    "x86_64": {35, 230},
    "aarch64": {101, 115},
    "riscv64": {101, 115},
}.get(platform.machine(), set())

DEADLINE = 60.0  # seconds: a loaded machine is slow, never this slow
SETTLE = 3  # consecutive samples that must agree


class ThreadState(NamedTuple):
    tid: int
    state: str  # /proc stat state: R running, S sleeping, D uninterruptible, ...
    syscall: int | None  # the system call it blocks in; None when running or unknown
    wchan: str  # the kernel function it waits in ("0" or "" when unknown)

    @property
    def asleep(self) -> bool:
        """Blocked in the kernel (sleeping), not running or runnable."""
        return self.state in ("S", "D")

    @property
    def in_futex(self) -> bool:
        """Asleep in a futex wait: how the engine, CPython's locks and glibc wait."""
        if not self.asleep:
            return False
        if self.syscall is not None and self.syscall in _FUTEX_SYSCALLS:
            return True
        if self.syscall is None and self.wchan in ("", "0") or not _FUTEX_SYSCALLS and self.wchan in ("", "0"):
            return True  # the kernel does not say where (no access, or an unknown architecture): asleep will do
        return "futex" in self.wchan

    @property
    def in_sleep(self) -> bool:
        """Asleep in time.sleep (nanosleep or clock_nanosleep): in C code, where no interrupt lands."""
        if not self.asleep:
            return False
        return (self.syscall is not None and self.syscall in _SLEEP_SYSCALLS) or "nanosleep" in self.wchan

    def describe(self) -> str:
        call = "none" if self.syscall is None else str(self.syscall)
        return f"thread {self.tid}: state {self.state}, syscall {call}, wchan {self.wchan or '?'}"


def _task_dir(tid: int, pid: int | None) -> str:
    return f"/proc/{'self' if pid is None else pid}/task/{tid}"


def _require_proc() -> None:
    if not os.path.isdir("/proc/self/task"):
        pytest.skip("this test sees threads asleep through /proc/<pid>/task, which this system lacks")


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None  # the thread is gone
    except PermissionError:
        return ""


def thread_state(tid: int, pid: int | None = None) -> ThreadState | None:
    """What thread ``tid`` (of this process, or of ``pid``) is doing now; None if it is gone."""
    _require_proc()
    base = _task_dir(tid, pid)
    stat = _read(base + "/stat")
    if not stat:
        return None
    # "tid (comm) S ...": comm may hold spaces and parentheses; the state follows the last ')'.
    state = stat[stat.rfind(")") + 2 :].split(" ", 1)[0]
    syscall = None
    text = _read(base + "/syscall")
    if text:
        first = text.split(" ", 1)[0].strip()
        if first.lstrip("-").isdigit() and int(first) >= 0:
            syscall = int(first)
    wchan = (_read(base + "/wchan") or "").strip()
    return ThreadState(tid, state, syscall, wchan)


def threads(pid: int | None = None) -> list[int]:
    """The native ids of every thread of this process (or of ``pid``)."""
    _require_proc()
    return sorted(int(name) for name in os.listdir(f"/proc/{'self' if pid is None else pid}/task"))


def native_id() -> int:
    """The calling thread's native id (what a task returns to name its worker's thread)."""
    return threading.get_native_id()


def _poll(check, what: str, deadline: float, settle: int):
    """Call ``check()`` (-> (ok, detail)) with a backoff until ok ``settle`` times in a row."""
    _require_proc()
    end = time.monotonic() + deadline
    pause = 0.0005
    streak = 0
    detail = "never sampled"
    while True:
        ok, detail = check()
        streak = streak + 1 if ok else 0
        if streak >= settle:
            return detail
        if time.monotonic() > end:
            pytest.fail(f"{what}: not reached within {deadline:.0f} s; last seen: {detail}", pytrace=False)
        time.sleep(pause)
        pause = min(pause * 2, 0.01)


def _live_state(tid: int, pid: int | None, label: str) -> ThreadState:
    """What thread ``tid`` is doing now; fail the wait ``label`` if it has ended (gone or a zombie)."""
    st = thread_state(tid, pid)
    if st is None or st.state in ("Z", "X"):
        pytest.fail(f"{label}: thread {tid} has ended ({st.describe() if st else 'gone'})", pytrace=False)
    return st


def wait_until_asleep(
    tid: int,
    *,
    futex: bool = True,
    pid: int | None = None,
    what: str | None = None,
    deadline: float = DEADLINE,
    settle: int = SETTLE,
) -> ThreadState:
    """Wait until thread ``tid`` sleeps (in a futex wait if ``futex``); fail the test after ``deadline``.

    Returns the state seen.  The thread must exist: a thread that has ended
    fails the test too, since it can no longer be the one that waits.
    """
    label = what or f"thread {tid} asleep{' in a futex' if futex else ''}"

    def check():
        st = _live_state(tid, pid, label)
        return (st.in_futex if futex else st.asleep), st

    return _poll(check, label, deadline, settle)


def wait_until_in_sleep(
    tid: int, *, pid: int | None = None, what: str | None = None, deadline: float = DEADLINE
) -> ThreadState:
    """Wait until thread ``tid`` sleeps in time.sleep (see ``ThreadState.in_sleep``); fail the test after ``deadline``."""
    label = what or f"thread {tid} asleep in time.sleep"

    def check():
        st = _live_state(tid, pid, label)
        return st.in_sleep, st

    return _poll(check, label, deadline, 1)


def wait_until_quiet(
    *,
    exclude=(),
    pid: int | None = None,
    what: str = "every other thread of this process asleep",
    deadline: float = DEADLINE,
    settle: int = SETTLE,
) -> list[ThreadState]:
    """Wait until every thread but the caller (and ``exclude``) sleeps: the engine is idle.

    Use it where a test needs "the workers have finished everything they were
    given and delivered it" without a task to signal that: idle workers and
    the delivery thread sleep in futex waits, event loops in epoll.
    """
    skip = set(exclude)
    if pid is None:
        skip.add(threading.get_native_id())

    def check():
        states = [thread_state(tid, pid) for tid in threads(pid) if tid not in skip]
        awake = [st for st in states if st is not None and not st.asleep]
        return not awake, (awake or states)

    states = _poll(check, what, deadline, settle)
    return states


def wait_for(predicate, what: str, deadline: float = DEADLINE):
    """Wait until ``predicate()`` is true (engine state such as a queue's size); fail the test after ``deadline``."""

    def check():
        return bool(predicate()), "false"

    _poll(check, what, deadline, 1)
