"""Task functions and coroutine functions for the asyncio test suite.

Workers import this module by name, so it uses only the standard library and
interpool (never pytest).  Test files set ``MARKER`` in the main interpreter;
a worker interpreter imports its own copy of this module and sees the default.
"""

import asyncio
import contextvars
import hashlib
import html.parser
import os
import sys
import threading
import time

import interpool

#: Module global: the main interpreter's tests change it, workers keep this.
MARKER = "default"

#: A context variable for the HybridPool thread path.
CTX = contextvars.ContextVar("CTX")


def set_marker(value):
    """Initializer: set MARKER in whichever interpreter runs it."""
    global MARKER
    MARKER = value


# ------------------------------------------------------------------ plain


def noop():
    return None


def square(x):
    return x * x


def describe_call(*args, **kwargs):
    return (args, kwargs)


def where(*args, **kwargs):
    """Which interpreter and thread ran this, and what it saw."""
    return {
        "marker": MARKER,
        "modules_id": id(sys.modules),
        "thread": threading.get_ident(),
        "ctx": CTX.get("unset"),
        "args": args,
        "kwargs": kwargs,
    }


@interpool.isolated
def decorated_where(x):
    """Like where(), marked with @interpool.isolated at module level."""
    return {"marker": MARKER, "modules_id": id(sys.modules), "x": x}


class Boom(ValueError):
    pass


def boom(message):
    raise Boom(message)


def fail_on(x, bad):
    if x == bad:
        raise ValueError(f"bad item {x}")
    return x * 10


def sleep_then(value, seconds, started=None):
    """Optionally create ``started``, sleep, return ``value``."""
    if started is not None:
        with open(started, "w") as f:
            f.write("started")
    time.sleep(seconds)
    return value


def write_file(path, text="ran"):
    """The side effect of a task: create ``path``."""
    with open(path, "w") as f:
        f.write(text)
    return text


def sleep_and_touch(directory, i, seconds):
    """Sleep, then create ``directory/i``: which items ran."""
    time.sleep(seconds)
    with open(os.path.join(directory, str(i)), "w") as f:
        f.write("ran")
    return i


def use_unimportable():
    """Import a module that refuses to load in subinterpreters; it loads in the main one."""
    import importlib

    for name in ("_testsinglephase", "_curses", "readline"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        return module.__name__
    raise ModuleNotFoundError("no single-phase extension module available")


# ------------------------------------------------------------------ coroutines


async def acoro_square(x):
    await asyncio.sleep(0)
    return x * x


async def awhere(x):
    """What the worker's event loop sees."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(0.001)
    return {
        "x": x,
        "marker": MARKER,
        "modules_id": id(sys.modules),
        "thread": threading.get_ident(),
        "loop_running": loop.is_running(),
    }


async def asleep_interval(seconds):
    """Sleep; return (start, end) on CLOCK_MONOTONIC, which is system-wide."""
    start = time.monotonic()
    await asyncio.sleep(seconds)
    return (start, time.monotonic())


async def afail(message):
    await asyncio.sleep(0.001)
    raise Boom(message)


async def await_cancel(started, cancelled, seconds=60):
    """Create ``started``; on cancellation create ``cancelled`` and re-raise."""
    with open(started, "w") as f:
        f.write("started")
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        with open(cancelled, "w") as f:
            f.write("cancelled")
        raise
    return "not cancelled"


async def await_gate(started, cancelled, gate):
    """Like await_cancel, but ends (with "not cancelled") once ``gate`` (an interpool.Event) is set.

    The worker's loop must not block on the Event: it looks every few milliseconds (test code)."""
    with open(started, "w") as f:
        f.write("started")
    end = time.monotonic() + GATE_WAIT
    try:
        while not gate.is_set():
            if time.monotonic() > end:
                raise TimeoutError("the test never opened the gate")
            await asyncio.sleep(0.002)
    except asyncio.CancelledError:
        with open(cancelled, "w") as f:
            f.write("cancelled")
        raise
    return "not cancelled"


def not_a_coroutine_function(x):
    return x


# ------------------------------------------------------------------ a tiny web site

N_PAGES = 12


def page_links(i, n=N_PAGES):
    """The pages page ``i`` links to (deterministic, some pages unreachable)."""
    if i % 5 == 4:
        return []
    return sorted({(i * 3 + 1) % n, (i * 7 + 2) % n} - {i})


def make_page(i, n=N_PAGES):
    """Deterministic HTML for page ``i``."""
    links = "".join(f'<li><a href="/page/{j}">page {j}</a></li>' for j in page_links(i, n))
    paragraphs = "".join(
        f"<p>Paragraph {k} of page {i}: {'lorem ipsum ' * ((i + k) % 7 + 1)}</p>" for k in range(i % 4 + 2)
    )
    return (
        "<!DOCTYPE html>\n<html><head>"
        f"<title>Page {i} &amp; friends</title>"
        '<meta charset="utf-8"></head>'
        f"<body><h1>Page {i}</h1>{paragraphs}<ul>{links}</ul></body></html>\n"
    )


class _PageParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = 0
        self.links = []
        self._in_title = False
        self.title = ""

    def handle_starttag(self, tag, attrs):
        self.tags += 1
        if tag == "title":
            self._in_title = True
        elif tag == "a":
            self.links.extend(value for name, value in attrs if name == "href")

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def analyze(body):
    """Parse and hash one page (bytes): the answer both sides compute."""
    parser = _PageParser()
    parser.feed(body.decode("utf-8"))
    parser.close()
    return {
        "title": parser.title,
        "tags": parser.tags,
        "links": parser.links,
        "sha256": hashlib.sha256(body).hexdigest(),
        "size": len(body),
    }


def hash_rounds(data, rounds):
    """CPU work: iterate sha256 ``rounds`` times over ``data`` (bytes)."""
    digest = data
    for _ in range(rounds):
        digest = hashlib.sha256(digest + data).digest()
    return digest.hex()


async def http_get(port, path):
    """A minimal HTTP/1.0 GET on 127.0.0.1: (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode("ascii"))
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


async def fetch_and_analyze(port, path):
    """Worker coroutine: fetch a page, parse and hash it."""
    status, headers, body = await http_get(port, path)
    if status != 200:
        return {"path": path, "status": status}
    if int(headers["content-length"]) != len(body):
        raise ValueError(f"short read for {path}: {len(body)} of {headers['content-length']}")
    result = analyze(body)
    result.update(path=path, status=status, marker=MARKER)
    return result


async def fetch_body(port, path):
    status, _, body = await http_get(port, path)
    return status, body


def sleep_pair(pair):
    """map_async passes one item: ``(value, seconds)`` -> sleep, return value."""
    value, seconds = pair
    time.sleep(seconds)
    return value


async def asquare_fail_at(x, bad):
    await asyncio.sleep(0.001 * (x % 3))
    if x == bad:
        raise Boom(f"stop at {x}")
    return x * x


# ------------------------------------------------ ordering without sleeping
# The test decides when a "slow" task ends (an interpool.Event it sets)
# instead of guessing how long the task takes.

GATE_WAIT = 60  # seconds: a gate the test forgets to open fails the task, never hangs it


def wait_for_gate(value, gate, started=None):
    """Optionally create the file ``started``, wait until ``gate`` is set, return ``value``."""
    if started is not None:
        with open(started, "w") as f:
            f.write("started")
    if not gate.wait(GATE_WAIT):
        raise TimeoutError(f"the test never opened the gate for {value!r}")
    return value


def gated_pair(pair):
    """map_async passes one item: ``(value, gate)`` -> wait for ``gate`` (None: at once), return value."""
    value, gate = pair
    if gate is not None and not gate.wait(GATE_WAIT):
        raise TimeoutError(f"the test never opened the gate for {value!r}")
    return value


def touch_then_sleep(directory, i, seconds):
    """Create ``directory/i`` as the item starts, then sleep: which items ever started."""
    with open(os.path.join(directory, str(i)), "w") as f:
        f.write("started")
    time.sleep(seconds)
    return i


def touch_then_wait(directory, gate, i):
    """Create ``directory/i`` as the item starts; every item but the first then
    waits for ``gate`` (an interpool.Event): which items ever started, with no
    item finishing on its own while the test closes the iteration."""
    with open(os.path.join(directory, str(i)), "w") as f:
        f.write("started")
    if i:
        gate.wait()
    return i


def square_and_count(x, counter, lock):
    """x * x, counting the call in int64 0 of ``counter`` (a SharedBuffer) under ``lock``."""
    with lock:
        memoryview(counter).cast("q")[0] += 1
    return x * x


# Coroutines of one AsyncPool meet here: each counts itself in while it runs
# and waits until ``parties`` coroutines (in rounds: the 1st..parties-th, then
# the next ``parties``...) have arrived, so the test sees how many run at once
# without timing them.  int64 slots of ``counters``: 0 running now, 1 the most
# ever running, 2 arrived so far.  Each worker polls the shared counters for
# its waiting coroutines with a short backoff (test code; one poller per
# round and worker).

_rounds = {}  # (key, round) -> asyncio.Event, in this worker's loop
_watchers = set()


async def _watch_round(counters, target, done):
    end = time.monotonic() + GATE_WAIT
    pause = 0.0005
    while counters[2] < target:
        if time.monotonic() > end:
            done.set()
            return
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.01)
    done.set()


async def arendezvous(key, buf, lock, parties):
    """Arrive, wait for this round's ``parties`` arrivals, leave; return the most ever running at once."""
    counters = memoryview(buf).cast("q")
    with lock:
        counters[0] += 1
        counters[1] = max(counters[1], counters[0])
        counters[2] += 1
        arrived = counters[2]
    target = ((arrived - 1) // parties + 1) * parties
    done = _rounds.get((key, target))
    if done is None:
        done = _rounds[(key, target)] = asyncio.Event()
        _watchers.add(asyncio.ensure_future(_watch_round(counters, target, done)))  # keep it alive
    await done.wait()
    with lock:
        counters[0] -= 1
        most = counters[1]
    if counters[2] < target:
        raise TimeoutError(f"only {counters[2]} of {target} coroutines ever arrived")
    return most, threading.get_native_id()
