"""Shared start-up of the benchmarks/bench_*.py wrappers."""

import importlib
import os
import sys


def run(workload):
    """Run ``interpool.bench.bench_<workload>.main()`` and exit with its status.

    Uses the installed interpool; falls back to this checkout's src/ (the
    compiled extension must then have been built in place).
    """
    try:
        import interpool.bench  # noqa: F401
    except ImportError:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "src"))
        try:
            import interpool.bench  # noqa: F401
        except ImportError as exc:
            sys.exit(f"error: cannot import interpool: {exc} (build/install it first, e.g. pip install .)")
    module = importlib.import_module(f"interpool.bench.bench_{workload}")
    raise SystemExit(module.main())
