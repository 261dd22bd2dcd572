"""Fig. 1a — SGD learning curves of task 1 for the field-space binary perceptron.

x: epoch (0 = initial fields, then 1…500); y: generalization error ε_g = arccos(p)/π of the clipped student sgn(h),
p = (1/N) Σ_i sgn(h_i) w_i (docs/theory.md eq. 8); mean over 20 trials with a min–max band, one curve per
α ∈ {0.5, 1, 1.5, 2} (grey levels silver → black).

Training (docs/theory.md eqs. 4–7; settings of the original script): objective E(h) = −Σ_μ ln H(−y^μ m·x^μ/√Σσ) without KL term, heavy-ball
SGD (v ← μv + lr·g, h ← h − v) with lr = 0.03, μ = 0.9, batch size max(ceil(P/20), 10) in fixed order, h ~ N(0, 1),
N = 1000, 500 epochs; trial k has its own teacher, data and initial fields from seed + k
(`single_layer.one_task`).

Runtime: the README's figure table (the wall time its json records); --quick: a few seconds.
Command:  python single_layer/fig1a_learning_curves.py
"""
from __future__ import annotations

import dataclasses

import numpy as np

from harness.command_line import run
from harness.config import bounded
from harness.devices import torch_setup
from harness.errors import require
from harness.figure import Computed, figure_main
from harness.plotting import plot_style
from harness.sweep import sweep
from single_layer.one_task import Fig1aSGDConfig, batch_size, learning_curves
from teacher_student import n_patterns

STEM = "fig1a_learning_curves"


# ---- hyperparameters
@dataclasses.dataclass
class Config(Fig1aSGDConfig):
    alphas: tuple[float, ...] = bounded((0.5, 1.0, 1.5, 2.0), above=0)  # data densities P/N, one curve each (α)

    def validate(self):
        super().validate()
        require(len(self.alphas) > 0, "--alphas needs at least one value")
        require(all(n_patterns(alpha, self.n) >= 1 for alpha in self.alphas), "every α·N must give a pattern")


QUICK = {"n": 60, "alphas": (1.0, 2.0), "trials": 2, "epochs": 20}


def plot(cfg: Config, tables: dict, record: dict):
    import matplotlib.pyplot as plt

    plot_style()
    rows = tables["rows"]
    alphas = sorted({row["alpha"] for row in rows})
    fig, axis = plt.subplots()
    greys = plt.cm.Greys(np.linspace(0.35, 1.0, len(alphas)))
    for alpha, colour in zip(alphas, greys):
        epochs = np.array(sorted({row["epoch"] for row in rows if row["alpha"] == alpha}))
        curves = np.array([[row["eps_g"] for row in rows if row["alpha"] == alpha and row["seed"] == seed]
                           for seed in sorted({row["seed"] for row in rows if row["alpha"] == alpha})])
        axis.plot(epochs, curves.mean(0), color=colour, label=f"α={alpha:g}")
        axis.fill_between(epochs, curves.min(0), curves.max(0), color=colour, alpha=0.25, linewidth=0)
    axis.set_xlabel("epoch")
    axis.set_ylabel(r"$\epsilon_g$")
    axis.set_ylim(0, 0.55)
    axis.legend(title="mean; band: min–max over trials", title_fontsize=7)
    return fig


def compute(cfg: Config) -> Computed:
    device = torch_setup(cfg)
    rows, store = sweep(cfg, STEM, [(f"alpha={alpha!r}", learning_curves, (cfg, alpha, str(device)))
                                    for alpha in cfg.alphas], "fig1a SGD (alpha)")
    final = {f"{alpha:g}": float(np.mean([row["eps_g"] for row in rows if row["alpha"] == alpha
                                          and row["epoch"] == cfg.epochs])) for alpha in cfg.alphas}
    return Computed({"rows": rows}, dict(
        seeds=[cfg.seed + trial for trial in range(cfg.trials)],
        batch_sizes={f"{alpha:g}": batch_size(cfg, alpha) for alpha in cfg.alphas}, final_eps_g_mean=final,
        summary="final mean ε_g per α: " + ", ".join(f"α={alpha}: {value:.4f}" for alpha, value in final.items())),
        device=device, stores=[store])


def main(cfg: Config) -> None:
    figure_main(cfg, STEM, compute, plot)


if __name__ == "__main__":
    run(main, Config, QUICK)
