#!/usr/bin/env python3
"""AoC 2024 day 6 part 2 grid search (~17 kB argument per task), speedup vs. serial.

Thin wrapper around ``python -m interpool.bench --only gridsearch``; accepts the same
options (--quick, --json FILE, --workers N, ...). See benchmarks/README.md.
"""

from _wrapper import run

if __name__ == "__main__":
    run("gridsearch")
