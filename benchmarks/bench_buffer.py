#!/usr/bin/env python3
"""SharedBuffer vs bytes: µs per call for 1 KiB, 1 MiB and 64 MiB of data.

Thin wrapper around ``python -m interpool.bench --only buffer``; accepts the same
options (--quick, --json FILE, --workers N, ...). See benchmarks/README.md.
"""

from _wrapper import run

if __name__ == "__main__":
    run("buffer")
