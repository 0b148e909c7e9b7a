"""Worker-side helpers for test_contract: the binding's records seen from a worker.

Workers import this module by name, so it uses only the standard library and
interpool (never pytest).
"""

import select

from interpool import _core

_slot = None  # this worker's WorkerSlot, kept by keep_slot()


def keep_slot():
    """AsyncPool initializer (it runs on the engine's worker thread): keep its WorkerSlot."""
    global _slot
    _slot = _core.current_worker_slot()


async def take_next_launch(started, seconds):
    """Take the next request of this worker's slot in place of the worker's loop.

    Runs in the loop (blocking it, so the loop's own reader cannot take the
    request first): signals ``started``, waits until the slot's eventfd says
    a request arrived, takes the requests, completes and finishes each launched task
    with a description of its Launch, and describes what take_requests() returned.
    """
    started.set()
    readable, _, _ = select.select([_slot.fileno()], [], [], seconds)
    if not readable:
        return "no request arrived"
    requests = _slot.take_requests()
    for launch in requests.launches:
        launch.completion.set_result(
            {"type": type(launch).__name__, "fn": launch.fn.__name__, "args": launch.args, "kwargs": launch.kwargs}
        )
        launch.completion.finish()  # hand the task back, as the worker's loop does
    return {
        "type": type(requests).__name__,
        "launches": [type(launch).__name__ for launch in requests.launches],
        "cancels": requests.cancels,
    }


async def launched(*args, **kwargs):
    """What take_next_launch() takes: it never runs."""
    raise AssertionError("take_next_launch() should have taken this task")
