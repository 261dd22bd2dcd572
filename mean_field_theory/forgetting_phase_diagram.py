"""Catastrophic forgetting as a phase transition: where the second task's two branches coexist.

Task 2 (docs/theory.md §5) has a first-order transition: besides the gradual branch, which learns task 2 while the KL
term holds the student near the task-1 reference, there is a branch that learns task 2 perfectly and forgets task 1 down
to ε_g¹ = arccos(r₀)/π.  This script maps it in the planes (α₂, r₀) at γ = 1 (how similar the tasks are) and (α₂, γ) at
r₀ = 0 (how strongly the prior holds), with the fold-location method of the task-1 phase diagram
(`branch_analysis.coexistence`: pseudo-arclength continuation through the folds, spinodals by bisection on the step
length, the transition where the free entropies are equal).  The task-1 reference is Fig. 3's (α₁ = 2, β₁ = 20,
thermodynamic branch); β₂ = β₁.  Along each plane the critical point, where the coexistence window closes, is the root
of the smallest dα₂/ds along the solution curve between the last value with one branch and the first with two
(`branch_analysis.critical_parameter`).

Outputs: forgetting_phase_diagram.csv (gamma, r0, alpha2_spinodal_low, alpha2_spinodal_high, alpha2_transition;
empty where one branch only), forgetting_phase_diagram_curves.csv (ε_g¹, ε_g², λ_R along the traced branches),
forgetting_phase_diagram_stability.csv (each branch cut at its de Almeida–Thouless points into stretches where the
task-2 RS solution, at its fixed reference, is stable or not: `branch_analysis.stability_segments`; docs/theory.md §3b),
forgetting_phase_diagram.json (the critical points, ε_g of both branches at each transition, reasons for empty
values).  A (γ, r₀) whose branches the solver cannot follow gets empty values and "not located" with the reason in
the json; everything is written, then the script exits with code 3.
Runtime: the README's figure table (the wall time its json records).
Command: python mean_field_theory/forgetting_phase_diagram.py [--r0s 0 0.5 --gammas 0.5 1 --out_dir D]
"""
from __future__ import annotations

import dataclasses

from harness.command_line import run
from harness.config import bounded
from harness.errors import SolverError, require
from harness.figure import Computed, figure_main
from harness.plotting import plot_style
from harness.points import sweep_store
from harness.sweep import SweepConfig, run_points
from mean_field_theory.branch_analysis import (ENDS, branch_stability, coexistence, critical_parameter, point_rows,
                                               point_tables)
from mean_field_theory.continuation import Family
from mean_field_theory.franz_parisi import NextTask, task1_law
from mean_field_theory.quadrature import NUMERICS_VERSION
from mean_field_theory.rs_solver import RSProblem, eps_g_of, single_thread
from mean_field_theory.task1 import HIGH_INIT, task1_reference

STEM = "forgetting_phase_diagram"
COLUMNS = ["gamma", "r0", "alpha2_spinodal_low", "alpha2_spinodal_high", "alpha2_transition"]
STABILITY_COLUMNS = ["gamma", "r0", "branch", "alpha_from", "alpha_to", "rs_stable", "from", "to", "tolerance"]
CURVE_COLUMNS = ["gamma", "r0", "branch", "alpha2", "eps_g1", "eps_g2", "q_star", "free_entropy", "replicon",
                 "rs_stable"]
NOT_LOCATED = "not located"  # a (γ, r₀) whose branch structure the solver could not follow
ALPHA_GOOD_LIMIT = 50.0  # the largest α₂ range searched for the end of the gradual branch


# ---- hyperparameters
@dataclasses.dataclass
class Config(SweepConfig):
    r0s: tuple[float, ...] = bounded(  # teacher overlaps of the γ = 1 plane
        (-0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 0.9), at_least=-1, at_most=1)
    gammas: tuple[float, ...] = bounded(  # KL weights of the r₀ = 0 plane
        (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0), at_least=0)
    alpha1: float = bounded(2.0, above=0)  # data density of the task-1 reference (α₁)
    beta: float = bounded(20.0, above=0)  # inverse temperature of both tasks (β₁ = β₂); κ₂ = βγ
    alpha_poor: float = bounded(0.5, above=0)  # α₂ where the upward trace starts (gradual branch)
    alpha_good: float = 12.0  # α₂ where the downward trace starts (task 2 learned perfectly)
    critical: bool = True  # locate the critical r₀ and γ where the coexistence window closes

    def validate(self):
        super().validate()
        require(len(self.r0s) + len(self.gammas) >= 1, "give at least one --r0s or --gammas value")
        require(self.alpha_poor < self.alpha_good, "--alpha_poor must be in (0, alpha_good)")


QUICK = {"r0s": (0.75,), "gammas": (), "alpha_poor": 2.75, "alpha_good": 3.15, "critical": False}


# ---- one (γ, r₀)
class Task2Family(Family):
    """Task 2's saddle points along α₂ at fixed (γ, r₀) from a fixed task-1 reference law."""

    def __init__(self, law, gamma: float, r0: float, beta: float):
        self.task = NextTask(law, r0, gamma, beta)
        super().__init__(lambda alpha: RSProblem(alpha, self.task.measure, self.task.channel))

    def curve_row(self, branch: str, solution) -> dict:
        """ε_g¹ of a traced solution from its conjugates (the trace keeps only the task-2 observables)."""
        with single_thread():
            p1 = self.task.measure.averages(solution.q_hat, solution.r_hat,
                                            solution.q_star_hat - solution.q_hat / 2).extras["p_teachers"][0]
        return {"gamma": self.task.gamma, "r0": self.task.r0, "branch": branch, "alpha2": solution.alpha,
                "eps_g1": eps_g_of(p1), "eps_g2": solution.eps_g,
                "q_star": solution.q_star, "free_entropy": solution.free_entropy, "replicon": solution.replicon,
                "rs_stable": solution.replicon < 1.0}


def reference_law(cfg: Config):
    reference, _ = task1_reference(cfg.alpha1, cfg.beta, 0.0, "thermodynamic")
    if not reference.converged:
        raise SolverError(f"the task-1 reference at alpha1={cfg.alpha1}, beta={cfg.beta} did not converge")
    return task1_law(reference)


def forgetting_rows(gamma: float, r0: float, cfg: Config) -> list[dict]:
    """One (γ, r₀) as rows of one kind each (`branch_analysis.point_rows`), for the resumable store.  Where the
    perfect-learning branch exists at `alpha_good` apart from a gradual branch that has not ended yet (a strong
    prior holds the student longer), the range is doubled, up to ALPHA_GOOD_LIMIT."""
    family, label = Task2Family(reference_law(cfg), gamma, r0, cfg.beta), f"gamma={gamma}, r0={r0}"
    alpha_good = cfg.alpha_good
    try:
        while True:
            ends, traced, details = coexistence(family, family.task.near_reference, HIGH_INIT, cfg.alpha_poor,
                                                alpha_good, label, approach_step=(alpha_good - cfg.alpha_poor) / 40)
            if details.get("isola_check", True) or 2 * alpha_good > ALPHA_GOOD_LIMIT:
                break
            alpha_good *= 2
    except SolverError as error:  # reported, never guessed: empty values, the reason in the json, exit 3 at the end
        ends, traced, details = dict.fromkeys(ENDS), [], {"kind": NOT_LOCATED, "reason": str(error)}
    details["alpha_good"] = alpha_good
    try:
        segments = branch_stability(family, traced, label, gamma=gamma, r0=r0)
    except SolverError as error:  # the branches stand; only their RS stability is not located
        segments, details["stability_reason"] = [], str(error)
    return point_rows({"gamma": gamma, "r0": r0}, "alpha2", ends,
                      [family.curve_row(branch, solution) for branch, solution in traced], segments, details)


def critical_points(rows: list[dict], cfg: Config) -> dict:
    """The critical r₀ of the γ = 1 plane and the critical γ of the r₀ = 0 plane (None where not bracketed)."""
    law, found = reference_law(cfg), {}
    planes = {"r0": ([row for row in rows if row["gamma"] == 1.0], lambda r0: Task2Family(law, 1.0, r0, cfg.beta)),
              "gamma": ([row for row in rows if row["r0"] == 0.0], lambda gamma: Task2Family(law, gamma, 0.0, cfg.beta))}
    for parameter, (plane, family_at) in planes.items():
        if len(plane) < 2:
            found[parameter] = {f"critical_{parameter}": None, "reason": "fewer than two points in this plane"}
            continue
        start = family_at(plane[0][parameter]).task.near_reference
        found[parameter] = critical_parameter(plane, parameter, family_at, start, cfg.alpha_poor, cfg.alpha_good,
                                              spinodal="alpha2_spinodal_low")
    return found


# ---- plot
def plot(cfg: Config, tables: dict, summary: dict):
    import matplotlib.pyplot as plt

    plot_style()
    rows, stability = tables["rows"], tables["stability"]
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.8))
    for ax, (parameter, fixed, label) in zip(axes, (("r0", ("gamma", 1.0), r"$r_0$ ($\gamma = 1$)"),
                                                    ("gamma", ("r0", 0.0), r"$\gamma$ ($r_0 = 0$)"))):
        plane = sorted((row for row in rows if row[fixed[0]] == fixed[1]), key=lambda row: row[parameter])
        for key, style, name in (("alpha2_spinodal_low", "k--", "perfect-learning branch appears"),
                                 ("alpha2_spinodal_high", "k:", "gradual branch ends"),
                                 ("alpha2_transition", "r-", "first-order transition")):
            points = [(row[key], row[parameter]) for row in plane if row[key] != ""]
            if points:
                ax.plot(*zip(*points), style, marker="o", markersize=3, label=name)
        for branch, color in (("poor", "tab:blue"), ("good", "tab:green")):  # where RS is unstable (λ_R ≥ 1)
            for side, kind, marker, what in (("alpha_from", "from", "^", "unstable above"),
                                             ("alpha_to", "to", "v", "stable again above")):
                points = sorted((row[parameter], row[side]) for row in stability if row[fixed[0]] == fixed[1]
                                and row["branch"] == branch and not row["rs_stable"] and row[kind] == "AT")
                if points:
                    ax.plot([a for _, a in points], [p for p, _ in points], marker, color=color, ms=4,
                            label=f"AT, {'gradual' if branch == 'poor' else 'perfect-learning'} branch: RS {what}")
        critical = summary.get("critical_points", {}).get(parameter, {}).get(f"critical_{parameter}")
        if critical is not None:
            ax.axhline(critical, color="grey", lw=0.8, label=f"critical {parameter} = {critical:.2f}")
        for row in (row for row in plane if row["alpha2_spinodal_low"] == ""):
            kind = summary["per_point"].get(f"gamma={row['gamma']:g} r0={row['r0']:g}", {}).get("kind")
            ax.text(0.03, row[parameter], NOT_LOCATED if kind == NOT_LOCATED else "one branch",
                    transform=ax.get_yaxis_transform(), va="center", fontsize=7)
            ax.axhline(row[parameter], color="grey", lw=0.5, ls=":")
        ax.set(xlabel=r"$\alpha_2$", ylabel=label)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="lower right" if parameter == "gamma" else "upper right")
    fig.suptitle("task 2: the two branches coexist between the black lines", fontsize=10)
    fig.tight_layout()
    return fig


def compute(cfg: Config) -> Computed:
    pairs = sorted({(1.0, r0) for r0 in cfg.r0s} | {(gamma, 0.0) for gamma in cfg.gammas})
    points = [(f"gamma={gamma!r} r0={r0!r}", forgetting_rows, (gamma, r0, cfg)) for gamma, r0 in pairs]
    store = sweep_store(cfg, STEM, numerics=NUMERICS_VERSION)
    tables, found = point_tables(points, run_points(cfg, store, points, desc="(gamma, r0)"))
    details = {f"gamma={row['gamma']:g} r0={row['r0']:g}": row["details"] for row in found}
    located = [row for row, point in zip(tables["rows"], found) if point["details"].get("kind") != NOT_LOCATED]
    critical = critical_points(located, cfg) if cfg.critical else {"reason": "--no-critical"}
    return Computed(tables, {"critical_points": critical, "per_point": details}, stores=[store],
                    columns={"rows": COLUMNS, "curves": CURVE_COLUMNS, "stability": STABILITY_COLUMNS})


def not_located(tables: dict, record: dict) -> str | None:
    failed = [key for key, value in record["per_point"].items() if value.get("kind") == NOT_LOCATED]
    return f"the branch structure was not located at {'; '.join(failed)} (reasons in {STEM}.json)" if failed else None


def main(cfg: Config):
    figure_main(cfg, STEM, compute, plot, failure=not_located, tables=("rows", "curves", "stability"))


if __name__ == "__main__":
    run(main, Config, QUICK)
