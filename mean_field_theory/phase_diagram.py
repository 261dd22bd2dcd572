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
Replica-symmetry stability (docs/theory.md §3b): every traced solution carries its replicon λ_R; each branch is cut
into stretches where RS is stable (λ_R < 1) or not at its de Almeida–Thouless points, located to 10⁻⁵ in α, and
the β below which RS is stable for every α (`at_beta`) is the root of max_α λ_R − 1, located to 0.01.

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
import time

import numpy as np
import scipy.optimize

from mean_field_theory.continuation import Family, trace
from mean_field_theory.quadrature import NUMERICS_VERSION
from mean_field_theory.rs_solver import FlatMeasure, RSProblem, VariationalChannel
from mean_field_theory.task1 import HIGH_INIT, LOW_INIT
from vcl_common import (BaseConfig, SolverError, plot_by_stability, plot_style, print_written, read_csv, read_json,
                        require, run, run_metadata, save_figure, sweep_store, write_csv, write_json)
from vcl_sweep import run_points

STEM = "phase_diagram"
COLUMNS = ["beta", "alpha_spinodal_low", "alpha_spinodal_high", "alpha_transition"]
CURVE_COLUMNS = ["beta", "branch", "alpha", "eps_g", "q_star", "free_entropy", "replicon", "rs_stable"]
STABILITY_COLUMNS = ["beta", "branch", "alpha_from", "alpha_to", "rs_stable", "from", "to", "tolerance"]
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
    """One β as rows of one kind each ('row', 'curve', 'stability', 'details'), for the resumable store."""
    family = Task1Family(beta)
    ends, traced, details = coexistence(family, LOW_INIT, HIGH_INIT, cfg.alpha_poor, cfg.alpha_good, f"beta={beta}")
    row = {"beta": beta, **{f"alpha_{key}": "" if value is None else value for key, value in ends.items()}}
    segments = [{"beta": beta, "branch": branch, **segment, "kind": "stability"} for branch in ("poor", "good")
                for segment in stability_segments(family, [s for name, s in traced if name == branch], f"beta={beta}")]
    return [{**row, "kind": "row"}, *({**curve_row(beta, branch, solution), "kind": "curve"}
                                      for branch, solution in traced), *segments,
            {"kind": "details", "beta": beta, "details": details}]


def curve_row(beta: float, branch: str, solution) -> dict:
    return {"beta": beta, "branch": branch, "alpha": solution.alpha, "eps_g": solution.eps_g,
            "q_star": solution.q_star, "free_entropy": solution.free_entropy, "replicon": solution.replicon,
            "rs_stable": solution.replicon < 1.0}


def stability_segments(family: Family, branch: list, label: str, xtol: float = 1e-5) -> list[dict]:
    """One traced branch cut into stretches of equal RS stability: every α where its replicon λ_R crosses 1
    between two traced solutions (a de Almeida–Thouless point, 'AT') is located by brentq on λ_R(α) − 1 (each α
    solved from the solutions on either side, linear interpolation of (q, r, q⋆)) to `xtol`; the outer ends are
    the ends of the traced branch ('end')."""
    ordered = sorted(branch, key=lambda solution: solution.alpha)
    if not ordered:
        return []
    bounds = [(ordered[0].alpha, "end")]
    for left, right in zip(ordered, ordered[1:]):
        if (left.replicon - 1.0) * (right.replicon - 1.0) >= 0:
            continue

        def excess(alpha, left=left, right=right):
            weight = (alpha - left.alpha) / (right.alpha - left.alpha)
            guess = tuple((1 - weight) * getattr(left, key) + weight * getattr(right, key)
                          for key in ("q", "r", "q_star"))
            solution = family.solve(alpha, guess)
            if not (solution.converged and abs(solution.r - guess[1]) < 0.02):
                raise SolverError(f"{label}: the branch was lost at alpha={alpha:.6f} while locating an AT point")
            return solution.replicon - 1.0

        bounds.append((scipy.optimize.brentq(excess, left.alpha, right.alpha, xtol=xtol), "AT"))
    bounds.append((ordered[-1].alpha, "end"))
    segments = []
    for (low, low_kind), (high, high_kind) in zip(bounds, bounds[1:]):
        middle = min(ordered, key=lambda solution: abs(solution.alpha - (low + high) / 2))  # a traced point inside
        segments.append({"alpha_from": low, "alpha_to": high, "rs_stable": middle.replicon < 1.0, "from": low_kind,
                         "to": high_kind, "tolerance": xtol})
    return segments


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


def largest_replicon(beta: float, alpha_start: float, alpha_stop: float) -> float:
    """max over α of λ_R on the solution curve of one β that has a single branch (traced from `alpha_start`),
    refined around the largest traced value by a bounded scalar search."""
    family = Task1Family(beta)
    curve = trace(family, family.solve(alpha_start, LOW_INIT), alpha_stop)
    solutions = [point.solution for point in curve.points]
    top = max(range(len(solutions)), key=lambda index: solutions[index].replicon)
    left, right = solutions[max(top - 1, 0)], solutions[min(top + 1, len(solutions) - 1)]

    def negative(alpha):
        guess = solutions[top]
        solution = family.solve(alpha, (guess.q, guess.r, guess.q_star))
        return -solution.replicon if solution.converged else -guess.replicon

    if left is right:
        return solutions[top].replicon
    best = scipy.optimize.minimize_scalar(negative, bounds=(left.alpha, right.alpha), method="bounded",
                                          options={"xatol": 1e-4})
    return max(-best.fun, solutions[top].replicon)


def at_beta(stability: list[dict], betas, alpha_start: float, alpha_stop: float) -> dict:
    """The β below which the RS solution is stable for every α: the root of max_α λ_R − 1 (brentq to 0.01)
    between the grid's last β where every traced stretch is stable and the first where one is not; None if the
    grid does not bracket it."""
    unstable = sorted({row["beta"] for row in stability if not row["rs_stable"]})
    stable = sorted(beta for beta in betas if beta not in unstable and beta < (unstable[0] if unstable else 0))
    if not unstable or not stable:
        return {"at_beta": None, "at_beta_reason": "the beta grid does not bracket the first RS-unstable beta"}
    low, high = stable[-1], unstable[0]
    value = scipy.optimize.brentq(lambda beta: largest_replicon(beta, alpha_start, alpha_stop) - 1.0, low, high,
                                  xtol=0.01)
    return {"at_beta": value, "at_beta_bracket": [low, high], "at_beta_tolerance": 0.01}


# ---- plot
def plot(rows: list[dict], curves: list[dict], stability: list[dict], summary: dict):
    import matplotlib.pyplot as plt

    plot_style()
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


def main(cfg: Config):
    out_dir, started = cfg.output_dir, time.time()
    if not cfg.replot:
        points = [(f"beta={beta!r}", phase_rows, (beta, cfg)) for beta in sorted(cfg.betas)]
        store = sweep_store(cfg, STEM, numerics=NUMERICS_VERSION)
        results = run_points(cfg, store, points, desc="beta")
        rows = [row for key, _, _ in points for row in results[key] if row["kind"] == "row"]
        curves = [row for key, _, _ in points for row in results[key] if row["kind"] == "curve"]
        stability = [row for key, _, _ in points for row in results[key] if row["kind"] == "stability"]
        details = {f"{row['beta']:g}": row["details"] for key, _, _ in points for row in results[key]
                   if row["kind"] == "details"}
        summary = (critical_parameter(rows, "beta", Task1Family, LOW_INIT, cfg.alpha_poor, cfg.alpha_good)
                   if cfg.critical else {"critical_beta": None, "reason": "--no-critical"})
        summary.update(at_beta(stability, cfg.betas, cfg.alpha_poor, cfg.alpha_good) if cfg.critical else
                       {"at_beta": None, "at_beta_reason": "--no-critical"})
        write_csv(out_dir / f"{STEM}.csv", rows, COLUMNS)
        write_csv(out_dir / f"{STEM}_curves.csv", curves, CURVE_COLUMNS)
        write_csv(out_dir / f"{STEM}_stability.csv", stability, STABILITY_COLUMNS)
        write_json(out_dir / f"{STEM}.json", run_metadata(cfg, started, "cpu", **summary, per_beta=details))
        store.close()
    rows, curves = read_csv(out_dir / f"{STEM}.csv"), read_csv(out_dir / f"{STEM}_curves.csv")
    stability = read_csv(out_dir / f"{STEM}_stability.csv")
    paths = save_figure(plot(rows, curves, stability, read_json(out_dir / f"{STEM}.json")), out_dir, STEM)
    print_written([out_dir / f"{STEM}.csv", out_dir / f"{STEM}_curves.csv", out_dir / f"{STEM}_stability.csv",
                   out_dir / f"{STEM}.json", *paths])


if __name__ == "__main__":
    run(main, Config, QUICK)
