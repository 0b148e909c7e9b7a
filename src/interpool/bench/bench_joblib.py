"""joblib: ``Parallel(...)(delayed(f)(x) ...)`` on the "interpool" backend
against joblib's own loky (processes, warm) and threading backends.

(a) 10,000 tiny calls (``abs``) with joblib's auto-batching: the dispatch cost.
(b) 8 CPU-bound pure-Python calls (``sum_squares``): the speedup over running
    them one after another.
"""

from __future__ import annotations

import time

from . import _harness as h
from . import _tasks

NAME = "joblib"
TITLE = "joblib: the interpool backend vs loky and threading"
DESCRIPTION = (
    "Seconds for 10,000 tiny calls through Parallel (lower is better), and the speedup of 8 "
    "CPU-bound calls over a serial loop (higher is better). Every backend has its workers started before timing; best of the repeats."
)

BACKENDS = ["interpool", "loky", "threading"]
TARGET_TINY_VS_LOKY = 2.0
TARGET_SPEEDUP_SHARE = 0.9


def _time(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run(config: h.Config) -> h.WorkloadResult:
    workers = config.workers
    n_tiny = config.size(10_000, 2_000, minimum=20)
    n_cpu = 8
    work = config.size(3_000_000, 300_000, minimum=1_000)
    reps = config.reps(3, 1)
    missing = h.needs("joblib")
    rows: list[h.Row] = []
    data, tiny, speed = {}, {}, {}
    if missing is not None:
        rows.append(("all backends", missing))
    else:
        import joblib
        from joblib import Parallel, delayed

        import interpool.joblib  # noqa: F401  (registers the backend)

        serial = _time(lambda: [_tasks.sum_squares(work) for _ in range(n_cpu)], reps)
        for backend in BACKENDS:
            config.log(f"joblib: {backend}")
            with joblib.parallel_config(backend=backend, n_jobs=workers):
                Parallel()(delayed(abs)(-i) for i in range(200))  # start the workers
                tiny[backend] = _time(lambda: Parallel()(delayed(abs)(-i) for i in range(n_tiny)), reps)
                cpu = _time(
                    lambda: Parallel(batch_size=1)(delayed(_tasks.sum_squares)(work) for _ in range(n_cpu)), reps
                )
                speed[backend] = serial / cpu
            rows.append(
                [
                    backend,
                    h.fmt_s(tiny[backend]),
                    h.fmt_ratio(tiny[backend] / tiny["interpool"]),
                    h.fmt_ratio(speed[backend]),
                ]
            )
    table = h.Table(
        f"{n_tiny:,} tiny calls and {n_cpu} CPU-bound calls, n_jobs={workers}",
        ["backend", f"{n_tiny:,} tiny calls", "vs interpool", f"{n_cpu} CPU-bound: speedup"],
        rows,
        notes=["loky's workers are processes started before the timed runs (warm), as are interpool's."],
    )
    ok = missing is None
    targets = [
        h.target(
            f"tiny calls within {TARGET_TINY_VS_LOKY:g}× of warm loky",
            ok and tiny["interpool"] <= TARGET_TINY_VS_LOKY * tiny["loky"] if ok else None,
            f"interpool/loky {h.fmt_ratio(tiny['interpool'] / tiny['loky'])}" if ok else "",
        ),
        h.target(
            f"CPU-bound speedup ≥ {TARGET_SPEEDUP_SHARE:g} × {min(workers, n_cpu)}",
            speed["interpool"] >= TARGET_SPEEDUP_SHARE * min(workers, n_cpu) if ok else None,
            f"{h.fmt_ratio(speed['interpool'])}" if ok else "",
        ),
    ]
    params = {"workers": workers, "tiny_calls": n_tiny, "cpu_calls": n_cpu, "work": work}
    return h.WorkloadResult.of(__name__, params=params, tables=[table], targets=targets, data=data)


if __name__ == "__main__":
    from .__main__ import main

    raise SystemExit(main(default_only=[NAME]))
