#!/usr/bin/env python3
"""Stopping running tasks: interrupt() latency, timeout overshoot, Ctrl-C to exit, beside the stdlib executors.

Thin wrapper around ``python -m interpool.bench --only stop``; accepts the same
options (--quick, --json FILE, --workers N, ...). See benchmarks/README.md.
"""

from _wrapper import run

if __name__ == "__main__":
    run("stop")
