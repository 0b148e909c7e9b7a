#!/usr/bin/env python3
"""SharedBuffer vs bytes: µs per call for 1 KiB, 1 MiB and 64 MiB of data.

Thin wrapper around ``python -m interpool.bench --only buffer``; accepts the same
options (--quick, --json FILE, --workers N, ...). See benchmarks/README.md.
"""

import os
import sys

# Use the installed package; fall back to this checkout's src/ (the compiled
# extension must then have been built in place).
try:
    import interpool.bench  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "src"))
    try:
        import interpool.bench  # noqa: F401
    except ImportError as exc:
        sys.exit(f"error: cannot import interpool: {exc} (build/install it first, e.g. pip install -e .)")

from interpool.bench.bench_buffer import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
