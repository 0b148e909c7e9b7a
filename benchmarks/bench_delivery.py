#!/usr/bin/env python3
"""Delivery latency: task end to done-callback under a stream of long tasks, beside ThreadPoolExecutor.

Thin wrapper around ``python -m interpool.bench --only delivery``; accepts the same
options (--quick, --json FILE, --workers N, ...). See benchmarks/README.md.
"""

from _wrapper import run

if __name__ == "__main__":
    run("delivery")
