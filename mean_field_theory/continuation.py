"""RS saddle points followed along α: sweeps over α on both branches, and pseudo-arclength continuation.

**Sweeps in α** (`follow_in_alpha`, `sweep_branches`; docs/theory.md §4): solve along a grid of α, each point
started from the previous two on the same branch; upward from a poor-generalization start and downward from a
good one, so that where two stable branches coexist both are found and the thermodynamic one (larger free
entropy, eq. 11) is marked.

**Pseudo-arclength continuation** through the folds (`Family`, `trace`, `Curve`, `Fold`; docs/theory.md eq. 18).
A family is `problem_at(α) → RSProblem`; its solutions are the zeros of G(y, α) = y(T(x(y); α)) − y, the
saddle-point map written in the solver's unconstrained coordinates y (`RSProblem.to_coords`; well scaled even
when 1 − q⋆ is 10⁻⁷, where the order parameters themselves barely move).  Away from singular points they form a smooth
curve X(s) = (y(s), α(s)) parametrised by arclength.  Continuation in α alone stops where a branch ends, and
cannot tell that end from a solver failure; continuation in s walks through it: the curve turns back (α(s) has
a maximum or a minimum), continues along the unstable middle solution and turns again onto the other branch
(docs/theory.md §4).  A fold (spinodal) is where the α-component of the unit tangent, τ_α = dα/ds, changes sign;
it is located by bisection on the step length to ≪ 10⁻⁶ in α, and it is a property of the solution curve, not
of the solver's basin of attraction.

Each step: predictor X + hτ, corrector Newton on [G(X); τ·(X − X_pred)] = 0 until max |T(x) − x| < tol
(the Jacobian of G by forward
differences at the previous point), tangent = null vector of ∂G/∂(y, α) at the new point (SVD), oriented along
the previous one.  The step h grows after easy corrections and shrinks after hard ones or sharp turns.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from mean_field_theory.rs_solver import MAX_EVALUATIONS, RSSolution, single_thread, solve_rs

CONTINUATION_BUDGET = 100  # evaluations allowed from a continued start (converged ones take ~10)
TURN_LIMIT = math.cos(0.3)  # largest accepted angle between successive tangents (rad)


# ----------------------------------------------------------------------------- pseudo-arclength continuation
@dataclasses.dataclass
class CurvePoint:
    alpha: float
    y: np.ndarray  # solver coordinates of (q, r, q⋆)
    tangent: np.ndarray  # unit tangent (dy/ds, dα/ds)
    solution: RSSolution

    @property
    def slope(self) -> float:
        """τ_α = dα/ds: positive while α grows along the curve, 0 at a fold."""
        return float(self.tangent[-1])


@dataclasses.dataclass
class Fold:
    alpha: float
    point: CurvePoint
    turns_back: bool  # True: α had a maximum (the branch ends going up); False: a minimum


@dataclasses.dataclass
class Curve:
    points: list[CurvePoint]
    folds: list[Fold]
    complete: bool  # reached the requested α range (False: too many steps or the step shrank to nothing)
    reason: str = ""

    def segments(self) -> list[list[CurvePoint]]:
        """The points between successive folds: [first branch, (middle), next branch, ...]."""
        pieces, current = [], []
        fold_ids = {id(fold.point) for fold in self.folds}
        for point in self.points:
            current.append(point)
            if id(point) in fold_ids:
                pieces.append(current)
                current = [point]
        pieces.append(current)
        return pieces


class Family:
    """G(y, α) of `problem_at(α)` with its Jacobian; `evaluations` counts saddle-point map evaluations."""

    def __init__(self, problem_at: Callable[[float], object], fd_step: float = 1e-7):
        self.problem_at, self.fd_step, self.evaluations = problem_at, fd_step, 0

    def residual(self, point: np.ndarray) -> np.ndarray:
        return self.evaluate(point)[0]

    def evaluate(self, point: np.ndarray) -> tuple[np.ndarray, float]:
        """(G(y, α), max |T(x) − x|): the second decides convergence, as in `solve_rs`."""
        self.evaluations += 1
        mapped, order_residual = self.problem_at(float(point[-1])).image_in_coords(point[:-1])
        return mapped - point[:-1], order_residual

    def jacobian(self, point: np.ndarray, value: np.ndarray) -> np.ndarray:
        columns = []
        for index in range(len(point)):
            shifted = point.copy()
            shifted[index] += self.fd_step * max(1.0, abs(point[index]))
            columns.append((self.residual(shifted) - value) / (shifted[index] - point[index]))
        return np.stack(columns, axis=1)

    def tangent(self, point: np.ndarray, previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(unit tangent oriented along `previous`, Jacobian) at a solution `point`."""
        jacobian = self.jacobian(point, self.residual(point))
        tangent = np.linalg.svd(jacobian)[2][-1]
        return (tangent if tangent @ previous >= 0 else -tangent), jacobian

    def solve(self, alpha: float, init, max_evaluations: int = MAX_EVALUATIONS) -> RSSolution:
        problem = self.problem_at(alpha)
        return solve_rs(alpha, problem.measure, problem.channel, init, problem.teacher, problem.fixed_q_star,
                        max_evaluations=max_evaluations)

    def approach(self, start: RSSolution, step: float, alpha_limit: float) -> list[RSSolution]:
        """Continuation in α from `start` in steps of `step` (signed) towards `alpha_limit`, up to two steps
        before the branch is lost (no convergence within CONTINUATION_BUDGET from the previous point, or a jump
        of r by > 0.05); the last solution is a well-conditioned start for `trace` near a fold far from `start`."""
        solutions = [start]
        alpha = start.alpha
        while (alpha_limit - alpha) * step > abs(step):
            alpha += step
            last = solutions[-1]
            solution = self.solve(alpha, (last.q, last.r, last.q_star), CONTINUATION_BUDGET)
            if not solution.converged or abs(solution.r - last.r) > 0.05:
                break
            solutions.append(solution)
        return solutions[:max(1, len(solutions) - 2)]

    def curve_point(self, point: np.ndarray, tangent: np.ndarray) -> CurvePoint:
        problem = self.problem_at(float(point[-1]))
        solution = problem.solution(*problem.to_params(point[:-1]))
        return CurvePoint(float(point[-1]), point[:-1].copy(), tangent, solution)

    def correct(self, start: np.ndarray, tangent: np.ndarray, jacobian: np.ndarray, tol: float,
                max_steps: int = 12) -> np.ndarray | None:
        """Newton on [G(X); τ·(X − start)] = 0 from `start` (chord: the Jacobian of the previous point)."""
        system = np.vstack([jacobian, tangent])
        point = start.copy()
        norm = math.inf
        for _ in range(max_steps):
            value, order_residual = self.evaluate(point)
            if not np.all(np.isfinite(value)):
                return None
            if order_residual < tol:
                return point
            new_norm = float(np.linalg.norm(value))
            if new_norm > 2.0 * norm:  # diverging: the step was too long
                return None
            norm = new_norm
            point = point - np.linalg.solve(system, np.append(value, tangent @ (point - start)))
        return None


def trace(family: Family, start: RSSolution, alpha_stop: float, direction: int = 1, stop_at_fold: bool = True,
          step: float = 0.05, max_step: float = 1.0, min_step: float = 1e-6, tol: float = 1e-8,
          saturation: float = 1e-7, max_points: int = 1000) -> Curve:
    """Follow the solution curve through `start`, first towards growing α (direction=1) or decreasing α (−1),
    until α passes `alpha_stop` while moving that way, or (stop_at_fold) at the first fold, located by bisection
    on the step length.  The curve also ends where the self-overlap saturates, 1 − q⋆ < `saturation` (every
    variational mean at ±1): `reason` says 'saturated'."""
    with single_thread():
        problem = family.problem_at(start.alpha)
        here = np.append(problem.to_coords(start.q, start.r, start.q_star), start.alpha)
        tangent, jacobian = family.tangent(here, direction * np.eye(len(here))[-1])
        points, folds = [family.curve_point(here, tangent)], []
        while len(points) < max_points:
            current = points[-1]
            if (current.alpha - alpha_stop) * direction > 0 and current.slope * direction > 0:
                return Curve(points, folds, True)
            if stop_at_fold and folds:
                return Curve(points, folds, True, "fold")
            if 1.0 - current.solution.q_star < saturation:
                return Curve(points, folds, True, "saturated")
            if step < min_step:
                return Curve(points, folds, False, f"step shrank below {min_step} at alpha={current.alpha:.6f}")
            advanced = _advance(family, here, tangent, jacobian, step, tol)
            if advanced is None:
                step /= 2.0
                continue
            new_here, new_tangent, new_jacobian, corrector_evaluations = advanced
            if new_tangent @ tangent < TURN_LIMIT:  # turned too sharply: shorter steps
                step /= 2.0
                continue
            if new_tangent[-1] * tangent[-1] < 0:  # dα/ds changed sign: a fold inside this step
                folds.append(_locate_fold(family, here, tangent, jacobian, step, tol))
                points.append(folds[-1].point)
                if stop_at_fold:
                    continue
            points.append(family.curve_point(new_here, new_tangent))
            here, tangent, jacobian = new_here, new_tangent, new_jacobian
            step = min(max_step, step * (1.6 if corrector_evaluations <= 5 else 1.0 if corrector_evaluations <= 8
                                         else 0.6))  # Newton from a good predictor: ~4 evaluations to 1e-10
        return Curve(points, folds, False, f"stopped after {max_points} points")


def _advance(family: Family, here, tangent, jacobian, step: float, tol: float):
    evaluations = family.evaluations
    new_here = family.correct(here + step * tangent, tangent, jacobian, tol)
    if new_here is None:
        return None
    corrector_evaluations = family.evaluations - evaluations
    new_tangent, new_jacobian = family.tangent(new_here, tangent)
    return new_here, new_tangent, new_jacobian, corrector_evaluations


def _locate_fold(family: Family, here, tangent, jacobian, step: float, tol: float, halvings: int = 16) -> Fold:
    """Bisection on the step length s ∈ (0, step) for the sign change of dα/ds.  Near a fold
    α(s) ≈ α_f − c(s − s_f)², so a step known to step/2¹⁶ gives α_f to ~c·(step/2¹⁶)²."""
    low, high, best = 0.0, step, None
    sign_here = np.sign(tangent[-1])
    for _ in range(halvings):
        middle = 0.5 * (low + high)
        advanced = _advance(family, here, tangent, jacobian, middle, tol)
        if advanced is None:
            break
        point, point_tangent, _, _ = advanced
        best = (point, point_tangent)
        if np.sign(point_tangent[-1]) == sign_here:
            low = middle
        else:
            high = middle
    if best is None:  # could not even take a shorter step: keep the start of the step
        best = (here, tangent)
    fold_point = family.curve_point(*best)
    return Fold(fold_point.alpha, fold_point, turns_back=bool(sign_here > 0))


# ----------------------------------------------------------------------------- sweeps over α, both branches
def follow_in_alpha(alphas, solve, default_init, joins=None, same_tol: float = 1e-7) -> list[RSSolution]:
    """Solve along `alphas` in the given order, starting each point from a linear extrapolation of the two
    previous solutions (the same branch).  `solve(alpha, init, max_evaluations)`.

    The first point starts from `default_init`.  A continued start converges in ~10 evaluations; if it has not
    after CONTINUATION_BUDGET, the branch has ended (a fold) or the step was too long for the extrapolation, and
    the point is solved again with the full budget from `default_init` (which finds this sweep's branch again if
    it still exists: on a coarse grid the second case is common), then from `joins`' solution at this α.
    `joins`: the solutions of the opposite sweep at the same `alphas` (continued from the other end, so smooth
    along this sweep's remaining α until its own jump, which lies behind us).  Once the two sweeps have differed
    and then agree at two consecutive points, this sweep has fallen onto the other's branch, and the rest is
    taken from it."""
    solutions: list[RSSolution] = []
    differed = False
    for index, alpha in enumerate(alphas):
        if joins is not None and index >= 1:
            differed = differed or not _same(solutions[index - 1], joins[index - 1], same_tol)
            if differed and index >= 2 and all(_same(solutions[k], joins[k], same_tol) for k in (index - 2, index - 1)):
                return solutions + list(joins[index:])
        previous = [s for s in solutions[-2:] if s.converged]
        guess = (previous[-1].q, previous[-1].r, previous[-1].q_star) if previous else None
        if len(previous) == 2 and previous[1].alpha != previous[0].alpha:
            slope = (alpha - previous[1].alpha) / (previous[1].alpha - previous[0].alpha)
            extrapolated = tuple(getattr(previous[1], k) + slope * (getattr(previous[1], k) - getattr(previous[0], k))
                                 for k in ("q", "r", "q_star"))
            if all(new >= 0.5 * old for new, old in zip(_gaps(*extrapolated), _gaps(*guess))):
                guess = extrapolated  # keep the linear extrapolation only if it stays well inside the domain
        if guess is None:  # the first point of the sweep
            solution = solve(alpha, default_init, MAX_EVALUATIONS)
        else:
            solution = solve(alpha, guess, CONTINUATION_BUDGET)
            if not solution.converged:  # the branch may have ended: where this sweep started from, else the other's
                solution = solve(alpha, default_init, MAX_EVALUATIONS)
                other = joins[index] if joins is not None and joins[index].converged else None
                if not solution.converged and other is not None:
                    solution = solve(alpha, (other.q, other.r, other.q_star), MAX_EVALUATIONS)
        solutions.append(solution)
    return solutions


def _same(first, second, tol: float) -> bool:
    """The same converged solution (order parameters within `tol`)."""
    return (first.converged and second.converged
            and max(abs(first.q - second.q), abs(first.r - second.r), abs(first.q_star - second.q_star)) < tol)


def _gaps(q: float, r: float, q_star: float) -> tuple[float, float, float]:
    """Distances to the boundaries of r² < q < q⋆ ≤ 1."""
    return q - r * r, q_star - q, 1.0 - q_star


def sweep_branches(alphas, solve, low_init, high_init, is_stable=None, same_tol: float = 1e-7) -> list[dict]:
    """Both RS branches along α: `follow_in_alpha` upward from `low_init` (poor generalization) and downward from
    `high_init` (good generalization).  Where the two sweeps meet the same solution the row is 'unique';
    where they differ two rows 'poor'/'good' are returned and `thermodynamic` marks the larger free entropy.
    `is_stable(solution)` (optional) discards a solution that is unstable under damped iteration (the middle
    solution Newton can land on after a large step in α)."""
    ordered = sorted({float(alpha) for alpha in alphas})
    upward = follow_in_alpha(ordered, solve, low_init)
    downward = follow_in_alpha(ordered[::-1], solve, high_init, joins=upward[::-1], same_tol=same_tol)[::-1]
    rows = []
    for low, high in zip(upward, downward):
        same = _same(low, high, same_tol)
        if not same and is_stable is not None and low.converged and high.converged:
            stable = [solution for solution in (low, high) if is_stable(solution)]
            if len(stable) == 1:
                low = high = stable[0]
                same = True
        if same or not (low.converged and high.converged):
            best = low if low.converged or not high.converged else high
            rows.append({**best.as_row(), "branch": "unique", "thermodynamic": True})
            continue
        poor, good = sorted((low, high), key=lambda solution: solution.r)
        for name, solution in (("poor", poor), ("good", good)):
            other = good if solution is poor else poor
            rows.append({**solution.as_row(), "branch": name,
                         "thermodynamic": solution.free_entropy >= other.free_entropy})
    return rows
