"""MNIST → Fashion-MNIST with the field-space binary network (the paper's deep-network experiment).

The 784-512-512-10 Gaussian-field binary network of permuted_mnist.py (same model, rule and evaluation, one
shared 10-way output head) learns the first 32 000 MNIST training images for 40 epochs, then the first 32 000
Fashion-MNIST images for 40 epochs. Adam lr 0.005 (0.9/0.99/1e-8, never reset), summed cross-entropy over
mini-batches of 64, KL gradient K = β²σ(θ_t)(θ_t − θ_{t−1}), β = 10 tanh(0.1 + g/80) at epoch g = 1…80
(1.120 → 5.370 at the switch → 8.005). After every epoch both test sets are evaluated (9 984 random images,
noisy Gaussian pass; mean network and a sampled binary network at the end of each task).

Figure: one panel per method, MNIST and Fashion-MNIST test accuracy (y) vs epoch 1…80 (x), switch dashed.
Checks (the reference runs of the original code): MNIST ≥ 0.95 at epoch 40, Fashion ≥ 0.83 at epoch 80, MNIST retained 0.45–0.65 at epoch 80.
Runtime: the README's figure table (the wall time its json records).

    python deep_networks/sequential_mnist_fashion.py --data_root DIR
    python deep_networks/sequential_mnist_fashion.py --methods vcl vcl_no_kl
"""
from __future__ import annotations

import dataclasses

from deep_networks.continual import plot_accuracy, run_methods, run_record, setup_torch, summarize
from deep_networks.continual_config import ContinualConfig
from deep_networks.image_tasks import resolve_data
from harness.command_line import run
from harness.config import bounded
from harness.figure import Computed, figure_main
from harness.plotting import plot_style

STEM = "sequential_mnist_fashion"
DATASET_ORDER = ("mnist", "fashion")


# ---- hyperparameters
@dataclasses.dataclass
class Config(ContinualConfig):
    epochs_per_task: int = bounded(40, at_least=1)  # epochs on MNIST, then on Fashion-MNIST (E1 = E2)
    n_train: int = bounded(32000, at_most=60000)  # training images per dataset (the first n_train)
    lr: float = bounded(0.005, above=0, below=1)  # Adam learning rate (η)
    beta_slope: float = 1.0  # β = 10 tanh(0.1 + slope·g/(E1 + E2))
    fixed_beta: float = bounded(1.120, above=0)  # β of vcl_fixed_beta (the schedule's first value)


QUICK = {"epochs_per_task": 2, "n_train": 640, "hidden": (32, 32), "eval_images": 200,
         "methods": ("vcl", "vcl_no_kl")}


def plot(cfg: Config, tables: dict, meta: dict):
    plot_style()
    rows = tables["rows"]
    fig, _ = plot_accuracy(rows, meta["config"]["epochs_per_task"], ["MNIST", "Fashion-MNIST"])
    return fig


def checks(summary: dict) -> dict:
    """The checks of the paper's claims, on the seed-mean accuracies of each method."""
    return {method: {"mnist_after_own_training_ge_0.95": values["own_task_after_training"][0] >= 0.95,
                     "fashion_final_ge_0.83": values["final"][1] >= 0.83,
                     "mnist_retained_in_0.45_0.65": 0.45 <= values["final"][0] <= 0.65}
            for method, values in summary.items()}


def task_sequence(cfg: Config, device, dtype) -> list:
    """MNIST, then Fashion-MNIST."""
    data = resolve_data(cfg, DATASET_ORDER, dtype, device)
    return [data[name] for name in DATASET_ORDER]


def compute(cfg: Config) -> Computed:
    device, _ = setup_torch(cfg)
    rows = run_methods(cfg, (task_sequence, (cfg,)), STEM, cfg.output_dir)
    summary = summarize(rows, cfg.epochs_per_task)
    for method, values in summary.items():
        print(f"{method:15s} MNIST after own training {values['own_task_after_training'][0]:.3f}, final "
              f"MNIST {values['final'][0]:.3f}, Fashion {values['final'][1]:.3f}")
    return Computed({"rows": rows}, run_record(cfg, summary, checks(summary), "MNIST, FashionMNIST"), device=device)


def main(cfg: Config) -> None:
    figure_main(cfg, STEM, compute, plot)


if __name__ == "__main__":
    run(main, Config, QUICK)
