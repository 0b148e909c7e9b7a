#!/usr/bin/env python3
"""interpool.Queue ping-pong round trips per second vs concurrent.interpreters.Queue (3.14).

Thin wrapper around ``python -m interpool.bench --only queue``; accepts the same
options (--quick, --json FILE, --workers N, ...). See benchmarks/README.md.
"""

from _wrapper import run

if __name__ == "__main__":
    run("queue")
