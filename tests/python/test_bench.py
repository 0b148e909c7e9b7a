"""Smoke tests for the benchmark suite (interpool.bench); tiny sizes, fast."""

import concurrent.futures as cf
import hashlib
import json
import os
import pickle
import subprocess
import sys

import pytest

from interpool.bench import _harness as h
from interpool.bench import _tasks, bench_gridsearch, bench_overhead, bench_scaling
from interpool.bench.__main__ import discover

# The worked example from the Advent of Code 2024 day 6 puzzle text:
# the guard visits 41 distinct cells; 6 obstacle positions make it loop.
AOC_EXAMPLE = (
    "....#.....",
    ".........#",
    "..........",
    "..#.......",
    ".......#..",
    "..........",
    ".#..^.....",
    "........#.",
    "#.........",
    "......#...",
)


def _bench_env(**extra):
    """Environment for a child python that imports interpool.bench like we do."""
    import interpool.bench

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(interpool.bench.__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    env.pop(h.FAKE_ENV, None)
    env.update(extra)
    return env


def _start(grid):
    row = next(r for r, line in enumerate(grid) if "^" in line)
    return row, grid[row].index("^")


# -- tasks --------------------------------------------------------------------


def test_small_tasks():
    assert _tasks.noop() is None
    assert _tasks.identity(("x", 1)) == ("x", 1)
    assert _tasks.sum_squares(10) == sum(i * i for i in range(10))
    assert _tasks.sum_squares(0) == 0


def test_aoc_example():
    start = _start(AOC_EXAMPLE)
    path = _tasks.guard_path(AOC_EXAMPLE, start)
    assert path[0] == start
    assert len(path) == 41
    assert _tasks.count_loops(AOC_EXAMPLE, start, path[1:]) == 6
    assert _tasks.check_loop(AOC_EXAMPLE, start, (6, 3)) is True  # from the puzzle text
    assert _tasks.check_loop(AOC_EXAMPLE, start, (1, 4)) is False


def test_grid_is_deterministic_and_sized():
    grid, start = _tasks.make_grid()
    assert (grid, start) == _tasks.make_grid()
    assert len(grid) == 130 and all(len(row) == 130 for row in grid)
    assert "".join(grid).count("^") == 1 and grid[start[0]][start[1]] == "^"
    # Same puzzle on every Python version (random.Random is stable).
    digest = hashlib.sha256("\n".join(grid).encode()).hexdigest()
    assert digest == "896abbb7ff817cbf6c6352f2f2e7ab2ce9da9093e7b974c5f70f3caf403bff9b"
    density = "".join(grid).count("#") / (130 * 130)
    assert 0.01 <= density <= 0.02
    assert 15_000 <= len(pickle.dumps(grid)) <= 20_000
    path = _tasks.guard_path(grid, start)  # raises if the guard loops
    assert 4300 <= len(path) <= 4700
    assert len(set(path)) == len(path)


def test_other_seeds_work():
    grid, start = _tasks.make_grid(seed=1, size=60, path_range=(600, 1500))
    assert 600 <= len(_tasks.guard_path(grid, start)) <= 1500


def test_serial_and_thread_peer_agree():
    grid, start = _tasks.make_grid()
    cells = bench_gridsearch.candidates(grid, start, step=15)
    expected = bench_gridsearch.solve_serial(grid, start, cells)
    assert 0 < expected < len(cells)
    with cf.ThreadPoolExecutor(2) as ex:
        assert bench_gridsearch.solve_map(ex, grid, start, cells) == expected


def test_task_functions_are_picklable_by_reference():
    for fn in (_tasks.noop, _tasks.identity, _tasks.pause, _tasks.sum_squares, _tasks.check_loop):
        assert pickle.loads(pickle.dumps(fn)) is fn


# -- harness ------------------------------------------------------------------


def _config(**kw):
    return h.Config(workers=2, progress=None, **kw)


def test_timing_threads_and_sizing():
    peer = h.standard_peers()["threads"]
    timing = h.Timing(_config(), n=2_000, repeats=2, budget_s=10.0, probe_n=100, check=bench_overhead._check_map)
    m = timing.run(peer, bench_overhead._map)
    assert m.ok, m.detail
    assert m.n == 2_000 and len(m.times) == 2 and m.startup > 0 and m.workers == 2
    assert m.per_item == min(m.times) / 2_000
    json.dumps(m.as_dict(), allow_nan=False)
    # A tiny budget shrinks n (never below the probe) for slow peers.
    m = timing.run(peer, bench_overhead._map, n=1_000_000, repeats=1, budget_s=1e-6, probe_n=50)
    assert m.ok and m.n == 50
    # A change for one peer leaves the section's settings alone.
    assert timing.n == 2_000 and timing.probe_n == 100


def test_timing_reports_errors_and_wrong_answers():
    peer = h.standard_peers()["threads"]

    def boom(ex, n):
        raise ValueError("boom")

    timing = h.Timing(_config(), n=1, repeats=1, workers=1)
    m = timing.run(peer, boom)
    assert m.status == "error" and "ValueError: boom" in m.detail

    def wrong(answer, n):
        assert answer == -1, "nope"

    m = timing.run(peer, lambda ex, n: n, check=wrong)
    assert m.status == "error" and "wrong result" in m.detail


def test_stdlib_peer_availability():
    peer = h.standard_peers()["stdlib"]
    timing = h.Timing(_config(), n=50, repeats=1)
    if sys.version_info >= (3, 14):
        assert peer.unavailable() is None
        m = timing.run(peer, bench_overhead._submit_all, check=bench_overhead._check_count)
        assert m.ok, m.detail
        grid, start = _tasks.make_grid()
        cells = bench_gridsearch.candidates(grid, start, step=150)
        with cf.InterpreterPoolExecutor(2) as ex:  # plain, no initializer
            got = bench_gridsearch.solve_map(ex, grid, start, cells)
        assert got == bench_gridsearch.solve_serial(grid, start, cells)
    else:
        assert peer.unavailable() == "n/a (needs 3.14)"
        m = timing.run(peer, bench_overhead._submit_all)
        assert m.status == "n/a" and m.detail == "n/a (needs 3.14)"


def test_table_render_aligns_columns():
    t = h.Table(
        "T",
        ["peer", "µs/task", "vs. interpool"],
        [["a", "1.23", "1.00×"], ["longer name", "123", "100×"], ("x", "n/a (needs 3.14)")],
    )
    lines = t.render().splitlines()
    assert lines[0] == "T"
    assert len({len(line) for line in lines[1:5]}) == 1  # header, rule, two full rows
    assert lines[-1].startswith("x") and lines[-1].endswith("n/a (needs 3.14)")


def test_formatting():
    assert h.fmt_ratio(12.345) == "12.3×"
    assert h.fmt_ratio(0.78) == "0.780×"
    assert h.fmt_ratio(1234.5) == "1,234×"
    assert h.fmt_us(4.2e-6) == "4.20"
    assert h.fmt_ratio(float("nan")) == "-"


def test_scaling_worker_counts():
    assert bench_scaling.worker_counts(1) == [1]
    assert bench_scaling.worker_counts(4) == [1, 2, 3, 4]
    assert bench_scaling.worker_counts(12) == [1, 2, 4, 8, 12]
    assert bench_scaling.worker_counts(16) == [1, 2, 4, 8, 16]


def test_workloads_are_discovered():
    workloads = discover()
    assert list(workloads)[:3] == ["overhead", "scaling", "gridsearch"]
    for mod in workloads.values():
        assert mod.NAME and mod.TITLE and callable(mod.run)


# -- CLI ----------------------------------------------------------------------


#: Tiny sizes for a smoke run of the CLI.
SMALL = ("--quick", "--scale", "0.01", "--repeats", "1")


def _bench(*args, env=None, timeout=120):
    """``python -m interpool.bench ARGS`` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "interpool.bench", *args],
        env=env or _bench_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _run_cli(tmp_path, *args, **env):
    out = tmp_path / "bench.json"
    proc = _bench(*SMALL, "--json", str(out), *args, env=_bench_env(**env))
    return proc, out


def _check_json(out, names):
    doc = json.loads(out.read_text(encoding="utf-8"))
    meta = doc["meta"]
    assert meta["python"] == ".".join(map(str, sys.version_info[:3]))
    assert meta["cpu_count"] == os.cpu_count() and meta["quick"] is True
    assert list(doc["workloads"]) == names
    grid = doc["workloads"].get("gridsearch")
    if grid:
        rows = grid["results"]["peers"]
        answers = {r["answer"] for r in rows if r["status"] == "ok"}
        assert len(answers) == 1 and grid["params"]["answer"] in answers
        assert {r["peer"] for r in rows} >= {"serial", "interpool", "threads"}
        for r in rows:
            assert r["status"] in ("ok", "n/a"), r
    return doc


def _run_real(tmp_path, name):
    """Run one workload against the real interpool (skip where it cannot be imported); the process and its JSON."""
    try:
        h.load_interpool()
    except h.InterpoolUnavailable:
        pytest.skip("interpool cannot be imported")
    proc, out = _run_cli(tmp_path, "--only", name)
    assert proc.returncode == 0, proc.stderr
    return proc, _check_json(out, [name])


def test_cli_harness_with_stand_in(tmp_path):
    """The whole CLI path with the developer-only ThreadPool stand-in."""
    proc, out = _run_cli(tmp_path, "--peers", "interpool", "threads", "stdlib", **{h.FAKE_ENV: "1"})
    assert proc.returncode == 0, proc.stderr
    assert "WARNING: INTERPOOL_BENCH_FAKE=1" in proc.stdout
    for title in ("Tiny-task overhead", "CPU-bound scaling", "Grid search", "asyncio: Pool.run"):
        assert title in proc.stdout
    assert "vs. interpool" in proc.stdout and "vs. serial" in proc.stdout
    # Every workload the CLI discovers runs (other bench_*.py modules included).
    doc = _check_json(out, list(discover()))
    assert doc["meta"]["fake_interpool"] is True


def test_cli_gridsearch_real_interpool(tmp_path):
    """Against the real interpool: results, or a clear error if it can't import."""
    try:
        h.load_interpool()
    except h.InterpoolUnavailable:
        importable = False
    else:
        importable = True
    proc, out = _run_cli(tmp_path, "--only", "gridsearch")
    if importable:
        assert proc.returncode == 0, proc.stderr
        doc = _check_json(out, ["gridsearch"])
        assert doc["meta"]["fake_interpool"] is False
        assert "[FAKE" not in proc.stdout
    else:
        assert proc.returncode == 2
        assert "cannot import interpool" in proc.stderr
        assert not out.exists()


def test_cli_asyncio_real_interpool(tmp_path):
    """The asyncio workload end to end at tiny sizes: every peer runs or is n/a."""
    proc, doc = _run_real(tmp_path, "asyncio")
    results = doc["workloads"]["asyncio"]["results"]
    assert set(results) == {"gather", "sequential", "async_pool", "gridsearch"}
    for rows in results.values():
        assert {r["status"] for r in rows} <= {"ok", "n/a"}, rows
        assert any(r["peer"] == "interpool" and r["status"] == "ok" for r in rows)
    grid = [r["answer"] for r in results["gridsearch"] if r["status"] == "ok"]
    assert len(set(grid)) == 1


# -- the scaling chart (--plot) ----------------------------------------------------


def _plot_cli(tmp_path, target, *extra, **env):
    return _bench(
        "--plot",
        str(target),
        *SMALL,
        "--workers",
        "2",
        "--peers",
        "interpool",
        "threads",
        "-q",
        *extra,
        env=_bench_env(**env),
        timeout=300,
    )


def test_plot_writes_a_valid_svg(tmp_path):
    pytest.importorskip("matplotlib")
    import xml.etree.ElementTree as ET

    target = tmp_path / "scaling.svg"
    proc = _plot_cli(tmp_path, target, "--only", "scaling")
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {target}" in proc.stdout
    # The chart's other workload ran too, and nothing else.
    assert "== CPU-bound scaling ==" in proc.stdout and "== Grid search scaling ==" in proc.stdout
    assert "== Tiny-task overhead ==" not in proc.stdout
    root = ET.parse(target).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = target.read_text(encoding="utf-8")
    for label in ("ideal", "interpool", "ThreadPoolExecutor", "CPU-bound", "grid search", "workers"):
        assert label in text, label


def test_plot_writes_a_valid_png_with_other_workloads(tmp_path):
    pytest.importorskip("matplotlib")
    import struct

    target = tmp_path / "scaling.png"
    proc = _plot_cli(tmp_path, target, "--only", "overhead")
    assert proc.returncode == 0, proc.stderr
    assert "== Tiny-task overhead ==" in proc.stdout and "== Grid search scaling ==" in proc.stdout
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 500 and height > 200


def test_plot_without_matplotlib_says_how_to_get_it(tmp_path):
    blocker = tmp_path / "blocked" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('blocked for the test')\n")
    env = _bench_env()
    env["PYTHONPATH"] = os.pathsep.join([str(blocker.parent), env["PYTHONPATH"]])
    target = tmp_path / "scaling.svg"
    proc = _bench("--plot", str(target), "--quick", env=env)
    assert proc.returncode == 2
    assert "--plot needs matplotlib" in proc.stderr and "pip install 'interpool[plot]'" in proc.stderr
    assert proc.stdout == "" and not target.exists()  # nothing ran
    # Without --plot the benchmark runs as usual.
    proc = _bench(*SMALL, "--only", "overhead", "--peers", "interpool", "-q", env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "== Tiny-task overhead ==" in proc.stdout


def test_plot_refuses_an_unknown_file_type(tmp_path):
    proc = _bench("--plot", str(tmp_path / "chart.txt"), timeout=60)
    assert proc.returncode == 2
    assert "--plot FILE must end in one of .svg, .png, .pdf" in proc.stderr


def test_cli_startup_real_interpool(tmp_path):
    """The startup workload end to end: every peer runs or is n/a, and the JSON holds the figures."""
    proc, doc = _run_real(tmp_path, "startup")
    results = doc["workloads"]["startup"]["results"]
    rows = results["startup"]
    assert {r["status"] for r in rows} <= {"ok", "n/a"}, rows
    ok = {(r["peer"], r["workers"]) for r in rows if r["status"] == "ok"}
    assert {("interpool", 2), ("interpool", 8), ("cpython", 2), ("cpython", 8)} <= ok
    if sys.version_info >= (3, 14):
        assert ("stdlib", 8) in ok
    phases = results["phases"][0]
    assert phases["status"] == "ok" and phases["best_s"] > 0
    assert "(b) one worker's start-up" in proc.stdout


def test_cli_list_and_bad_args(tmp_path):
    proc = _bench("--list", timeout=60)
    assert proc.returncode == 0 and "gridsearch" in proc.stdout
    proc = _bench("--only", "nope", timeout=60)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_cli_stop_real_interpool(tmp_path):
    """The stop workload end to end at tiny sizes: interpool stops its tasks, the rest run or are n/a."""
    proc, doc = _run_real(tmp_path, "stop")
    stop = doc["workloads"]["stop"]
    results, params = stop["results"], stop["params"]
    assert set(results) == {"interrupt", "timeout", "ctrl_c"}
    for rows in results.values():
        assert {r["status"] for r in rows} <= {"ok", "n/a"}, rows
    ip = {name: next(r for r in rows if r["peer"] == "interpool") for name, rows in results.items()}
    assert all(r["status"] == "ok" for r in ip.values()), ip
    # stats() counted exactly the interrupts and timeouts that were measured.
    assert ip["interrupt"]["answer"] == ip["interrupt"]["n"] == params["interrupts"]
    assert ip["timeout"]["answer"] == ip["timeout"]["n"] == params["timeout_tasks"]
    assert len(ip["ctrl_c"]["times_s"]) == params["ctrl_c_repeats"]
    threads = {name: next(r for r in rows if r["peer"] == "threads") for name, rows in results.items()}
    assert threads["interrupt"]["status"] == threads["timeout"]["status"] == "n/a"
    assert threads["ctrl_c"]["status"] == "ok"
    assert [t["text"] for t in stop["targets"]] == [
        "interpool interrupt p99 ≤ 10 ms",
        "interpool timeout overshoot p99 ≤ 10 ms",
        "interpool Ctrl-C to exit ≤ 0.5 s",
    ]


def test_stop_tasks():
    import queue
    import threading

    assert _tasks.spin(0) == 0
    assert _tasks.spin(0.001) >= 1
    started = threading.Event()
    assert _tasks.spin_signalled(started, 0) == 0 and started.is_set()
    log = queue.Queue()
    assert _tasks.spin_recorded(log, 7, 0) == 0
    index, start = log.get_nowait()
    assert index == 7 and isinstance(start, float)
    for fn in (_tasks.spin, _tasks.spin_signalled, _tasks.spin_recorded, _tasks.spin_announced):
        assert pickle.loads(pickle.dumps(fn)) is fn


@pytest.mark.parametrize("name", ["overhead", "scaling", "gridsearch", "asyncio", "stop", "startup", "gridscaling"])
def test_wrapper_scripts_call_the_package(name):
    here = os.path.dirname(os.path.abspath(__file__))
    script = os.path.join(here, os.pardir, os.pardir, "benchmarks", f"bench_{name}.py")
    with open(script, encoding="utf-8") as f:
        assert f'run("{name}")' in f.read()
    # The wrapper really starts that workload's CLI.
    proc = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout


def test_cli_byvalue_real_interpool(tmp_path):
    """By-value and by-name functions side by side, in one run, with their ratio."""
    proc, doc = _run_real(tmp_path, "byvalue")
    assert "vs. by name" in proc.stdout
    results = doc["workloads"]["byvalue"]["results"]
    for section in ("submit", "map"):
        assert [r["peer"] for r in results[section]] == ["interpool", "interpool-by-value"]
        assert all(r["status"] == "ok" and r["per_item_s"] > 0 for r in results[section]), results[section]
    assert [t["text"] for t in doc["workloads"]["byvalue"]["targets"]] == [
        "submit: by value ≤ 1.5× by name per call",
        "map: by value ≤ 1.5× by name per call",
    ]
