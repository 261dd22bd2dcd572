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
Order parameters: q₂ = ⟪⟨m⟩²⟫, r₂ = ⟪B⟨m⟩⟫, q₂⋆ = ⟪⟨m²⟩⟫; observables p₂ = ⟪B sgn m⟫, p₁⁽²⁾ = ⟪sgn m⟫,
ε_g^t = arccos(p_t)/π, and T = ⟪⟨m⟩⟫ (teacher-1 overlap of the task-2 means; its conjugate is 0).
"""
from __future__ import annotations

import dataclasses
import math

import torch

from mean_field_theory.quadrature import gaussian_sinh_nodes
from mean_field_theory.rs_solver import (MAX_EVALUATIONS, N_Z, FlatMeasure, LocalMeasure, RSProblem, RSSolution,
                                         SiteAverages,
                                         VariationalChannel, iteration_is_stable, single_thread, solve_rs,
                                         sweep_branches)
from mean_field_theory.task1 import HIGH_INIT

N_X_TASK2 = 81  # nodes of the x-average inside the reference average
PANELS, NODES_PER_PANEL = 14, 10  # of the m and m₁ grids (FlatMeasure; refinement changes results < 1e-10)
RHO_CUTOFF = 1e-17  # reference nodes with smaller probability are dropped


class ReferenceMeasure(LocalMeasure):
    """Single site of task 2: FlatMeasure(κ₂) with the field shifted by κ₂·atanh(m₁), averaged over the
    task-1 reference m₁ and the teacher relation B."""

    def __init__(self, task1: RSSolution, kappa1: float, kappa2: float, r0: float):
        if not task1.converged:
            raise ValueError(f"the task-1 reference at alpha1={task1.alpha} did not converge "
                             f"(residual {task1.residual:.1e}); solve it to tolerance first")
        if not -1.0 <= r0 <= 1.0:
            raise ValueError(f"r0 must be in [-1, 1], got {r0}")
        if not kappa2 >= 0:
            raise ValueError(f"kappa2 must be >= 0, got {kappa2}")
        self.inner, self.kappa2 = FlatMeasure(kappa2, PANELS, NODES_PER_PANEL), float(kappa2)
        self.b_weights = torch.tensor([(1 + r0) / 2, (1 - r0) / 2], dtype=torch.float64)
        self.b_signs = torch.tensor([1.0, -1.0], dtype=torch.float64)
        reference = FlatMeasure(kappa1, PANELS, NODES_PER_PANEL)
        a1 = task1.q_star_hat - task1.q_hat / 2
        sqrt_q1 = math.sqrt(task1.q_hat)
        z, log_wz = gaussian_sinh_nodes((-task1.r_hat / sqrt_q1,), (0.5 * min(1.0, 1.0 / sqrt_q1),), N_Z)
        exponent = reference.log_base + a1 * reference.m**2 + (sqrt_q1 * z + task1.r_hat).unsqueeze(-1) * reference.m
        rho = torch.exp(log_wz).unsqueeze(-1).mul(torch.softmax(exponent, dim=-1)).sum(0)  # ρ(u₁) on the u₁ nodes
        keep = rho > RHO_CUTOFF * rho.max()
        self.rho = rho[keep] / rho[keep].sum()
        u1 = reference.u[keep]
        self.field_shift = self.kappa2 * u1
        log_cosh = torch.logaddexp(u1, -u1) - math.log(2.0)
        self.kl_constant = float(self.rho @ (-self.kappa2 * (log_cosh + math.log(2.0))))  # κ₂ E ½ln((1−m₁²)/4)
        self.reference_sign = float(self.rho @ torch.sign(reference.m[keep]))  # task-1 p₁ of the reference

    def averages(self, q_hat: float, r_hat: float, a: float) -> SiteAverages:
        sqrt_q_hat = math.sqrt(max(q_hat, 0.0))
        shift = self.b_signs.unsqueeze(-1) * r_hat + self.field_shift  # (B, u₁) fields without noise
        if sqrt_q_hat > 0:
            center, scale = -shift / sqrt_q_hat, torch.full_like(shift, 0.5 * min(1.0, 1.0 / sqrt_q_hat))
        else:
            center, scale = torch.zeros_like(shift), torch.full_like(shift, 0.5)
        x, log_wx = gaussian_sinh_nodes((center,), (scale,), N_X_TASK2)
        log_z, mean, second, sign = self.inner.site(a, sqrt_q_hat * x + shift.unsqueeze(-1))
        wx = torch.exp(log_wx)
        e_x = [(wx * values).sum(-1) for values in (log_z, mean, mean**2, second, sign)]  # (B, u₁)
        weight = self.b_weights.unsqueeze(-1) * self.rho  # P(B) ρ(u₁)
        signed = weight * self.b_signs.unsqueeze(-1)
        total = lambda values, w=weight: float((w * values).sum())
        return SiteAverages(total(e_x[0]) + self.kl_constant, total(e_x[1], signed), total(e_x[2]), total(e_x[3]),
                            total(e_x[4], signed), extras={"T": total(e_x[1]), "p1": total(e_x[4])})


@dataclasses.dataclass
class Task2Solution:
    """Franz–Parisi saddle point; (q, r, q⋆) are the task-2 order parameters q₂, r₂, q₂⋆ (r: teacher 2)."""

    alpha: float  # α₂
    q: float
    r: float
    q_star: float
    q_hat: float
    r_hat: float
    q_star_hat: float
    r0: float
    gamma: float
    T: float  # ⟪⟨m⟩⟫: teacher-1 overlap of the task-2 means
    p1: float  # ⟪sgn m⟫: teacher-1 overlap of the clipped task-2 student
    p2: float  # ⟪B sgn m⟫: teacher-2 overlap of the clipped task-2 student
    eps_g1: float
    eps_g2: float
    free_entropy: float
    converged: bool
    iterations: int
    residual: float

    def as_row(self) -> dict:
        return dataclasses.asdict(self)


class Task2Problem:
    """Task 2 for one (task-1 reference, r₀, γ): the reference measure is built once for all α₂."""

    def __init__(self, reference: RSSolution, r0: float, gamma: float = 1.0, beta2: float = 20.0,
                 kappa1: float = 0.0, tol: float = 1e-10):
        if not gamma >= 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        if not beta2 > 0:
            raise ValueError(f"beta2 must be > 0, got {beta2}")
        self.reference, self.r0, self.gamma, self.tol = reference, r0, gamma, tol
        self.measure = ReferenceMeasure(reference, kappa1, beta2 * gamma, r0)
        self.channel = VariationalChannel(beta2)

    @property
    def near_reference(self) -> tuple[float, float, float]:
        """The α₂ → 0 solution (all conjugates 0): the student distributed as exp(−κ₂ KL(m‖m₁)) around the
        reference; the initial guess of the upward sweep."""
        with single_thread():
            limit = self.measure.averages(0.0, 0.0, 0.0)
        return limit.mean_sq, limit.mean, limit.second

    def solve(self, alpha2: float, init=None, max_evaluations: int = MAX_EVALUATIONS) -> Task2Solution:
        if not alpha2 > 0:
            raise ValueError(f"alpha2 must be > 0, got {alpha2}")
        solution = solve_rs(alpha2, self.measure, self.channel, init or self.near_reference, tol=self.tol,
                            max_evaluations=max_evaluations)
        with single_thread():
            extras = self.measure.averages(solution.q_hat, solution.r_hat,
                                           solution.q_star_hat - solution.q_hat / 2).extras
        p1 = min(max(extras["p1"], -1.0), 1.0)
        return Task2Solution(alpha2, solution.q, solution.r, solution.q_star, solution.q_hat, solution.r_hat,
                             solution.q_star_hat, self.r0, self.gamma, extras["T"], p1, solution.p1,
                             math.acos(p1) / math.pi, solution.eps_g, solution.free_entropy, solution.converged,
                             solution.iterations, solution.residual)

    def sweep(self, alpha2s) -> list[dict]:
        """Both branches along α₂ (rs_solver.sweep_branches): up from the reference, down from near-perfect."""
        def is_stable(solution):
            with single_thread():
                return iteration_is_stable(RSProblem(solution.alpha, self.measure, self.channel), solution)

        return sweep_branches(alpha2s, self.solve, self.near_reference, HIGH_INIT, is_stable)


def solve_task2(alpha2: float, reference: RSSolution, r0: float, gamma: float = 1.0, beta2: float = 20.0,
                kappa1: float = 0.0, init=None, tol: float = 1e-10) -> Task2Solution:
    """Franz–Parisi saddle point of task 2 (κ₂ = β₂γ) given a converged task-1 `reference` solution."""
    return Task2Problem(reference, r0, gamma, beta2, kappa1, tol).solve(alpha2, init)
