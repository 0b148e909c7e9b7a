"""Benchmarks for interpool.

Run the suite with ``python -m interpool.bench`` (``--help`` for options).
Each workload lives in its own ``bench_<name>.py`` module in this package and
is discovered automatically; task functions live in :mod:`._tasks` so that
every peer (threads, processes, subinterpreters) can import them.
"""
