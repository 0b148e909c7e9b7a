"""Command line: ``python -m interpool.bench [--quick] [--json FILE] [--only NAME ...] [--workers N] [--plot FILE]``.

Runs every workload (each ``bench_<name>.py`` module of this package) and
prints one table per workload with the peers side by side.  ``--plot
FILE.svg`` (or .png) also draws the speedup curves of the scaling workloads
(run even where ``--only`` leaves them out; needs matplotlib: ``pip install
'interpool[plot]'``).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import pkgutil
import platform
import sys
import time

from . import _harness as h
from . import _plot

#: Workloads listed here run first, in this order; others follow by name.
PREFERRED_ORDER = ("overhead", "scaling", "gridsearch")


def discover() -> dict:
    """name -> workload module, for every ``bench_*`` module in this package."""
    package = __package__ or "interpool.bench"
    names = sorted(
        info.name[len("bench_") :]
        for info in pkgutil.iter_modules(importlib.import_module(package).__path__)
        if info.name.startswith("bench_")
    )
    names.sort(key=lambda n: (PREFERRED_ORDER.index(n) if n in PREFERRED_ORDER else len(PREFERRED_ORDER), n))
    return {n: importlib.import_module(f"{package}.bench_{n}") for n in names}


def parse_args(argv, workloads, default_only):
    p = argparse.ArgumentParser(
        prog="python -m interpool.bench",
        description="Benchmark interpool against the standard library executors.",
    )
    p.add_argument("--quick", action="store_true", help="small sizes: the whole suite in well under a minute")
    p.add_argument("--json", metavar="FILE", help="also write all results as JSON to FILE")
    p.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        choices=list(workloads),
        default=default_only,
        help=f"run only these workloads (of: {', '.join(workloads)})",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="workers per executor; scaling goes 1..N (default: CPU count, %(default)s)",
    )
    p.add_argument(
        "--peers",
        nargs="+",
        metavar="PEER",
        choices=list(h.PEER_KEYS),
        help=f"run only these peers (of: {', '.join(h.PEER_KEYS)}); "
        "the serial baseline always runs where a workload needs it",
    )
    p.add_argument("--repeats", type=int, metavar="K", help="best of K runs (default per workload)")
    p.add_argument(
        "--scale", type=float, default=1.0, metavar="F", help="multiply all sizes by F (e.g. 0.01 for smoke tests)"
    )
    p.add_argument(
        "--plot",
        metavar="FILE",
        help="also draw speedup vs. workers (CPU-bound and grid search) to FILE (.svg, .png or .pdf); "
        "also runs the scaling workloads where --only leaves them out; needs matplotlib "
        "(pip install 'interpool[plot]')",
    )
    p.add_argument("--list", action="store_true", help="list workloads and exit")
    p.add_argument("-q", "--no-progress", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    if args.workers < 1:
        p.error("--workers must be >= 1")
    if args.scale <= 0:
        p.error("--scale must be > 0")
    return args


def metadata(args) -> dict:
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "python_build": " ".join(platform.python_build()),
        "gil_enabled": getattr(sys, "_is_gil_enabled", lambda: True)(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "workers": args.workers,
        "quick": args.quick,
        "scale": args.scale,
        "interpool_version": h.interpool_version(),
        "fake_interpool": h.fake_interpool(),
        "argv": sys.argv[1:],
    }


def header(meta: dict) -> str:
    lines = [
        f"interpool benchmarks — {meta['date']}",
        f"Python {meta['python']} ({meta['implementation']}{'' if meta['gil_enabled'] else ', free-threaded'})"
        f" on {meta['platform']}",
        f"CPUs: {meta['cpu_count']}   workers: {meta['workers']}   "
        f"interpool: {meta['interpool_version']}   mode: {'quick' if meta['quick'] else 'full'}"
        + (f" (scale {meta['scale']:g})" if meta["scale"] != 1 else ""),
    ]
    if meta["fake_interpool"]:
        lines.append(
            f"WARNING: {h.FAKE_ENV}=1 (developer-only): the 'interpool' rows are a "
            "ThreadPoolExecutor stand-in, NOT interpool."
        )
    return "\n".join(lines)


def main(argv=None, default_only=None) -> int:
    workloads = discover()
    args = parse_args(argv, workloads, default_only)
    if args.list:
        for name, mod in workloads.items():
            print(f"{name:12} {mod.TITLE}")
        return 0
    if args.plot:
        problem = _plot.check_target(args.plot)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    peers = frozenset(args.peers) if args.peers else None
    if peers is None or "interpool" in peers:
        try:
            h.load_interpool()
        except h.InterpoolUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            print(
                "hint: build and install the package first (e.g. `pip install -e .`), "
                "or leave interpool out with --peers.",
                file=sys.stderr,
            )
            return 2

    config = h.Config(
        quick=args.quick,
        workers=args.workers,
        scale=args.scale,
        repeats=args.repeats,
        peers=peers,
        progress=None if args.no_progress else sys.stderr,
    )
    meta = metadata(args)
    print(header(meta), flush=True)

    selected = args.only or list(workloads)
    if args.plot:  # the chart's workloads run too, whatever --only says
        selected = selected + [n for n in _plot.WORKLOADS if n not in selected]
    results = {}
    t_suite = time.perf_counter()
    for name in selected:
        config.log(f"[{name}] running ...")
        t0 = time.perf_counter()
        result = workloads[name].run(config)
        results[name] = result
        print()
        print(result.render(quick=config.quick))
        print(f"({name}: {time.perf_counter() - t0:.1f} s)", flush=True)
    meta["suite_seconds"] = round(time.perf_counter() - t_suite, 3)

    if args.json:
        doc = {
            "schema": 1,
            "meta": meta,
            "workloads": {name: r.as_dict() for name, r in results.items()},
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, ensure_ascii=False, allow_nan=False)
            f.write("\n")
        print(f"\nwrote {args.json}")

    if args.plot:
        _plot.draw(results, meta, args.plot)
        print(f"\nwrote {args.plot}")

    errors = [(n, m) for n, r in results.items() for m in r.errors]
    if errors:
        print(f"\n{len(errors)} peer run(s) failed:", file=sys.stderr)
        for name, m in errors:
            print(f"  {name}: {m.label}: {m.detail}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
