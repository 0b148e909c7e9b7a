"""Shared start-up of the benchmarks/bench_*.py wrappers."""

import os
import sys


def run(workload):
    """Run ``python -m interpool.bench --only <workload>`` (other options from argv) and exit with its status.

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
    from interpool.bench.__main__ import main

    raise SystemExit(main(default_only=[workload]))
