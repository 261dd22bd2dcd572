"""Fig. 2c — convergence time T_c of full-batch gradient descent vs data density α (task 1, no KL).

x: α ∈ {1.00, 1.02, …, 2.00}; y: T_c, mean (dashed royal-blue line) ± std band over 20 samples.
Training (docs/theory.md eq. 4; settings of the original script): N = 3000, P = int(αN), objective E(h) = −Σ_μ ln H(−y m·x/√Σσ)
without KL, plain full-batch gradient descent h ← h − lr ∇E with lr = 0.01 for 10 000 steps, h ~ N(0, 1); the
teacher overlap p(t) of sgn(h) is recorded after every step (settings of the runs: `single_layer.one_task`).
T_c (computed here from the recorded trajectory): with ε(t) = arccos(p(t))/π, t = 1…10 000 the step count, T_c is the
first t ∈ [1000, 10 000) whose preceding window ε(t−999…t) has standard deviation < 5·10⁻⁴ (T_c = 9999 if never).

Runtime of a full run: ~10¹⁴ multiply-adds (51 α × 20 samples × 10⁴ steps over P×N ≤ 6000×3000 inputs); its cost
is in docs/scaling.md (benchmarks/bench_paper_scale.py) — use a GPU (--device cuda), many workers, or reduce
--n/--samples/--alphas as the committed run does (its command and wall time: the README's figure table (the wall time its json records)); --quick takes seconds.
Command:  python single_layer/fig2c_convergence_time.py --device cuda
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
from harness.sweep import sweep
from single_layer.one_task import Fig2cGDConfig
from single_layer.perceptron import OptimizerSpec, task_observer
from single_layer.training import train_task
from teacher_student import sample_trials

STEM = "fig2c_convergence_time"


# ---- hyperparameters
@dataclasses.dataclass
class Config(Fig2cGDConfig):
    window: int = bounded(1000, at_least=1)  # length of the window whose ε_g standard deviation defines convergence
    threshold: float = bounded(5e-4, above=0)  # T_c: first step whose preceding window has std(ε_g) below this
    beta_h: float = bounded(1.0, above=0)  # field scale of q(w) ∝ exp(β_h h w) (β_h)
    dtype: str = "float32"  # torch dtype of the training (float32 | float64)

    def validate(self):
        super().validate()
        require(self.window < self.steps, f"need --window < --steps, got {self.window}, {self.steps}")
        require(self.dtype in ("float32", "float64"), f"--dtype must be float32 or float64, got {self.dtype}")


QUICK = {"n": 100, "alphas": (1.0, 2.0), "samples": 2, "steps": 300, "window": 100}


def convergence_time(eps_g: np.ndarray, window: int, threshold: float) -> np.ndarray:
    """T_c per sample from ε_g of shape (steps, samples), row t−1 = after step t (see the module docstring)."""
    steps = eps_g.shape[0]
    sums = np.concatenate([np.zeros((1, eps_g.shape[1])), np.cumsum(eps_g, 0)])
    squares = np.concatenate([np.zeros((1, eps_g.shape[1])), np.cumsum(eps_g**2, 0)])
    ends = np.arange(window, steps)  # t: the window holds the values after steps t−window+1 … t
    mean = (sums[ends] - sums[ends - window]) / window
    variance = np.maximum((squares[ends] - squares[ends - window]) / window - mean**2, 0.0)
    settled = np.sqrt(variance) < threshold
    return np.where(settled.any(0), ends[settled.argmax(0)], steps - 1)


def sample_rows(cfg: Config, alpha: float, device: str) -> list[dict]:
    fields, (task,) = sample_trials(cfg.samples, cfg.n, [alpha], seed=cfg.seed, device=device,
                                    dtype=getattr(torch, cfg.dtype))
    _, history = train_task(fields, task, OptimizerSpec("gd", lr=cfg.lr), cfg.steps, beta_h=cfg.beta_h,
                            observe=task_observer([task], cfg.beta_h))
    eps_g = history.values["eps_g1"][1:]  # drop the initial record: row t−1 is after step t
    times = convergence_time(eps_g, cfg.window, cfg.threshold)
    return [{"alpha": alpha, "seed": cfg.seed + sample, "t_c": int(times[sample]),
             "converged": bool(times[sample] < cfg.steps - 1), "eps_g_final": eps_g[-1, sample]}
            for sample in range(cfg.samples)]


def plot(cfg: Config, tables: dict, record: dict):
    import matplotlib.pyplot as plt

    plot_style()
    rows = tables["rows"]
    fig, axis = plt.subplots()
    alphas = sorted({row["alpha"] for row in rows})
    times = [np.array([row["t_c"] for row in rows if row["alpha"] == alpha]) for alpha in alphas]
    capped = np.array([sum(not row["converged"] for row in rows if row["alpha"] == alpha) for alpha in alphas])
    mean = np.array([t.mean() for t in times])
    spread = np.array([t.std(ddof=1) if len(t) > 1 else 0.0 for t in times])
    axis.plot(alphas, mean, "--", color="royalblue", label="mean over samples")
    axis.fill_between(alphas, mean - spread, mean + spread, color="royalblue", alpha=0.25, linewidth=0,
                      label="± 1 s.d.")
    censored = capped > 0  # a run that hit the step limit counts T_c = limit: the mean is a lower bound there
    if censored.any():
        axis.plot(np.array(alphas)[censored], mean[censored], "^", color="crimson", mfc="none",
                  label="lower bound (some runs hit the step limit)")
        for alpha, value, count, t in zip(np.array(alphas)[censored], mean[censored], capped[censored],
                                          np.array(times, dtype=object)[censored]):
            axis.annotate(f"{count}/{len(t)}", (alpha, value), textcoords="offset points", xytext=(0, 6),
                          ha="center", fontsize=6, color="crimson")
    axis.legend(fontsize=7)
    axis.set_xlabel(r"$\alpha$")
    axis.set_ylabel(r"$T_c$")
    return fig


def compute(cfg: Config) -> Computed:
    device = torch_setup(cfg)
    rows, store = sweep(cfg, STEM, [(f"alpha={alpha!r}", sample_rows, (cfg, alpha, str(device)))
                                    for alpha in cfg.alphas], "fig2c GD (alpha)")
    mean_times = {f"{alpha:g}": float(np.mean([row["t_c"] for row in rows if row["alpha"] == alpha]))
                  for alpha in cfg.alphas}
    slowest = max(mean_times, key=mean_times.get)
    return Computed({"rows": rows}, dict(
        seeds=[cfg.seed + sample for sample in range(cfg.samples)], mean_t_c=mean_times,
        summary=f"largest mean T_c = {mean_times[slowest]:.0f} at α = {slowest}"), device=device, stores=[store])


def main(cfg: Config) -> None:
    figure_main(cfg, STEM, compute, plot)


if __name__ == "__main__":
    run(main, Config, QUICK)
