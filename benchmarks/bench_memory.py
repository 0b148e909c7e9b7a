#!/usr/bin/env python3
"""RSS growth per recycled interpreter and per pool cycle, beside CPython's bare-interpreter leak.

Thin wrapper around ``python -m interpool.bench --only memory``; accepts the same
options (--quick, --json FILE, --workers N, ...). See benchmarks/README.md.
"""

from _wrapper import run

if __name__ == "__main__":
    run("memory")
