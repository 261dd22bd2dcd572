"""Task-1 phase diagram in the (α, β) plane: where the poor- and good-generalization branches exist, where the
first-order transition between them lies, and the critical β below which there is a single branch.

For each β the solution curve of the task-1 saddle point (docs/theory.md eqs. 14–16, κ₁ = 0) is followed by
pseudo-arclength continuation (`mean_field_theory.continuation`), which walks through folds instead of
stopping at them, so a branch end is never a solver failure:
* upward from the poor branch at α = `alpha_poor` until its end: a fold (the upper spinodal, where dα/ds
  changes sign) — or, for β ≳ 25, the saturation q⋆ → 1 (every variational mean at ±1), which the branch
  approaches like α_sat − c·√(1 − q⋆); α_sat is then the limit of a fit of that law (docs/results.md);
* downward from the good branch at α = `alpha_good` until its fold (the lower spinodal).
The first-order transition is the α in between where the two branches have equal free entropy (brentq on
Φ_poor − Φ_good, each solved from the traced branch).  Where the upward trace reaches `alpha_good` without a
fold, there is one solution for every α.  The critical β is the root of the smallest dα/ds along the curve
(positive without folds, negative with them; brentq between the grid's last β without and first β with folds).
Spinodals are located to ≪ 10⁻⁶ in α by bisection on the step length, the transition to 10⁻⁶.

Outputs: phase_diagram.csv (beta, alpha_spinodal_low, alpha_spinodal_high, alpha_transition; empty where one
branch only), phase_diagram_curves.csv (the traced branches: ε_g and q⋆ along α), phase_diagram.json
(critical_beta, the kind of each branch end, ε_g of both branches at the transition, reasons for empty values).
Runtime: ≈ 4 min for the 13 default β on one core.
Command: python mean_field_theory/phase_diagram.py [--betas 10 20 50 --out_dir D]
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import scipy.optimize

from mean_field_theory.continuation import Family, trace
from mean_field_theory.quadrature import NUMERICS_VERSION
from mean_field_theory.rs_solver import FlatMeasure, RSProblem, VariationalChannel
from mean_field_theory.task1 import HIGH_INIT, LOW_INIT
from vcl_common import (BaseConfig, SolverError, plot_style, print_written, read_csv, read_json, require, run,
                        run_metadata, save_figure, sweep_store, write_csv, write_json)
from vcl_sweep import run_points

STEM = "phase_diagram"
COLUMNS = ["beta", "alpha_spinodal_low", "alpha_spinodal_high", "alpha_transition"]
CURVE_COLUMNS = ["beta", "branch", "alpha", "eps_g", "q_star", "free_entropy"]
SATURATION = 3e-8  # a trace stops where 1 − q⋆ falls below this
SATURATION_FIT = (SATURATION, 1e-5)  # range of 1 − q⋆ used to extrapolate α_sat


# ---- hyperparameters
@dataclasses.dataclass
class Config(BaseConfig):
    betas: tuple[float, ...] = (5.0, 7.5, 10.0, 12.5, 15.0, 17.5, 20.0, 25.0, 30.0, 40.0, 50.0, 70.0, 100.0)  # β
    alpha_poor: float = 0.5  # α where the upward trace starts (poor branch, unique for every β here)
    alpha_good: float = 2.45  # α where the downward trace starts (good branch, beyond every poor-branch end)
    critical: bool = True  # locate the critical β between the grid's last β without and first β with folds

    def validate(self):
        super().validate()
        require(len(self.betas) >= 1 and all(beta > 0 for beta in self.betas), f"--betas must be > 0, got {self.betas}")
        require(0 < self.alpha_poor < self.alpha_good, "--alpha_poor must be in (0, alpha_good)")


QUICK = {"betas": (20.0,), "alpha_poor": 1.3, "alpha_good": 2.0, "critical": False}


# ---- one β
class Task1Family(Family):
    def __init__(self, beta: float):
        measure, channel = FlatMeasure(0.0), VariationalChannel(beta)
        super().__init__(lambda alpha: RSProblem(alpha, measure, channel))
        self.beta = beta


def branch_end(curve) -> tuple[float | None, str, float]:
    """(α at the end of the traced branch, kind, uncertainty): a located fold, or the extrapolated saturation."""
    if curve.reason == "fold":
        return curve.folds[0].alpha, "fold", 0.0
    if curve.reason == "saturated":
        limit, error = saturation_limit(curve.points)
        return limit, "saturation", error
    return None, curve.reason or "none", 0.0


def saturation_limit(points) -> tuple[float, float]:
    """α_sat and its uncertainty from α = α_sat − c·(1 − q⋆)^p fitted on the last points of a saturating branch
    (p free; the uncertainty is the change of α_sat when the fit uses half the range)."""
    pairs = [(1.0 - point.solution.q_star, point.alpha) for point in points
             if SATURATION_FIT[0] <= 1.0 - point.solution.q_star <= SATURATION_FIT[1]]
    if len(pairs) < 4:
        raise SolverError(f"too few points ({len(pairs)}) to extrapolate the saturation of the poor branch")

    def fit(selected):
        gaps, alphas = np.array(selected).T

        def misfit(params):
            limit, log_c, power = params
            return alphas - (limit - np.exp(log_c) * gaps**power)

        start = (alphas[-1] + 1e-3, 0.0, 0.5)
        return scipy.optimize.least_squares(misfit, start).x[0]

    full = fit(pairs)
    return float(full), float(abs(full - fit(pairs[len(pairs) // 2:])))


def coexistence(family: Family, poor_start, good_start, alpha_poor: float, alpha_good: float, label: str,
                approach_step: float = 0.05):
    """The branch structure of one family between α = `alpha_poor` (the poor branch, solved from `poor_start`)
    and `alpha_good` (the good branch, from `good_start`): ({spinodal_low, spinodal_high, transition} — None
    where there is one branch only —, [(branch, solution) along the traced branches], json details).  The
    same method serves the task-1 phase diagram and the task-2 forgetting diagram; `label` names the family in
    messages; `approach_step` is the α step of the plain continuation from `alpha_good` towards the lower fold."""
    ends = {"spinodal_low": None, "spinodal_high": None, "transition": None}
    poor_solution = family.solve(alpha_poor, poor_start)
    if not poor_solution.converged:
        raise SolverError(f"{label}: no converged solution at alpha={alpha_poor} to start from")
    upward = trace(family, poor_solution, alpha_good)
    poor = [point.solution for point in upward.points if point.slope > 0]  # the branch before its end
    traced = [("poor", solution) for solution in poor]
    if upward.complete and not upward.reason:  # reached alpha_good without a fold: a single solution curve
        last = upward.points[-1].solution
        check = family.solve(alpha_good, good_start)
        end = family.solve(alpha_good, (last.q, last.r, last.q_star))
        same = check.converged and end.converged and abs(check.q - end.q) < 1e-6
        return ends, traced, {"kind": "one branch", "isola_check": same, "evaluations": family.evaluations,
                              "reason": f"no fold for alpha in [{alpha_poor}, {alpha_good}]" + (
                                  "" if same else "; WARNING: the good start finds another solution (isola?)")}
    high, high_kind, high_error = branch_end(upward)
    good_solution = family.solve(alpha_good, good_start)  # deep in the good branch q − r² is ~1e-9: reach
    downward, good = None, []  # the fold region by plain continuation in α, then trace from there
    if good_solution.converged:
        good = family.approach(good_solution, -approach_step, alpha_poor)
        downward = trace(family, good[-1], alpha_poor, direction=-1)
        good += [point.solution for point in downward.points if point.slope < 0]
    traced += [("good", solution) for solution in good]
    low = downward.folds[0].alpha if downward is not None and downward.reason == "fold" else None
    details = {"upper_end": high_kind, "upper_end_uncertainty": high_error,
               "lower_end": "fold" if low is not None else (downward.reason if downward else "no good branch")}
    if high is None or low is None:
        details.update(reason=f"a branch end was not located (upper: {high_kind}, lower: {details['lower_end']})",
                       evaluations=family.evaluations)
        return ends, traced, details
    ends.update(spinodal_low=low, spinodal_high=high)
    transition = equal_free_entropy(family, poor, good, low, high, label)
    if transition is None:
        details.update(reason="free entropies do not cross inside the coexistence window")
    else:
        ends["transition"] = transition["alpha"]
        details.update(transition)
    details["evaluations"] = family.evaluations
    return ends, traced, details


def phase_rows(beta: float, cfg: Config) -> list[dict]:
    """One β as rows of one kind each ('row', 'curve', 'details'), for the resumable store."""
    ends, traced, details = coexistence(Task1Family(beta), LOW_INIT, HIGH_INIT, cfg.alpha_poor, cfg.alpha_good,
                                        f"beta={beta}")
    row = {"beta": beta, **{f"alpha_{key}": "" if value is None else value for key, value in ends.items()}}
    return [{**row, "kind": "row"}, *({**curve_row(beta, branch, solution), "kind": "curve"}
                                      for branch, solution in traced),
            {"kind": "details", "beta": beta, "details": details}]


def curve_row(beta: float, branch: str, solution) -> dict:
    return {"beta": beta, "branch": branch, "alpha": solution.alpha, "eps_g": solution.eps_g,
            "q_star": solution.q_star, "free_entropy": solution.free_entropy}


def equal_free_entropy(family: Family, poor: list, good: list, low: float, high: float, label: str) -> dict | None:
    """α in (low, high) where Φ_poor = Φ_good; each branch solved from its samples (linear interpolation in α
    of (q, r, q⋆)) and checked to stay on it (|Δr| < 0.02: the branches differ by ≥ 0.1 in r).  A saturating
    poor branch is only used while 1 − q⋆ > 1e-5 (well conditioned)."""
    branches = {"poor": sorted((s for s in poor if 1.0 - s.q_star > 1e-5), key=lambda s: s.alpha),
                "good": sorted(good, key=lambda s: s.alpha)}

    def solve(branch, alpha):
        samples = branches[branch]
        guess = [float(np.interp(alpha, [s.alpha for s in samples], [getattr(s, key) for s in samples]))
                 for key in ("q", "r", "q_star")]
        solution = family.solve(alpha, tuple(guess))
        if not (solution.converged and abs(solution.r - guess[1]) < 0.02):
            raise SolverError(f"{label}: the {branch} branch was lost at alpha={alpha:.6f} while locating the "
                              f"transition")
        return solution

    def difference(alpha):
        return solve("poor", alpha).free_entropy - solve("good", alpha).free_entropy

    margin = 1e-4 * (high - low)
    a, b = low + margin, min(high, branches["poor"][-1].alpha) - margin
    if difference(a) * difference(b) > 0:
        return None
    alpha = scipy.optimize.brentq(difference, a, b, xtol=1e-7)
    return {"alpha": alpha, "eps_g_poor": solve("poor", alpha).eps_g, "eps_g_good": solve("good", alpha).eps_g}


def smallest_slope(family: Family, start, alpha_start: float, alpha_stop: float) -> float:
    """min dα/ds along the whole solution curve from `alpha_start` (through both folds when there are two)."""
    curve = trace(family, family.solve(alpha_start, start), alpha_stop, stop_at_fold=False)
    return min(point.slope for point in curve.points)


def critical_parameter(rows: list[dict], parameter: str, family_at, start, alpha_start: float,
                       alpha_stop: float) -> dict:
    """Where the coexistence window closes along `parameter`: the root of the smallest dα/ds (positive without
    folds, negative with them) between the rows' last value without and first value with two branches
    (brentq to 0.01); None if the rows do not bracket it.  `family_at(value)` is the family there."""
    with_folds = sorted(row[parameter] for row in rows if row["alpha_spinodal_low"] != "")
    without = sorted(row[parameter] for row in rows if row["alpha_spinodal_low"] == "")
    pairs = [(a, b) for a, b in zip(sorted(with_folds + without), sorted(with_folds + without)[1:])
             if (a in with_folds) != (b in with_folds)]
    if not pairs:
        return {f"critical_{parameter}": None,
                "reason": f"the {parameter} grid does not bracket the end of the coexistence window"}
    low, high = pairs[0]
    value = scipy.optimize.brentq(lambda x: smallest_slope(family_at(x), start, alpha_start, alpha_stop), low, high,
                                  xtol=0.01)
    return {f"critical_{parameter}": value, "bracket": [low, high], "tolerance": 0.01}


# ---- plot
def plot(rows: list[dict], curves: list[dict], summary: dict):
    import matplotlib.pyplot as plt

    plot_style()
    fig, (plane, branches) = plt.subplots(1, 2, figsize=(9.6, 3.8))
    located = sorted((row for row in rows if row["alpha_spinodal_low"] != ""), key=lambda row: row["beta"])
    for key, style, label in (("alpha_spinodal_low", "k--", "good branch appears"),
                              ("alpha_spinodal_high", "k:", "poor branch ends"),
                              ("alpha_transition", "r-", "first-order transition")):
        points = [(row[key], row["beta"]) for row in located if row[key] != ""]
        if points:
            plane.plot(*zip(*points), style, marker="o", markersize=3, label=label)
    if summary.get("critical_beta"):
        ends = [row for row in located if row["beta"] == min(r["beta"] for r in located)]
        alpha_c = 0.5 * (ends[0]["alpha_spinodal_low"] + ends[0]["alpha_spinodal_high"]) if ends else None
        plane.axhline(summary["critical_beta"], color="grey", lw=0.8)
        if alpha_c:
            plane.plot([alpha_c], [summary["critical_beta"]], "k*", markersize=9, label="critical point")
    plane.set(xlabel=r"$\alpha$", ylabel=r"$\beta$", yscale="log", title="task 1: coexistence of two branches")
    plane.legend(fontsize=7)
    shown = sorted({row["beta"] for row in curves})
    shown = [beta for beta in shown if beta in (10.0, 15.0, 20.0, 50.0, 100.0)] or shown[:4]
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(shown)))
    for beta, color in zip(shown, colors):
        for branch, linestyle in (("poor", "-"), ("good", "--")):
            points = sorted((row["alpha"], row["eps_g"]) for row in curves if row["beta"] == beta
                            and row["branch"] == branch)
            if points:
                branches.plot(*zip(*points), linestyle, color=color,
                              label=rf"$\beta={beta:g}$" if branch == "poor" else None)
    branches.set(xlabel=r"$\alpha$", ylabel=r"$\epsilon_g$", xlim=(0.5, 2.6),
                 title="traced branches (solid: from poor, dashed: from good)")
    branches.legend(fontsize=7)
    return fig


def main(cfg: Config):
    out_dir, started = cfg.output_dir, time.time()
    if not cfg.replot:
        points = [(f"beta={beta!r}", phase_rows, (beta, cfg)) for beta in sorted(cfg.betas)]
        store = sweep_store(cfg, STEM, numerics=NUMERICS_VERSION)
        results = run_points(cfg, store, points, desc="beta")
        rows = [row for key, _, _ in points for row in results[key] if row["kind"] == "row"]
        curves = [row for key, _, _ in points for row in results[key] if row["kind"] == "curve"]
        details = {f"{row['beta']:g}": row["details"] for key, _, _ in points for row in results[key]
                   if row["kind"] == "details"}
        summary = (critical_parameter(rows, "beta", Task1Family, LOW_INIT, cfg.alpha_poor, cfg.alpha_good)
                   if cfg.critical else {"critical_beta": None, "reason": "--no-critical"})
        write_csv(out_dir / f"{STEM}.csv", rows, COLUMNS)
        write_csv(out_dir / f"{STEM}_curves.csv", curves, CURVE_COLUMNS)
        write_json(out_dir / f"{STEM}.json", run_metadata(cfg, started, "cpu", **summary, per_beta=details))
        store.close()
    rows, curves = read_csv(out_dir / f"{STEM}.csv"), read_csv(out_dir / f"{STEM}_curves.csv")
    paths = save_figure(plot(rows, curves, read_json(out_dir / f"{STEM}.json")), out_dir, STEM)
    print_written([out_dir / f"{STEM}.csv", out_dir / f"{STEM}_curves.csv", out_dir / f"{STEM}.json", *paths])


if __name__ == "__main__":
    run(main, Config, QUICK)
