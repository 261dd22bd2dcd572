"""What the benchmarks share: their main (measure, write, print, draw) and the figure of relative errors."""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from harness.outputs import print_written, read_csv, read_json, save_figure, write_csv, write_json
from harness.plotting import plot_style
from harness.provenance import run_metadata


def relative_error_bars(rows: Sequence[dict], series: dict[str, str]):
    """Benchmark figure: per quantity (row), log-scale bars of |row[key]| / |row["quadrature"]| for every key of
    `series` (key → legend label)."""
    import matplotlib.pyplot as plt

    plot_style()
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    positions, width = np.arange(len(rows)), 0.8 / len(series)
    for index, (key, label) in enumerate(series.items()):
        ax.bar(positions + width * (index - (len(series) - 1) / 2), width=width, label=label,
               height=[max(abs(row[key]) / abs(row["quadrature"]), 1e-17) for row in rows])
    ax.set_xticks(positions, [row["quantity"] for row in rows], rotation=30)
    ax.set(yscale="log", ylabel="relative to the quadrature value")
    ax.legend(fontsize=7)
    return fig


def benchmark_main(cfg, stem: str, measure: Callable[[Any], tuple[list[dict], dict]],
                   plot: Callable[[list[dict]], Any]) -> None:
    """The main of a benchmark: `measure(cfg)` → (rows, summary) unless --replot, then csv + json (summary and run
    metadata), the summary printed, and the figure drawn from the csv."""
    out_dir, started = cfg.output_dir, time.time()
    if not cfg.replot:
        rows, summary = measure(cfg)
        write_csv(out_dir / f"{stem}.csv", rows)
        write_json(out_dir / f"{stem}.json", run_metadata(cfg, started, "cpu", summary=summary))
    for key, value in read_json(out_dir / f"{stem}.json")["summary"].items():
        print(f"{key:48s} {value}")
    paths = save_figure(plot(read_csv(out_dir / f"{stem}.csv")), out_dir, stem)
    print_written([out_dir / f"{stem}.csv", out_dir / f"{stem}.json", *paths])
