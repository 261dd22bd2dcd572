"""Task-1 phase diagram in the (α, β) plane: where the poor- and good-generalization branches exist, where the
first-order transition between them lies, and the critical β below which there is a single branch.

For each β the solution curve of the task-1 saddle point (docs/theory.md eqs. 14–16, κ₁ = 0) is followed by
pseudo-arclength continuation (`mean_field_theory.continuation`; the branch analysis below is
`mean_field_theory.branch_analysis`), which walks through folds instead of stopping at them, so a branch end is
never a solver failure:
* upward from the poor branch at α = `alpha_poor` until its end: a fold (the upper spinodal, where dα/ds
  changes sign) — or, for β ≳ 25, the saturation q⋆ → 1 (every variational mean at ±1), which the branch
  approaches like α_sat − c·√(1 − q⋆); α_sat is then the limit of a fit of that law (docs/results.md);
* downward from the good branch at α = `alpha_good` until its fold (the lower spinodal).
The first-order transition is the α in between where the two branches have equal free entropy (brentq on
Φ_poor − Φ_good, each solved from the traced branch).  Where the upward trace reaches `alpha_good` without a
fold, there is one solution for every α.  The critical β is the root of the smallest dα/ds along the curve
(positive without folds, negative with them; brentq between the grid's last β without and first β with folds).
Spinodals are located to ≪ 10⁻⁶ in α by bisection on the step length, the transition to 10⁻⁶.
Replica-symmetry stability (docs/theory.md §3b): every traced solution carries its replicon λ_R; each branch is cut
into stretches where RS is stable (λ_R < 1) or not at its de Almeida–Thouless points, located to 10⁻⁵ in α, and
the β below which RS is stable for every α (`at_beta`, `branch_analysis.at_parameter`) is the root of
max_α λ_R − 1, located to 0.01.

Outputs: phase_diagram.csv (beta, alpha_spinodal_low, alpha_spinodal_high, alpha_transition; empty where one
branch only), phase_diagram_curves.csv (the traced branches: ε_g, q⋆ and λ_R along α), phase_diagram_stability.csv
(per β and branch the stretches of equal RS stability and their ends: 'AT' or 'end' of the trace),
phase_diagram.json (critical_beta, at_beta, the kind of each branch end, ε_g of both branches at the transition,
reasons for empty values).
Runtime: the README's figure table (the wall time its json records).
Command: python mean_field_theory/phase_diagram.py [--betas 10 20 50 --out_dir D]
"""
from __future__ import annotations

import dataclasses

import numpy as np

from harness.command_line import run
from harness.config import bounded
from harness.errors import require
from harness.figure import Computed, figure_main
from harness.plotting import plot_by_stability, plot_style
from harness.points import sweep_store
from harness.sweep import SweepConfig, run_points
from mean_field_theory.branch_analysis import (at_parameter, branch_stability, coexistence, critical_parameter,
                                               point_rows, point_tables)
from mean_field_theory.continuation import Family
from mean_field_theory.channels import VariationalChannel
from mean_field_theory.quadrature import NUMERICS_VERSION
from mean_field_theory.rs_solver import RSProblem
from mean_field_theory.site_measures import FlatMeasure
from mean_field_theory.task1 import HIGH_INIT, LOW_INIT

STEM = "phase_diagram"
COLUMNS = ["beta", "alpha_spinodal_low", "alpha_spinodal_high", "alpha_transition"]
CURVE_COLUMNS = ["beta", "branch", "alpha", "eps_g", "q_star", "free_entropy", "replicon", "rs_stable"]
STABILITY_COLUMNS = ["beta", "branch", "alpha_from", "alpha_to", "rs_stable", "from", "to", "tolerance"]


# ---- hyperparameters
@dataclasses.dataclass
class Config(SweepConfig):
    betas: tuple[float, ...] = bounded(  # β
        (5.0, 7.5, 10.0, 12.5, 15.0, 17.5, 20.0, 25.0, 30.0, 40.0, 50.0, 70.0, 100.0), above=0)
    alpha_poor: float = bounded(0.5, above=0)  # α where the upward trace starts (poor branch, unique for every β here)
    alpha_good: float = 2.45  # α where the downward trace starts (good branch, beyond every poor-branch end)
    critical: bool = True  # locate the critical β between the grid's last β without and first β with folds

    def validate(self):
        super().validate()
        require(len(self.betas) >= 1, "--betas needs at least one value")
        require(self.alpha_poor < self.alpha_good, "--alpha_poor must be in (0, alpha_good)")


QUICK = {"betas": (20.0,), "alpha_poor": 1.3, "alpha_good": 2.0, "critical": False}


# ---- one β
class Task1Family(Family):
    def __init__(self, beta: float):
        measure, channel = FlatMeasure(0.0), VariationalChannel(beta)
        super().__init__(lambda alpha: RSProblem(alpha, measure, channel))
        self.beta = beta


def phase_rows(beta: float, cfg: Config) -> list[dict]:
    """One β as rows of one kind each (`branch_analysis.point_rows`), for the resumable store."""
    family = Task1Family(beta)
    ends, traced, details = coexistence(family, LOW_INIT, HIGH_INIT, cfg.alpha_poor, cfg.alpha_good, f"beta={beta}")
    return point_rows({"beta": beta}, "alpha", ends, [curve_row(beta, branch, solution) for branch, solution in traced],
                      branch_stability(family, traced, f"beta={beta}", beta=beta), details)


def curve_row(beta: float, branch: str, solution) -> dict:
    return {"beta": beta, "branch": branch, "alpha": solution.alpha, "eps_g": solution.eps_g,
            "q_star": solution.q_star, "free_entropy": solution.free_entropy, "replicon": solution.replicon,
            "rs_stable": solution.replicon < 1.0}


# ---- plot
def plot(cfg: Config, tables: dict, summary: dict):
    import matplotlib.pyplot as plt

    plot_style()
    rows, curves, stability = tables["rows"], tables["curves"], tables["stability"]
    fig, (plane, branches) = plt.subplots(1, 2, figsize=(9.6, 3.8))
    located = sorted((row for row in rows if row["alpha_spinodal_low"] != ""), key=lambda row: row["beta"])
    for key, style, label in (("alpha_spinodal_low", "k--", "good branch appears (fold)"),
                              ("alpha_transition", "r-", "first-order transition")):
        points = [(row[key], row["beta"]) for row in located if row[key] != ""]
        if points:
            plane.plot(*zip(*points), style, marker="o", markersize=3, label=label)
    ends = summary.get("per_beta", {})
    upper = [(row["alpha_spinodal_high"], row["beta"], ends.get(f"{row['beta']:g}", {}).get("upper_end"))
             for row in located if row["alpha_spinodal_high"] != ""]
    if upper:
        plane.plot([a for a, _, _ in upper], [b for _, b, _ in upper], "k:")
    for kind, marker, label in (("fold", "o", "poor branch ends (fold)"),
                                ("saturation", "s", r"poor branch ends (saturation $q_\star \to 1$)")):
        chosen = [(a, b) for a, b, end in upper if end == kind]
        if chosen:
            plane.plot(*zip(*chosen), "k", marker=marker, ls="none", markersize=4, mfc="white", label=label)
    for branch, color in (("poor", "tab:blue"), ("good", "tab:green")):  # AT points: edges of unstable stretches
        for side, kind, marker, what in (("alpha_from", "from", "^", "RS unstable above"),
                                         ("alpha_to", "to", "v", "RS stable again above")):
            points = sorted((row["beta"], row[side]) for row in stability if row["branch"] == branch
                            and not row["rs_stable"] and row[kind] == "AT")
            if points:
                plane.plot([alpha for _, alpha in points], [beta for beta, _ in points], "-", color=color, lw=0.8,
                           marker=marker, markersize=4, label=f"AT point, {branch} branch: {what}")
    if summary.get("at_beta"):
        plane.axhline(summary["at_beta"], color="tab:blue", lw=0.8, ls="-.",
                      label=rf"RS stable everywhere below $\beta_{{AT}}={summary['at_beta']:.2f}$")
    if summary.get("critical_beta"):
        lowest = [row for row in located if row["beta"] == min(r["beta"] for r in located)]
        alpha_c = 0.5 * (lowest[0]["alpha_spinodal_low"] + lowest[0]["alpha_spinodal_high"]) if lowest else None
        plane.axhline(summary["critical_beta"], color="grey", lw=0.8)
        if alpha_c:
            plane.plot([alpha_c], [summary["critical_beta"]], "k*", markersize=9, label="critical point (RS)")
    plane.set(xlabel=r"$\alpha$", ylabel=r"$\beta$", yscale="log", title="task 1: branches and RS stability")
    plane.legend(fontsize=6, loc="upper left", bbox_to_anchor=(0.0, -0.16), ncol=2)  # below: the plane is full
    shown = sorted({row["beta"] for row in curves})
    shown = [beta for beta in shown if beta in (10.0, 15.0, 20.0, 50.0, 100.0)] or shown[:4]
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(shown)))
    for beta, color in zip(shown, colors):
        for branch, linestyle in (("poor", "-"), ("good", "--")):
            points = [(row["alpha"], row["eps_g"], row["rs_stable"]) for row in curves if row["beta"] == beta
                      and row["branch"] == branch]
            if points:
                plot_by_stability(branches, points, linestyle, color=color,
                                  label=rf"$\beta={beta:g}$" if branch == "poor" else None)
    branches.set(xlabel=r"$\alpha$", ylabel=r"$\epsilon_g$", xlim=(0.5, 2.6),
                 title="solid: poor, dashed: good; thin: RS unstable")
    branches.legend(fontsize=7)
    return fig


def compute(cfg: Config) -> Computed:
    points = [(f"beta={beta!r}", phase_rows, (beta, cfg)) for beta in sorted(cfg.betas)]
    store = sweep_store(cfg, STEM, numerics=NUMERICS_VERSION)
    tables, details = point_tables(points, run_points(cfg, store, points, desc="beta"))
    summary = (critical_parameter(tables["rows"], "beta", Task1Family, LOW_INIT, cfg.alpha_poor, cfg.alpha_good)
               if cfg.critical else {"critical_beta": None, "reason": "--no-critical"})
    summary.update(at_parameter(tables["stability"], "beta", cfg.betas, Task1Family, LOW_INIT, cfg.alpha_poor,
                                cfg.alpha_good)
                   if cfg.critical else {"at_beta": None, "at_beta_reason": "--no-critical"})
    summary["per_beta"] = {f"{row['beta']:g}": row["details"] for row in details}
    return Computed(tables, summary, stores=[store],
                    columns={"rows": COLUMNS, "curves": CURVE_COLUMNS, "stability": STABILITY_COLUMNS})


def main(cfg: Config):
    figure_main(cfg, STEM, compute, plot, tables=("rows", "curves", "stability"))


if __name__ == "__main__":
    run(main, Config, QUICK)
