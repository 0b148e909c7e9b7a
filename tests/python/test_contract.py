"""The named structures between the binding and the package (src/python/records.hpp).

What crosses between interpool._core and the package is a record with named,
read-only fields, never a positional tuple: Delivery (the items of a loop
bridge's push_many), Guard (a by-value encoding's guards), Launch and
Requests (WorkerSlot.take_requests()).
"""

import asyncio
import subprocess
import sys
import textwrap
import types

import pytest

import _contract_tasks as ct
import _tasks as t
import interpool
from conftest import child_env
from interpool import _aio, _byvalue, _core

TIMEOUT = 30

FIELDS = {
    _core.Delivery: ("future", "outcome", "is_exception"),
    _core.Guard: ("container", "key", "expected"),
    _core.Launch: ("completion", "fn", "args", "kwargs"),
    _core.Requests: ("launches", "cancels"),
}


@pytest.mark.parametrize("record", list(FIELDS), ids=lambda r: r.__name__)
def test_each_record_has_its_named_read_only_fields_and_no_subclass(record):
    members = tuple(name for name, value in vars(record).items() if isinstance(value, types.MemberDescriptorType))
    assert members == FIELDS[record]
    assert record.__module__ == "interpool._core"
    with pytest.raises(TypeError):
        types.new_class("Sub", (record,))


def test_records_the_package_makes_are_read_only_and_say_what_they_hold():
    future = object()
    item = _core.Delivery(future=future, outcome=42, is_exception=False)
    assert (item.future, item.outcome, item.is_exception) == (future, 42, False)
    assert repr(item) == f"_core.Delivery(future={future!r}, outcome=42, is_exception=False)"
    with pytest.raises(AttributeError):
        item.outcome = 43
    namespace = {"x": 1}
    guard = _core.Guard(container=namespace, key="x", expected=1)
    assert (guard.container, guard.key, guard.expected) == (namespace, "x", 1)
    with pytest.raises(AttributeError):
        guard.expected = 2


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"future": 1, "outcome": 2}, TypeError, "Delivery() missing required keyword argument 'is_exception'"),
        (
            {"future": 1, "outcome": 2, "is_exception": False, "extra": 3},
            TypeError,
            "Delivery() got an unexpected keyword argument 'extra'",
        ),
        ({"future": 1, "outcome": 2, "is_exception": 1}, TypeError, "Delivery() is_exception must be a bool, not int"),
        (
            {"future": 1, "outcome": 2, "is_exception": True},
            TypeError,
            "Delivery() outcome must be an exception when is_exception is True, not int",
        ),
    ],
)
def test_delivery_refuses_what_it_cannot_hold(kwargs, error, message):
    with pytest.raises(error) as caught:
        _core.Delivery(**kwargs)
    assert str(caught.value) == message


def test_records_take_keyword_arguments_only_and_the_engine_alone_makes_launches():
    with pytest.raises(TypeError, match=r"^Delivery\(\) takes keyword arguments only$"):
        _core.Delivery(1, 2, False)
    with pytest.raises(TypeError, match=r"^Guard\(\) takes keyword arguments only$"):
        _core.Guard({}, "x", 1)
    for record in (_core.Launch, _core.Requests):
        with pytest.raises(TypeError, match="cannot create"):
            record()


def _function(x, y=1, *, z=2):
    return x + y + z


def _cell():
    value = 1
    return (lambda: value).__closure__[0]


@pytest.mark.parametrize(
    ("container", "key", "error", "message"),
    [
        (
            _function,
            3,
            ValueError,
            "Guard() key of a function must be 0 (its code), 1 (its defaults), 2 (its keyword defaults) or an "
            "attribute name, not 3",
        ),
        (_cell(), "x", ValueError, "Guard() key of a cell must be None, not 'x'"),
        ({}, [], TypeError, "Guard() key of a dict must be hashable, not list"),
        (
            types.SimpleNamespace(),
            0,
            TypeError,
            "Guard() key must be an attribute name (a str) for a types.SimpleNamespace container, not int",
        ),
    ],
)
def test_guard_refuses_a_key_the_engine_could_not_look_up(container, key, error, message):
    with pytest.raises(error) as caught:
        _core.Guard(container=container, key=key, expected=None)
    assert str(caught.value) == message


def test_a_by_value_encoding_carries_its_guards_as_guard_records():
    namespace = {}
    exec("LIMIT = 10\ndef capped(x, step=1):\n    return min(x + step, LIMIT)\n", namespace)
    fn = namespace["capped"]
    encoded = _byvalue.encode_callable(fn)
    assert isinstance(encoded.guards, tuple)
    assert all(type(guard) is _core.Guard for guard in encoded.guards)
    looked_up = {(id(guard.container), guard.key): guard.expected for guard in encoded.guards}
    assert looked_up[(id(fn), 0)] is fn.__code__
    assert looked_up[(id(fn), 1)] == (1,)
    assert looked_up[(id(fn), 2)] is None
    assert looked_up[(id(namespace), "LIMIT")] == 10
    assert looked_up[(id(namespace), "min")] is _byvalue.ABSENT  # a builtin: not in the function's globals


def test_the_engine_refuses_guards_that_are_not_guard_records():
    # The engine reads each guard's fields by name on every call: an
    # encoding whose guards are tuples is a bug, reported at submit.
    script = textwrap.dedent(
        """
        import interpool
        from interpool import _byvalue

        encode = _byvalue.encode_callable

        def positional(fn):
            encoded = encode(fn)
            guards = tuple((g.container, g.key, g.expected) for g in encoded.guards)
            return _byvalue.EncodedCallable(encoded.data, guards, encoded.per_task)

        _byvalue.encode_callable = positional  # before the engine first loads it
        with interpool.Pool(1) as pool:
            try:
                pool.submit(lambda: 1)
            except SystemError as exc:
                print("refused:", exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=TIMEOUT, env=child_env()
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        "refused: interpool._byvalue.encode_callable returned a malformed encoding (data must be bytes, guards None "
        "or a tuple of _core.Guard)"
    )


def test_a_loop_bridge_completes_futures_from_delivery_records():
    async def main():
        loop = asyncio.get_running_loop()
        bridge = _aio.bridge_for(loop)
        done, failed = loop.create_future(), loop.create_future()
        bridge.push(done, 6, False)
        waker = bridge.push_many([_core.Delivery(future=failed, outcome=ValueError("boom"), is_exception=True)])
        if waker is not None:
            waker.signal()
        value = await asyncio.wait_for(done, TIMEOUT)
        with pytest.raises(ValueError) as caught:
            await asyncio.wait_for(failed, TIMEOUT)
        assert str(caught.value) == "boom"
        return value

    assert asyncio.run(main()) == 6


@pytest.mark.parametrize(
    "make_pool",
    [lambda: interpool.Pool(1), lambda: interpool.HybridPool(1, threads=1)],
    ids=["Pool", "HybridPool-thread"],
)
def test_the_engine_pushes_delivery_records_to_a_trio_bridge(monkeypatch, make_pool):
    # Pool: through the delivery thread.  HybridPool (a plain function runs
    # on one of its threads): from that thread, a batch of one.
    trio = pytest.importorskip("trio")
    from interpool import _trio

    pushed = []
    push_many = _trio.TrioBridge.push_many

    def recording(self, items):
        pushed.extend(items)
        return push_many(self, items)

    monkeypatch.setattr(_trio.TrioBridge, "push_many", recording)

    async def main(pool):
        value = await pool.run(t.mul, 6, 6)
        with pytest.raises(ValueError) as failed:
            await pool.run(t.raise_value_error, "bad")
        assert str(failed.value) == "bad"
        return value

    with make_pool() as pool:
        assert trio.run(main, pool) == 36
    assert [type(item) for item in pushed] == [_core.Delivery, _core.Delivery]
    value, failure = pushed
    assert type(value.future) is _trio._Call and (value.outcome, value.is_exception) == (36, False)
    assert type(failure.future) is _trio._Call and failure.is_exception is True
    assert type(failure.outcome) is ValueError


def test_take_requests_returns_requests_of_launch_records():
    async def main():
        async with interpool.AsyncPool(1, concurrency=2, initializer=ct.keep_slot) as apool:
            started = interpool.Event()
            taker = asyncio.ensure_future(apool.run(ct.take_next_launch, started, TIMEOUT))
            await asyncio.to_thread(started.wait, TIMEOUT)
            launch = await apool.run(ct.launched, 7, key="value")
            return await taker, launch

    requests, launch = asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    assert requests == {"type": "Requests", "launches": ["Launch"], "cancels": []}
    assert launch == {"type": "Launch", "fn": "launched", "args": (7,), "kwargs": {"key": "value"}}
