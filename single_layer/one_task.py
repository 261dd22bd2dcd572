"""One task alone: the SGD settings of Figs. 1a and 2c (the original scripts') and Fig. 1a's learning curves,
shared by the figure scripts (`single_layer/fig1a_learning_curves.py`, `single_layer/fig2c_convergence_time.py`)
and the benchmarks that time them (`benchmarks/bench_parallel_sweeps.py`, `benchmarks/bench_paper_scale.py`).
The point function is a plain top-level function of picklable arguments, so that the sweep executor (harness/sweep.py)
can run it in other processes.
"""
from __future__ import annotations

import dataclasses
import math

import torch

from harness.config import bounded
from harness.errors import require
from harness.sweep import SweepConfig
from single_layer.perceptron import OptimizerSpec, task_observer
from single_layer.training import train_task
from teacher_student import n_patterns, sample_trials


# ---- Fig. 1a: heavy-ball SGD learning curves
@dataclasses.dataclass
class Fig1aSGDConfig(SweepConfig):
    """The SGD of one Fig. 1a learning curve (the base of that script's Config)."""

    n: int = bounded(1000, at_least=1)  # input dimension = number of synapses (N)
    trials: int = bounded(20, at_least=1)  # independent trials (teacher, data, initial fields) per α
    epochs: int = bounded(500, at_least=1)  # training epochs
    lr: float = bounded(0.03, above=0)  # learning rate of heavy-ball SGD (η)
    momentum: float = bounded(0.9, at_least=0, below=1)  # heavy-ball momentum (μ)
    minibatches: int = bounded(  # target minibatches per epoch: batch size max(ceil(P/minibatches), min_batch)
        20, at_least=1)
    min_batch: int = bounded(10, at_least=1)  # smallest batch size
    beta_h: float = bounded(1.0, above=0)  # field scale of q(w) ∝ exp(β_h h w) (β_h)
    dtype: str = "float32"  # torch dtype of the training (float32 | float64)

    def validate(self):
        super().validate()
        require(self.dtype in ("float32", "float64"), f"--dtype must be float32 or float64, got {self.dtype}")


def batch_size(cfg: Fig1aSGDConfig, alpha: float) -> int:
    return max(math.ceil(n_patterns(alpha, cfg.n) / cfg.minibatches), cfg.min_batch)


def learning_curves(cfg: Fig1aSGDConfig, alpha: float, device: str) -> list[dict]:
    """All trials at one α as one batch; one row per (trial, epoch)."""
    fields, (task,) = sample_trials(cfg.trials, cfg.n, [alpha], seed=cfg.seed, device=device,
                                    dtype=getattr(torch, cfg.dtype))
    spec = OptimizerSpec("momentum", lr=cfg.lr, momentum=cfg.momentum, batch_size=batch_size(cfg, alpha))
    _, history = train_task(fields, task, spec, cfg.epochs, observe=task_observer([task], cfg.beta_h),
                            beta_h=cfg.beta_h)
    def value(name, row, trial):  # 7 significant digits: float32 precision, a csv of reasonable size
        return float(f"{history.values[name][row, trial]:.7g}")

    return [{"alpha": alpha, "seed": cfg.seed + trial, "epoch": int(epoch), "eps_g": value("eps_g1", row, trial),
             "p": value("p1", row, trial), "q_star": value("q_star", row, trial)}
            for trial in range(cfg.trials) for row, epoch in enumerate(history.epochs)]


# ---- Fig. 2c: full-batch gradient descent
@dataclasses.dataclass
class Fig2cGDConfig(SweepConfig):
    """The full-batch GD runs of Fig. 2c: size, α grid, samples, learning rate and steps (the base of that script's
    Config)."""

    n: int = bounded(3000, at_least=1)  # input dimension = number of synapses (N)
    alphas: tuple[float, ...] = bounded(  # data densities P/N (α)
        tuple(round(1.0 + 0.02 * index, 2) for index in range(51)), above=0)
    samples: int = bounded(20, at_least=1)  # independent samples (teacher, data, initial fields; seed + k) per α
    lr: float = bounded(0.01, above=0)  # learning rate of full-batch gradient descent (η)
    steps: int = 10000  # gradient steps (= epochs, full batch)

    def validate(self):
        super().validate()
        require(len(self.alphas) > 0, "--alphas needs at least one value")
        require(all(n_patterns(alpha, self.n) >= 1 for alpha in self.alphas), "every α·N must give a pattern")
