"""Thread walkers (sys._current_frames, sys._current_exceptions, threading, faulthandler) while pools run.

On 3.12 and 3.13 CPython's sys._current_frames() and _current_exceptions()
walk the threads of every interpreter and abort the process while workers run
Python; interpool replaces them with walkers of the calling interpreter only
(src/python/frames.cpp), which is what 3.14 does itself.
"""

import sys

import pytest

import _child

CHILD_LIMIT = 240

SAMPLER_SCRIPT = """
    import faulthandler, sys, tempfile, threading, time
    import interpool
    import _hazard_tasks as t

    calls = []
    sys.addaudithook(lambda event, args: event.startswith("sys._current_") and calls.append(event))
    stop = threading.Event()
    samples = 0
    sink = tempfile.TemporaryFile()

    def sampler():
        global samples
        while not stop.is_set():
            sys._current_frames()
            sys._current_exceptions()
            threading.enumerate()
            faulthandler.dump_traceback(sink, all_threads=True)
            samples += 1
            time.sleep(0.001)

    with interpool.Pool(3) as pool:
        # One worker samples too, from inside its interpreter.
        in_worker = pool.submit(t.sample_threads, 3000)
        thread = threading.Thread(target=sampler)
        thread.start()
        expected = [t.count_up(20000)] * 40
        maps = 0
        deadline = time.monotonic() + 2.0   # the workload's length, not a limit on anything
        while time.monotonic() < deadline:
            assert list(pool.map(t.count_up, [20000] * 40)) == expected
            maps += 1
        stop.set()
        thread.join()
        seen, worker_thread = in_worker.result()
    print("maps", maps > 0)
    print("samples", samples > 0)
    print("worker saw only itself", seen == [worker_thread])
    print("audited", {"sys._current_frames", "sys._current_exceptions"} <= set(calls))
    print("replaced", sys._current_frames is interpool._core._current_frames)
"""


def run_script(tmp_path, body):
    """Runs `body` in a fresh Python: a crash there fails the test, not the test run."""
    return _child.run_script(tmp_path, body, name="walkers.py", limit=CHILD_LIMIT)


@pytest.mark.timeout(CHILD_LIMIT + 30)
def test_sampling_threads_every_millisecond_while_workers_run_python(tmp_path):
    lines = run_script(tmp_path, SAMPLER_SCRIPT)
    assert "maps True" in lines
    assert "samples True" in lines
    assert "worker saw only itself True" in lines
    assert "audited True" in lines
    # CPython 3.14 walks only the calling interpreter itself: it keeps its own.
    assert f"replaced {sys.version_info < (3, 14)}" in lines


CONTENT_SCRIPT = """
    import sys, threading
    import interpool
    import _hazard_tasks as t

    def blocked_in_handler(ready, release, box):
        try:
            raise KeyError("handled right now")
        except KeyError as exc:
            box.append(exc)
            ready.set()
            release.wait(60)

    def main():
        with interpool.Pool(1) as pool:
            started, release = interpool.Event(), interpool.Event()
            in_worker = pool.submit(t.announce_then_wait, started, release)
            ready, done = threading.Event(), threading.Event()
            box = []
            other = threading.Thread(target=blocked_in_handler, args=(ready, done, box))
            other.start()
            try:
                assert ready.wait(60) and started.wait(60)
                frames = sys._current_frames()
                exceptions = sys._current_exceptions()
            finally:
                done.set()
                other.join()
                release.set()
            worker_thread = in_worker.result(timeout=60)

        me = threading.get_ident()
        print("main thread frame", frames[me].f_code is main.__code__)
        outer = frames[other.ident]
        print("other thread innermost", outer.f_code.co_name)   # inside Event.wait
        while outer is not None and outer.f_code is not blocked_in_handler.__code__:
            outer = outer.f_back
        print("other thread caller found", outer is not None)
        # The worker runs Python right now, but in another interpreter.
        print("worker in frames", worker_thread in frames)
        print("other thread exception", exceptions[other.ident] is box[0])
        print("main thread exception", exceptions[me])
        print("worker in exceptions", worker_thread in exceptions)

    main()
"""


@pytest.mark.timeout(CHILD_LIMIT + 30)
def test_current_frames_and_exceptions_report_this_interpreters_threads(tmp_path):
    lines = run_script(tmp_path, CONTENT_SCRIPT)
    assert "main thread frame True" in lines
    assert "other thread innermost wait" in lines
    assert "other thread caller found True" in lines
    assert "worker in frames False" in lines
    assert "other thread exception True" in lines
    assert "main thread exception None" in lines
    assert "worker in exceptions False" in lines
