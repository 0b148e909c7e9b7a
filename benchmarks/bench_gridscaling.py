#!/usr/bin/env python3
"""Grid search speedup at 1..N workers for every peer at its best (the curves of --plot).

Thin wrapper around ``python -m interpool.bench --only gridscaling``; accepts the same
options (--quick, --json FILE, --workers N, ...). See benchmarks/README.md.
"""

from _wrapper import run

if __name__ == "__main__":
    run("gridscaling")
