"""Task functions for test_output.py: they print and log in worker interpreters."""

import sys


def shout(i):
    print(f"shout {i}")
    return i


def lines(tag, n, width=0):
    """Print n lines 'tag i xxx...' (width x's), each with one print call."""
    pad = "x" * width
    for i in range(n):
        print(f"{tag} {i} {pad}")
    return n


def partial(text):
    print(text, end="")
    return True


def to_stderr(text):
    print(text, file=sys.stderr)
    sys.stderr.write("raw " + text + "\n")
    return True


def interleaved():
    print("out 1")
    print("err 1", file=sys.stderr)
    print("out 2")
    return True


def announce_then_wait(go):
    print("started", flush=True)
    go.wait(60)
    print("finished")
    return True


def log_things(name):
    import logging

    log = logging.getLogger(name)
    log.debug("debug %s", "hidden")
    log.info("info %d", 1)
    log.warning("warning %s", "two", extra={"custom": 3, "obj": object()})
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("failed")
    return True


def imported(name):
    return name in sys.modules


def stream_facts():
    s = sys.stdout
    return (type(s).__name__, s.writable(), s.encoding, s.fileno(), sys.stderr.fileno())


def write_bytes():
    sys.stdout.write(b"bytes")


def surrogates():
    print("caf\udce9")
    return True


async def ashout(i):
    print(f"async {i}")
    return i


def basic_config_then_log(name):
    import logging

    logging.basicConfig(level=logging.DEBUG, format="worker format %(message)s")
    logging.getLogger(name).warning("after basicConfig")
    return [type(h).__name__ for h in logging.getLogger().handlers]


def write_to_buffer():
    sys.stdout.buffer.write("bytes \u00e9 ".encode() + b"\xff\n")
    sys.stdout.buffer.flush()
    return True


async def apartial(text):
    print(text, end="")
    return True
