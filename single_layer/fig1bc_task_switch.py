"""Fig. 1b–c — SGD learning curves across a task switch (continual learning of two perceptron teachers).

x: epoch (task 1 for 3000 epochs, then task 2 for 3000 epochs; a point every 30 epochs); y: generalization error of
the clipped student on task 1, ε_g¹ = arccos(p₁)/π (panel b), and on task 2, ε_g² = arccos(p₂)/π (panel c),
p_t = (1/N) Σ_i sgn(h_i) w^t_i (docs/theory.md eq. 8); mean with min–max band over 20 trials, curves α₂ ∈ {1, 2, 4}.

Training (docs/theory.md eqs. 5–7; settings of the original script): α₁ = 2, r₀ = 0 (teacher 2 = w¹ξ, P(ξ = +1) = (1 + r₀)/2), N = 1000,
heavy-ball SGD lr 1e-3, momentum 0.9, batch 32 in fixed order for both tasks; task 1 minimises the data term
E₁(h) = −Σ ln H(−y m·x/√Σσ) (no KL); task 2 minimises E₂(h) + γ KL(q_h ‖ q_h′) with h′ = the fields at the end of
task 1, γ = 1 (weight γ·bs/P₂ per minibatch) and a fresh optimiser.  Task 1 is trained once and shared by every α₂
(its teachers, data and initial fields do not depend on α₂).

Runtime: the README's figure table (the wall time its json records); --quick: a few seconds.
Command:  python single_layer/fig1bc_task_switch.py
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from harness.command_line import run
from harness.config import bounded
from harness.devices import torch_setup
from harness.errors import require
from harness.figure import Computed, figure_main
from harness.plotting import plot_style
from harness.points import sweep_store
from harness.sweep import SweepConfig, run_points
from single_layer.perceptron import OptimizerSpec, task_observer
from single_layer.training import switch_task, train_task
from teacher_student import n_patterns, sample_trials

STEM = "fig1bc_task_switch"


# ---- hyperparameters
@dataclasses.dataclass
class Config(SweepConfig):
    n: int = bounded(1000, at_least=1)  # input dimension = number of synapses (N)
    alpha1: float = bounded(2.0, above=0)  # data density of task 1 (α₁)
    alpha2s: tuple[float, ...] = bounded((1.0, 2.0, 4.0), above=0)  # data densities of task 2, one curve each (α₂)
    r0: float = bounded(0.0, at_least=-1, at_most=1)  # teacher–teacher overlap (r₀)
    gamma: float = bounded(1.0, at_least=0)  # weight of the KL term of task 2 (γ)
    trials: int = bounded(20, at_least=1)  # independent trials (teachers, data, initial fields; seed + k)
    epochs1: int = bounded(3000, at_least=1)  # training epochs of task 1
    epochs2: int = bounded(3000, at_least=1)  # training epochs of task 2
    lr: float = bounded(1e-3, above=0)  # learning rate of heavy-ball SGD, both tasks (η)
    momentum: float = bounded(0.9, at_least=0, below=1)  # heavy-ball momentum (μ)
    batch_size: int = bounded(32, at_least=1)  # minibatch size, both tasks
    record_every: int = bounded(30, at_least=1)  # epochs between recorded points
    beta_h: float = bounded(1.0, above=0)  # field scale of q(w) ∝ exp(β_h h w) (β_h)
    dtype: str = "float32"  # torch dtype of the training (float32 | float64)

    def validate(self):
        super().validate()
        require(len(self.alpha2s) > 0, "--alpha2s needs at least one value")
        require(all(n_patterns(alpha, self.n) >= 1 for alpha in (self.alpha1, *self.alpha2s)), "α·N must be >= 1")
        require(self.dtype in ("float32", "float64"), f"--dtype must be float32 or float64, got {self.dtype}")


QUICK = {"n": 60, "alpha2s": (1.0, 4.0), "trials": 2, "epochs1": 20, "epochs2": 20, "record_every": 5}


def rows_of(cfg: Config, alpha2: float, history) -> list[dict]:
    return [{"alpha1": cfg.alpha1, "alpha2": alpha2, "r0": cfg.r0, "gamma": cfg.gamma, "seed": cfg.seed + trial,
             "epoch": int(epoch), "task": 1 if epoch <= cfg.epochs1 else 2,
             **{name: history.values[name][row, trial] for name in ("eps_g1", "eps_g2", "p1", "p2", "q_star")}}
            for trial in range(cfg.trials) for row, epoch in enumerate(history.epochs)]


def sample(cfg: Config, alpha2: float, device: str):
    """Fields and both tasks of the trial batch (task 1 and the teachers do not depend on α₂)."""
    return sample_trials(cfg.trials, cfg.n, [cfg.alpha1, alpha2], r0=cfg.r0, seed=cfg.seed, device=device,
                         dtype=getattr(torch, cfg.dtype))


def first_task(cfg: Config, device: str):
    """Task 1 once for the trial batch: (fields at the switch, history)."""
    fields, tasks = sample(cfg, cfg.alpha2s[0], device)
    spec = OptimizerSpec("momentum", lr=cfg.lr, momentum=cfg.momentum, batch_size=cfg.batch_size)
    return train_task(fields, tasks[0], spec, cfg.epochs1, observe=task_observer(tasks, cfg.beta_h),
                      beta_h=cfg.beta_h, record_every=cfg.record_every)


def task_switch(cfg: Config, alpha2: float, after_first, first, device: str) -> list[dict]:
    """Task 2 at one α₂ from the end-of-task-1 fields; the rows hold both phases."""
    _, tasks = sample(cfg, alpha2, device)
    spec = OptimizerSpec("momentum", lr=cfg.lr, momentum=cfg.momentum, batch_size=cfg.batch_size)
    _, history = switch_task(after_first.to(device), first, tasks[1], spec, cfg.epochs2,
                             observe=task_observer(tasks, cfg.beta_h), gamma=cfg.gamma, beta_h=cfg.beta_h,
                             record_every=cfg.record_every)
    return rows_of(cfg, alpha2, history)


def plot(cfg: Config, tables: dict, record: dict):
    import matplotlib.pyplot as plt

    plot_style()
    rows = tables["rows"]
    epochs1 = max(row["epoch"] for row in rows if row["task"] == 1)
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4))
    alpha2s = sorted({row["alpha2"] for row in rows})
    colours = plt.cm.viridis(np.linspace(0.0, 0.8, len(alpha2s)))
    for axis, quantity, panel in zip(axes, ("eps_g1", "eps_g2"), ("(b)", "(c)")):
        for alpha2, colour in zip(alpha2s, colours):
            selected = [row for row in rows if row["alpha2"] == alpha2]
            epochs = np.array(sorted({row["epoch"] for row in selected}))
            curves = np.array([[row[quantity] for row in selected if row["seed"] == seed]
                               for seed in sorted({row["seed"] for row in selected})])
            axis.plot(epochs, curves.mean(0), color=colour, label=rf"$\alpha_2={alpha2:g}$")
            axis.fill_between(epochs, curves.min(0), curves.max(0), color=colour, alpha=0.25, linewidth=0)
        axis.axvline(epochs1, color="grey", ls=":", lw=0.8)
        axis.set_xlabel("epoch")
        axis.set_ylabel(rf"$\epsilon_g^{quantity[-1]}$")
        axis.set_title(panel, loc="left")
        axis.set_ylim(0, 0.55)
    axes[0].legend(title="mean; band: min–max over trials", title_fontsize=7)
    return fig


def compute(cfg: Config) -> Computed:
    device = torch_setup(cfg)
    store = sweep_store(cfg, STEM)
    keys = [f"alpha2={alpha2!r}" for alpha2 in cfg.alpha2s]
    if any(store.get(key) is None for key in keys):
        after_first, first = first_task(cfg, str(device))
        run_points(cfg, store, [(key, task_switch, (cfg, alpha2, after_first.cpu(), first, str(device)))
                                for key, alpha2 in zip(keys, cfg.alpha2s)], desc="fig1bc task 2 (alpha2)")
    rows = [row for key in keys for row in store.get(key)]
    moments = {"at_switch": cfg.epochs1, "final": cfg.epochs1 + cfg.epochs2}
    final = {f"{alpha2:g}": {f"{name}_{moment}": float(np.mean([row[name] for row in rows if row["alpha2"] == alpha2
                                                                and row["epoch"] == epoch]))
                             for name in ("eps_g1", "eps_g2") for moment, epoch in moments.items()}
             for alpha2 in cfg.alpha2s}
    return Computed({"rows": rows}, dict(
        seeds=[cfg.seed + trial for trial in range(cfg.trials)], final_mean=final,
        summary="; ".join(f"α₂={alpha2}: ε_g¹ {v['eps_g1_at_switch']:.4f}→{v['eps_g1_final']:.4f}, ε_g² "
                          f"{v['eps_g2_at_switch']:.4f}→{v['eps_g2_final']:.4f}" for alpha2, v in final.items())),
        device=device, stores=[store])


def main(cfg: Config) -> None:
    figure_main(cfg, STEM, compute, plot)


if __name__ == "__main__":
    run(main, Config, QUICK)
