"""Task functions for the Queue and synchronisation tests.

Workers import these by name, so they live in a module that imports only the
stdlib and interpool (never pytest).  Every blocking call has a timeout: a
bug makes a task fail, not hang the pool.
"""

import queue
import threading
import time

import interpool

WAIT = 30  # seconds: how long a task waits for anything before it gives up


# ------------------------------------------------------------------ queues


def echo(inbox, outbox):
    """Send back everything received until None arrives; return how many."""
    n = 0
    while True:
        item = inbox.get(timeout=WAIT)
        if item is None:
            return n
        outbox.put(item)
        n += 1


def produce(q, tag, n):
    """Put (tag, 0) .. (tag, n-1) on q."""
    for i in range(n):
        q.put((tag, i), timeout=WAIT)
    return n


def consume(q):
    """Get items until None arrives; return them in order received."""
    got = []
    while True:
        item = q.get(timeout=WAIT)
        if item is None:
            return got
        got.append(item)


def get_one(q, timeout=WAIT):
    return q.get(timeout=timeout)


def put_one(q, item):
    q.put(item, timeout=WAIT)
    return True


def get_or_closed(q, timeout=WAIT, *, tids=None):
    """q.get(), or the name of the exception it raised.

    With ``tids`` (a Queue), first put this thread's native id there, for _probe."""
    if tids is not None:
        tids.put(threading.get_native_id())
    try:
        return ("item", q.get(timeout=timeout))
    except interpool.QueueClosed:
        return ("closed", None)
    except queue.Empty:
        return ("empty", None)


def put_until_closed(q, timeout=WAIT, *, tids=None):
    """Put 0, 1, 2, ... until put raises; return (how many were put, exception name)."""
    if tids is not None:
        tids.put(threading.get_native_id())
    n = 0
    try:
        while True:
            q.put(n, timeout=timeout)
            n += 1
    except interpool.QueueClosed:
        return (n, "closed")
    except queue.Full:
        return (n, "full")


def reply_on_inner(outer):
    """Get a Queue from `outer`, and put a greeting on it."""
    inner = outer.get(timeout=WAIT)
    inner.put(("hello from a worker", type(inner).__name__))
    return True


def use_shared_items(q):
    """Get a Shared snapshot and a SharedBuffer from q; sum the snapshot's
    values into the buffer (as int64 at offset 0); return the sum and the
    type names seen."""
    snapshot = q.get(timeout=WAIT)
    buf = q.get(timeout=WAIT)
    total = sum(snapshot["values"])
    memoryview(buf).cast("q")[0] = total
    return total, type(snapshot).__name__, type(buf).__name__


def compare_handles(q):
    """Get the same handle twice from q: whether the two wrappers compare equal."""
    a = q.get(timeout=WAIT)
    b = q.get(timeout=WAIT)
    return a == b, hash(a) == hash(b), a is b


# ------------------------------------------------------------ lock counters


def _spin(n):
    """A little pure-Python work, to widen race windows."""
    x = 0
    for i in range(n):
        x += i
    return x


def locked_increments(lock, buf, n, window=50):
    """n read-modify-write increments of int64 counter 0 of buf, each under lock.

    The read and the write are apart, so without mutual exclusion updates get lost.
    """
    counter = memoryview(buf).cast("q")
    for _ in range(n):
        with lock:
            value = counter[0]
            _spin(window)
            counter[0] = value + 1
    return n


def rlock_increments(rlock, buf, n, window=50):
    """Like locked_increments, taking the RLock twice (nested) each time."""
    counter = memoryview(buf).cast("q")
    for _ in range(n):
        with rlock:
            with rlock:
                value = counter[0]
                _spin(window)
                counter[0] = value + 1
    return n


def semaphore_holders(sem, lock, buf, rounds, hold=0.002):
    """Hold sem `rounds` times for `hold` seconds each, tracking in buf how many
    hold it now (int64 0) and the most that ever did at once (int64 1),
    both updated under lock."""
    counters = memoryview(buf).cast("q")
    for _ in range(rounds):
        with sem:
            with lock:
                counters[0] += 1
                counters[1] = max(counters[1], counters[0])
            time.sleep(hold)
            with lock:
                counters[0] -= 1
    return rounds


def try_release_rlock(rlock):
    """Release an RLock this thread does not own: the error message."""
    try:
        rlock.release()
    except RuntimeError as error:
        return str(error)
    return "released"


def acquire_with_timeout(lock, timeout):
    """lock.acquire(timeout=...) in a worker: (result, seconds taken)."""
    t0 = time.monotonic()
    ok = lock.acquire(timeout=timeout)
    return ok, time.monotonic() - t0


def hold_lock_until(lock, started, release):
    """Acquire lock, set `started`, hold until `release` is set."""
    with lock:
        started.set()
        if not release.wait(WAIT):
            return False
    return True


# ------------------------------------------------------------------- events


def wait_then_answer(ev, answer, tids=None):
    """Wait for ev, then set answer; return what ev.wait returned.

    With ``tids`` (a Queue), first put this thread's native id there, for _probe."""
    if tids is not None:
        tids.put(threading.get_native_id())
    got = ev.wait(WAIT)
    answer.set()
    return got


def event_wait_timed(ev, timeout):
    t0 = time.monotonic()
    got = ev.wait(timeout)
    return got, time.monotonic() - t0


# ----------------------------------------------------------------- barriers


def put_marker(q, marker):
    """A barrier action: put marker on q."""
    q.put(marker)


def failing_action():
    raise ValueError("the action failed")


def barrier_rounds(barrier, rounds, log):
    """Pass the barrier `rounds` times, logging (round, arrival index) each time."""
    for r in range(rounds):
        index = barrier.wait(timeout=WAIT)
        log.put((r, index))
    return rounds


def barrier_wait_outcome(barrier, timeout=WAIT):
    """barrier.wait(): ("index", i) or ("broken", None)."""
    try:
        return ("index", barrier.wait(timeout=timeout))
    except threading.BrokenBarrierError:
        return ("broken", None)
    except Exception as error:  # the action's own exception, for the last party
        return (type(error).__name__, str(error))


def identity(x):
    return x


def native_id():
    return threading.get_native_id()


def type_names(*objs):
    return [type(o).__name__ for o in objs]


# ------------------------------------------------- Ctrl-C (test helper, not a task)

_CHILD = r"""
import sys, threading, time
import interpool
{setup}
print("READY", flush=True)
try:
    {block}
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
except BaseException as error:
    print("RAISED", type(error).__name__, error, flush=True)
else:
    print("RETURNED", flush=True)
"""


def interrupt_blocked(setup, block, env, wait_until_asleep, limit=60.0):
    """Run a child Python that executes `setup`, then blocks in `block` on its
    main thread; send it SIGINT once that thread sleeps in a futex (seen with
    _probe's ``wait_until_asleep``).  Returns what the child printed after
    the signal (or why it could not)."""
    import select
    import signal
    import subprocess
    import sys

    code = _CHILD.format(setup=setup, block=block)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], limit)
        line = proc.stdout.readline() if ready else ""
        if line.strip() != "READY":
            proc.kill()
            return "child did not start: " + line + proc.stderr.read()
        # The child's main thread has the child's pid as its native id.
        wait_until_asleep(proc.pid, pid=proc.pid, futex=True, what=f"the child blocked in {block}")
        if proc.poll() is not None:
            return "child exited early: " + proc.stdout.read() + proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        ready, _, _ = select.select([proc.stdout], [], [], limit)
        if not ready:
            return "no reaction to SIGINT"
        return proc.stdout.readline().strip()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=limit)
        proc.stdout.close()
        proc.stderr.close()
