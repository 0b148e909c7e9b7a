"""Exceptions that are hard to send back, and tasks that use multiprocessing.

Workers import this module by name; it imports only the stdlib.
"""

import sys


def _raise_keyboard_interrupt():
    raise KeyboardInterrupt


def _raise_generator_exit():
    raise GeneratorExit


class ExitsWhenRebuilt(Exception):
    """Pickles fine; unpickling it in the caller calls sys.exit(3)."""

    def __reduce__(self):
        return (sys.exit, (3,))


class InterruptsWhenRebuilt(Exception):
    def __reduce__(self):
        return (_raise_keyboard_interrupt, ())


class GeneratorExitWhenRebuilt(Exception):
    def __reduce__(self):
        return (_raise_generator_exit, ())


class ReduceRaises(Exception):
    """Cannot be pickled at all: its __reduce__ raises."""

    def __reduce__(self):
        raise RuntimeError("no pickling for this one")


class ReduceExits(Exception):
    """Its __reduce__ raises SystemExit, even in the worker."""

    def __reduce__(self):
        raise SystemExit("reduce exits")


class Outer:
    class NestedError(Exception):
        def __reduce__(self):
            raise RuntimeError("no pickling")


def raise_it(cls, message):
    raise cls(message)


def raise_nested(message):
    raise Outer.NestedError(message)


def start_multiprocessing_pool(method):
    import multiprocessing

    with multiprocessing.get_context(method).Pool(1) as pool:
        return pool.map(abs, [-1])


def start_process_pool_executor():
    import concurrent.futures

    with concurrent.futures.ProcessPoolExecutor(1) as executor:
        return executor.submit(abs, -1).result()


def start_daemon_thread():
    import threading

    thread = threading.Thread(target=abs, args=(1,), daemon=True)
    thread.start()
    thread.join()


class ExitsWhenUnpickled:
    """A result whose unpickling in the caller calls sys.exit(4)."""

    def __reduce__(self):
        return (sys.exit, (4,))


def return_exits_when_unpickled():
    return ExitsWhenUnpickled()


def describe_raised(message):
    """The Failure that a worker makes of ValueError(message), returned as a value."""
    import interpool._worker

    try:
        raise ValueError(message)
    except ValueError as exc:
        return interpool._worker.describe_exception(exc)


def _describer_that_fails(exc):
    raise MemoryError("describe_exception failed")


def break_the_describer():
    """AsyncPool initializer: describe_exception fails in this worker from now on."""
    import interpool._worker

    interpool._worker.describe_exception = _describer_that_fails


async def raise_value_error_async(message):
    raise ValueError(message)
