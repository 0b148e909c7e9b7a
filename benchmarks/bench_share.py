#!/usr/bin/env python3
"""Grid search with the grid passed as interpool.share(grid), vs serial, plain and initializer peers.

Thin wrapper around ``python -m interpool.bench --only share``; accepts the same
options (--quick, --json FILE, --workers N, ...). See benchmarks/README.md.
"""

from _wrapper import run

if __name__ == "__main__":
    run("share")
