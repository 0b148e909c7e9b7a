"""Worker output in the caller's interpreter.

With ``output="forward"`` (the default), what a worker writes to
``sys.stdout`` and ``sys.stderr`` is written to the caller's *current*
``sys.stdout`` and ``sys.stderr`` (looked up as each batch of output
arrives), line by line and in order per worker, and the worker's
``logging`` records reach the caller's ``logging`` handlers.  The engine
carries the bytes (``src/python/output.cpp``); this module holds the
configuration workers get and the caller's side of logging records.

With ``output="inherit"``, workers write to file descriptors 1 and 2
themselves, as plain subinterpreters do.
"""

import sys

__all__ = ["OUTPUT_MODES", "check_output", "worker_config", "handle_records"]

OUTPUT_MODES = ("forward", "inherit")


def check_output(output):
    """Validate a pool's ``output`` option."""
    if not isinstance(output, str):
        raise TypeError(f"output must be 'forward' or 'inherit', not {type(output).__name__}")
    if output not in OUTPUT_MODES:
        raise ValueError(
            f"output must be 'forward' (worker print() and logging go to this interpreter's sys.stdout, "
            f"sys.stderr and logging handlers) or 'inherit' (workers write to file descriptors 1 and 2 "
            f"themselves), got {output!r}"
        )


def _isatty(name):
    stream = getattr(sys, name, None)
    try:
        return bool(stream.isatty())
    except Exception:
        return False


def _lowest_log_level():
    """The lowest level any of this interpreter's loggers is set to.

    Workers create records from that level up and send them; the caller
    then applies its own loggers' levels to each.  Without logging imported
    here, logging's default (WARNING).
    """
    logging = sys.modules.get("logging")
    if logging is None:
        return 30
    levels = [logging.root.level]
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and logger.level:
            levels.append(logger.level)
    return min(levels)


def worker_config(output):
    """What workers need to forward their output (None: they do not)."""
    if output != "forward":
        return None
    return {
        "log_level": _lowest_log_level(),
        "stdout_tty": _isatty("stdout"),
        "stderr_tty": _isatty("stderr"),
    }


def handle_records(records):
    """Hand logging records from workers to this interpreter's loggers.

    ``records`` is a list of ``(worker name, serialized record)``.  Each
    record keeps its logger name, level, message (formatted in the worker),
    location and exception text.  ``record.interpool_worker`` names the
    worker (``"interpool-0"``: the pool's name for its thread), and so does
    ``record.threadName`` when the task's own thread logged it.  The record
    goes to ``logging.getLogger(record.name)`` if that logger is enabled for
    its level, as records from a socket or queue listener do.
    """
    import logging
    import marshal

    for worker, data in records:
        try:
            attrs = marshal.loads(data)
        except Exception:
            continue
        on_task_thread = attrs.pop("_interpool_task_thread", False)
        record = logging.makeLogRecord(attrs)
        record.interpool_worker = worker
        if on_task_thread:
            record.threadName = worker
        logger = logging.getLogger() if record.name == "root" else logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)
