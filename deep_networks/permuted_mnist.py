"""Permuted MNIST with the field-space binary network (paper's deep-network experiment E1; spec §8).

A 784-512-512-10 network of binary weights w = ±1, learned in field space (m = tanh βθ, σ = 1 − m²) with the
Gaussian-field forward pass z = N^{-1/2} m·a + sqrt(N^{-1} σ·a² + 1e-30) ε, learns 5 tasks in sequence, each a
fixed random pixel permutation of the first 32 000 MNIST training images (task 1 permuted too). Per mini-batch
of 64: one Adam(0.01, 0.9/0.99, 1e-8) step on the summed cross-entropy plus the KL gradient
K = β²σ(θ_t)(θ_t − θ_{t−1}); β = 10 tanh(0.1 + 2g/25) at epoch g = 1…25 (1.781 → 9.705). After every epoch every
task is evaluated on 9 984 random test images with the noisy Gaussian pass (plus the mean network and a sampled
binary network at the end of each task).

Ablations, run side by side with `--methods`: vcl (faithful), vcl_no_kl (K = 0), vcl_fixed_beta (β fixed),
vcl_anchored (K = λβ²σ(θ)(θ − θ*), θ* = fields at the end of the previous task, λ = --anchor_weight).

Figure: one panel per method, test accuracy (y) of tasks 1…5 vs epoch 1…25 (x), task boundaries dashed.
Outputs: permuted_mnist.{png,pdf,csv,json} and permuted_mnist_snapshots_<method>_seed<k>.npz (σ, K, θ histograms
at the start of every epoch, read by weight_uncertainty.py).
Runtime (2-core CPU, float32): ≈ 2–4 min per method and seed; all four methods × 3 seeds ≈ 30–45 min.

    python deep_networks/permuted_mnist.py --data_root ../shared/datasets
    python deep_networks/permuted_mnist.py --methods vcl vcl_no_kl vcl_fixed_beta vcl_anchored --seeds 3
"""
from __future__ import annotations

import dataclasses
import time

import torch

from deep_networks.continual import ContinualConfig, permuted_tasks, plot_accuracy, resolve_data, run_methods, \
    setup_torch, summarize
from vcl_common import plot_style, print_written, read_csv, read_json, require, run, run_metadata, save_figure, \
    torch_generator, write_csv, write_json

STEM = "permuted_mnist"


# ---- hyperparameters
@dataclasses.dataclass
class Config(ContinualConfig):
    n_tasks: int = 5  # number of permuted tasks (T)
    epochs_per_task: int = 5  # epochs per task (E)
    n_train: int = 32000  # training images per task (60000 = the full set)
    lr: float = 0.01  # Adam learning rate (η)
    beta_slope: float = 2.0  # β = 10 tanh(0.1 + slope·g/(T·E))

    def validate(self) -> None:
        super().validate()
        require(self.n_tasks >= 1, f"--n_tasks must be >= 1, got {self.n_tasks}")


QUICK = {"n_tasks": 2, "epochs_per_task": 2, "n_train": 640, "hidden": (32, 32), "eval_images": 200,
         "methods": ("vcl", "vcl_no_kl", "vcl_anchored", "vcl_fixed_beta")}


def plot(rows: list[dict], meta: dict):
    cfg = meta["config"]
    return plot_accuracy(rows, cfg["epochs_per_task"], [f"task {k}" for k in range(1, cfg["n_tasks"] + 1)])


def main(cfg: Config) -> None:
    out_dir = cfg.output_dir
    plot_style()
    if cfg.replot:
        paths = save_figure(plot(read_csv(out_dir / f"{STEM}.csv"), read_json(out_dir / f"{STEM}.json")),
                            out_dir, STEM)
        print_written(paths)
        return
    started = time.time()
    device, dtype = setup_torch(cfg)

    # ---- compute: the same permutations (drawn from --seed) for every method and seed
    base = resolve_data(cfg, ("mnist",), dtype, device)["mnist"]
    tasks = permuted_tasks(base, cfg.n_tasks, torch_generator(cfg.seed + 500))
    rows = run_methods(cfg, tasks, STEM, out_dir, device, dtype)
    summary = summarize(rows, cfg.epochs_per_task)
    for method, values in summary.items():
        print(f"{method:15s} own-task {[round(v, 3) for v in values['own_task_after_training']]} "
              f"final mean {values['final_mean']:.3f}")

    # ---- save raw data, then plot
    paths = [write_csv(out_dir / f"{STEM}.csv", rows)]
    meta = run_metadata(cfg, started, device, summary=summary, torch_threads=torch.get_num_threads(),
                        data="synthetic" if cfg.quick or cfg.synthetic else "MNIST")
    paths.append(write_json(out_dir / f"{STEM}.json", meta))
    paths += save_figure(plot(rows, meta), out_dir, STEM)
    print_written(paths + sorted(out_dir.glob(f"{STEM}_snapshots_*.npz")))


if __name__ == "__main__":
    run(main, Config, QUICK)
