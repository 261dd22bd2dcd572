"""The branch analysis shared by the task-1 phase diagram (`mean_field_theory/phase_diagram.py`) and the task-2
forgetting diagram (`mean_field_theory/forgetting_phase_diagram.py`): for a family of saddle points along α
(`continuation.Family`), where its poor and good branches end (folds by pseudo-arclength continuation, or the
saturation q⋆ → 1 extrapolated), the first-order transition where their free entropies are equal, each branch cut at
its de Almeida–Thouless points into stretches of equal RS stability, the critical point where the coexistence window
closes along a parameter, the value of a parameter below which RS is stable for every α, and the rows in which a
diagram stores each of its points.  For the rows of a sweep over an α grid (RS branches and their 1RSB solutions,
`mean_field_theory/rsb_task1.py`): the first-order transition of RS and of 1RSB, interpolated where Φ(poor) − Φ(good)
changes sign.
"""
from __future__ import annotations

import numpy as np
import scipy.optimize

from harness.errors import SolverError
from mean_field_theory.continuation import Family, trace

SATURATION = 3e-8  # a trace stops where 1 − q⋆ falls below this
SATURATION_FIT = (SATURATION, 1e-5)  # range of 1 − q⋆ used to extrapolate α_sat
ENDS = ("spinodal_low", "spinodal_high", "transition")  # the branch ends that `coexistence` locates


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
    ends = dict.fromkeys(ENDS)
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


def branch_stability(family: Family, traced: list, label: str, **keys) -> list[dict]:
    """`stability_segments` of both branches of `traced` ([(branch, solution)] as from `coexistence`), as table rows:
    `keys`, the branch and the segment."""
    return [{**keys, "branch": branch, **segment} for branch in ("poor", "good")
            for segment in stability_segments(family, [s for name, s in traced if name == branch], label)]


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
                       alpha_stop: float, spinodal: str = "alpha_spinodal_low") -> dict:
    """Where the coexistence window closes along `parameter`: the root of the smallest dα/ds (positive without
    folds, negative with them) between the rows' last value without and first value with two branches (the
    `spinodal` column empty or not; brentq to 0.01); None if the rows do not bracket it.  `family_at(value)` is
    the family there."""
    with_folds = sorted(row[parameter] for row in rows if row[spinodal] != "")
    without = sorted(row[parameter] for row in rows if row[spinodal] == "")
    pairs = [(a, b) for a, b in zip(sorted(with_folds + without), sorted(with_folds + without)[1:])
             if (a in with_folds) != (b in with_folds)]
    if not pairs:
        return {f"critical_{parameter}": None,
                "reason": f"the {parameter} grid does not bracket the end of the coexistence window"}
    low, high = pairs[0]
    value = scipy.optimize.brentq(lambda x: smallest_slope(family_at(x), start, alpha_start, alpha_stop), low, high,
                                  xtol=0.01)
    return {f"critical_{parameter}": value, "bracket": [low, high], "tolerance": 0.01}


def largest_replicon(family: Family, start, alpha_start: float, alpha_stop: float) -> float:
    """max over α of λ_R on a solution curve with a single branch (traced from `alpha_start`, solved there from
    `start`), refined around the largest traced value by a bounded scalar search."""
    curve = trace(family, family.solve(alpha_start, start), alpha_stop)
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


def at_parameter(stability: list[dict], parameter: str, values, family_at, start, alpha_start: float,
                 alpha_stop: float) -> dict:
    """The `parameter` value below which the RS solution is stable for every α: the root of max_α λ_R − 1
    (`largest_replicon`; brentq to 0.01) between the grid's (`values`) last value where every stretch of
    `stability` (rows of `branch_stability`) is stable and the first where one is not; None if the grid does not
    bracket it.  `family_at(value)` is the family there."""
    unstable = sorted({row[parameter] for row in stability if not row["rs_stable"]})
    stable = sorted(value for value in values if value not in unstable and value < (unstable[0] if unstable else 0))
    if not unstable or not stable:
        return {f"at_{parameter}": None,
                f"at_{parameter}_reason": f"the {parameter} grid does not bracket the first RS-unstable {parameter}"}
    low, high = stable[-1], unstable[0]
    value = scipy.optimize.brentq(lambda x: largest_replicon(family_at(x), start, alpha_start, alpha_stop) - 1.0,
                                  low, high, xtol=0.01)
    return {f"at_{parameter}": value, f"at_{parameter}_bracket": [low, high], f"at_{parameter}_tolerance": 0.01}


# ---- a diagram's points as rows for its resumable store
def point_rows(keys: dict, prefix: str, ends: dict, curves: list[dict], segments: list[dict],
               details: dict) -> list[dict]:
    """One point of a diagram (`keys`: its parameters) as rows of one kind each, for the resumable store: 'row'
    (`keys` and the ends from `coexistence` as <prefix>_<end>, empty where None), 'curve', 'stability' (the rows of
    `branch_stability`) and 'details' (for the json)."""
    ends = {f"{prefix}_{key}": "" if value is None else value for key, value in ends.items()}
    return [{**keys, **ends, "kind": "row"}, *({**curve, "kind": "curve"} for curve in curves),
            *({**segment, "kind": "stability"} for segment in segments),
            {**keys, "kind": "details", "details": details}]


def point_tables(points: list[tuple], finished: dict) -> tuple[dict[str, list[dict]], list[dict]]:
    """The `point_rows` of every point (`finished` by key, in the order of `points` as for `run_points`) back as
    tables ('rows', 'curves', 'stability') and the details rows."""
    results = [row for key, _, _ in points for row in finished[key]]
    kinds = {"row": "rows", "curve": "curves", "stability": "stability"}
    return ({name: [row for row in results if row["kind"] == kind] for kind, name in kinds.items()},
            [row for row in results if row["kind"] == "details"])


# ---- the rows of a sweep over an α grid: RS branches ('rs') and the 1RSB solution of each RS-unstable one ('1rsb')
def mark_split(rows: list[dict], gap: float = 1e-6) -> None:
    """`split` on every 1RSB row: q₁ − q₀ > gap.  A row without it (x = NaN) is no 1RSB solution of its branch:
    the iteration from that branch's RS solution fell to q₁ = q₀ (at β = 20, α = 1.6, 1.7: onto the good branch)."""
    for row in rows:
        if row["source"] == "1rsb":
            row["split"] = row["q1"] - row["q0"] > gap


def poor_state(at: list[dict], theory: str) -> dict | None:
    """The poor branch's state at one α: RS, or for '1rsb' the split 1RSB row (RS itself where RS is stable)."""
    rs = next((row for row in at if row["source"] == "rs" and row["branch"] in ("poor", "unique")), None)
    if theory == "rs" or rs is None or rs["rs_stable"]:
        return rs
    return next((row for row in at if row["source"] == "1rsb" and row["branch"] == rs["branch"] and row["split"]),
                None)


def free_entropy_gaps(rows: list[dict], theory: str) -> list[tuple[float, float]]:
    """(α, Φ(poor) − Φ(good RS)) wherever both exist; the poor state from `poor_state`."""
    gaps = []
    for alpha in sorted({row["alpha"] for row in rows}):
        at = [row for row in rows if row["alpha"] == alpha]
        good = next((row for row in at if row["source"] == "rs" and row["branch"] == "good"), None)
        poor = poor_state(at, theory)
        if good and poor and poor["branch"] == "poor":
            gaps.append((alpha, poor["free_entropy"] - good["free_entropy"]))
    return gaps


def transition(gaps: list[tuple[float, float]]) -> float | None:
    """α where Φ(poor) − Φ(good) changes sign, linearly interpolated between consecutive points of `gaps`."""
    for (a0, d0), (a1, d1) in zip(gaps, gaps[1:]):
        if d0 > 0 >= d1:
            return a0 + (a1 - a0) * d0 / (d0 - d1)
    return None
