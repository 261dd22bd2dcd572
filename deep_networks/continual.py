"""Continual-learning runs shared by the deep-network scripts: every method × seed on a task sequence
(`run_methods`: the points of the sweep executor, the σ/K snapshots they write, the store of finished runs), the
per-method summary, the accuracy plots (curves per method, accuracy matrices) and the json fields of a run.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from deep_networks.continual_config import ContinualConfig, batches_seeds, fingerprint, primary_mode
from deep_networks.image_tasks import cached_tasks
from deep_networks.training import FIELD_BINS, LOG_SIGMA_BINS, train_sequence
from harness.devices import resolve_device, torch_setup
from harness.points import PointStore
from harness.sweep import layout, run_points


# ----------------------------------------------------------------------------- method × seed runs
def seed_label(seeds: tuple[int, ...]) -> str:
    """'seed3' for one seed, 'seeds0-2' for a batched group: names the point and its checkpoint."""
    return f"seed{seeds[0]}" if len(seeds) == 1 else f"seeds{seeds[0]}-{seeds[-1]}"


def method_run(cfg: ContinualConfig, source: tuple, method: str, seeds: tuple[int, ...], stem: str, out_dir: str,
               snapshots: bool) -> list[dict]:
    """One method with its seeds through the task sequence (a point of `run_methods`, in whatever process): its
    rows; the σ/K snapshots of a field method go to out_dir as one npz per seed."""
    device, dtype = resolve_device(cfg.device), getattr(torch, cfg.dtype)
    checkpoint = Path(out_dir) / "checkpoints" / f"{stem}_{method}_{seed_label(seeds)}.pt"
    rows, shots = train_sequence(cfg, cached_tasks(source, device, dtype), method, seeds, device, dtype, checkpoint)
    for seed, stacked in zip(seeds, shots if snapshots and shots is not None else []):
        path = Path(out_dir) / f"{stem}_snapshots_{method}_seed{seed}.npz"
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez_compressed(tmp, sigma_bins=LOG_SIGMA_BINS, field_bins=FIELD_BINS, **stacked)
        os.replace(tmp, path)
    checkpoint.unlink(missing_ok=True)
    return rows


def method_groups(cfg: ContinualConfig) -> list[tuple[str, tuple[int, ...]]]:
    """The runs of `run_methods`: (method, seeds), the seeds of a field-rule method as one batched group (unless
    --no-batch_seeds), every other method × seed apart."""
    seeds = tuple(range(cfg.seed, cfg.seed + cfg.seeds))
    groups = [(method, seeds) for method in cfg.methods if cfg.batch_seeds and len(seeds) > 1 and batches_seeds(method)]
    return groups + [(method, (seed,)) for seed in seeds for method in cfg.methods if (method, seeds) not in groups]


def run_methods(cfg: ContinualConfig, source: tuple, stem: str, out_dir: Path, snapshots: bool = True) -> list[dict]:
    """Every method × seed on the task sequence of `source` (see `cached_tasks`): the seeds of a field-rule method
    as one batched run (`batches_seeds`, unless --no-batch_seeds), every other method × seed apart; each run an
    independent point of the sweep executor (harness/sweep.py).  Finished runs are kept in a PointStore
    (out_dir/.<stem>.points.jsonl, kept after the run): with --resume they are reused, e.g. by a rerun with more
    methods; without --resume the store is cleared first."""
    store_path = out_dir / f".{stem}.points.jsonl"
    if not cfg.resume:
        store_path.unlink(missing_ok=True)
    cached_tasks(source, resolve_device(cfg.device), getattr(torch, cfg.dtype))  # data problems stop us here
    store = PointStore(out_dir, stem, fingerprint(cfg))
    points = [(f"{method}/{seed_label(group)}", method_run, (cfg, source, method, group, stem, str(out_dir), snapshots))
              for method, group in method_groups(cfg)]
    results = run_points(cfg, store, points, desc=stem)
    if (out_dir / "checkpoints").is_dir() and not any((out_dir / "checkpoints").iterdir()):
        (out_dir / "checkpoints").rmdir()
    rows = [row for key, _, _ in points for row in results[key]]
    return sorted(rows, key=lambda row: (list(cfg.methods).index(row["method"]), row["seed"]))


# ----------------------------------------------------------------------------- summary and plot
def summarize(rows: list[dict], epochs_per_task: int) -> dict:
    """Per method: own-task accuracy after its own training, final accuracies and their mean (primary_mode)."""
    noisy = [row for row in rows if row["eval_mode"] == primary_mode(row["method"])]
    summary = {}
    for method in dict.fromkeys(row["method"] for row in noisy):
        own, final, peak = {}, {}, {}
        last_epoch = max(row["epoch"] for row in noisy if row["method"] == method)
        for row in noisy:
            if row["method"] != method:
                continue
            task = row["task_eval"]
            if row["epoch"] == task * epochs_per_task:
                own.setdefault(task, []).append(row["accuracy"])
            if row["epoch"] == last_epoch:
                final.setdefault(task, []).append(row["accuracy"])
            if row["task_trained"] == task:
                peak.setdefault((task, row["seed"]), []).append(row["accuracy"])
        tasks = sorted(final)
        final_mean = [np.mean([final[task][k] for task in tasks]) for k in range(len(final[tasks[0]]))]
        summary[method] = {
            "own_task_after_training": [float(np.mean(own[task])) for task in tasks],
            "own_task_peak": [float(np.mean([max(v) for (t, _), v in peak.items() if t == task])) for task in tasks],
            "final": [float(np.mean(final[task])) for task in tasks],
            "final_mean": float(np.mean(final_mean)),
            "final_mean_sd_over_seeds": float(np.std(final_mean, ddof=1)) if len(final_mean) > 1 else 0.0,
            "seeds": len(final_mean)}
    return summary


def plot_accuracy(rows: list[dict], epochs_per_task: int, task_labels: list[str], extra_panels: int = 0):
    """One panel per method: accuracy (primary_mode) of every task vs epoch (mean ± s.d. over seeds);
    returns the figure and `extra_panels` empty axes to its right."""
    import matplotlib.pyplot as plt

    noisy = [row for row in rows if row["eval_mode"] == primary_mode(row["method"])]
    methods = list(dict.fromkeys(row["method"] for row in noisy))
    panels = len(methods) + extra_panels
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.4), sharey=True, squeeze=False)
    for ax, method in zip(axes[0], methods):
        for task, label in enumerate(task_labels, start=1):
            epochs = sorted({row["epoch"] for row in noisy if row["method"] == method})
            values = np.array([[row["accuracy"] for row in noisy if row["method"] == method
                                and row["task_eval"] == task and row["epoch"] == epoch] for epoch in epochs])
            mean = values.mean(axis=1)
            spread = values.std(axis=1, ddof=1) if values.shape[1] > 1 else np.zeros_like(mean)
            ax.plot(epochs, mean, label=label)
            ax.fill_between(epochs, mean - spread, mean + spread, alpha=0.2)
        for boundary in range(epochs_per_task, max(epochs), epochs_per_task):
            ax.axvline(boundary + 0.5, color="0.7", lw=0.8, ls="--")
        seeds = values.shape[1]
        ax.set(title=method + (f" (band: ± 1 s.d. over {seeds} seeds)" if seeds > 1 else ""), xlabel="epoch", ylim=(0, 1))
    axes[0][0].set_ylabel("test accuracy")
    axes[0][len(methods) - 1].legend(loc="lower left")
    fig.tight_layout()
    return fig, list(axes[0][len(methods):])


def plot_curves(rows: list[dict], order: tuple[str, ...]):
    """Per protocol (rows) and method (columns, in `order`): accuracy of every task vs epoch, mean over seeds."""
    import matplotlib.pyplot as plt

    protocols = list(dict.fromkeys(r["protocol"] for r in rows))
    methods = [m for m in order if any(r["method"] == m for r in rows)]
    fig, axes = plt.subplots(len(protocols), len(methods), figsize=(2.6 * len(methods), 2.2 * len(protocols)),
                             sharey=True, squeeze=False)
    for i, protocol in enumerate(protocols):
        for j, method in enumerate(methods):
            ax = axes[i][j]
            mine = [r for r in rows if r["protocol"] == protocol and r["method"] == method
                    and r["eval_mode"] == primary_mode(method)]
            ax.set_title(f"{protocol}: {method}", fontsize=7)
            if not mine:
                ax.axis("off")
                continue
            epochs = sorted({r["epoch"] for r in mine})
            for task in sorted({r["task_eval"] for r in mine}):
                curve = [np.mean([r["accuracy"] for r in mine if r["epoch"] == e and r["task_eval"] == task])
                         for e in epochs]
                ax.plot(epochs, curve, lw=0.9)
            ax.set_ylim(0, 1)
            ax.tick_params(labelsize=6)
    fig.supxlabel("epoch")
    fig.supylabel("test accuracy")
    fig.suptitle("one curve per task; field rule: noisy pass, baselines: shared BN; mean over seeds", fontsize=8)
    fig.tight_layout()
    return fig


def plot_matrices(matrices: dict):
    """The accuracy matrix R[i, j] (task j after training task i) of every protocol and method."""
    import matplotlib.pyplot as plt

    columns = max(len(entries) for entries in matrices.values())
    fig, axes = plt.subplots(len(matrices), columns, figsize=(2.2 * columns, 2.3 * len(matrices)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for row, protocol in enumerate(matrices):
        for column, key in enumerate(matrices[protocol]):
            ax, matrix = axes[row][column], np.array(matrices[protocol][key])
            ax.axis("on")
            image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
            ticks = range(0, len(matrix), max(1, len(matrix) // 5))
            ax.set_xticks(ticks, [t + 1 for t in ticks])
            ax.set_yticks(ticks, [t + 1 for t in ticks])
            if len(matrix) <= 5:
                for (i, j), value in np.ndenumerate(matrix):
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=5,
                            color="black" if value > 0.6 else "white")
            ax.set_title(f"{protocol}\n{key}", fontsize=6)
            ax.set_xlabel("task evaluated", fontsize=6)
            ax.set_ylabel("after training task", fontsize=6)
            ax.tick_params(labelsize=5)
    fig.tight_layout()
    fig.colorbar(image, ax=axes, shrink=0.6, label="test accuracy")
    return fig


# ----------------------------------------------------------------------------- main


def run_record(cfg: ContinualConfig, summary: dict, checks: dict, data_name: str) -> dict:
    """The json fields of a deep run besides its metadata: the summary, the checks of the paper's claims, the torch
    threads each method × seed run had, the data."""
    return dict(summary=summary, checks=checks, torch_threads_per_run=layout(cfg, len(method_groups(cfg)))[1],
                data="synthetic" if cfg.quick or cfg.synthetic else data_name)


def setup_torch(cfg: ContinualConfig):
    """Device, dtype and thread count of a run (`harness.sweep.layout` sets the threads of each method × seed run)."""
    return torch_setup(cfg), getattr(torch, cfg.dtype)
