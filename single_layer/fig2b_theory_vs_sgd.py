"""Fig. 2b — generalization of task 1: replica-symmetric theory vs SGD of the field-space binary perceptron.

x: data density α; y: teacher overlap p₁ of the clipped student and ε_g = arccos(p₁)/π (docs/theory.md eqs. 8, 16).
Theory (lines; mean_field_theory.task1.sweep_task1, β = 20, κ₁ = 0, α = 0.01…2): p₁ = E_z⟨sgn m⟩_z at the RS saddle
point; the thermodynamic branch (larger free entropy) is solid, the metastable one dashed.  SGD (markers, mean ± std
over 20 trials; settings of the original script): N = 1000, objective = data term (docs/theory.md eq. 4) without
KL, Adam with decoupled weight decay (eps 1e-20), per-α batch size, lr and weight decay of the original, ≤ 2000
epochs, a trial stops when its test accuracy on 10 000 fresh patterns is 1.  Annotation ε_g ∝ α^−k: least-squares
fit of ln ε_g vs ln α on the good (high-overlap) theory branch over α ∈ [1.5, 2] (the paper annotates k = 13.1).
Runtime: the README's figure table (the wall time its json records); --quick: a few seconds.
Command:  python single_layer/fig2b_theory_vs_sgd.py
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
from harness.plotting import plot_by_stability, plot_style
from harness.points import sweep_store
from harness.sweep import PointsFailed, SweepConfig, run_points
from mean_field_theory.task1 import sweep_task1
from single_layer.comparison import comparison_criterion, compare, eps_g_resolution, tally
from single_layer.perceptron import OptimizerSpec, task_observer
from single_layer.training import train_task
from teacher_student import n_patterns, sample_trials

STEM = "fig2b_theory_vs_sgd"


# ---- hyperparameters
@dataclasses.dataclass
class Config(SweepConfig):
    beta: float = bounded(20.0, above=0)  # inverse temperature of the theory's Gibbs measure (β)
    theory_alpha_min: float = bounded(0.01, above=0)  # smallest α of the theory curve
    theory_alpha_max: float = 2.0  # largest α of the theory curve
    theory_points: int = bounded(200, at_least=2)  # α values of the theory curve (plus the SGD α values)
    n: int = bounded(1000, at_least=1)  # input dimension of the SGD runs (N)
    trials: int = bounded(20, at_least=1)  # independent SGD trials per α (seed + k)
    sgd_alphas: tuple[float, ...] = bounded(  # α of the SGD points
        tuple(round(0.1 * index, 1) for index in range(1, 18)), above=0)
    batch_sizes: tuple[int, ...] = bounded((  # Adam batch size per SGD α
        128, 64, 128, 100, 100, 128, 64, 64, 64, 64, 100, 100, 100, 100, 100, 100, 64), at_least=1)
    learning_rates: tuple[float, ...] = bounded((  # Adam learning rate per SGD α (η)
        0.008, 0.008, 0.002, 0.005, 0.008, 0.002, 0.002, 0.005, 0.002, 0.002, 0.002, 0.005, 0.005, 0.005, 0.008,
        0.008, 0.002), above=0)
    weight_decays: tuple[float, ...] = bounded((  # decoupled Adam weight decay per SGD α
        0.5, 0.5, 0.5, 0.5, 0.1, 0.1, 0.03, 0.03, 0.1, 0.03, 0.1, 0.1, 0.1, 0.1, 0.05, 0.03, 0.1), at_least=0)
    epochs: int = bounded(2000, at_least=1)  # maximal training epochs
    n_test: int = bounded(10000, at_least=1)  # test patterns of the early stop (test accuracy 1)
    fit_alpha_min: float = bounded(1.5, above=0)  # fit range of ε_g ∝ α^−k on the good theory branch: lower end
    fit_alpha_max: float = 2.0  # fit range: upper end
    agreement_alpha_max: float = 1.2  # the agreement summary is split at this α (below it: one RS solution)
    check_betas: tuple[float, ...] = bounded(  # the theory at other β, at the SGD α
        (5.0, 10.0, 12.5, 15.0, 50.0, 100.0), above=0)
    dtype: str = "float32"  # torch dtype of the training (float32 | float64)

    def validate(self):
        super().validate()
        require(self.theory_alpha_min < self.theory_alpha_max, "--theory_alpha_min/max: need 0 < min < max")
        require(all(n_patterns(alpha, self.n) >= 1 for alpha in self.sgd_alphas), "every α·N must give a pattern")
        lengths = {len(self.sgd_alphas), len(self.batch_sizes), len(self.learning_rates), len(self.weight_decays)}
        require(len(lengths) == 1 and 0 not in lengths,
                "--sgd_alphas, --batch_sizes, --learning_rates, --weight_decays: equal, nonzero lengths")
        require(self.fit_alpha_min < self.fit_alpha_max, "--fit_alpha_min/max: need 0 < min < max")
        require(self.dtype in ("float32", "float64"), f"--dtype must be float32 or float64, got {self.dtype}")


QUICK = {"check_betas": (100.0,), "theory_points": 6, "n": 60, "trials": 2, "sgd_alphas": (0.5, 1.0), "epochs": 30,
         "batch_sizes": (16, 16), "learning_rates": (0.008, 0.002), "weight_decays": (0.1, 0.03), "n_test": 500}


def temperature_check(cfg: Config, sgd: list[dict]) -> dict:
    """The same theory at other β (β → ∞ concentrates the measure on the minimisers SGD looks for) at the SGD α:
    per β, the thermodynamic ε_g, q⋆ and r at each SGD α and how many SGD points it matches."""
    result = {}
    for beta in cfg.check_betas:
        rows = [row for row in sweep_task1(cfg.sgd_alphas, beta=beta) if row["thermodynamic"]]
        points = [compare(row["eps_g"], [s["eps_g"] for s in sgd if s["alpha"] == row["alpha"]],
                          eps_g_resolution(cfg.n), alpha=row["alpha"], q_star=row["q_star"], r=row["r"],
                          branch=row["branch"]) for row in rows]
        result[f"{beta:g}"] = {"summary": tally(points), "points": points}
    return result


def sgd_rows(cfg: Config, index: int, device) -> list[dict]:
    """All trials at one SGD α as one batch; one row per trial with its final overlap."""
    alpha = cfg.sgd_alphas[index]
    fields, (task,) = sample_trials(cfg.trials, cfg.n, [alpha], n_test=cfg.n_test, seed=cfg.seed, device=device,
                                    dtype=getattr(torch, cfg.dtype))
    spec = OptimizerSpec("adam", lr=cfg.learning_rates[index], weight_decay=cfg.weight_decays[index],
                         batch_size=cfg.batch_sizes[index])
    _, history = train_task(fields, task, spec, cfg.epochs, observe=task_observer([task]), record_every=cfg.epochs,
                            early_stop="test_accuracy")
    return [{"alpha": alpha, "source": "sgd", "seed": cfg.seed + trial, "p1": history.final("p1")[trial],
             "eps_g": history.final("eps_g1")[trial], "r": history.final("r1")[trial],
             "q_star": history.final("q_star")[trial], "epochs_trained": int(history.stop_epoch[trial])}
            for trial in range(cfg.trials)]


def power_law_fit(cfg: Config, theory: list[dict]) -> dict:
    """ε_g ∝ α^−k over [fit_alpha_min, fit_alpha_max] on the high-overlap branch (good, or unique past coexistence)."""
    coexistence_end = max((row["alpha"] for row in theory if row["branch"] == "poor"), default=np.inf)
    points = sorted((row["alpha"], row["eps_g"]) for row in theory
                    if (row["branch"] == "good" or (row["branch"] == "unique" and row["alpha"] > coexistence_end))
                    and cfg.fit_alpha_min <= row["alpha"] <= cfg.fit_alpha_max and row["eps_g"] > 0)
    if len(points) < 2:
        return {"exponent": None, "points": len(points), "alpha_range": [cfg.fit_alpha_min, cfg.fit_alpha_max]}
    slope, intercept = np.polyfit(np.log([a for a, _ in points]), np.log([e for _, e in points]), 1)
    return {"exponent": -slope, "prefactor": np.exp(intercept), "points": len(points),
            "alpha_range": [cfg.fit_alpha_min, cfg.fit_alpha_max], "branch": "good (high overlap)"}


def agreement(cfg: Config, theory: list[dict], sgd: list[dict]) -> dict:
    """At every SGD α: ε_g of the thermodynamic theory and of each coexisting branch against the SGD trials."""
    points = {"thermodynamic": [], "poor": [], "good": []}
    for alpha in sorted({row["alpha"] for row in sgd}):
        samples = [row["eps_g"] for row in sgd if row["alpha"] == alpha]
        for row in (row for row in theory if abs(row["alpha"] - alpha) < 1e-9):
            for name in [name for name in ("poor", "good") if row["branch"] in (name, "unique")] + \
                    (["thermodynamic"] if row["thermodynamic"] else []):
                points[name].append(compare(row["eps_g"], samples, eps_g_resolution(cfg.n), alpha=alpha,
                                            branch=row["branch"]))
    low = [p for p in points["thermodynamic"] if p["alpha"] <= cfg.agreement_alpha_max]
    high = [p for p in points["thermodynamic"] if p["alpha"] > cfg.agreement_alpha_max]
    return {"criterion": comparison_criterion(), "points": points,
            "summary": f"thermodynamic theory vs SGD: α ≤ {cfg.agreement_alpha_max}: {tally(low)}; "
                       f"α > {cfg.agreement_alpha_max}: {tally(high)}"}


def plot(cfg: Config, tables: dict, record: dict):
    import matplotlib.pyplot as plt

    plot_style()
    rows, fit = tables["rows"], record["power_law_fit"]
    fig, axis = plt.subplots()
    theory = [row for row in rows if row["source"] == "theory"]
    sgd = [row for row in rows if row["source"] == "sgd" and row["converged"]]
    sgd_alphas = sorted({row["alpha"] for row in sgd})
    for quantity, colour, marker, label in (("p1", "black", "o", "p_1"), ("eps_g", "dimgrey", "s", r"\epsilon_g")):
        for thermodynamic, style in ((True, "-"), (False, "--")):
            branch = [(row["alpha"], row[quantity], row.get("rs_stable", True)) for row in theory
                      if row["thermodynamic"] == thermodynamic]
            if branch:
                plot_by_stability(axis, branch, style, color=colour,
                                  label=f"${label}$ (RS; faded: RS unstable)" if thermodynamic else None)
        values = [[row[quantity] for row in sgd if row["alpha"] == a] for a in sgd_alphas]
        spreads = [np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in values]
        axis.errorbar(sgd_alphas, [np.mean(v) for v in values], yerr=spreads, fmt=marker + "--", color=colour,
                      mfc="none", lw=0.8, label=rf"${label}^{{\rm SGD}}$ (mean ± 1 s.d. over trials)")
    if fit.get("exponent") is not None:
        axis.text(1.5, 0.67, rf"$\epsilon_g \propto \alpha^{{-{fit['exponent']:.1f}}}$", fontsize=9)
    axis.set(xlabel=r"$\alpha$", ylabel=r"teacher overlap $p_1$, generalization error $\epsilon_g$", ylim=(-0.02, 1.02))
    axis.legend(loc="center right")
    return fig


def compute(cfg: Config) -> Computed:
    device = torch_setup(cfg)
    print("theory: solving the RS saddle point ...")
    grid = np.linspace(cfg.theory_alpha_min, cfg.theory_alpha_max, cfg.theory_points)
    alphas = sorted({round(float(alpha), 10) for alpha in (*grid, *cfg.sgd_alphas)})
    theory = [{"source": "theory", "seed": "", **row} for row in sweep_task1(alphas, beta=cfg.beta)]
    store = sweep_store(cfg, STEM)
    points = [(f"alpha={alpha!r}", sgd_rows, (cfg, index, str(device))) for index, alpha in enumerate(cfg.sgd_alphas)]
    try:
        results, diverged = run_points(cfg, store, points, desc="fig2b SGD"), {}
    except PointsFailed as failed:  # the other α are independent: keep them
        results, diverged = failed.results, failed.failures
    sgd = [row for key, _, _ in points for row in results.get(key, [{
        "alpha": float(key.split("=")[1]), "source": "sgd", "seed": "", "converged": False}])]
    finished = [row for row in sgd if row.get("converged", True)]
    fit, comparison = power_law_fit(cfg, theory), agreement(cfg, theory, finished)
    return Computed({"rows": theory + [{"converged": True, **row} for row in sgd]}, dict(
        seeds=[cfg.seed + trial for trial in range(cfg.trials)], power_law_fit=fit, agreement=comparison,
        temperature_check=temperature_check(cfg, finished), diverged=diverged,
        summary=comparison["summary"] + "; good-branch fit ε_g ∝ α^-k, k = "
        + ("n/a (fewer than 2 points)" if fit["exponent"] is None else f"{fit['exponent']:.2f}")),
        device=device, stores=[store])


def diverged(tables: dict, record: dict) -> str | None:
    where = "; ".join(f"{key}: {text}" for key, text in record["diverged"].items())
    return where and f"SGD diverged at {where} (finished α kept in {STEM}.csv, their points in the store for a rerun)"


def main(cfg: Config) -> None:
    figure_main(cfg, STEM, compute, plot, failure=diverged)


if __name__ == "__main__":
    run(main, Config, QUICK)
