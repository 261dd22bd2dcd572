"""The one look of every figure."""
from __future__ import annotations


def plot_by_stability(ax, points, style: str = "-", label: str | None = None, **kwargs) -> None:
    """A theory curve from (x, y, rs_stable) points: RS-stable stretches drawn plainly, RS-unstable ones (replicon
    λ_R ≥ 1) thin and faded; consecutive stretches share their end point so the curve stays connected."""
    runs = []
    for x, y, stable in sorted(points):
        stable = stable is not False  # rows written before the replicon existed have no flag: drawn plainly
        if runs and runs[-1][0] == stable:
            runs[-1][1].append((x, y))
        else:
            runs.append((stable, ([runs[-1][1][-1]] if runs else []) + [(x, y)]))
    for index, (stable, run) in enumerate(runs):
        ax.plot(*zip(*run), style, lw=1.5 if stable else 0.7, alpha=1.0 if stable else 0.45,
                label=label if index == 0 else None, **kwargs)


def plot_style() -> None:
    """One look for every figure (headless backend, paper-like sizes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "figure.figsize": (4.8, 3.6), "figure.dpi": 110, "font.size": 10, "axes.labelsize": 11,
        "legend.fontsize": 8, "legend.frameon": False, "axes.spines.top": False, "axes.spines.right": False,
        "lines.linewidth": 1.5, "lines.markersize": 4, "errorbar.capsize": 2, "savefig.bbox": "tight",
    })
