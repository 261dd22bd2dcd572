"""Fig. 2a — task-1 order parameters q, r, q⋆ versus the data density α (replica-symmetric theory).

Axes: x = α ∈ [0.01, 2] (P/N), y = q (overlap of two typical solutions), r (student–teacher overlap of the
means), q⋆ (self-overlap; 1 − q⋆ is the mean weight variance).  β = 20, no prior (κ₁ = 0).
Equations: docs/theory.md eqs. 11–16, solved by `mean_field_theory.task1.sweep_task1` (deterministic float64 quadrature,
Newton to |T(x) − x| < 1e-10).  Where two RS solutions coexist (α ≈ 1.50–1.90 on this grid at β = 20) both are
written; the one with the larger free entropy is the thermodynamic branch (lines), the other is dotted.  Every row
carries the replicon λ_R of its solution (docs/theory.md §3b): where the thermodynamic branch has λ_R ≥ 1 the RS
solution is unstable (shaded) and does not describe the Gibbs measure.

Runtime: the README's figure table (the wall time its json records).
Command: python single_layer/fig2a_order_parameters.py
"""
from __future__ import annotations

import dataclasses

from harness.command_line import run
from harness.config import BaseConfig, bounded
from harness.figure import Computed, figure_main
from harness.plotting import plot_style
from mean_field_theory.task1 import sweep_task1

STEM = "fig2a_order_parameters"
COLUMNS = ["alpha", "branch", "thermodynamic", "q", "r", "q_star", "q_hat", "r_hat", "q_star_hat", "p1", "eps_g",
           "free_entropy", "converged", "iterations", "residual", "replicon", "rs_stable"]
ALPHA_GRID = tuple(round(0.01 * k, 2) for k in range(1, 201))


# ---- hyperparameters
@dataclasses.dataclass
class Config(BaseConfig):
    alphas: tuple[float, ...] = bounded(ALPHA_GRID, above=0)  # data densities α = P/N (paper: 0.01, 0.02, ..., 2.00)
    beta: float = bounded(20.0, above=0)  # inverse temperature of the Gibbs measure over variational means (β)
    kappa: float = bounded(0.0, at_least=0)  # weight of the entropy S(m) of the uniform prior (κ₁; 0 in the main text)
    tol: float = bounded(1e-10, above=0, below=1e-3)  # solver tolerance on max |T(x) − x|
    max_evaluations: int = bounded(  # cap on evaluations of the saddle-point map per solve (reached: converged=False)
        5000, at_least=1)


QUICK = {"alphas": (0.5, 1.55, 2.0)}


def summarize(rows: list[dict]) -> dict:
    """Coexistence window and first-order transition (where the thermodynamic branch switches)."""
    two_branch = sorted({row["alpha"] for row in rows if row["branch"] != "unique"})
    good_wins = [row["alpha"] for row in rows if row["branch"] == "good" and row["thermodynamic"]]
    unstable = [row["alpha"] for row in rows if row["thermodynamic"] and row["replicon"] >= 1.0]
    return {"coexistence_alphas": [two_branch[0], two_branch[-1]] if two_branch else None,
            "first_alpha_good_branch_thermodynamic": min(good_wins) if good_wins else None,
            "rs_unstable_thermodynamic_alphas": [min(unstable), max(unstable)] if unstable else None,
            "largest_replicon_thermodynamic": max(row["replicon"] for row in rows if row["thermodynamic"]),
            "unconverged_alphas": [row["alpha"] for row in rows if not row["converged"]]}


def plot(cfg: Config, tables: dict, record: dict):
    import matplotlib.pyplot as plt

    plot_style()
    rows = tables["rows"]
    fig, ax = plt.subplots()
    styles = {"q": ("black", "-", "$q$"), "r": ("dimgrey", "--", "$r$"), "q_star": ("darkgrey", ":", r"$q_\star$")}
    for key, (color, linestyle, label) in styles.items():
        for thermodynamic in (True, False):
            points = sorted((row["alpha"], row[key]) for row in rows if row["thermodynamic"] == thermodynamic)
            if not points:
                continue
            alphas, values = zip(*points)
            if thermodynamic:
                ax.plot(alphas, values, color=color, linestyle=linestyle, label=label)
            else:
                ax.plot(alphas, values, color=color, linestyle="none", marker=".", markersize=2)
    unstable = sorted(row["alpha"] for row in rows if row["thermodynamic"] and row["rs_stable"] is False)
    for index, alpha in enumerate(unstable):  # one span per grid point, so that several intervals stay apart
        spacing = min((abs(alpha - other) for other in (row["alpha"] for row in rows) if other != alpha), default=0.01)
        ax.axvspan(alpha - spacing / 2, alpha + spacing / 2, color="tab:red", alpha=0.12, lw=0,
                   label=r"RS unstable ($\lambda_R \geq 1$)" if index == 0 else None)
    ax.set_xlabel(r"$\alpha$")
    ax.set_ylabel("order parameters")
    ax.set_title(rf"task 1, $\beta={cfg.beta:g}$ (dots: metastable branch)", fontsize=9)
    ax.legend()
    return fig


def compute(cfg: Config) -> Computed:
    rows = sweep_task1(cfg.alphas, beta=cfg.beta, kappa=cfg.kappa, tol=cfg.tol, max_evaluations=cfg.max_evaluations)
    return Computed({"rows": rows}, {"summary": summarize(rows)}, columns={"rows": COLUMNS})


def unconverged(tables: dict, record: dict) -> str | None:
    alphas = [row["alpha"] for row in tables["rows"] if not row["converged"]]
    return (f"the saddle point did not converge at alpha = {alphas} (rows kept with converged=False in {STEM}.csv)"
            if alphas else None)


def main(cfg: Config):
    figure_main(cfg, STEM, compute, plot, failure=unconverged)


if __name__ == "__main__":
    run(main, Config, QUICK)
