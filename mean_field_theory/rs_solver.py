"""Replica-symmetric saddle point of a teacher–student perceptron with a pluggable prior and channel.

Free entropy per synapse (docs/theory.md eqs. 11–16; the conventions reproduce the paper's update rules):

    Φ = extr { −q̂⋆ q⋆ + ½ q̂ q − r̂ r + G_S(q̂, r̂, q̂⋆) + α G_E(q, r, q⋆) }

with G_S the single-site term of a measure (`mean_field_theory.site_measures`) and G_E the energy term of a
channel (`mean_field_theory.channels`).  Saddle point: q̂ = −2α ∂_q G_E, r̂ = α ∂_r G_E, q̂⋆ = α ∂_{q⋆} G_E and
q = E_z⟨m⟩², r = E_z⟨m⟩, q⋆ = E_z⟨m²⟩.  `RSProblem` is that map x = (q, r, q⋆) → T(x) for one (α, measure,
channel), `solve_rs` finds its fixed point, `RSSolution` holds it with the free entropy, ε_g and the replicon, and
`iteration_is_stable` tells a stable fixed point from the unstable one between two branches.  With this paper's
measure and channel it is the theory behind Figs. 2–3; with the Ising or spherical measure and the version-space
channel the same code path gives the classical results (Gardner & Derrida 1988, Györgyi 1990, Krauth & Mézard
1989), which the tests use as a check.

Everything is float64 and deterministic: the equations are solved with a quasi-Newton method in unconstrained
coordinates that keep r² < q < q⋆ < 1.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math

import numpy as np
import torch

from mean_field_theory.channels import channel_curvature_sq, energy_gradient
from mean_field_theory.site_measures import lagrange_multiplier, site_averages

DAMPED_BLOCK = 50  # damped steps of the solver's fallback between two Newton attempts
MAX_EVALUATIONS = 5000  # default cap on evaluations of the saddle-point map per solve (hard points use ~1300)


def eps_g_of(p: float) -> float:
    """Generalization error of a clipped student whose sign overlap with a teacher is p: arccos(p)/π
    (docs/theory.md eqs. 8, 16, 22); p is clipped to [−1, 1] against rounding."""
    return math.acos(min(max(p, -1.0), 1.0)) / math.pi


@dataclasses.dataclass(kw_only=True)
class SaddlePoint:
    """What every replica-symmetric saddle point reports: the order parameters and their conjugates, the free
    entropy, the solver's record and the replicon.  A problem's own observables are the fields of its subclass;
    `as_row` puts them between the conjugates and the free entropy."""

    alpha: float
    q: float
    r: float
    q_star: float
    q_hat: float
    r_hat: float
    q_star_hat: float
    free_entropy: float
    converged: bool
    iterations: int  # evaluations of the saddle-point map
    residual: float  # max |T(x) − x| at the returned point
    replicon: float = math.nan  # λ_R = α E_out[(ψ'')²] E_z[(⟨m²⟩ − ⟨m⟩²)²]: RS is locally stable iff λ_R < 1

    def as_row(self) -> dict:
        values, shared = dataclasses.asdict(self), [field.name for field in dataclasses.fields(SaddlePoint)]
        order = [*shared[:7], *(name for name in values if name not in shared), *shared[7:]]
        return {**{name: values[name] for name in order}, "rs_stable": rs_stable(self.replicon)}


def saddle_point_fields(solution: SaddlePoint) -> dict:
    """The shared fields of `solution`, to build another problem's saddle point from it."""
    return {field.name: getattr(solution, field.name) for field in dataclasses.fields(SaddlePoint)}


@dataclasses.dataclass(kw_only=True)
class RSSolution(SaddlePoint):
    """The saddle point of one task learned without a reference (task 1, the classical problems)."""

    p1: float  # E_z⟨sgn m⟩: teacher overlap of the clipped student
    eps_g: float  # arccos(p1)/π


def rs_stable(replicon: float) -> bool:
    """The replica-symmetric saddle point is stable against replica-symmetry breaking (the replicon, or
    de Almeida–Thouless, eigenvalue of the Hessian of the replicated free entropy is negative) iff λ_R < 1."""
    return bool(replicon < 1.0)


class RSProblem:
    """The saddle-point map x = (q, r, q⋆) → T(x) of one (α, measure, channel) problem.

    teacher=False is the storage problem (random labels): r = r̂ = 0.  fixed_q⋆ clamps the self-overlap
    (q̂⋆ then becomes the Lagrange multiplier of E⟨m²⟩ = q⋆; Fig. 2d's "fixed q⋆" theory)."""

    def __init__(self, alpha: float, measure, channel, teacher: bool = True, fixed_q_star: float | None = None,
                 max_evaluations: int = MAX_EVALUATIONS):
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        if not max_evaluations >= 1:
            raise ValueError(f"max_evaluations must be >= 1, got {max_evaluations}")
        self.alpha, self.measure, self.channel, self.teacher = float(alpha), measure, channel, teacher
        for forced in (measure.fixed_q_star, channel.fixed_q_star):
            if forced is not None:
                if fixed_q_star is not None and fixed_q_star != forced:
                    raise ValueError(f"this measure/channel requires q_star = {forced}")
                fixed_q_star = forced
        if fixed_q_star is not None and not 0 < fixed_q_star <= 1:
            raise ValueError(f"fixed self-overlap must be in (0, 1], got {fixed_q_star}")
        self.fixed_q_star = fixed_q_star
        self.evaluations, self.max_evaluations = 0, int(max_evaluations)
        self.last = None  # the last evaluated point and its image (what a solve cut short returns)

    # unconstrained coordinates y ↔ order parameters with r² < q < q⋆ < 1 (r = 0 without teacher)
    def to_params(self, y: np.ndarray):
        with np.errstate(over="ignore"):  # |y| > 709: the logistic rounds to 0 or 1 (and `inside` says no)
            q_star = self.fixed_q_star if self.fixed_q_star is not None else float(1.0 / (1.0 + np.exp(-y[-1])))
            q = float(q_star / (1.0 + np.exp(-y[0])))
        r = math.sqrt(q) * math.tanh(y[1]) if self.teacher else 0.0
        return q, r, q_star

    def inside(self, q: float, r: float, q_star: float) -> bool:
        """r² < q < q⋆ < 1 in floating point (a long step in y can round onto the boundary, where G_E has no value)."""
        return r * r < q < q_star and (q_star < 1.0 or self.fixed_q_star is not None)

    def to_coords(self, q: float, r: float, q_star: float) -> np.ndarray:
        coords = [math.log(q / (q_star - q))]
        if self.teacher:
            coords.append(math.atanh(r / math.sqrt(q)))
        if self.fixed_q_star is None:
            coords.append(math.log(q_star / (1.0 - q_star)))
        return np.array(coords)

    def conjugates(self, q: float, r: float, q_star: float):
        g_e, d_q, d_r, d_q_star = energy_gradient(self.channel, q, r, q_star)
        q_hat = max(-2.0 * self.alpha * d_q, 0.0)
        r_hat = self.alpha * d_r if self.teacher else 0.0
        if self.fixed_q_star is None:
            q_star_hat = self.alpha * d_q_star
        elif self.measure.a_bounds is None:  # Ising: q⋆ ≡ 1 by the support, q̂⋆ drops out
            q_star_hat = 0.0
        else:
            q_star_hat = lagrange_multiplier(self.measure, q_hat, r_hat, self.fixed_q_star)
        return g_e, q_hat, r_hat, q_star_hat

    def step(self, q: float, r: float, q_star: float):
        """One application of the saddle-point map: returns (new (q, r, q⋆), conjugates, averages, G_E).
        Raises EvaluationBudgetSpent once `max_evaluations` maps have been evaluated."""
        if self.last is not None and self.last[0] == (q, r, q_star):  # the solver asks again for the point it just had
            return self.last[1]
        if self.evaluations >= self.max_evaluations:
            raise EvaluationBudgetSpent
        self.evaluations += 1
        g_e, q_hat, r_hat, q_star_hat = self.conjugates(q, r, q_star)
        averages = site_averages(self.measure, q_hat, r_hat, q_star_hat)
        new_Q = self.fixed_q_star if self.fixed_q_star is not None else averages.second
        new_r = averages.mean if self.teacher else 0.0
        image = (averages.mean_sq, new_r, new_Q), (q_hat, r_hat, q_star_hat), averages, g_e
        self.last = (float(q), float(r), float(q_star)), image
        return image

    def residual(self, y: np.ndarray) -> np.ndarray:
        params = self.to_params(y)
        if not self.inside(*params):
            return np.full(len(y), math.nan)  # a rejected step
        new, *_ = self.step(*params)
        return np.array([new[0] - params[0]] + ([new[1] - params[1]] if self.teacher else [])
                        + ([new[2] - params[2]] if self.fixed_q_star is None else []))

    def image_in_coords(self, y: np.ndarray) -> tuple[np.ndarray, float]:
        """T(x(y)) in the solver coordinates (projected inside r² < q < q⋆ < 1), and max |T(x) − x|.  Steps and
        Jacobians are well scaled in y; convergence (`tol`) is judged on the order parameters themselves."""
        params = self.to_params(y)
        if not self.inside(*params):
            return np.full(len(y), math.nan), math.inf  # a rejected step
        new = self.step(*params)[0]
        return self.to_coords(*_project(np.array(new), self)), max(abs(a - b) for a, b in zip(new, params))

    def solution(self, q: float, r: float, q_star: float) -> RSSolution:
        return self.as_solution((q, r, q_star), self.step(q, r, q_star))

    def as_solution(self, params, image) -> RSSolution:
        (new, (q_hat, r_hat, q_star_hat), averages, g_e), (q, r, q_star) = image, (float(value) for value in params)
        residual = max(abs(a - b) for a, b in zip(new, (q, r, q_star)))
        free_entropy = -q_star_hat * q_star + 0.5 * q_hat * q - r_hat * r + averages.log_z + self.alpha * g_e
        p1 = min(max(averages.sign, -1.0), 1.0)
        replicon = self.alpha * channel_curvature_sq(self.channel, q, r, q_star) * averages.variance_sq
        return RSSolution(alpha=self.alpha, q=q, r=r, q_star=q_star, q_hat=q_hat, r_hat=r_hat, q_star_hat=q_star_hat,
                          p1=p1, eps_g=eps_g_of(p1), free_entropy=free_entropy, converged=False,
                          iterations=self.evaluations, residual=residual, replicon=replicon)


class EvaluationBudgetSpent(Exception):
    """The solver used its `max_evaluations` evaluations of the saddle-point map."""


def solve_rs(alpha: float, measure, channel, init: tuple[float, float, float], teacher: bool = True,
             fixed_q_star: float | None = None, tol: float = 1e-10, damping: float = 0.3,
             max_damped_steps: int = 300, max_evaluations: int = MAX_EVALUATIONS) -> RSSolution:
    """Solve the RS saddle point from `init` = (q, r, q⋆).

    Newton's method in unconstrained coordinates (finite-difference Jacobian, Broyden updates, backtracking);
    if it stalls, damped fixed-point iteration x ← x + η(T(x) − x) from `init` and Newton again.
    `converged` means max |T(x) − x| < tol at the returned point.  After `max_evaluations` evaluations of the
    map the solve stops and returns the last evaluated point with converged=False."""
    problem = RSProblem(alpha, measure, channel, teacher, fixed_q_star, max_evaluations)
    with single_thread():
        try:
            return _solve(problem, init, tol, damping, max_damped_steps)
        except EvaluationBudgetSpent:
            return problem.as_solution(*problem.last)


@contextlib.contextmanager
def single_thread():
    """The quadrature tensors are small (~10⁵ elements): one thread is faster than two and cannot be
    slowed down by OpenMP over-subscription when other jobs share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _solve(problem: RSProblem, init, tol: float, damping: float, max_damped_steps: int,
           newton_radius: float = 0.01) -> RSSolution:
    start = np.array(_feasible(init, problem))
    for _ in range(20):  # far from the fixed point Newton in logit coordinates can stall: damp first
        step = np.array(problem.step(*start)[0]) - start
        if np.max(np.abs(step)) < newton_radius:
            break
        start = _project(start + damping * step, problem)
    y = _newton(problem.residual, problem.to_coords(*start), tol)
    solution = problem.solution(*problem.to_params(y))
    x = np.array(start)
    for _ in range(max_damped_steps // DAMPED_BLOCK):  # fallback: damped iteration, Newton after every block
        if solution.residual < tol:
            return dataclasses.replace(solution, converged=True, iterations=problem.evaluations)
        for _ in range(DAMPED_BLOCK):
            x = _project(x + damping * (np.array(problem.step(*x)[0]) - x), problem)
        y = _newton(problem.residual, problem.to_coords(*x), tol)
        solution = problem.solution(*problem.to_params(y))
    converged = solution.residual < tol
    return dataclasses.replace(solution, converged=converged, iterations=problem.evaluations)


def _newton(residual, y: np.ndarray, tol: float, max_steps: int = 40, fd_step: float = 1e-7) -> np.ndarray:
    """Quasi-Newton root finding of residual(y) = 0 until max |residual| < tol (returns the last iterate)."""
    def jacobian(y, f):
        columns = []
        for i in range(len(y)):
            shifted = y.copy()
            shifted[i] += fd_step * max(1.0, abs(y[i]))
            columns.append((residual(shifted) - f) / (shifted[i] - y[i]))
        return np.stack(columns, axis=1)

    f = residual(y)
    J = jacobian(y, f)
    stalls = 0
    for _ in range(max_steps):
        if np.max(np.abs(f)) < tol or not np.all(np.isfinite(f)):
            break
        try:
            step = -np.linalg.solve(J, f)
        except np.linalg.LinAlgError:
            break
        step *= min(1.0, 3.0 / max(np.max(np.abs(step)), 1e-300))  # trust region in the logit coordinates
        for _ in range(12):  # backtracking on the residual norm
            candidate = residual(y + step)
            if np.all(np.isfinite(candidate)) and np.linalg.norm(candidate) < np.linalg.norm(f):
                break
            step /= 2.0
        else:
            stalls += 1
            if stalls == 2:  # stalled again with a fresh Jacobian: no root nearby, give up
                break
            J = jacobian(y, f)  # stalled: refresh the Jacobian
            continue
        stalls = 0
        J += np.outer(candidate - f - J @ step, step) / (step @ step)  # Broyden rank-one update
        y, f = y + step, candidate
    return y


def _feasible(init, problem: RSProblem):
    q, r, q_star = (float(value) for value in init)
    if problem.fixed_q_star is not None:
        q_star = problem.fixed_q_star
    return tuple(_project(np.array([q, r if problem.teacher else 0.0, q_star]), problem, margin=1e-6))


def _project(x: np.ndarray, problem: RSProblem, margin: float = 1e-9) -> np.ndarray:
    """Clip (q, r, q⋆) into r² < q < q⋆ < 1, keeping a relative distance `margin` from each boundary."""
    q_star = problem.fixed_q_star if problem.fixed_q_star is not None else min(max(x[2], 1e-6), 1.0 - margin)
    q = min(max(x[0], 1e-12), q_star * (1.0 - margin))
    r = 0.0 if not problem.teacher else math.copysign(min(abs(x[1]), math.sqrt(q) * (1.0 - margin)), x[1])
    return np.array([q, r, q_star])


def iteration_is_stable(problem: RSProblem, solution, step: float = 1e-6) -> bool:
    """Stable under damped iteration x ← x + η(T(x) − x) for small η: every eigenvalue of ∂T/∂x has real part
    < 1.  The middle (unphysical) solution between two coexisting branches has a real eigenvalue > 1.

    The Jacobian is taken in the solver's unconstrained coordinates y (at a fixed point it is similar to ∂T/∂x,
    D⁻¹(∂T/∂x)D with D = ∂x/∂y, so the eigenvalues are the same) where y ± step is always a valid point, even
    when q⋆ − q is 1e-7."""
    y = problem.to_coords(*_feasible((solution.q, solution.r, solution.q_star), problem))
    mapped = lambda coords: problem.image_in_coords(coords)[0]
    columns = []
    for index in range(len(y)):
        shift = np.zeros(len(y))
        shift[index] = step * max(abs(y[index]), 1.0)
        columns.append((mapped(y + shift) - mapped(y - shift)) / (2 * shift[index]))
    jacobian = np.stack(columns, axis=1)
    if not np.all(np.isfinite(jacobian)):
        return True  # undecidable: keep the solution rather than drop it
    return bool(np.max(np.linalg.eigvals(jacobian).real) < 1.0)
