"""interpool.SharedBuffer: engine-owned memory, passed to tasks by handle.

What must hold:

* ``SharedBuffer(size_or_bytes_like, *, readonly=False)`` is memory owned by
  the engine, not by an interpreter: writable (unless ``readonly=True``), with
  the buffer protocol in every interpreter (memoryview, struct, array,
  numpy.frombuffer).
* It travels to tasks by handle with zero copies: what a task writes, the
  caller reads, and the other way round.
* It stays valid while any interpreter holds it, whichever created it (also
  after the creating task ended and its interpreter was replaced).
* Typed views: ``cast('d')``, ``cast('i', shape=[2, 3])``.
* ``release()`` with a live export is a BufferError (never a crash); after
  ``release()`` any use is a ValueError.
"""

import array
import gc
import re
import struct

import pytest

import _share_tasks as t
import interpool
from conftest import ALL_BEHAVIOUR

TIMEOUT = 30
# Every pool kind (conftest.PoolKind, AsyncPool included) with 1 and 3
# workers; one pool per kind for the module, since its tasks never outlive a
# test.  Tests about Pool's own options (max_tasks_per_worker) use ``pools``.
pytestmark = [pytest.mark.timeout(120), *ALL_BEHAVIOUR, pytest.mark.reuse_pool]


def run(pool, fn, *args):
    return pool.submit(fn, *args).result(timeout=TIMEOUT)


# ------------------------------------------------------------ construction


def test_size_gives_zeroed_writable_memory():
    buf = interpool.SharedBuffer(16)
    assert len(buf) == 16 and buf.nbytes == 16
    assert buf.readonly is False and buf.released is False
    assert bytes(buf) == bytes(16)
    assert repr(buf) == "<interpool.SharedBuffer of 16 bytes>"


def test_zero_size_is_allowed():
    buf = interpool.SharedBuffer(0)
    assert len(buf) == 0 and bytes(buf) == b""


@pytest.mark.parametrize(
    "source",
    [b"abc", bytearray(b"abc"), memoryview(b"xabcx")[1:4], array.array("b", [97, 98, 99])],
    ids=["bytes", "bytearray", "memoryview-slice", "array"],
)
def test_bytes_like_source_is_copied_in(source):
    buf = interpool.SharedBuffer(source)
    assert bytes(buf) == b"abc"


def test_source_is_copied_not_aliased():
    source = bytearray(b"abc")
    buf = interpool.SharedBuffer(source)
    source[0] = ord("z")
    assert bytes(buf) == b"abc"


def test_non_contiguous_source_is_copied_in_c_order():
    source = memoryview(bytes(range(10)))[::2]
    assert bytes(interpool.SharedBuffer(source)) == bytes([0, 2, 4, 6, 8])


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"^SharedBuffer size must be >= 0, got -1$"):
        interpool.SharedBuffer(-1)
    with pytest.raises(TypeError, match=r"^SharedBuffer\(\) takes a size \(int\) or a bytes-like object, not str$"):
        interpool.SharedBuffer("text")
    with pytest.raises(TypeError):
        interpool.SharedBuffer(8, True)  # readonly is keyword-only


def test_readonly_buffer_rejects_writes():
    buf = interpool.SharedBuffer(b"abc", readonly=True)
    assert buf.readonly is True
    assert repr(buf) == "<interpool.SharedBuffer of 3 bytes, read-only>"
    with memoryview(buf) as view:
        assert view.readonly
        with pytest.raises(TypeError, match="cannot modify read-only memory"):
            view[0] = 1
    with pytest.raises(TypeError, match="read-write bytes-like object"):
        struct.pack_into("b", buf, 0, 1)
    assert bytes(buf) == b"abc"


def test_readonly_buffer_rejects_writes_in_a_worker(pool):
    buf = interpool.SharedBuffer(b"abc", readonly=True)
    assert run(pool, t.buffer_info, buf) == ("SharedBuffer", 3, 3, True)
    assert run(pool, t.try_write, buf) == ("TypeError", "cannot modify read-only memory")
    with pytest.raises(TypeError):
        run(pool, t.pack_into, buf, "b", 0, 1)
    assert bytes(buf) == b"abc"


def test_readonly_buffer_made_in_a_worker_stays_readonly(pool):
    buf = run(pool, t.make_readonly_buffer, b"xyz")
    assert buf.readonly is True and bytes(buf) == b"xyz"
    assert t.try_write(buf) == ("TypeError", "cannot modify read-only memory")


# --------------------------------------------- buffer protocol in the caller


def test_memoryview_struct_and_array_in_the_caller():
    buf = interpool.SharedBuffer(16)
    with memoryview(buf) as view:
        assert (view.format, view.itemsize, view.nbytes, view.readonly) == ("B", 1, 16, False)
        view[0:2] = b"\x01\x02"
    struct.pack_into("<d", buf, 8, 2.5)
    assert struct.unpack_from("<BBd", buf, 0)[:2] == (1, 2)
    assert struct.unpack_from("<d", buf, 8) == (2.5,)
    a = array.array("d")
    a.frombytes(memoryview(buf)[8:])
    b = array.array("B")
    b.frombytes(buf)
    assert b[:2].tolist() == [1, 2] and len(b) == 16
    assert a.tolist() == [2.5]


def test_numpy_frombuffer_shares_the_memory():
    np = pytest.importorskip("numpy", reason="numpy is not installed")
    buf = interpool.SharedBuffer(8 * 4)
    arr = np.frombuffer(buf, dtype=np.float64)
    assert arr.shape == (4,) and arr.flags.writeable
    arr[:] = [1.0, 2.0, 3.0, 4.0]
    assert struct.unpack_from("4d", buf) == (1.0, 2.0, 3.0, 4.0)
    with pytest.raises(BufferError):
        buf.release()  # the array is an export
    del arr
    gc.collect()
    buf.release()


def test_numpy_array_over_a_buffer_sees_a_task_write(pool):
    np = pytest.importorskip("numpy", reason="numpy is not installed")
    buf = interpool.SharedBuffer(8 * 3)
    arr = np.frombuffer(buf, dtype=np.float64)
    run(pool, t.write_doubles, buf, [0.5, 1.5, 2.5])
    assert arr.tolist() == [0.5, 1.5, 2.5]


# --------------------------------------------- buffer protocol in a worker


def test_a_task_receives_a_shared_buffer(pool):
    buf = interpool.SharedBuffer(b"hello")
    assert run(pool, t.buffer_info, buf) == ("SharedBuffer", 5, 5, False)
    assert run(pool, t.unpack_from, buf, "5s") == (b"hello",)
    assert run(pool, t.array_values, buf, "B") == list(b"hello")


def test_a_task_writes_and_the_caller_sees_the_bytes(pool):
    buf = interpool.SharedBuffer(1024)
    assert run(pool, t.fill, buf, 0xAB) == 1024
    assert bytes(buf) == b"\xab" * 1024
    run(pool, t.pack_into, buf, "<iq", 16, -7, 2**40)
    assert struct.unpack_from("<iq", buf, 16) == (-7, 2**40)


def test_the_caller_writes_and_a_task_sees_the_bytes(pool):
    buf = interpool.SharedBuffer(8)
    assert run(pool, t.unpack_from, buf, "<q") == (0,)  # the worker holds no copy
    struct.pack_into("<q", buf, 0, 123456789)
    assert run(pool, t.unpack_from, buf, "<q") == (123456789,)


def test_a_buffer_sent_to_a_task_and_back_is_the_same_memory(pool):
    buf = interpool.SharedBuffer(4)
    back = run(pool, t.ident, buf)
    assert type(back) is interpool.SharedBuffer
    assert back == buf and hash(back) == hash(buf)
    with memoryview(back) as view:
        view[0] = 9
    assert bytes(buf)[0] == 9


def test_a_buffer_inside_containers_and_custom_objects_is_shared(pool):
    buf = interpool.SharedBuffer(2)
    run(pool, t.fill, buf, 1)
    value = run(pool, t.ident, {"k": [buf], "box": t.Box(buf)})
    assert value["k"][0] == buf and value["box"].content == buf


def test_many_tasks_write_disjoint_parts_of_one_buffer(pools):
    pool = pools(2)
    buf = interpool.SharedBuffer(8 * 100)
    list(pool.map(t.pack_into, [buf] * 100, ["<q"] * 100, range(0, 800, 8), range(100), chunksize=3))
    assert list(struct.unpack_from("<100q", buf)) == list(range(100))


def test_passing_a_buffer_does_not_copy_it(pool):
    # What that saves in time is a benchmark figure (python -m interpool.bench,
    # "buffer"); here: a task and the caller see each other's writes while the
    # task runs, so both use one memory.
    size = 64 * 1024 * 1024
    buf = interpool.SharedBuffer(size)
    written, go = interpool.Event(), interpool.Event()
    future = pool.submit(t.write_wait_read, buf, written, go)
    try:
        assert written.wait(TIMEOUT)
        with memoryview(buf) as view:
            assert view[0] == 0xAB, "the task's write is not visible here"
            view[-1] = 0xCD
    finally:
        go.set()
    assert future.result(timeout=TIMEOUT) == 0xCD, "this write was not visible in the task"


# ----------------------------------------------------------- typed views


def test_cast_to_doubles():
    buf = interpool.SharedBuffer(8 * 4)
    view = buf.cast("d")
    assert type(view) is memoryview
    assert (view.format, view.itemsize, len(view), view.shape) == ("d", 8, 4, (4,))
    view[2] = 3.25
    assert struct.unpack_from("d", buf, 16) == (3.25,)
    view.release()


def test_cast_with_shape():
    buf = interpool.SharedBuffer(struct.pack("6i", 1, 2, 3, 4, 5, 6))
    view = buf.cast("i", shape=[2, 3])
    assert view.shape == (2, 3) and view.ndim == 2
    assert view.tolist() == [[1, 2, 3], [4, 5, 6]]
    view.release()


def test_cast_of_a_size_that_does_not_fit_the_format_is_a_type_error():
    buf = interpool.SharedBuffer(10)
    with pytest.raises(TypeError, match="length is not a multiple of itemsize"):
        buf.cast("d")
    buf.release()  # the failed cast left no export behind


def test_typed_views_in_a_worker(pool):
    buf = interpool.SharedBuffer(8 * 3)
    assert run(pool, t.write_doubles, buf, [1.0, -2.0, 0.125]) == ("d", 8, 3)
    assert buf.cast("d").tolist() == [1.0, -2.0, 0.125]
    grid = interpool.SharedBuffer(struct.pack("6i", *range(6)))
    shape, rows = run(pool, t.matrix_rows, grid)
    assert tuple(shape) == (2, 3) and rows == [[0, 1, 2], [3, 4, 5]]


def test_readonly_cast_is_readonly():
    buf = interpool.SharedBuffer(bytes(16), readonly=True)
    view = buf.cast("d")
    assert view.readonly
    with pytest.raises(TypeError):
        view[0] = 1.0
    view.release()


# ---------------------------------------------------------------- release

EXPORTS_ALIVE = (
    "cannot release a SharedBuffer while 1 export(s) of it (memoryview, numpy array, ...) are alive; "
    "release those first"
)


def test_release_with_a_live_memoryview_is_a_buffer_error():
    buf = interpool.SharedBuffer(8)
    view = memoryview(buf)
    with pytest.raises(BufferError, match=f"^{re.escape(EXPORTS_ALIVE)}$"):
        buf.release()
    view[0] = 5  # still valid
    assert buf.released is False
    view.release()
    buf.release()
    assert buf.released is True


def test_release_with_a_live_cast_view_is_a_buffer_error():
    buf = interpool.SharedBuffer(16)
    view = buf.cast("d")
    with pytest.raises(BufferError, match=re.escape("1 export(s)")):
        buf.release()
    view.release()
    buf.release()


def test_export_count_is_in_the_message():
    buf = interpool.SharedBuffer(8)
    views = [memoryview(buf), memoryview(buf)]
    with pytest.raises(BufferError, match=re.escape("while 2 export(s)")):
        buf.release()
    for v in views:
        v.release()
    buf.release()


def test_release_in_a_worker_with_a_live_view_is_a_buffer_error(pool):
    buf = interpool.SharedBuffer(8)
    outcome, released_there = run(pool, t.release_while_viewed, buf)
    assert outcome == ("BufferError", EXPORTS_ALIVE)
    assert released_there is True
    # The worker released its own handle; the caller's is untouched.
    assert buf.released is False
    run(pool, t.fill, buf, 3)
    assert bytes(buf) == b"\x03" * 8


def test_use_after_release_is_a_value_error(pool):
    buf = interpool.SharedBuffer(8)
    buf.release()
    assert buf.released is True
    assert repr(buf) == "<interpool.SharedBuffer (released)>"
    with pytest.raises(ValueError, match="^operation on a released SharedBuffer$"):
        memoryview(buf)
    with pytest.raises(ValueError, match="^operation on a released SharedBuffer$"):
        bytes(buf)
    with pytest.raises(ValueError, match="^operation on a released SharedBuffer$"):
        buf.cast("B")
    with pytest.raises(ValueError, match="^operation on a released SharedBuffer$"):
        struct.unpack_from("b", buf)
    with pytest.raises(ValueError, match="^cannot send a released interpool.SharedBuffer$"):
        pool.submit(t.ident, buf)
    # From inside a pickled object the pickling error is wrapped in the
    # codec's TypeError ("cannot send object Box(...)"); the ValueError is its cause.
    with pytest.raises((ValueError, TypeError), match="cannot send a released interpool.SharedBuffer") as info:
        pool.submit(t.ident, [t.Box(buf)])
    if info.type is TypeError:
        assert type(info.value.__cause__) is ValueError
    buf.release()  # releasing twice is harmless


def test_len_and_nbytes_after_release_are_value_errors():
    buf = interpool.SharedBuffer(8)
    buf.release()
    with pytest.raises(ValueError, match="^operation on a released SharedBuffer$"):
        len(buf)
    with pytest.raises(ValueError, match="^operation on a released SharedBuffer$"):
        buf.nbytes


def test_with_block_releases_the_buffer():
    with interpool.SharedBuffer(4) as buf:
        struct.pack_into("i", buf, 0, 7)
    assert buf.released is True
    with pytest.raises(ValueError):
        memoryview(buf)


@pytest.mark.workers(1)  # the task that keeps the buffer and those that read it share one interpreter
def test_releasing_the_callers_handle_leaves_other_holders_working(pool):
    buf = interpool.SharedBuffer(b"kept by a worker")
    run(pool, t.keep, buf)
    buf.release()
    del buf
    gc.collect()
    assert run(pool, t.kept_bytes) == b"kept by a worker"
    run(pool, t.fill_kept, ord("k"))
    assert run(pool, t.kept_bytes) == b"k" * 16


# ---------------------------------------------------------------- lifetime


def test_a_buffer_made_in_a_task_outlives_the_task(pool):
    buf = run(pool, t.make_buffer, 32, 0x5A)
    assert type(buf) is interpool.SharedBuffer
    assert len(buf) == 32 and bytes(buf) == b"\x5a" * 32
    struct.pack_into("<I", buf, 0, 0xDEADBEEF)
    assert run(pool, t.unpack_from, buf, "<I") == (0xDEADBEEF,)


def test_a_buffer_made_in_a_replaced_interpreter_stays_valid(pools):
    pool = pools(1, max_tasks_per_worker=1)
    made_in = run(pool, t.interp_id)
    buf = run(pool, t.make_buffer, 1 << 20, 0x11)  # its interpreter is replaced after this task
    assert run(pool, t.interp_id) != made_in
    gc.collect()
    assert bytes(buf) == b"\x11" * (1 << 20)
    with memoryview(buf) as view:
        view[-1] = 0x22
    assert run(pool, t.unpack_from, buf, "B", (1 << 20) - 1) == (0x22,)
    run(pool, t.fill, buf, 0x33)  # written by yet another interpreter
    assert bytes(buf) == b"\x33" * (1 << 20)


def test_buffers_made_in_tasks_of_a_shut_down_pool_stay_valid():
    with interpool.Pool(2) as pool:
        bufs = list(pool.map(t.make_buffer, [1000] * 8, range(8), chunksize=1))
    # Every worker interpreter has ended.
    for i, buf in enumerate(bufs):
        assert bytes(buf) == bytes([i]) * 1000
        struct.pack_into("B", buf, 0, 255)
        assert bytes(buf)[0] == 255


def test_a_buffer_in_flight_outlives_the_callers_handle(pools):
    pool = pools(2)
    buf = interpool.SharedBuffer(b"in flight")
    futures = [pool.submit(t.sleep_then_value, 0.05, buf) for _ in range(6)]
    buf.release()
    del buf
    gc.collect()
    for f in futures:
        back = f.result(timeout=TIMEOUT)
        assert bytes(back) == b"in flight"


def test_a_shared_snapshot_can_carry_a_buffer(pool):
    buf = interpool.SharedBuffer(4)
    shared = interpool.share({"buf": buf, "n": 4})
    value = run(pool, t.ident, shared)
    assert value["n"] == 4 and value["buf"] == buf
    # The snapshot holds the buffer by handle: memory, not a copy, is shared.
    run(pool, t.fill_item, shared, "buf", 7)
    assert bytes(buf) == b"\x07" * 4
