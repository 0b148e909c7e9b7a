#!/usr/bin/env python3
"""Tiny-task overhead (µs per task) of interpool vs. the stdlib executors.

Thin wrapper around ``python -m interpool.bench --only overhead``; accepts the same
options (--quick, --json FILE, --workers N, ...). See benchmarks/README.md.
"""

from _wrapper import run

if __name__ == "__main__":
    run("overhead")
