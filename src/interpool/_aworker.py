"""The worker side of AsyncPool: an asyncio event loop in each worker interpreter.

The engine's worker thread stays in charge of taking tasks from the pool's
queue (at most ``concurrency`` at a time) and hands each one, without the
GIL, to this interpreter's event loop, which runs on a thread of its own:
launch and cancellation requests arrive through the worker slot's eventfd,
which the loop watches.  Each task completes through its ``Completion`` when
the coroutine ends.
"""

import asyncio
import inspect
import threading

from . import _core

_loop = None
_thread = None
_running = {}  # completion id -> asyncio.Task


def start(initializer, initargs):
    """Worker initializer: run the user's initializer, then start the loop."""
    global _loop, _thread
    slot = _core.current_worker_slot()
    if initializer is not None:
        initializer(*initargs)
    ready = threading.Event()

    def serve():
        global _loop
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.add_reader(slot.fileno(), _requests_arrived, slot)
        _loop = loop
        ready.set()
        try:
            loop.run_forever()
            # Stopped by stop(): nothing should remain, but never leave a
            # coroutine behind un-cancelled.
            for task in list(_running.values()):
                task.cancel()
            if _running:
                loop.run_until_complete(asyncio.gather(*_running.values(), return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.remove_reader(slot.fileno())
            loop.close()

    _thread = threading.Thread(target=serve, name="interpool-async-loop")
    _thread.start()
    ready.wait()


def stop():
    """Worker finalizer: stop the loop and join its thread."""
    if _loop is not None and _thread is not None:
        _loop.call_soon_threadsafe(_loop.stop)
        _thread.join()


def _begin(completion, coro_fn, args, kwargs):
    try:
        coro = coro_fn(*args, **kwargs)
        if not inspect.isawaitable(coro):
            raise TypeError(
                f"AsyncPool.run() needs a coroutine function; {coro_fn!r} returned "
                f"{type(coro).__name__}. Use Pool.run() for plain functions"
            )
    except BaseException as exc:
        completion.set_exception(exc)
    else:
        task = _loop.create_task(_drive(completion, coro))
        _running[completion.id] = task
        if completion.cancel_requested:
            task.cancel()
        return
    completion.finish()  # after the except block has dropped the exception


async def _drive(completion, coro):
    # The outcome is written first and the task handed back (finish) only
    # once this worker holds nothing of it, so that a Shared in it goes with
    # the caller's last reference, as with Pool: the caller's SharedCache
    # keeps its copy while the worker's lives.  Dropped here: the value, the
    # exception (its traceback holds the coroutine's frames) and the
    # awaitable.  The loop callback running this step may hold more until
    # it returns: the future whose result or exception woke the coroutine
    # (gather, a task), the CancelledError that asyncio throws in.  So a value
    # that carries a Shared, and every exception, finish in a callback of
    # their own; other values (the common case) finish at once, at no cost.
    try:
        value = await coro
    except BaseException as exc:  # CancelledError included: the caller sees a cancellation
        completion.set_exception(exc)
        later = True
    else:
        later = completion.set_result(value)
        del value
    del coro
    if later:
        _loop.call_soon(_finish, completion)
    else:
        _running.pop(completion.finish(), None)


def _finish(completion):
    _running.pop(completion.finish(), None)


def _requests_arrived(slot):
    requests = slot.take_requests()
    for launch in requests.launches:
        _begin(launch.completion, launch.fn, launch.args, launch.kwargs or {})
    for task_id in requests.cancels:
        task = _running.get(task_id)
        if task is not None:
            task.cancel()
