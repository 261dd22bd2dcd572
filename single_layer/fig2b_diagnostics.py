"""Fig. 2b diagnostics — which theory, if any, describes the SGD students of Fig. 2b?

At each α the script trains pairs of students on the same teacher and data (different initial fields) with Fig. 2b's
settings (Adam, per-α batch, lr and weight decay of the paper, ≤ 2000 epochs, stop at test accuracy 1) and measures
their own order parameters (docs/theory.md eq. 13): r = m·w/N, q⋆ = m·m/N, q = m¹·m²/N between the two students of a
pair, and ε_g = arccos(p)/π.  Against them:
* the β = 20 theory's branches (poor / good) at the same α;
* β_eff: the β at which the theory's thermodynamic ε_g equals the SGD mean at that α (one fitted number per α) —
  and whether the theory at β_eff also gets q⋆, r and q right (not fitted);
* metastability: students started near the good branch (|m| = 0.95 along the teacher, 0.5 % of signs flipped) and
  trained the same way — do they stay there below the β = 20 transition (α ≈ 1.65) or fall back?
Outputs: fig2b_diagnostics.csv (one row per student: source sgd/sgd_good_start, or theory rows per branch / β_eff),
.json (summary per α), .png/.pdf (ε_g, q⋆, r, q vs α: SGD points, β = 20 branches, β_eff theory).
Runtime: the README's figure table (the wall time its json records); 5 α × 16 students × 2 starts at N = 1000.
Command: python single_layer/fig2b_diagnostics.py
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.optimize
import torch

from harness.command_line import run
from harness.config import bounded
from harness.devices import torch_generator, torch_setup
from harness.errors import require
from harness.figure import Computed, figure_main
from harness.plotting import plot_style
from harness.sweep import SweepConfig, sweep
from mean_field_theory.task1 import solve_task1, sweep_task1
from single_layer.comparison import compare, eps_g_resolution
from single_layer.perceptron import OptimizerSpec, task_observer
from single_layer.training import train_task
from teacher_student import sample_trials

STEM = "fig2b_diagnostics"
COLUMNS = ["alpha", "source", "seed", "beta", "branch", "eps_g", "q_star", "r", "q", "epochs_trained"]


# ---- hyperparameters
@dataclasses.dataclass
class Config(SweepConfig):
    alphas: tuple[float, ...] = bounded((0.5, 1.0, 1.3, 1.5, 1.7), above=0)  # data densities (α)
    batch_sizes: tuple[int, ...] = bounded((100, 64, 100, 100, 64), at_least=1)  # Fig. 2b's Adam batch size at these α
    learning_rates: tuple[float, ...] = (0.008, 0.002, 0.005, 0.008, 0.002)  # Fig. 2b's Adam lr at these α
    weight_decays: tuple[float, ...] = (0.1, 0.03, 0.1, 0.05, 0.1)  # Fig. 2b's Adam weight decay at these α
    n: int = bounded(1000, at_least=1)  # input dimension (N)
    pairs: int = bounded(8, at_least=1)  # teacher/data sets per α, each with two students (seed + k)
    epochs: int = bounded(2000, at_least=1)  # maximal epochs (stop at test accuracy 1)
    n_test: int = bounded(10000, at_least=1)  # test patterns of the early stop
    beta: float = bounded(20.0, above=0)  # inverse temperature of the reference theory (β)
    good_start_overlap: float = bounded(  # sign overlap p of the students started near the good branch
        0.99, above=0, at_most=1)
    good_start_magnitude: float = bounded(0.95, above=0, below=1)  # |m_i| of those students

    def validate(self):
        super().validate()
        lengths = {len(self.alphas), len(self.batch_sizes), len(self.learning_rates), len(self.weight_decays)}
        require(len(lengths) == 1 and 0 not in lengths,
                "--alphas, --batch_sizes, --learning_rates, --weight_decays need equal, nonzero lengths")


QUICK = {"alphas": (0.5, 1.5), "batch_sizes": (16, 16), "learning_rates": (0.008, 0.008), "weight_decays": (0.1, 0.05),
         "n": 60, "pairs": 2, "epochs": 20, "n_test": 200}


def train_pairs(cfg: Config, index: int, device, good_start: bool) -> list[dict]:
    """2 × pairs students at one α: student 2k and 2k + 1 share teacher and data (trial k), not the initial fields."""
    alpha = cfg.alphas[index]
    fields, (task,) = sample_trials(cfg.pairs, cfg.n, [alpha], n_test=cfg.n_test, seed=cfg.seed, device=device)
    task = task.select(torch.arange(cfg.pairs, device=device).repeat_interleave(2))
    generator = torch_generator(cfg.seed + 10_000 * (index + 1) + (7 if good_start else 0))
    fields = torch.randn(2 * cfg.pairs, cfg.n, generator=generator).to(device, fields.dtype)
    if good_start:  # along the teacher with a few signs flipped: p = good_start_overlap
        flips = torch.rand(2 * cfg.pairs, cfg.n, generator=generator).to(device) < (1 - cfg.good_start_overlap) / 2
        fields = task.teacher * torch.where(flips, -1.0, 1.0).to(device) * math.atanh(cfg.good_start_magnitude)
    spec = OptimizerSpec("adam", lr=cfg.learning_rates[index], weight_decay=cfg.weight_decays[index],
                         batch_size=cfg.batch_sizes[index])
    final, history = train_task(fields, task, spec, cfg.epochs, observe=task_observer([task]),
                                record_every=cfg.epochs, early_stop="test_accuracy")
    means = torch.tanh(final.double())
    pair_overlap = (means[0::2] * means[1::2]).mean(-1).repeat_interleave(2).cpu().numpy()
    return [{"alpha": alpha, "source": "sgd_good_start" if good_start else "sgd", "seed": cfg.seed + trial // 2,
             "eps_g": history.final("eps_g1")[trial], "q_star": history.final("q_star")[trial],
             "r": history.final("r1")[trial], "q": pair_overlap[trial],
             "epochs_trained": int(history.stop_epoch[trial])} for trial in range(2 * cfg.pairs)]


def theory_row(alpha: float, beta: float, solution, branch: str, source: str) -> dict:
    return {"alpha": alpha, "source": source, "seed": "", "beta": beta, "branch": branch, "eps_g": solution["eps_g"],
            "q_star": solution["q_star"], "r": solution["r"], "q": solution["q"], "epochs_trained": ""}


def effective_beta(alpha: float, target_eps: float) -> float | None:
    """β at which the thermodynamic ε_g of the task-1 theory equals `target_eps` (brentq on log β ∈ [0, ln 200],
    β below the critical 16.07 so there is one branch); None when no β there reaches it."""
    def gap(log_beta):
        solution = solve_task1(alpha, beta=math.exp(log_beta))
        return solution.eps_g - target_eps if solution.converged else math.nan

    low, high = math.log(1.0), math.log(16.0)
    values = gap(low), gap(high)
    if not all(math.isfinite(v) for v in values) or values[0] * values[1] > 0:
        return None
    return math.exp(scipy.optimize.brentq(gap, low, high, xtol=1e-4))


def summarize(cfg: Config, rows: list[dict]) -> dict:
    summary = {}
    for alpha in cfg.alphas:
        at = [row for row in rows if row["alpha"] == alpha]
        entry = {}
        for source in ("sgd", "sgd_good_start"):
            students = [row for row in at if row["source"] == source]
            entry[source] = {key: {"mean": float(np.mean([s[key] for s in students])),
                                   "sd": float(np.std([s[key] for s in students], ddof=1))}
                             for key in ("eps_g", "q_star", "r", "q")}
        sgd = [row for row in at if row["source"] == "sgd"]
        for row in at:
            if row["source"] in ("theory", "theory_beta_eff"):
                label = f"{row['source']} {row['branch']} beta={row['beta']:.3g}"
                entry[label] = {key: compare(row[key], [s[key] for s in sgd],
                                             eps_g_resolution(cfg.n) if key == "eps_g" else 0.0)
                                for key in ("eps_g", "q_star", "r", "q")}
        summary[f"{alpha:g}"] = entry
    return summary


def plot(cfg: Config, tables: dict, record: dict):
    import matplotlib.pyplot as plt

    plot_style()
    rows = tables["rows"]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
    for ax, key, label in zip(axes, ("eps_g", "q_star", "r", "q"), (r"$\epsilon_g$", r"$q_\star$", "$r$", "$q$")):
        for source, marker, color, name in (("sgd", "o", "black", "SGD"), ("sgd_good_start", "^", "tab:green",
                                                                              "SGD from near the good branch")):
            alphas = sorted({row["alpha"] for row in rows if row["source"] == source})
            values = [[row[key] for row in rows if row["source"] == source and row["alpha"] == a] for a in alphas]
            ax.errorbar(alphas, [np.mean(v) for v in values], [np.std(v, ddof=1) if len(v) > 1 else 0 for v in values],
                        fmt=marker, color=color, mfc="none", label=f"{name} (mean ± 1 s.d.)")
        for branch, style in (("poor", "r-"), ("good", "b-"), ("unique", "k-")):
            points = sorted((row["alpha"], row[key]) for row in rows if row["source"] == "theory"
                            and row["branch"] == branch)
            if points:
                ax.plot(*zip(*points), style, lw=1, label=rf"theory $\beta=20$, {branch}")
        points = sorted((row["alpha"], row[key]) for row in rows if row["source"] == "theory_beta_eff")
        if points:
            ax.plot(*zip(*points), "x", color="tab:orange", label=r"theory at $\beta_{\rm eff}(\alpha)$")
        ax.set(xlabel=r"$\alpha$", ylabel=label)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def compute(cfg: Config) -> Computed:
    device = torch_setup(cfg)
    rows, store = sweep(cfg, STEM, [(f"alpha={alpha!r} good_start={good_start}", train_pairs,
                                     (cfg, index, str(device), good_start))
                                    for index, alpha in enumerate(cfg.alphas) for good_start in (False, True)],
                        "SGD pairs (alpha, start)")
    theory = sweep_task1(cfg.alphas, beta=cfg.beta)
    rows += [theory_row(row["alpha"], cfg.beta, row, row["branch"], "theory") for row in theory]
    for alpha in cfg.alphas:
        target = float(np.mean([row["eps_g"] for row in rows if row["alpha"] == alpha and row["source"] == "sgd"]))
        beta = effective_beta(alpha, target)
        if beta is not None:
            solution = solve_task1(alpha, beta=beta).as_row()
            rows.append(theory_row(alpha, beta, solution, "unique", "theory_beta_eff"))
    return Computed({"rows": rows}, {"summary": summarize(cfg, rows)}, device=device, columns={"rows": COLUMNS},
                    stores=[store])


def main(cfg: Config):
    figure_main(cfg, STEM, compute, plot)


if __name__ == "__main__":
    run(main, Config, QUICK)
