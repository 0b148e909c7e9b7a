"""fork() in a process with live pools: the child survives, runs Python and starts its own pools.

CPython's after-fork cleanup crashes the child (3.13-3.15) or deadlocks it
(3.12) while worker interpreters exist (gh-101437); interpool hides them from
it (src/python/fork_guard.cpp).  Every case runs in a subprocess, so that a
crashed or hung child fails the test rather than the test run.
"""

import pytest

import _child

# Limits for hung children only: a correct run takes a second or two.
CHILD_LIMIT = 240


def run_script(tmp_path, body, *args):
    # Forking a process with threads warns on 3.12+; that is not what is tested.
    return _child.run_script(tmp_path, body, *args, flags=("-W", "ignore::DeprecationWarning"), limit=CHILD_LIMIT)


@pytest.mark.timeout(CHILD_LIMIT + 30)
def test_forked_child_runs_python_and_new_pools_while_parent_pool_runs(tmp_path):
    lines = run_script(
        tmp_path,
        """
        import asyncio, json, os, sys
        import interpool
        import _hazard_tasks as t

        assert asyncio.run(interpool.to_interpreter(t.square, 3)) == 9   # the default pool lives on
        pool = interpool.Pool(2)
        release = interpool.Event()
        started = interpool.Event()
        running = pool.submit(t.announce_then_wait, started, release)
        assert started.wait(60)
        pid = os.fork()
        if pid == 0:
            print("child python", json.dumps({"ok": [1, 2]}), flush=True)
            try:
                pool.submit(t.square, 2)
            except interpool.BrokenPool as exc:
                print("child submit BrokenPool:", exc, flush=True)
            try:
                running.result(timeout=60)
            except interpool.BrokenPool:
                print("child pending future BrokenPool", flush=True)
            print("child repr", repr(pool), flush=True)
            with interpool.Pool(2) as fresh:
                print("child new pool", list(fresh.map(t.square, range(5))), flush=True)
            print("child to_interpreter", asyncio.run(interpool.to_interpreter(t.square, 4)), flush=True)
            pool.shutdown()
            sys.exit(7)   # a full interpreter exit, not os._exit
        _, status = os.waitpid(pid, 0)
        print("child exit", os.waitstatus_to_exitcode(status))
        release.set()
        print("parent pending", running.result(timeout=60) > 0)
        print("parent pool", list(pool.map(t.square, range(3))))
        pool.shutdown()
        """,
    )
    assert "child python " + '{"ok": [1, 2]}' in lines
    [refused] = [line for line in lines if line.startswith("child submit BrokenPool:")]
    assert "before it forked" in refused and "Start a new pool in the child" in refused
    assert "child pending future BrokenPool" in lines
    assert "child repr <interpool.Pool broken, workers=2>" in lines
    assert "child new pool [0, 1, 4, 9, 16]" in lines
    assert "child to_interpreter 16" in lines
    assert "child exit 7" in lines
    assert "parent pending True" in lines
    assert "parent pool [0, 1, 4]" in lines


@pytest.mark.timeout(CHILD_LIMIT + 30)
def test_repeated_forks_while_workers_recycle_interpreters(tmp_path):
    # Workers create and end interpreters and thread states all the time
    # (max_tasks_per_worker=1) while the main thread forks: every child must
    # find a consistent interpreter list.  HybridPool and AsyncPool are alive too.
    lines = run_script(
        tmp_path,
        """
        import asyncio, os, sys, threading
        import interpool
        import _hazard_tasks as t

        churn = interpool.Pool(2, max_tasks_per_worker=1)
        hybrid = interpool.HybridPool(2)
        apool = interpool.AsyncPool(1)
        stop = threading.Event()
        first_round = threading.Event()
        rounds = []

        def feed():
            while not stop.is_set():
                rounds.append(list(churn.map(t.count_up, [2000] * 8, chunksize=1)))
                first_round.set()

        feeder = threading.Thread(target=feed)
        feeder.start()
        assert first_round.wait(60)   # workers are now recycling interpreters
        failed = []
        for i in range(12):
            pid = os.fork()
            if pid == 0:
                ok = t.count_up(1000) == 499500
                if i % 4 == 0:   # a pool costs a second on a busy machine: not every time
                    with interpool.Pool(1) as fresh:
                        ok = ok and fresh.submit(t.square, 5).result() == 25
                sys.exit(0 if ok else 1)
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                failed.append((i, os.waitstatus_to_exitcode(status)))
        stop.set()
        feeder.join()
        print("failed children", failed)
        print("churn results", all(r == [t.count_up(2000)] * 8 for r in rounds))
        print("hybrid", hybrid.submit(t.square, 3).result())
        print("async", asyncio.run(apool.run(t.plus_one, 1)))
        for p in (churn, hybrid, apool):
            p.shutdown()
        """,
    )
    assert "failed children []" in lines
    assert "churn results True" in lines
    assert "hybrid 9" in lines
    assert "async 2" in lines


# "default": the start method multiprocessing picks (fork on 3.12 and 3.13,
# forkserver from 3.14); "fork": forced, so that every version runs the fork path.
START_METHODS = ["default", "fork"]

MULTIPROCESSING_SCRIPT = """
    import asyncio, multiprocessing, sys
    from concurrent.futures import ProcessPoolExecutor
    import interpool
    import _hazard_tasks as t

    if __name__ == "__main__":   # forkserver and spawn import this script
        method = None if sys.argv[1] == "default" else sys.argv[1]
        context = multiprocessing.get_context(method)
        print("start method", context.get_start_method())
        print("to_interpreter", asyncio.run(interpool.to_interpreter(t.square, 3)))
        if sys.argv[2] == "executor":
            kwargs = {} if method is None else {"mp_context": context}
            with ProcessPoolExecutor(2, **kwargs) as executor:
                print("result", list(executor.map(t.square, range(8))))
        else:
            with context.Pool(2) as mp_pool:
                print("result", mp_pool.map(t.square, range(8)))
        with interpool.Pool(2) as pool:
            print("interpool still", list(pool.map(t.square, range(3))))
"""


@pytest.mark.timeout(CHILD_LIMIT + 30)
@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize("user", ["executor", "mp.Pool"])  # ProcessPoolExecutor, multiprocessing.Pool
def test_process_pools_work_after_to_interpreter(tmp_path, method, user):
    lines = run_script(tmp_path, MULTIPROCESSING_SCRIPT, method, user)
    assert "to_interpreter 9" in lines
    assert "result [0, 1, 4, 9, 16, 25, 36, 49]" in lines
    assert "interpool still [0, 1, 4]" in lines


@pytest.mark.timeout(CHILD_LIMIT + 30)
def test_subprocess_with_preexec_fn_while_pool_runs(tmp_path):
    # preexec_fn makes subprocess fork() and run CPython's after-fork code in
    # the child before exec.
    lines = run_script(
        tmp_path,
        """
        import subprocess, sys
        import interpool
        import _hazard_tasks as t

        with interpool.Pool(2) as pool:
            busy = pool.submit(t.count_up, 200000)
            done = subprocess.run([sys.executable, "-c", "print('exec ok')"], preexec_fn=lambda: None,
                                  capture_output=True, text=True, timeout=60)
            print("subprocess", done.returncode, done.stdout.strip())
            print("pool", busy.result() == t.count_up(200000))
        """,
    )
    assert "subprocess 0 exec ok" in lines
    assert "pool True" in lines


@pytest.mark.timeout(CHILD_LIMIT + 30)
def test_fork_from_a_non_main_thread_while_pool_runs(tmp_path):
    lines = run_script(
        tmp_path,
        """
        import os, sys, threading
        import interpool
        import _hazard_tasks as t

        pool = interpool.Pool(2)
        pool.submit(t.square, 1).result()
        statuses = []

        def fork_here():
            pid = os.fork()
            if pid == 0:
                with interpool.Pool(1) as fresh:
                    os._exit(0 if fresh.submit(t.square, 6).result() == 36 else 1)
            statuses.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))

        thread = threading.Thread(target=fork_here)
        thread.start()
        thread.join()
        print("child status", statuses)
        print("parent", pool.submit(t.square, 7).result())
        pool.shutdown()
        """,
    )
    assert "child status [0]" in lines
    assert "parent 49" in lines
