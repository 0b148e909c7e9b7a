"""The scaling chart: ``python -m interpool.bench --plot FILE.svg`` (or .png).

Speedup against workers, 1..N, for each peer on the CPU-bound (``scaling``)
and grid search (``gridscaling``) workloads, with the ideal line.  Drawn
with matplotlib, an optional extra (``pip install 'interpool[plot]'``):
the benchmark itself runs without it.
"""

from __future__ import annotations

import os

#: The workloads the chart needs.
WORKLOADS = ("scaling", "gridscaling")
#: File types the chart can be written as.
FORMATS = (".svg", ".png", ".pdf")

MISSING = (
    "--plot needs matplotlib, which is not installed: install it with "
    "pip install 'interpool[plot]' (or pip install matplotlib)"
)

# One style per peer kind, the same on both panels.
_STYLE = {
    "interpool": ("interpool", "tab:blue", "o"),
    "stdlib": ("InterpreterPoolExecutor (stdlib)", "tab:orange", "s"),
    "processes": ("ProcessPoolExecutor", "tab:green", "^"),
    "threads": ("ThreadPoolExecutor", "tab:red", "v"),
}


def check_target(path: str) -> str | None:
    """A message if ``path`` cannot be plotted to (no matplotlib, unknown type), else None."""
    if os.path.splitext(path)[1].lower() not in FORMATS:
        return f"--plot FILE must end in one of {', '.join(FORMATS)}: {path!r}"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return MISSING
    return None


def curves(result) -> dict[str, list[tuple[int, float]]]:
    """peer key -> [(workers, speedup)] from a scaling or gridscaling WorkloadResult."""
    serial = [m for m in result.data.get("serial", []) if m.ok]
    if not serial:
        return {}
    base = serial[0].best
    out: dict[str, list[tuple[int, float]]] = {}
    for m in result.data.get("peers", []):
        if m.ok and m.workers and m.key in _STYLE:
            out.setdefault(m.key, []).append((m.workers, base / m.best))
    return {k: sorted(v) for k, v in out.items()}


def draw(results: dict, meta: dict, path: str) -> None:
    """Write the chart of ``results`` (workload name -> WorkloadResult) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # SVG text stays text: smaller, and searchable

    panels = [
        (name, title)
        for name, title in (("scaling", "CPU-bound (sum_squares)"), ("gridscaling", "grid search (AoC 2024 day 6)"))
        if name in results
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4), squeeze=False)
    top = max(meta.get("workers") or 1, 1)
    for ax, (name, title) in zip(axes[0], panels):
        ax.plot([1, top], [1, top], color="0.6", linestyle="--", linewidth=1, label="ideal")
        for key, points in curves(results[name]).items():
            label, color, marker = _STYLE[key]
            xs, ys = zip(*points)
            ax.plot(xs, ys, color=color, marker=marker, linewidth=1.6, markersize=5, label=label)
        ax.set_title(title)
        ax.set_xlabel("workers")
        ax.set_ylabel("speedup vs. serial")
        ax.set_xlim(0.8, top + 0.2)
        ax.set_ylim(0, top * 1.05 + 0.2)
        ax.set_xticks(sorted({w for pts in curves(results[name]).values() for w, _ in pts} | {1, top}))
        ax.grid(True, linewidth=0.4, alpha=0.5)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(
        f"interpool scaling — Python {meta.get('python')}, {meta.get('cpu_count')} CPUs, "
        f"{meta.get('platform', '')[:48]}, {str(meta.get('date', ''))[:10]}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None} if path.lower().endswith(".svg") else None)
    plt.close(fig)
