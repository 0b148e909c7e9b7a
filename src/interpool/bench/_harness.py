"""A small benchmark harness (in the spirit of msgspec's benchmark scripts).

Vocabulary:

* A **peer** is one way of running the tasks, described by a
  :class:`Benchmark`: a label, a factory ``make(workers) -> Executor`` (or
  ``None`` for the serial, in-process baseline) and an availability check.
* A **workload** is a ``bench_<name>.py`` module in this package exposing
  ``NAME``, ``TITLE``, ``DESCRIPTION`` and ``run(config) -> WorkloadResult``.
  Adding a workload means adding one such file; the CLI discovers it.

Timing: ``time.perf_counter``, best of ``repeats`` runs on a warmed-up
executor. Executor start-up (construction plus a warm-up round that makes
every worker import the task module) is timed separately and never included
in per-task numbers. Executors are always shut down, also on errors.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import importlib
import json
import math
import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from . import _tasks

# ---------------------------------------------------------------------------
# Locating interpool
# ---------------------------------------------------------------------------

#: Developer-only switch. With INTERPOOL_BENCH_FAKE=1 the "interpool" peer is
#: a ThreadPoolExecutor stand-in, so the harness itself can be exercised before
#: the engine builds. Every report made this way is loudly labelled FAKE.
FAKE_ENV = "INTERPOOL_BENCH_FAKE"


def fake_interpool() -> bool:
    return os.environ.get(FAKE_ENV, "") not in ("", "0")


class InterpoolUnavailable(RuntimeError):
    """interpool (or interpool.Pool) cannot be imported."""


class _FakeInterpool:
    """Developer-only stand-in for the interpool module (see FAKE_ENV)."""

    __version__ = "FAKE (ThreadPoolExecutor stand-in)"

    @staticmethod
    def Pool(workers=None, **kwargs):  # noqa: N802 - mirrors interpool.Pool
        return cf.ThreadPoolExecutor(workers)


def load_interpool():
    """Return the interpool module; raise InterpoolUnavailable with a hint."""
    if fake_interpool():
        return _FakeInterpool
    try:
        import interpool
    except Exception as exc:  # ImportError, or the extension failing to load
        raise InterpoolUnavailable(f"cannot import interpool: {type(exc).__name__}: {exc}") from exc
    if not hasattr(interpool, "Pool"):
        where = getattr(interpool, "__file__", None) or list(getattr(interpool, "__path__", []))
        raise InterpoolUnavailable(
            f"cannot import interpool.Pool (found a package without it at {where}; is the extension built/installed?)"
        )
    return interpool


def needs(*libraries: str) -> str | None:
    """Why a section that runs interpool under these libraries cannot run here (a row's text), or None."""
    for name in libraries:
        try:
            importlib.import_module(name)
        except ImportError:
            return f"n/a ({name} is not installed)"
    return "n/a (fake interpool stand-in)" if fake_interpool() else None


def interpool_version() -> str:
    try:
        mod = load_interpool()
    except InterpoolUnavailable:
        return "unavailable"
    return str(getattr(mod, "__version__", "unknown"))


# ---------------------------------------------------------------------------
# Peers
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Benchmark:
    """One peer: how to obtain an executor for ``workers`` workers.

    ``make`` is ``None`` for the serial baseline (tasks run in-process).
    ``requires`` returns ``None`` when the peer can run here, else a short
    reason shown in place of the numbers (e.g. ``"n/a (needs 3.14)"``).
    """

    label: str
    make: Callable[[int], cf.Executor] | None
    key: str
    requires: Callable[[], str | None] | None = None

    @property
    def serial(self) -> bool:
        return self.make is None

    def unavailable(self) -> str | None:
        return self.requires() if self.requires else None


def _stdlib_ipe_missing() -> str | None:
    if not hasattr(cf, "InterpreterPoolExecutor"):
        return "n/a (needs 3.14)"
    return None


def _sys_path_sync_script() -> str:
    # Subinterpreters start with the interpreter's *initial* sys.path; entries
    # added at run time (e.g. by benchmarks/*.py) must be replayed there or
    # ``interpool.bench._tasks`` cannot be unpickled. ``exec`` is a picklable
    # builtin, so it can serve as the initializer.
    return (
        "import sys\n"
        f"for _p in reversed({list(sys.path)!r}):\n"
        "    if _p not in sys.path:\n"
        "        sys.path.insert(0, _p)\n"
    )


def _make_stdlib_ipe(workers: int) -> cf.Executor:
    return cf.InterpreterPoolExecutor(  # type: ignore[attr-defined]  # 3.14+
        max_workers=workers, initializer=exec, initargs=(_sys_path_sync_script(),)
    )


def _mp_context():
    # forkserver (the 3.14 default on Linux) everywhere it exists: forking a
    # process that runs interpool's native threads is unsafe, and a uniform
    # start method keeps results comparable across Python versions.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _make_processes(workers: int) -> cf.Executor:
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context())


def _make_interpool(workers: int) -> cf.Executor:
    return load_interpool().Pool(workers)


def interpool_label() -> str:
    return "interpool.Pool [FAKE: ThreadPool]" if fake_interpool() else "interpool.Pool"


SERIAL = Benchmark("serial (in-process loop)", None, "serial")


def standard_peers() -> dict[str, Benchmark]:
    """The peers known to the suite, by key (also the --peers vocabulary)."""
    return {
        "serial": SERIAL,
        "interpool": Benchmark(interpool_label(), _make_interpool, "interpool"),
        "threads": Benchmark("ThreadPoolExecutor", cf.ThreadPoolExecutor, "threads"),
        "processes": Benchmark("ProcessPoolExecutor", _make_processes, "processes"),
        "stdlib": Benchmark(
            "InterpreterPoolExecutor (stdlib)",
            _make_stdlib_ipe,
            "stdlib",
            _stdlib_ipe_missing,
        ),
    }


PEER_KEYS = tuple(standard_peers())


# ---------------------------------------------------------------------------
# Configuration and results
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Config:
    quick: bool = False
    workers: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    #: Multiplies every workload size (tests use tiny values).
    scale: float = 1.0
    #: Override each workload's default number of repeats.
    repeats: int | None = None
    #: Peer keys to run (None = all).
    peers: frozenset[str] | None = None
    #: Progress messages go here (None = silent).
    progress: Any = dataclasses.field(default_factory=lambda: sys.stderr)

    def size(self, full: int, quick: int, minimum: int = 1) -> int:
        n = quick if self.quick else full
        return max(minimum, int(n * self.scale))

    def pick(self, full: float, quick: float) -> float:
        """The full or the quick value of a setting that does not scale (a time budget, a probe size)."""
        return quick if self.quick else full

    def reps(self, full: int, quick: int) -> int:
        if self.repeats is not None:
            return max(1, self.repeats)
        return quick if self.quick else full

    def wants(self, key: str) -> bool:
        """Whether --peers selects the peer ``key`` (a variant such as "interpool-init" goes with its kind)."""
        return self.peers is None or key.split("-")[0] in self.peers

    def select(self, keys: list[str]) -> list[Benchmark]:
        peers = standard_peers()
        return [peers[k] for k in keys if self.wants(k)]

    def log(self, msg: str) -> None:
        if self.progress is not None:
            print(msg, file=self.progress, flush=True)


@dataclasses.dataclass
class Measurement:
    """Timings for one peer on one workload (JSON-ready via ``as_dict``)."""

    label: str
    key: str
    status: str = "ok"  # "ok" | "n/a" | "error"
    detail: str = ""
    workers: int | None = None
    n: int = 0  # items per timed run
    times: list[float] = dataclasses.field(default_factory=list)  # s per run
    startup: float | None = None  # s: construction + warm-up
    answer: Any = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def best(self) -> float:
        return min(self.times) if self.times else math.nan

    @property
    def per_item(self) -> float:
        return self.best / self.n if self.n else math.nan

    def as_dict(self) -> dict[str, Any]:
        d = {
            "label": self.label,
            "peer": self.key,
            "status": self.status,
            "detail": self.detail,
            "workers": self.workers,
            "n": self.n,
            "best_s": None if not self.times else self.best,
            "per_item_s": None if not self.times else self.per_item,
            "times_s": self.times,
            "startup_s": self.startup,
        }
        if isinstance(self.answer, (int, float, str, bool)):
            d["answer"] = self.answer
        return d


@dataclasses.dataclass
class Target:
    text: str
    status: str  # "PASS" | "FAIL" | "n/a"
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: A table row: its cells, or (label, text) with text across the other columns.
Row = list[str] | tuple[str, str]


@dataclasses.dataclass
class Table:
    """A plain-text table. A row given as a ``(label, text)`` tuple prints
    ``text`` across the remaining columns (used for "n/a (needs 3.14)")."""

    title: str
    headers: list[str]
    rows: Sequence[Row]
    #: per column: "<" left, ">" right (default: first left, others right)
    align: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)

    def render(self) -> str:
        ncol = len(self.headers)
        align = (self.align or "<" + ">" * (ncol - 1)).ljust(ncol, ">")
        widths = [len(x) for x in self.headers]
        for row in self.rows:
            cells = row[:1] if isinstance(row, tuple) else row
            for i, cell in enumerate(cells):
                widths[i] = max(widths[i], len(cell))

        def fmt(row):
            if isinstance(row, tuple):
                return f"{row[0].ljust(widths[0])}  {row[1]}".rstrip()
            cells = [(c.ljust(w) if a == "<" else c.rjust(w)) for c, w, a in zip(row, widths, align)]
            return "  ".join(cells).rstrip()

        lines = [self.title, fmt(self.headers), "  ".join("-" * w for w in widths)]
        lines += [fmt(r) for r in self.rows]
        lines += [f"  {n}" for n in self.notes]
        return "\n".join(lines)


@dataclasses.dataclass
class WorkloadResult:
    name: str
    title: str
    description: str
    params: dict[str, Any]
    tables: list[Table]
    targets: list[Target]
    #: machine-readable sections: name -> list of Measurement
    data: dict[str, list[Measurement]]

    @property
    def errors(self) -> list[Measurement]:
        return [m for ms in self.data.values() for m in ms if m.status == "error"]

    @classmethod
    def of(cls, module: str, **parts: Any) -> WorkloadResult:
        """The result of the workload module named ``module`` (its NAME, TITLE and DESCRIPTION)
        with these ``params``, ``tables``, ``targets`` and ``data``."""
        mod = sys.modules[module]
        return cls(mod.NAME, mod.TITLE, mod.DESCRIPTION, **parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "description": self.description,
            "params": self.params,
            "results": {k: [m.as_dict() for m in v] for k, v in self.data.items()},
            "targets": [t.as_dict() for t in self.targets],
        }

    def render(self, quick: bool = False) -> str:
        out = [f"== {self.title} ==", self.description]
        for t in self.tables:
            out += ["", t.render()]
        if self.targets:
            out += ["", "Targets:"]
            if quick:
                out.append("  (--quick: sizes too small to judge the targets by; run without --quick to do so)")
            for target in self.targets:
                extra = f"  ({target.detail})" if target.detail else ""
                out.append(f"  [{target.status:>4}] {target.text}{extra}")
        return "\n".join(out)


# ---------------------------------------------------------------------------
# Running peers
# ---------------------------------------------------------------------------


def warm_up(ex: cf.Executor, workers: int) -> None:
    """Get every worker started and the task module imported there."""
    # Sleeping tasks keep workers busy so that each one receives at least one.
    for f in [ex.submit(_tasks.pause, 0.02) for _ in range(workers)]:
        f.result()
    for f in [ex.submit(_tasks.noop) for _ in range(4 * workers)]:
        f.result()


@contextlib.contextmanager
def opened(bench: Benchmark, workers: int) -> Iterator[tuple[cf.Executor | None, float | None]]:
    """Yield ``(executor, startup_seconds)``; always shut the executor down."""
    if bench.serial:
        yield None, None
        return
    assert bench.make is not None  # a peer that is not serial makes an executor
    t0 = time.perf_counter()
    ex = bench.make(workers)
    try:
        warm_up(ex, workers)
        startup = time.perf_counter() - t0
        yield ex, startup
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def guarded(
    m: Measurement,
    config: Config,
    body: Callable[[Measurement], None],
    *,
    missing: str | None = None,
    progress: str = "",
) -> Measurement:
    """Fill ``m`` by ``body(m)``, logging ``progress`` first; return ``m``.

    With ``missing`` (a reason) the peer is n/a and ``body`` does not run. An
    exception never escapes: it makes ``m`` an error row (an AssertionError
    one a wrong result).
    """
    if missing:
        m.status, m.detail = "n/a", missing
        return m
    if progress:
        config.log(progress)
    try:
        body(m)
    except AssertionError as exc:
        m.status, m.detail = "error", f"wrong result: {exc}"
    except Exception as exc:
        m.status, m.detail = "error", f"{type(exc).__name__}: {exc}"
    if m.status == "error":
        config.log(f"    ERROR: {m.detail}")
    return m


class Countdown:
    """An event set once ``n`` done-callbacks have each called ``tick``."""

    def __init__(self, n: int):
        self._left = n
        self._lock = threading.Lock()
        self._done = threading.Event()

    def tick(self) -> None:
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self._done.set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)


@dataclasses.dataclass(frozen=True)
class Timing:
    """How a section times its peers: written once per section, run for each peer.

    ``task(executor, n)`` is timed best-of-``repeats`` on ``workers`` workers
    (``None``: ``config.workers``). With ``budget_s``/``probe_n`` the size is
    adapted per peer: a probe run of ``probe_n`` items (which doubles as
    warm-up) estimates the cost per item, and ``n`` is reduced so one timed
    run takes about ``budget_s``; results are normalised per item, so slow
    peers stay comparable. Without them, one untimed run of ``min(n, probe_n
    or n)`` items warms up. ``check(answer, n)`` may raise ``AssertionError``
    to flag a wrong result. ``section`` prefixes the progress line.
    """

    config: Config
    n: int
    repeats: int
    workers: int | None = None
    budget_s: float | None = None
    probe_n: int | None = None
    check: Callable[[Any, int], None] | None = None
    section: str = ""

    def run(self, bench: Benchmark, task: Callable[[Any, int], Any], **changes: Any) -> Measurement:
        """Time ``task`` on ``bench`` with these settings (``changes`` replace some of them for this peer).

        Exceptions never escape: they become ``status="error"``.
        """
        t = dataclasses.replace(self, **changes) if changes else self
        workers = t.workers or t.config.workers
        m = Measurement(bench.label, bench.key, workers=None if bench.serial else workers)
        where = "serial" if bench.serial else f"{workers} workers"
        progress = f"  {t.section + ': ' if t.section else ''}{bench.label} ({where}) ..."

        def body(m: Measurement) -> None:
            with opened(bench, workers) as (ex, startup):
                m.startup = startup
                m.n = t.sized(task, ex)
                for _ in range(t.repeats):
                    t0 = time.perf_counter()
                    answer = task(ex, m.n)
                    m.times.append(time.perf_counter() - t0)
                    if t.check is not None:
                        t.check(answer, m.n)
                    m.answer = answer

        return guarded(m, t.config, body, missing=bench.unavailable(), progress=progress)

    def sized(self, task: Callable[[Any, int], Any], ex: cf.Executor | None) -> int:
        """Warm ``task`` up on ``ex``; the items of one timed run (see the class)."""
        n = self.n
        if self.budget_s is not None and self.probe_n:
            probe = min(n, self.probe_n)
            t0 = time.perf_counter()
            task(ex, probe)
            per_item = (time.perf_counter() - t0) / probe
            if per_item > 0:
                n = max(probe, min(n, int(self.budget_s / per_item)))
        else:
            task(ex, min(n, self.probe_n or n))
        return n


def child_json(source: str, *args: object, timeout: float) -> Any:
    """Run ``source`` in a fresh Python (``python -c``, ``args`` its argv) that imports the
    interpool this process runs, installed or not; the JSON its last line of output holds."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError((out.stderr.strip().splitlines() or ["child failed"])[-1])
    return json.loads(out.stdout.strip().splitlines()[-1])


def merge(first: Measurement, again: Measurement) -> Measurement:
    """Fold a second measurement of the same peer and size into ``first``.

    Used for serial baselines, which are timed both before and after the
    peers so that a burst of unrelated load during one of the two does not
    skew every ratio.
    """
    if first.ok and again.ok and first.n == again.n:
        first.times.extend(again.times)
    elif not first.ok and again.ok:
        return again
    return first


# ---------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------


def fmt_num(x: float) -> str:
    """Three significant digits, no exponent: 0.0123, 1.23, 12.3, 1234."""
    if x is None or not math.isfinite(x):
        return "-"
    ax = abs(x)
    if ax >= 100:
        return f"{x:,.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    if ax == 0:
        return "0"
    digits = 2 - math.floor(math.log10(ax))
    return f"{x:.{digits}f}"


def fmt_ratio(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return fmt_num(x) + "×"


def fmt_us(seconds: float | None) -> str:
    return "-" if seconds is None else fmt_num(seconds * 1e6)


def fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else fmt_num(seconds * 1e3)


def in_ms(seconds: float) -> str:
    """``seconds`` in ms, with the unit: a target's detail."""
    return f"{fmt_ms(seconds)} ms"


def fmt_s(seconds: float | None) -> str:
    return "-" if seconds is None else fmt_num(seconds)


def status_row(m: Measurement) -> tuple[str, str]:
    """Row for a peer without numbers: ``(label, "n/a (...)" | "ERROR (see below)")``."""
    if m.status == "n/a":
        return (m.label, m.detail or "n/a")
    return (m.label, "ERROR (see below)")


def sort_measurements(ms: list[Measurement], key: Callable[[Measurement], float]) -> list[Measurement]:
    """OK rows by ``key`` ascending; errors, then n/a, at the bottom."""
    rank = {"ok": 0, "error": 1, "n/a": 2}
    return sorted(ms, key=lambda m: (rank[m.status], key(m) if m.ok else 0.0))


#: Cells of a table row for one measurement.
Cells = Callable[[Measurement], list[str]]


def rows(ms: list[Measurement], key: Callable[[Measurement], float], row: Cells, extra: Cells | None = None) -> list:
    """Table rows sorted by ``key``: ``row(m)`` (then ``extra(m)``) for OK peers, status rows for the rest."""
    return [row(m) + (extra(m) if extra else []) if m.ok else status_row(m) for m in sort_measurements(ms, key)]


def speedup(base: Measurement | None, m: Measurement | None) -> float | None:
    """``base``'s time over ``m``'s, or None when either is missing or failed."""
    return base.best / m.best if (base is not None and m is not None and m.ok) else None


def ratio(m: Measurement | None, base: Measurement | None) -> float | None:
    """``m``'s time per item over ``base``'s, or None when either is missing."""
    return m.per_item / base.per_item if (m is not None and base is not None) else None


def time_rows(ms: list[Measurement], base: Measurement | None, extra: Cells | None = None) -> list:
    """Rows by time: peer, best time in s, the speedup over ``base`` (its time over the peer's), then ``extra(m)``."""
    return rows(ms, lambda m: m.best, lambda m: [m.label, fmt_s(m.best), fmt_ratio(speedup(base, m))], extra)


def per_item_rows(ms: list[Measurement], base: Measurement | None, extra: Cells | None = None) -> list:
    """Rows by time per item: peer, items, µs per item, the ratio to ``base``'s, then ``extra(m)``."""

    def row(m: Measurement) -> list[str]:
        return [m.label, f"{m.n:,}", fmt_us(m.per_item), fmt_ratio(ratio(m, base))]

    return rows(ms, lambda m: m.per_item, row, extra)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..1)."""
    if not sorted_values:
        return math.nan
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))]


def p50(m: Measurement) -> float:
    """The median of ``m.times`` (sorted: a measurement of latencies)."""
    return percentile(m.times, 0.50)


def p99(m: Measurement) -> float:
    """The 99th percentile of ``m.times`` (sorted: a measurement of latencies)."""
    return percentile(m.times, 0.99)


def latency_rows(ms: list[Measurement], extra: Cells | None = None) -> list:
    """Rows by p99 of measurements of latencies: peer (and its detail), count, p50, p99, max in ms, then ``extra(m)``."""

    def row(m: Measurement) -> list[str]:
        label = m.label + (f" ({m.detail})" if m.detail else "")
        return [label, f"{m.n:,}", fmt_ms(p50(m)), fmt_ms(p99(m)), fmt_ms(m.times[-1])]

    return rows(ms, p99, row, extra)


def error_notes(ms: list[Measurement]) -> list[str]:
    return [f"ERROR {m.label}: {m.detail}" for m in ms if m.status == "error"]


def find(ms: list[Measurement], key: str) -> Measurement | None:
    for m in ms:
        if m.key == key and m.ok:
            return m
    return None


def target(text: str, ok: bool | None, detail: str = "") -> Target:
    return Target(text, "n/a" if ok is None else ("PASS" if ok else "FAIL"), detail)


def at_most(text: str, value: float | None, limit: float, shown: Callable[[float], str], missing: str = "") -> Target:
    """PASS when ``value`` ≤ ``limit``, detail ``shown(value)``; n/a (detail ``missing``) without a value."""
    return target(text, None if value is None else value <= limit, missing if value is None else shown(value))


def at_least(text: str, value: float | None, limit: float, shown: Callable[[float], str], missing: str = "") -> Target:
    """PASS when ``value`` ≥ ``limit``, detail ``shown(value)``; n/a (detail ``missing``) without a value."""
    return target(text, None if value is None else value >= limit, missing if value is None else shown(value))


def fail_if_interpool_failed(targets: list[Target], *sections: list[Measurement]) -> list[Target]:
    """Targets that could not be judged because interpool errored are FAILs."""
    broken = [m for ms in sections for m in ms if m.key == "interpool" and m.status == "error"]
    if broken:
        for t in targets:
            if t.status == "n/a":
                t.status, t.detail = "FAIL", f"interpool errored: {broken[0].detail}"
    return targets
