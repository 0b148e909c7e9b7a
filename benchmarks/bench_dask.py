#!/usr/bin/env python3
"""dask.distributed: one worker process with N interpreters against N threads and N worker processes.

Thin wrapper around ``python -m interpool.bench --only dask``; accepts the same
options (--quick, --json FILE, --workers N, ...). See benchmarks/README.md.
"""

from _wrapper import run

if __name__ == "__main__":
    run("dask")
