#!/usr/bin/env python3
"""asyncio: await pool.run overhead, AsyncPool sleep+CPU coroutines, grid search via to_interpreter.

Thin wrapper around ``python -m interpool.bench --only asyncio``; accepts the same
options (--quick, --json FILE, --workers N, ...). See benchmarks/README.md.
"""

from _wrapper import run

if __name__ == "__main__":
    run("asyncio")
