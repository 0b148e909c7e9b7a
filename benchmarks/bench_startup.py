#!/usr/bin/env python3
"""Start-up until every worker has run a task, RSS per worker and shutdown, beside the stdlib executor and CPython's floor.

Thin wrapper around ``python -m interpool.bench --only startup``; accepts the same
options (--quick, --json FILE, --workers N, ...). See benchmarks/README.md.
"""

from _wrapper import run

if __name__ == "__main__":
    run("startup")
