"""Beyond the paper — task 1 at β = 20 with one step of replica-symmetry breaking, against RS, the sampled Gibbs
measure and SGD.

Axes: x = α; y = ε_g of the clipped student sgn m (left); the overlaps q⋆, q₁, q₀ of 1RSB and q⋆, q of RS and of the
sampler (middle); the Parisi parameter x and the replicon inside a 1RSB block (right).  Lines: the RS branches
(faded where λ_R ≥ 1, docs/theory.md §3b); dots: 1RSB (`mean_field_theory.one_step_rsb`, docs/theory.md §3c) from
every RS solution with λ_R ≥ 1 — where λ_R < 1 the RS solution is the 1RSB one with q₁ = q₀.  Points: the
tempered HMC of `figures/gibbs_vs_theory.csv` at this β (± 1 s.e. over instances; hollow: not equilibrated) and
SGD of `figures/fig2b_theory_vs_sgd.csv` (± 1 s.e. over trials), where those committed files have this β.
The json holds, per α, the comparison of RS and 1RSB with SGD by the one criterion (`single_layer/comparison.py`)
and the first-order transition of each theory (equal free entropy of the good RS branch and of the poor branch,
RS or 1RSB: `branch_analysis.transition`).

Runtime: ~6 fixed-x solves per α (x from ∂Φ/∂x = 0); the README's figure table (the wall time its json records).
Command: python mean_field_theory/rsb_task1.py
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from harness.command_line import run
from harness.config import bounded
from harness.errors import require
from harness.figure import Computed, figure_main
from harness.outputs import read_csv
from harness.paths import FIGURES_DIR
from harness.plotting import plot_by_stability, plot_style
from harness.sweep import SweepConfig, sweep
from mean_field_theory import one_step_rsb
from mean_field_theory.branch_analysis import free_entropy_gaps, mark_split, transition
from mean_field_theory.rs_solver import RSSolution
from mean_field_theory.task1 import sweep_task1
from single_layer.comparison import comparison_criterion, compare

STEM = "rsb_task1"


# ---- hyperparameters
@dataclasses.dataclass
class Config(SweepConfig):
    beta: float = bounded(20.0, above=0)  # inverse temperature of the Gibbs measure (β; the paper's Figs. 2a–b)
    kappa: float = bounded(0.0, at_least=0)  # weight of the entropy S(m) (κ₁; 0 in the main text)
    alphas: tuple[float, ...] = bounded(  # data densities α (Fig. 2b grid)
        tuple(round(0.1 * k, 1) for k in range(7, 19)), above=0)
    x_tol: float = bounded(1e-4, above=0, below=0.1)  # tolerance of the root of ∂Φ/∂x in the Parisi parameter x
    tol: float = bounded(1e-9, above=0, below=1e-3)  # tolerance of the fixed-x saddle point, max |T − id|
    theory_points: int = bounded(60, at_least=2)  # α grid of the RS curves

    def validate(self):
        super().validate()
        require(len(self.alphas) > 0, "--alphas needs at least one value")


QUICK = {"beta": 5.0, "alphas": (1.0,), "theory_points": 4}  # RS-stable: no 1RSB solve, a fast smoke run


def point(cfg: Config, alpha: float) -> list[dict]:
    """Both RS branches at α and, from every one with λ_R ≥ 1, the 1RSB saddle point of that branch."""
    rows = []
    for row in sweep_task1([alpha], beta=cfg.beta, kappa=cfg.kappa):
        rows.append({"source": "rs", **row})
        if row["rs_stable"]:
            continue
        rs = RSSolution(**{name: row[name] for name in RSSolution.__dataclass_fields__})
        solution = one_step_rsb.solve_1rsb(alpha, cfg.beta, one_step_rsb.rs_start(rs), cfg.kappa, x_tol=cfg.x_tol,
                                           tol=cfg.tol)
        rows.append({"source": "1rsb", "branch": row["branch"], **solution.as_row()})
    return rows


def committed(stem: str, beta: float, source: str) -> list[dict]:
    """Rows of one source at this β from a committed csv of another figure (empty if absent)."""
    path = FIGURES_DIR / f"{stem}.csv"
    return [row for row in read_csv(path) if row["source"] == source and row.get("beta", 20.0) == beta] \
        if path.exists() else []


def verdict(rows: list[dict], sgd: list[dict]) -> list[dict]:
    """Per α with SGD trials: ε_g of the thermodynamic RS solution and of 1RSB (where RS is unstable) against SGD."""
    result = []
    for alpha in sorted({row["alpha"] for row in rows if row["source"] == "1rsb" and row["split"]}):
        trials = [row["eps_g"] for row in sgd if row["alpha"] == alpha]
        if len(trials) < 2:
            continue
        rs = next(row for row in rows if row["source"] == "rs" and row["alpha"] == alpha and row["thermodynamic"])
        rsb = next((row for row in rows if row["source"] == "1rsb" and row["alpha"] == alpha
                    and row["branch"] == rs["branch"] and row["split"]), None)
        result.append({"alpha": alpha, "rs": compare(rs["eps_g"], trials),
                       "1rsb": compare(rsb["eps_g"], trials) if rsb else None})
    return result


# ---- plot
def plot(cfg: Config, tables: dict, record: dict):
    import matplotlib.pyplot as plt

    plot_style()
    mcmc, sgd = committed("gibbs_vs_theory", cfg.beta, "mcmc"), committed("fig2b_theory_vs_sgd", cfg.beta, "sgd")
    theory = [row for row in tables["rows"] if row["source"] == "rs_curve"]
    rows, beta = [row for row in tables["rows"] if row["source"] != "rs_curve"], cfg.beta
    fig, (error_ax, overlap_ax, parisi_ax) = plt.subplots(1, 3, figsize=(13.5, 3.8))
    coexisting = [row["alpha"] for row in theory if row["branch"] in ("poor", "good")]
    start = min(coexisting, default=math.inf)  # a unique solution below the coexistence window is the poor branch
    side = {id(row): row["branch"] if row["branch"] != "unique" else "poor" if row["alpha"] < start else "good"
            for row in theory}
    for branch, color in (("poor", "tab:blue"), ("good", "tab:green")):
        chosen = sorted((row for row in theory if side[id(row)] == branch), key=lambda r: r["alpha"])
        label = f"RS {branch} branch (faded: $\\lambda_R \\geq 1$)"
        plot_by_stability(error_ax, [(r["alpha"], r["eps_g"], r["rs_stable"]) for r in chosen], "-", color=color,
                          label=label)
        for name, style in (("q_star", ":"), ("q", "-")):
            plot_by_stability(overlap_ax, [(r["alpha"], r[name], r["rs_stable"]) for r in chosen], style,
                              color=color, label=f"RS {name.replace('_star', '⋆')}" if branch == "poor" else None)
    rsb = sorted((row for row in rows if row["source"] == "1rsb" and row["split"]), key=lambda r: r["alpha"])
    alphas = [r["alpha"] for r in rsb]
    error_ax.plot(alphas, [r["eps_g"] for r in rsb], "o-", color="k", ms=3, label="1RSB (poor branch)")
    for name, marker in (("q_star", "^"), ("q1", "o"), ("q0", "v")):
        overlap_ax.plot(alphas, [r[name] for r in rsb], marker + "-", color="k", ms=3, lw=0.8,
                        label=f"1RSB {name.replace('_star', '⋆')}")
    for n, marker in zip(sorted({row["n"] for row in mcmc}), "ds^"):
        for equilibrated in (True, False):
            part = [row for row in mcmc if row["n"] == n and row["equilibrated"] == equilibrated]
            if part:
                for ax, name in ((error_ax, "eps_g"), (overlap_ax, "q")):
                    ax.errorbar([r["alpha"] for r in part], [r[name] for r in part],
                                yerr=[r[f"{name}_se"] for r in part], fmt=marker, color="tab:purple",
                                mfc=None if equilibrated else "none", ms=4,
                                label=f"MCMC N={n} (± 1 s.e.{'' if equilibrated else ', not equilibrated'})")
    if sgd:
        sgd_alphas = sorted({row["alpha"] for row in sgd})
        values = [[row["eps_g"] for row in sgd if row["alpha"] == alpha] for alpha in sgd_alphas]
        error_ax.errorbar(sgd_alphas, [np.mean(v) for v in values],
                          yerr=[np.std(v, ddof=1) / math.sqrt(len(v)) for v in values], fmt="s", color="tab:red",
                          mfc="none", ms=4, label="SGD, Fig. 2b (± 1 s.e. over trials)")
    parisi_ax.plot(alphas, [r["x"] for r in rsb], "o-", color="k", ms=3, label="Parisi $x$ (weight of $q_0$)")
    parisi_ax.plot(alphas, [r["replicon"] for r in rsb], "s--", color="tab:orange", ms=3,
                   label=r"replicon inside a block $\lambda_R^{(1)}$")
    parisi_ax.axhline(1.0, color="grey", lw=0.6)
    error_ax.set(xlabel=r"$\alpha$", ylabel=r"$\epsilon_g$ of sgn $m$", title=rf"$\beta={beta:g}$: RS, 1RSB, MCMC, SGD")
    overlap_ax.set(xlabel=r"$\alpha$", ylabel="overlaps", title="self-overlap and overlaps of two solutions")
    parisi_ax.set(xlabel=r"$\alpha$", ylabel="x, $\\lambda_R^{(1)}$", title="1RSB: Parisi parameter and stability")
    for ax in (error_ax, overlap_ax, parisi_ax):
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def compute(cfg: Config) -> Computed:
    grid = np.linspace(min(cfg.alphas) - 0.2, max(cfg.alphas) + 0.2, cfg.theory_points)
    theory = [{"source": "rs_curve", **row}
              for row in sweep_task1([float(a) for a in np.round(grid[grid > 0], 4)], beta=cfg.beta, kappa=cfg.kappa)]
    rows, store = sweep(cfg, STEM, [(f"alpha={alpha!r}", point, (cfg, alpha)) for alpha in cfg.alphas], desc="alpha")
    mark_split(rows)
    gaps = {theory: free_entropy_gaps(rows, theory) for theory in ("rs", "1rsb")}
    summary = {"criterion": comparison_criterion(), "transition_rs": transition(gaps["rs"]),
               "transition_1rsb": transition(gaps["1rsb"]), "free_entropy_gap_poor_minus_good": gaps,
               "no_1rsb_solution_alphas": [row["alpha"] for row in rows if row["source"] == "1rsb" and not row["split"]],
               "versus_sgd": verdict(rows, committed("fig2b_theory_vs_sgd", cfg.beta, "sgd"))}
    return Computed({"rows": theory + rows}, {"summary": summary}, stores=[store])


def unconverged(tables: dict, record: dict) -> str | None:
    failed = [row["alpha"] for row in tables["rows"] if row["source"] in ("rs", "1rsb") and row["converged"] is False]
    return f"a saddle point did not converge at alpha = {failed} (rows kept, converged=False)" if failed else None


def main(cfg: Config):
    figure_main(cfg, STEM, compute, plot, failure=unconverged)


if __name__ == "__main__":
    run(main, Config, QUICK)
