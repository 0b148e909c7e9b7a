"""Worker output: print(), sys.stdout/sys.stderr writes and logging reach the caller."""

import asyncio
import concurrent.futures
import contextlib
import io
import logging
import threading

import pytest

import _output_tasks as t
import interpool

# --------------------------------------------------------------- capsys


def test_print_reaches_capsys_before_result_returns(capsys):
    with interpool.Pool(2) as pool:
        assert pool.submit(t.shout, 7).result() == 7
        assert capsys.readouterr().out == "shout 7\n"


@pytest.mark.parametrize("kind", ["Pool", "InterpreterPoolExecutor", "HybridPool"])
def test_every_pool_kind_forwards(capsys, kind):
    if kind == "HybridPool":
        pool = interpool.HybridPool(2)
        fn = interpool.isolated(t.shout)
    else:
        pool = getattr(interpool, kind)(2)
        fn = t.shout
    with pool:
        assert list(pool.map(fn, range(3))) == [0, 1, 2]
        out = capsys.readouterr().out
    assert sorted(out.splitlines()) == ["shout 0", "shout 1", "shout 2"]


def test_async_pool_forwards(capsys):
    async def main():
        async with interpool.AsyncPool(2) as apool:
            return await apool.run(t.ashout, 5)

    assert asyncio.run(main()) == 5
    assert capsys.readouterr().out == "async 5\n"


def test_await_pool_run_sees_output_written(capsys):
    async def main():
        with interpool.Pool(2) as pool:
            value = await pool.run(t.shout, 3)
            return value, capsys.readouterr().out

    assert asyncio.run(main()) == (3, "shout 3\n")


def test_partial_line_is_flushed_when_the_task_ends(capsys):
    with interpool.Pool(1) as pool:
        assert pool.submit(t.partial, "no newline").result()
        assert capsys.readouterr().out == "no newline"


def test_stderr(capsys):
    with interpool.Pool(1) as pool:
        assert pool.submit(t.to_stderr, "oops").result()
        captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "oops\nraw oops\n")


def test_stdout_and_stderr_keep_their_order_within_a_worker():
    seen = []

    class Recorder(io.TextIOBase):
        def __init__(self, name):
            self.name = name

        def write(self, s):
            seen.append((self.name, s))
            return len(s)

    with contextlib.redirect_stdout(Recorder("out")), contextlib.redirect_stderr(Recorder("err")):
        with interpool.Pool(1) as pool:
            assert pool.submit(t.interleaved).result()
    assert seen == [("out", "out 1\n"), ("err", "err 1\n"), ("out", "out 2\n")]


def test_output_goes_to_the_current_sys_stdout():
    first, second = io.StringIO(), io.StringIO()
    with interpool.Pool(1) as pool:
        with contextlib.redirect_stdout(first):
            pool.submit(t.shout, 1).result()
        with contextlib.redirect_stdout(second):
            pool.submit(t.shout, 2).result()
    assert (first.getvalue(), second.getvalue()) == ("shout 1\n", "shout 2\n")


def test_lines_stay_in_order_per_worker(capsys):
    with interpool.Pool(1) as pool:
        assert pool.submit(t.lines, "a", 2000).result() == 2000
        out = capsys.readouterr().out
    assert out.splitlines() == [f"a {i} " for i in range(2000)]


def test_many_workers_never_interleave_within_a_line(capsys):
    workers = 4
    with interpool.Pool(workers) as pool:
        futures = [pool.submit(t.lines, f"w{k}", 300, 200) for k in range(workers * 2)]
        assert [f.result() for f in futures] == [300] * (workers * 2)
        out = capsys.readouterr().out
    got = {}
    for line in out.splitlines():
        tag, i, pad = line.split(" ")
        assert pad == "x" * 200, line
        got.setdefault(tag, []).append(int(i))
    assert got == {f"w{k}": list(range(300)) for k in range(workers * 2)}


def test_output_streams_while_the_task_runs():
    """A line printed (and flushed) by a running task arrives before the task ends."""
    started = threading.Event()

    class Watcher(io.TextIOBase):
        text = ""

        def write(self, s):
            Watcher.text += s
            if "started" in Watcher.text:
                started.set()
            return len(s)

    go = interpool.Event()
    with contextlib.redirect_stdout(Watcher()):
        with interpool.Pool(1) as pool:
            future = pool.submit(t.announce_then_wait, go)
            assert started.wait(60)
            assert not future.done()
            go.set()
            assert future.result()
    assert Watcher.text == "started\nfinished\n"


def test_future_is_done_only_once_its_output_is_written():
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        with interpool.Pool(2) as pool:
            futures = [pool.submit(t.lines, f"t{k}", 50) for k in range(20)]
            for future in concurrent.futures.as_completed(futures):
                tag = f"t{futures.index(future)}"
                assert f"{tag} 49 \n" in buf.getvalue()


def test_done_callback_sees_the_output():
    buf = io.StringIO()
    seen = []
    with contextlib.redirect_stdout(buf):
        with interpool.Pool(1) as pool:
            future = pool.submit(t.shout, 9)
            future.add_done_callback(lambda f: seen.append(buf.getvalue()))
            future.result()
    assert seen == ["shout 9\n"]


def test_undecodable_text_crosses_intact():
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        with interpool.Pool(1) as pool:
            assert pool.submit(t.surrogates).result()
    assert buf.getvalue() == "caf\udce9\n"


def test_worker_streams_behave_like_text_streams():
    with interpool.Pool(1) as pool:
        assert pool.submit(t.stream_facts).result() == ("_ForwardedStream", True, "utf-8", 1, 2)
        with pytest.raises(TypeError, match=r"^write\(\) argument must be str, not bytes"):
            pool.submit(t.write_bytes).result()


def test_sys_stdout_none_drops_output():
    with contextlib.redirect_stdout(None):
        with interpool.Pool(1) as pool:
            assert pool.submit(t.shout, 1).result() == 1


# ------------------------------------------------------------- logging


class ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def app_logger():
    logger = logging.getLogger("interpool_test_app")
    handler = ListHandler()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


def test_logging_records_reach_the_callers_handlers(app_logger):
    with interpool.Pool(1) as pool:
        assert pool.submit(t.log_things, "interpool_test_app").result()
        records = list(app_logger.records)
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ("INFO", "info 1"),
        ("WARNING", "warning two"),
        ("ERROR", "failed"),
    ]
    for r in records:
        assert r.name == "interpool_test_app"
        assert r.interpool_worker == "interpool-0"
        assert r.threadName == "interpool-0"
        assert r.funcName == "log_things" and r.filename == "_output_tasks.py"
    assert records[1].custom == 3 and records[1].obj.startswith("<object object")
    assert "ZeroDivisionError: division by zero" in records[2].exc_text
    formatted = logging.Formatter("%(interpool_worker)s %(message)s").format(records[2])
    assert formatted.startswith("interpool-0 failed\nTraceback")


def test_logging_names_each_worker(app_logger):
    with interpool.Pool(2) as pool:
        futures = [pool.submit(t.log_things, "interpool_test_app") for _ in range(8)]
        assert all(f.result() for f in futures)
        workers = {r.interpool_worker for r in app_logger.records}
    assert workers <= {"interpool-0", "interpool-1"} and workers


def test_caller_levels_apply(app_logger):
    logging.getLogger("interpool_test_app").setLevel(logging.ERROR)
    with interpool.Pool(1) as pool:
        assert pool.submit(t.log_things, "interpool_test_app").result()
    assert [r.getMessage() for r in app_logger.records] == ["failed"]


def test_workers_import_logging_only_when_tasks_do():
    with interpool.Pool(1) as pool:
        assert pool.submit(t.imported, "logging").result() is False
        assert pool.submit(t.log_things, "x").result()
        assert pool.submit(t.imported, "logging").result() is True


# -------------------------------------------------------------- inherit


def test_inherit_writes_to_the_file_descriptors(capfd):
    with interpool.Pool(1, output="inherit") as pool:
        assert pool.submit(t.shout, 4).result() == 4
        assert pool.submit(t.stream_facts).result()[0] == "TextIOWrapper"
    # The worker's own buffered stream is flushed when its interpreter ends.
    assert capfd.readouterr().out == "shout 4\n"


def test_inherit_keeps_output_out_of_sys_stdout():
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        with interpool.Pool(1, output="inherit") as pool:
            pool.submit(t.shout, 4).result()
    assert buf.getvalue() == ""


@pytest.mark.parametrize(
    "value, error, message",
    [
        ("bogus", ValueError, r"^output must be 'forward' \(worker print\(\) and logging go to this interpreter's "),
        (1, TypeError, r"^output must be 'forward' or 'inherit', not int$"),
    ],
)
@pytest.mark.parametrize("cls", ["Pool", "InterpreterPoolExecutor", "HybridPool", "AsyncPool"])
def test_bad_output_option(cls, value, error, message):
    with pytest.raises(error, match=message):
        getattr(interpool, cls)(1, output=value)


def test_basic_config_in_a_worker_keeps_forwarding(app_logger):
    with interpool.Pool(1) as pool:
        assert pool.submit(t.basic_config_then_log, "interpool_test_app").result() == ["ForwardingHandler"]
    assert [r.getMessage() for r in app_logger.records] == ["after basicConfig"]


def test_bytes_written_to_the_buffer_arrive_as_text(capsys):
    with interpool.Pool(1) as pool:
        assert pool.submit(t.write_to_buffer).result()
    assert capsys.readouterr().out == "bytes \u00e9 \\xff\n"


def test_async_pool_flushes_a_partial_line_with_the_coroutine(capsys):
    async def main():
        async with interpool.AsyncPool(1) as apool:
            assert await apool.run(t.apartial, "async partial")
            return capsys.readouterr().out

    assert asyncio.run(main()) == "async partial"


def test_interpreter_pool_executor_code_functions_forward(capsys):
    with interpool.InterpreterPoolExecutor(1) as ex:
        ex.submit(lambda: print("from a lambda")).result()
        assert capsys.readouterr().out == "from a lambda\n"
