"""Task 2 with the task-1 posterior as prior: the Franz–Parisi potential (docs/theory.md §5, eqs. 19–22).

A typical task-1 solution m¹ (quenched, drawn from the task-1 Gibbs measure) is the reference; the task-2
student m is weighted by its own data term at inverse temperature β₂ and by exp(−κ₂ KL(m‖m¹)), κ₂ = β₂γ.
Its replica-symmetric free entropy has the task-1 form with the same energy term G_E and a single-site
average over the reference:

    G_S2 = Σ_B P(B) ∫Dz ∫dm₁ P₁(m₁|z) ∫Dx ln ∫dm exp[(q̂⋆₂ − q̂₂/2) m² + (√q̂₂ x + B r̂₂) m − κ₂ KL(m‖m₁)],

B = w¹w² = ±1 with P(B) = (1 ± r₀)/2 (gauge w¹ = +1) and P₁ the task-1 single-site measure at the converged
task-1 conjugates of ONE branch.  Two observations make this cheap and deterministic:
* −κ₂ KL(m‖m₁) = κ₂ S(m) + κ₂ atanh(m₁)·m + κ₂[½ ln((1 − m₁²)/4)]: the reference only shifts the field by
  κ₂ u₁ (u₁ = atanh m₁), so the inner problem is `FlatMeasure(κ₂)` at field √q̂₂ x + B r̂₂ + κ₂ u₁;
* the x-average does not depend on z, so the z-integral reduces once and for all to the marginal density
  ρ(u₁) = ∫Dz P₁(u₁|z) of the reference (docs/theory.md eq. 21).
The code works in the gauge of the NEW teacher (w² = +1, reference v = B u₁, field √q̂₂ x + r̂₂ + κ₂ v), the form in
which the same measure serves every later task of a chain (`chain.py`): the law of the typical task-t solution is
the next task's ρ.
Order parameters: q₂ = ⟪⟨m⟩²⟫, r₂ = ⟪B⟨m⟩⟫, q₂⋆ = ⟪⟨m²⟩⟫; observables p₂ = ⟪B sgn m⟫, p₁⁽²⁾ = ⟪sgn m⟫,
ε_g^t = arccos(p_t)/π, and T = ⟪⟨m⟩⟫ (teacher-1 overlap of the task-2 means; its conjugate is 0).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import torch

from mean_field_theory.channels import VariationalChannel
from mean_field_theory.continuation import sweep_branches
from mean_field_theory.quadrature import N_Z, gaussian_sinh_nodes
from mean_field_theory.rs_solver import (MAX_EVALUATIONS, RSProblem, RSSolution, SaddlePoint, eps_g_of,
                                         iteration_is_stable, saddle_point_fields, single_thread,
                                         solve_rs)
from mean_field_theory.site_measures import FlatMeasure, LocalMeasure, SiteAverages
from mean_field_theory.task1 import HIGH_INIT

N_X_TASK2 = 81  # nodes of the x-average inside the reference average
PANELS, NODES_PER_PANEL = 14, 10  # of the m and m₁ grids (FlatMeasure; refinement changes results < 1e-10)
RHO_CUTOFF = 1e-17  # reference nodes with smaller probability are dropped


def reference_grid(kappa: float = 0.0) -> FlatMeasure:
    """The u = atanh(m) nodes on which the law of a reference lives (the same for every κ: κ only weights them)."""
    return FlatMeasure(kappa, PANELS, NODES_PER_PANEL)


def task1_law(task1: RSSolution, kappa1: float = 0.0) -> torch.Tensor:
    """Law of u₁ = atanh(m₁) at a site of a typical task-1 solution m₁, in the gauge w¹ = +1: masses on the
    nodes of `reference_grid()`, ρ(u₁) = ∫Dz P₁(u₁|z) at the converged task-1 conjugates (docs/theory.md eq. 21)."""
    if not task1.converged:
        raise ValueError(f"the task-1 reference at alpha1={task1.alpha} did not converge "
                         f"(residual {task1.residual:.1e}); solve it to tolerance first")
    grid = reference_grid(kappa1)
    a1, sqrt_q1 = task1.q_star_hat - task1.q_hat / 2, math.sqrt(task1.q_hat)
    z, log_wz = gaussian_sinh_nodes((-task1.r_hat / sqrt_q1,), (0.5 * min(1.0, 1.0 / sqrt_q1),), N_Z)
    exponent = grid.log_base + a1 * grid.m**2 + (sqrt_q1 * z + task1.r_hat).unsqueeze(-1) * grid.m
    return torch.exp(log_wz).unsqueeze(-1).mul(torch.softmax(exponent, dim=-1)).sum(0)


class ReferenceMeasure(LocalMeasure):
    """Single site of a task learned with the previous task's typical solution as prior (docs/theory.md §5–6).

    `law`: masses of u′ = atanh(m′) of the reference m′ on the `reference_grid()` nodes, in the gauge of the
    previous teacher w′ = +1; `earlier`: signed masses E[w^s w′; u′] of the teachers s before it (chain of
    tasks).  The new teacher is w = w′B with P(B = ±1) = (1 ± r₀)/2.  In the gauge w = +1 the reference is
    v = B u′, with masses c₊ρ(v) + c₋ρ(−v) (c± = (1 ± r₀)/2), and a teacher s has signed masses
    c₊ν_s(v) − c₋ν_s(−v), the previous teacher's ν being ρ itself.  The student sees the field
    √q̂ x + r̂ + κ v with the entropy κ S(m) (−κ KL(m‖m′) = κS(m) + κ u′m − κ ln 2cosh u′)."""

    def __init__(self, law: torch.Tensor, kappa: float, r0: float, earlier: Sequence[torch.Tensor] = ()):
        if not -1.0 <= r0 <= 1.0:
            raise ValueError(f"r0 must be in [-1, 1], got {r0}")
        if not kappa >= 0:
            raise ValueError(f"kappa must be >= 0, got {kappa}")
        self.inner, self.kappa = reference_grid(kappa), float(kappa)
        mirror = (self.inner.u.unsqueeze(-1) + self.inner.u).abs().argmin(-1)  # the node at −u (the grid is symmetric)
        plus, minus = (1 + r0) / 2, (1 - r0) / 2
        prior = plus * law + minus * law[mirror]
        self.keep = prior > RHO_CUTOFF * prior.max()
        total = prior[self.keep].sum()
        self.prior = prior[self.keep] / total
        self.teachers = torch.stack([(plus * nu - minus * nu[mirror])[self.keep] / total for nu in (*earlier, law)])
        self.v = self.inner.u[self.keep]
        log_2cosh = torch.logaddexp(self.v, -self.v)
        self.kl_constant = float(self.prior @ (-self.kappa * log_2cosh))  # κ E ½ln((1−m′²)/4)

    def _x_rule(self, q_hat: float, r_hat: float):
        """Fields √q̂ x + r̂ + κv on the x-nodes of every reference value v, and their log weights."""
        sqrt_q_hat = math.sqrt(max(q_hat, 0.0))
        shift = r_hat + self.kappa * self.v
        if sqrt_q_hat > 0:
            center, scale = -shift / sqrt_q_hat, torch.full_like(shift, 0.5 * min(1.0, 1.0 / sqrt_q_hat))
        else:
            center, scale = torch.zeros_like(shift), torch.full_like(shift, 0.5)
        x, log_wx = gaussian_sinh_nodes((center,), (scale,), N_X_TASK2)
        return sqrt_q_hat * x + shift.unsqueeze(-1), log_wx

    def averages(self, q_hat: float, r_hat: float, a: float) -> SiteAverages:
        fields, log_wx = self._x_rule(q_hat, r_hat)
        log_z, mean, second, sign = self.inner.site(a, fields)
        wx = torch.exp(log_wx)
        e_log_z, e_mean, e_mean_sq, e_second, e_sign, e_variance_sq = (
            (wx * values).sum(-1) for values in (log_z, mean, mean**2, second, sign, (second - mean**2) ** 2))  # per v
        return SiteAverages(float(self.prior @ e_log_z) + self.kl_constant, float(self.prior @ e_mean),
                            float(self.prior @ e_mean_sq), float(self.prior @ e_second), float(self.prior @ e_sign),
                            float(self.prior @ e_variance_sq), extras={"p_teachers": (self.teachers @ e_sign).tolist(),
                                    "m_teachers": (self.teachers @ e_mean).tolist(),
                                    "overlap_reference": float(self.prior @ (torch.tanh(self.v) * e_mean))})

    def next_law(self, q_hat: float, r_hat: float, a: float, chunk: int = 16) -> tuple[torch.Tensor, list]:
        """Law of the typical solution of this task at the given conjugates, in the gauge w = +1, as the next task
        needs it: (masses of u, signed masses of every teacher before this one)."""
        fields, log_wx = self._x_rule(q_hat, r_hat)
        base = self.inner.log_base + a * self.inner.m**2
        kernel = torch.cat([torch.einsum("vx,vxj->vj", torch.exp(log_wx[start:start + chunk]), torch.softmax(
            base + fields[start:start + chunk].unsqueeze(-1) * self.inner.m, dim=-1))
            for start in range(0, fields.shape[0], chunk)])  # P(u_j | v) of a typical solution
        return self.prior @ kernel, list(self.teachers @ kernel)


@dataclasses.dataclass(kw_only=True)
class TaskSolution(SaddlePoint):
    """Saddle point of a task learned from a reference; (q, r, q⋆) its order parameters (r: its own teacher); the
    replicon is that of the task's replicas at a fixed reference."""

    p: float  # ⟪sgn m⟫ towards this task's teacher (clipped student)
    eps_g: float
    p_teachers: tuple  # the same towards every earlier teacher, oldest first
    m_teachers: tuple  # ⟪w^s ⟨m⟩⟫ of every earlier teacher s
    overlap_reference: float  # ⟪m′⟨m⟩⟫ with the reference m′

    def eps_g_teachers(self) -> list[float]:
        return [eps_g_of(p) for p in self.p_teachers]


class NextTask:
    """A task at inverse temperature β with γ KL to the typical solution of the previous task, whose law is
    `law` (and `earlier`: signed masses of older teachers, see ReferenceMeasure); κ = βγ."""

    def __init__(self, law: torch.Tensor, r0: float, gamma: float = 1.0, beta: float = 20.0, tol: float = 1e-10,
                 earlier: Sequence[torch.Tensor] = ()):
        if not gamma >= 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        if not beta > 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        self.r0, self.gamma, self.tol = r0, gamma, tol
        self.measure = ReferenceMeasure(law, beta * gamma, r0, earlier)
        self.channel = VariationalChannel(beta)

    @property
    def near_reference(self) -> tuple[float, float, float]:
        """The α → 0 solution (all conjugates 0): the student distributed as exp(−κ KL(m‖m′)) around the
        reference; the initial guess of the upward sweep."""
        with single_thread():
            limit = self.measure.averages(0.0, 0.0, 0.0)
        return limit.mean_sq, limit.mean, limit.second

    def solve(self, alpha: float, init=None, max_evaluations: int = MAX_EVALUATIONS) -> TaskSolution:
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        solution = solve_rs(alpha, self.measure, self.channel, init or self.near_reference, tol=self.tol,
                            max_evaluations=max_evaluations)
        with single_thread():
            extras = self.measure.averages(solution.q_hat, solution.r_hat,
                                           solution.q_star_hat - solution.q_hat / 2).extras
        return TaskSolution(**saddle_point_fields(solution), p=solution.p1, eps_g=solution.eps_g,
                            p_teachers=tuple(extras["p_teachers"]), m_teachers=tuple(extras["m_teachers"]),
                            overlap_reference=extras["overlap_reference"])

    def sweep(self, alphas) -> list[dict]:
        """Both branches along α (continuation.sweep_branches): up from the reference, down from near-perfect."""
        def is_stable(solution):
            with single_thread():
                return iteration_is_stable(RSProblem(solution.alpha, self.measure, self.channel), solution)

        return sweep_branches(alphas, self.solve, self.near_reference, HIGH_INIT, is_stable)

    def next_law(self, solution: TaskSolution) -> tuple[torch.Tensor, list]:
        """(law, signed masses of all earlier teachers and of this one) of the typical solution: the next task's
        reference."""
        with single_thread():
            law, earlier = self.measure.next_law(solution.q_hat, solution.r_hat,
                                                 solution.q_star_hat - solution.q_hat / 2)
        return law, [*earlier, law]


@dataclasses.dataclass(kw_only=True)
class Task2Solution(SaddlePoint):
    """Franz–Parisi saddle point; (q, r, q⋆) are the task-2 order parameters q₂, r₂, q₂⋆ (r: teacher 2), α is α₂,
    the replicon that of the task-2 replicas at a fixed task-1 reference."""

    r0: float
    gamma: float
    T: float  # ⟪⟨m⟩⟫: teacher-1 overlap of the task-2 means
    p1: float  # ⟪sgn m⟫: teacher-1 overlap of the clipped task-2 student
    p2: float  # ⟪B sgn m⟫: teacher-2 overlap of the clipped task-2 student
    eps_g1: float
    eps_g2: float


class Task2Problem(NextTask):
    """Task 2 for one (task-1 reference, r₀, γ): the reference measure is built once for all α₂."""

    def __init__(self, reference: RSSolution, r0: float, gamma: float = 1.0, beta2: float = 20.0,
                 kappa1: float = 0.0, tol: float = 1e-10):
        super().__init__(task1_law(reference, kappa1), r0, gamma, beta2, tol)
        self.reference = reference

    def solve(self, alpha2: float, init=None, max_evaluations: int = MAX_EVALUATIONS) -> Task2Solution:
        solution = super().solve(alpha2, init, max_evaluations)
        return Task2Solution(**saddle_point_fields(solution), r0=self.r0, gamma=self.gamma, T=solution.m_teachers[0],
                             p1=min(max(solution.p_teachers[0], -1.0), 1.0), p2=solution.p,
                             eps_g1=solution.eps_g_teachers()[0], eps_g2=solution.eps_g)


def solve_task2(alpha2: float, reference: RSSolution, r0: float, gamma: float = 1.0, beta2: float = 20.0,
                kappa1: float = 0.0, init=None, tol: float = 1e-10) -> Task2Solution:
    """Franz–Parisi saddle point of task 2 (κ₂ = β₂γ) given a converged task-1 `reference` solution."""
    return Task2Problem(reference, r0, gamma, beta2, kappa1, tol).solve(alpha2, init)
