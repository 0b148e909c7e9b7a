"""The coroutine through which tests run plain task functions on an AsyncPool.

Workers import it by name (tests/python is on their sys.path); it imports
nothing, so an AsyncPool worker loads no more than the task itself needs.
"""


async def call(fn, args, kwargs):
    """Run ``fn(*args, **kwargs)`` in the worker's event loop and return what it returns."""
    return fn(*args, **kwargs)
