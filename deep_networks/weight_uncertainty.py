"""Weight uncertainty of the field-space binary network during permuted MNIST (the paper's weight-uncertainty plots).

Reads the snapshots written by permuted_mnist.py (permuted_mnist_snapshots_<method>_seed<k>.npz: histograms
and per-layer statistics taken at the start of every epoch, σ with that epoch's β, and after the last epoch).
Per synapse σ = 1 − tanh²(βθ) (the variance of w = ±1), the KL gradient K = β²σ(θ_t)(θ_t − θ_{t−1}), and
"consolidated" = σ < 0.01.

Figure, top row: histograms of log10 σ per layer at the end of every task (vcl); bottom row: mean σ per layer vs
epochs trained, fraction of consolidated synapses vs epochs trained (one line style per method), histogram of
log10 |K| of layer 1 at the end of every task. Spec check: σ piles up near 0 as β grows, with a shrinking but
non-zero plastic population near σ ≈ 1; mean σ of layers 1–2 ≈ 0.40 → 0.16 (task 1) → 0.05 (task 5),
consolidated fraction ≈ 0.09 → 0.54 → 0.82.
Runtime: the README's figure table (the training is done by permuted_mnist.py; --quick makes a tiny synthetic run first).

    python deep_networks/weight_uncertainty.py                  # reads figures/permuted_mnist_snapshots_*.npz
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import numpy as np

from deep_networks.continual import run_methods, setup_torch
from deep_networks.continual_config import ContinualConfig
from deep_networks.image_tasks import permuted_tasks, resolve_data
from harness.command_line import run
from harness.config import BaseConfig
from harness.devices import torch_generator
from harness.errors import ConfigError
from harness.figure import Computed, figure_main
from harness.plotting import plot_style
from harness.provenance import recorded_path

STEM = "weight_uncertainty"
QUANTITIES = ("sigma_mean", "consolidated", "field_abs_mean", "kl_abs_mean")


# ---- hyperparameters
@dataclasses.dataclass
class Config(BaseConfig):
    snapshot_dir: str = ""  # folder with permuted_mnist_snapshots_<method>_seed<k>.npz (default: --out_dir)
    path_fields: ClassVar[tuple[str, ...]] = (*BaseConfig.path_fields, "snapshot_dir")
    methods: tuple[str, ...] = ("vcl", "vcl_no_kl")  # methods to compare (those with snapshots on disk)
    epochs_per_task: int = 5  # epochs per task of the permuted run (marks the end of each task)


QUICK = {"epochs_per_task": 2}


def snapshot_path(folder: Path, method: str, seed: int) -> Path:
    return Path(folder) / f"permuted_mnist_snapshots_{method}_seed{seed}.npz"


def make_quick_snapshots(cfg: Config, folder: Path) -> None:
    """--quick without snapshots: a tiny synthetic permuted sequence, trained by the shared protocol
    (continual.run_methods), writes them to folder."""
    run_cfg = dataclasses.replace(ContinualConfig(), quick=True, synthetic=True, epochs_per_task=cfg.epochs_per_task,
                                  n_train=640, hidden=(32, 32), eval_images=200, methods=cfg.methods,
                                  seed=cfg.seed, device=cfg.device, out_dir=str(folder))
    setup_torch(run_cfg)
    run_methods(run_cfg, (two_permuted_tasks, (run_cfg,)), "permuted_mnist", folder)


def two_permuted_tasks(run_cfg, device, dtype) -> list:
    base = resolve_data(run_cfg, ("mnist",), dtype, device)["mnist"]
    return permuted_tasks(base, 2, torch_generator(run_cfg.seed + 500))


def load_rows(cfg: Config, folder: Path) -> tuple[list[dict], list[dict]]:
    """Snapshots → tidy rows: per-layer statistics after every epoch, histograms at the end of every task."""
    stats, hists = [], []
    for method in cfg.methods:
        path = snapshot_path(folder, method, cfg.seed)
        if not path.exists():
            continue
        try:
            data = dict(np.load(path))
        except Exception as error:  # truncated or not an npz file
            raise ConfigError(f"{path} is unreadable ({type(error).__name__}): rerun deep_networks/permuted_mnist.py "
                              f"to write it again") from None
        for epoch in range(data["sigma_mean"].shape[0]):
            for layer in range(data["sigma_mean"].shape[1]):
                base = {"method": method, "seed": cfg.seed, "epochs_trained": epoch, "layer": layer + 1}
                stats += [{**base, "quantity": name, "value": float(data[name][epoch, layer])} for name in QUANTITIES]
                if epoch % cfg.epochs_per_task:
                    continue  # histograms only at the initial state and at the end of every task
                for kind, bins, key in (("log10_sigma", data["sigma_bins"], "sigma_hist"),
                                        ("log10_abs_kl", data["sigma_bins"], "kl_hist"),
                                        ("field", data["field_bins"], "field_hist")):
                    hists += [{**base, "kind": kind, "bin_left": float(left), "bin_right": float(right),
                               "count": int(count)} for left, right, count in
                              zip(bins[:-1], bins[1:], data[key][epoch, layer])]
    if not stats:
        raise ConfigError(f"no snapshots {snapshot_path(folder, '<method>', cfg.seed).name} in {folder}: run "
                          f"deep_networks/permuted_mnist.py first (or pass --snapshot_dir)")
    return stats, hists


def summary(stats: list[dict], epochs_per_task: int) -> dict:
    """Mean σ and consolidated fraction per method and layer at init and at the end of every task."""
    table = {}
    for row in stats:
        if row["quantity"] in ("sigma_mean", "consolidated") and row["epochs_trained"] % epochs_per_task == 0:
            task = row["epochs_trained"] // epochs_per_task
            key = f"{row['method']}/layer{row['layer']}/{row['quantity']}"
            table.setdefault(key, {})[f"after_task_{task}"] = round(row["value"], 4)
    return table


def plot(cfg: Config, tables: dict, record: dict):
    import matplotlib.pyplot as plt

    plot_style()
    stats, hists, epochs_per_task = tables["rows"], tables["histograms"], record["config"]["epochs_per_task"]
    methods = list(dict.fromkeys(row["method"] for row in stats))
    layers = sorted({row["layer"] for row in stats})
    last = max(row["epochs_trained"] for row in stats)
    ends = list(range(0, last + 1, epochs_per_task))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(ends)))
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))

    def histogram(ax, kind, layer, title, first=0):
        for end, color in zip(ends[first:], colors[first:]):
            selected = [row for row in hists if row["method"] == methods[0] and row["layer"] == layer
                        and row["kind"] == kind and row["epochs_trained"] == end]
            centers = [(row["bin_left"] + row["bin_right"]) / 2 for row in selected]
            total = max(sum(row["count"] for row in selected), 1)
            label = f"after task {end // epochs_per_task}" if end else "initial"
            ax.plot(centers, [row["count"] / total for row in selected], color=color, label=label)
        ax.set(title=title, ylabel="fraction of synapses")

    for ax, layer in zip(axes[0], layers):
        histogram(ax, "log10_sigma", layer, f"{methods[0]}: layer {layer}")
        ax.set(xlabel="log10 σ", xlim=(-40, 0.5))
    axes[0][0].legend()
    for column, (quantity, label) in enumerate((("sigma_mean", "mean σ"), ("consolidated", "fraction σ < 0.01"))):
        ax = axes[1][column]
        for method, style in zip(methods, ("-", "--", ":", "-.")):
            for layer in layers:
                points = sorted((row["epochs_trained"], row["value"]) for row in stats if row["method"] == method
                                and row["layer"] == layer and row["quantity"] == quantity)
                ax.plot(*zip(*points), style, color=f"C{layer - 1}", label=f"{method}, layer {layer}")
        for boundary in ends[1:-1]:
            ax.axvline(boundary, color="0.7", lw=0.8, ls="--")
        ax.set(xlabel="epochs trained", ylabel=label)
    axes[1][0].legend(fontsize=6)
    histogram(axes[1][2], "log10_abs_kl", layers[0], f"{methods[0]}: KL gradient, layer 1", first=1)
    axes[1][2].set(xlabel="log10 |K|", xlim=(-25, 0))
    fig.tight_layout()
    return fig


def compute(cfg: Config) -> Computed:
    folder = Path(cfg.snapshot_dir) if cfg.snapshot_dir else cfg.output_dir  # where permuted_mnist.py wrote them
    if cfg.quick and not snapshot_path(folder, cfg.methods[0], cfg.seed).exists():
        make_quick_snapshots(cfg, folder)  # a tiny synthetic run makes them
    stats, hists = load_rows(cfg, folder)
    return Computed({"rows": stats, "histograms": hists}, dict(snapshot_dir=recorded_path(str(folder)),
                                                               summary=summary(stats, cfg.epochs_per_task)))


def main(cfg: Config) -> None:
    figure_main(cfg, STEM, compute, plot, tables=("rows", "histograms"))


if __name__ == "__main__":
    run(main, Config, QUICK)
