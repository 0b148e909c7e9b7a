#!/usr/bin/env python3
"""CPU-bound scaling (speedup vs. serial at 1..N workers) of interpool vs. the stdlib executors.

Thin wrapper around ``python -m interpool.bench --only scaling``; accepts the same
options (--quick, --json FILE, --workers N, ...). See benchmarks/README.md.
"""

from _wrapper import run

if __name__ == "__main__":
    run("scaling")
