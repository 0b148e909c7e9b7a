"""_probe, the tests' way to see a thread asleep: it must see sleep where there is, and fail where there is none."""

import subprocess
import sys
import threading
import time

import pytest

import _probe
import _tasks

pytestmark = pytest.mark.timeout(120)


def test_a_thread_blocked_on_a_lock_is_seen_asleep_in_a_futex():
    release = threading.Event()
    t = threading.Thread(target=release.wait, args=(60,))
    t.start()
    try:
        state = _probe.wait_until_asleep(t.native_id, futex=True)
        assert state.asleep and state.in_futex, state
        assert state.tid == t.native_id
    finally:
        release.set()
        t.join(60)


def test_a_busy_thread_is_never_seen_asleep():
    # A child process spinning in Python: its own GIL, nothing to wait for.
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with pytest.raises(pytest.fail.Exception, match="spinning child: not reached within 1 s"):
            _probe.wait_until_asleep(proc.pid, pid=proc.pid, futex=False, what="spinning child", deadline=1)
    finally:
        proc.kill()
        proc.wait(60)


def test_a_thread_that_has_ended_fails_the_wait():
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join(60)
    with pytest.raises(pytest.fail.Exception, match="has ended"):
        _probe.wait_until_asleep(t.native_id, deadline=5)


def test_a_process_that_has_exited_fails_the_wait_at_once():
    # Not reaped yet: its main thread lingers as a zombie, which sleeps in nothing.
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        _probe.wait_for(lambda: _probe.thread_state(proc.pid, proc.pid).state == "Z", "the child exited")
        with pytest.raises(pytest.fail.Exception, match="has ended"):
            _probe.wait_until_asleep(proc.pid, pid=proc.pid, futex=False, deadline=3600)
        with pytest.raises(pytest.fail.Exception, match="has ended"):
            _probe.wait_until_in_sleep(proc.pid, pid=proc.pid, deadline=3600)
    finally:
        proc.wait(60)


def test_a_thread_in_time_sleep_is_seen_in_sleep_and_a_lock_wait_is_not():
    release = threading.Event()
    sleeper = threading.Thread(target=time.sleep, args=(3600,), daemon=True)
    waiter = threading.Thread(target=release.wait, args=(60,))
    sleeper.start()
    waiter.start()
    try:
        state = _probe.wait_until_in_sleep(sleeper.native_id)
        assert state.in_sleep and not state.in_futex, state
        _probe.wait_until_asleep(waiter.native_id, futex=True)
        with pytest.raises(pytest.fail.Exception, match="not reached within 1 s"):
            _probe.wait_until_in_sleep(waiter.native_id, what="the lock waiter in time.sleep", deadline=1)
    finally:
        release.set()
        waiter.join(60)


def test_a_worker_thread_waiting_for_work_is_asleep_and_the_engine_goes_quiet(pools):
    pool = pools(1)
    tid = pool.submit(_tasks.native_thread_id).result(timeout=60)
    assert tid != threading.get_native_id()
    assert tid in _probe.threads()
    assert _probe.wait_until_asleep(tid, futex=True).in_futex
    states = _probe.wait_until_quiet()
    assert all(st.asleep for st in states), states
