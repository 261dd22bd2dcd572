"""Franz–Parisi (task-2) theory: limits, reduction to task 1, Monte-Carlo check of the reference average."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mean_field_theory.franz_parisi import ReferenceMeasure, Task2Problem, task1_law
from mean_field_theory.task1 import HIGH_INIT, solve_task1

RNG = np.random.default_rng(2024)


@pytest.fixture(scope="module")
def reference():
    """Task-1 solution at α₁ = 2, β₁ = 20 (unique branch): the reference of Fig. 3."""
    solution = solve_task1(2.0, init=HIGH_INIT)
    assert solution.converged
    return solution


@pytest.fixture(scope="module")
def moderate_reference():
    return solve_task1(0.5)


def test_reference_average_matches_monte_carlo(moderate_reference):
    """Averages over (B, z, m₁, x) by Monte Carlo with the KL written directly (no field-shift rewriting,
    no separability): B ~ P(B), z, x ~ N(0, 1), m₁ ~ P₁(m₁|z) by inverse CDF on a fine grid, ⟨·⟩ over m on a
    dense uniform grid."""
    kappa2, r0, (q_hat, r_hat, a) = 5.0, 0.5, (4.0, 1.5, -1.0)
    ours = ReferenceMeasure(task1_law(moderate_reference), kappa2, r0).averages(q_hat, r_hat, a)
    grid = np.linspace(-1, 1, 4001)[1:-1]
    ref = moderate_reference
    n = 40000
    z, x = RNG.standard_normal(n), RNG.standard_normal(n)
    b_sign = np.where(RNG.uniform(size=n) < (1 + r0) / 2, 1.0, -1.0)
    m1 = np.empty(n)
    for i in range(0, n, 2000):  # sample m₁ from exp((q̂⋆ − q̂/2) m² + (√q̂ z + r̂) m) on [−1, 1]
        log_p = (ref.q_star_hat - ref.q_hat / 2) * grid**2 + (math.sqrt(ref.q_hat) * z[i:i + 2000, None] + ref.r_hat) * grid
        cdf = np.cumsum(np.exp(log_p - log_p.max(1, keepdims=True)), axis=1)
        cdf /= cdf[:, -1:]
        m1[i:i + 2000] = grid[np.minimum((cdf < RNG.uniform(size=(min(2000, n - i), 1))).sum(1), len(grid) - 1)]
    moments = []
    for i in range(0, n, 2000):
        m, m1_block = grid[None, :], m1[i:i + 2000, None]
        kl = (1 + m) / 2 * np.log((1 + m) / (1 + m1_block)) + (1 - m) / 2 * np.log((1 - m) / (1 - m1_block))
        log_w = a * m**2 + (math.sqrt(q_hat) * x[i:i + 2000, None] + b_sign[i:i + 2000, None] * r_hat) * m - kappa2 * kl
        w = np.exp(log_w - log_w.max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)
        mean = (w * m).sum(1)
        moments.append(np.stack([mean**2, b_sign[i:i + 2000] * mean, (w * m**2).sum(1),
                                 b_sign[i:i + 2000] * (w * np.sign(m)).sum(1), mean], 1))
    moments = np.concatenate(moments)
    for value, samples in zip((ours.mean_sq, ours.mean, ours.second, ours.sign, ours.extras["m_teachers"][0]), moments.T):
        assert abs(value - samples.mean()) < 4 * samples.std() / math.sqrt(n) + 1e-3  # + grid bias of m₁ samples


def test_without_kl_task2_is_task1_with_teacher_2(reference):
    """γ = 0: the reference is irrelevant, task 2 solves the task-1 equations with teacher 2."""
    solution = Task2Problem(reference, r0=0.5, gamma=0.0).solve(1.0, init=(0.8, 0.6, 0.9))
    task1 = solve_task1(1.0)
    assert solution.converged
    assert (solution.q, solution.r, solution.q_star) == pytest.approx((task1.q, task1.r, task1.q_star), abs=1e-8)
    assert solution.p2 == pytest.approx(task1.p1, abs=1e-7)
    assert solution.p1 == pytest.approx(0.5 * solution.p2, abs=1e-7)  # B independent of the student: p₁ = r₀ p₂


def test_small_alpha2_limit(reference):
    """α₂ → 0: the student stays near the reference, p₂ → r₀ p₁⁽²⁾ and p₁⁽²⁾ ≈ the task-1 p₁."""
    solution = Task2Problem(reference, r0=-0.5, gamma=1.0).solve(1e-4)
    assert solution.converged
    assert solution.p2 == pytest.approx(-0.5 * solution.p1, abs=1e-3)
    assert 0.97 < solution.p1 <= reference.p1 + 1e-12
    assert solution.eps_g2 == pytest.approx(math.acos(-0.5 * reference.p1) / math.pi, abs=5e-3)


def test_large_alpha2_limit_and_orderings(reference):
    """α₂ → ∞ at fixed κ₂: task 2 learned (ε_g² → 0) and task 1 forgotten down to arccos(r₀)/π;
    at α₂ = 1: ε_g¹ and ε_g² ordered r₀ = 0.5 < 0 < −0.5 (docs/theory.md §5)."""
    large = Task2Problem(reference, r0=0.5, gamma=1.0).solve(7.0, init=HIGH_INIT)
    assert large.converged and large.eps_g2 < 0.01
    assert large.eps_g1 == pytest.approx(1 / 3, abs=0.01)
    at_one = [Task2Problem(reference, r0=r0, gamma=1.0).solve(1.0) for r0 in (0.5, 0.0, -0.5)]
    assert all(solution.converged for solution in at_one)
    assert at_one[0].eps_g2 < at_one[1].eps_g2 < at_one[2].eps_g2
    assert at_one[0].eps_g1 < at_one[1].eps_g1 < at_one[2].eps_g1
    weak_kl = Task2Problem(reference, r0=0.0, gamma=0.1).solve(1.0)
    assert weak_kl.eps_g1 > at_one[1].eps_g1  # a weaker KL (γ = 0.1) forgets more


def test_unconverged_reference_and_bad_parameters_are_rejected(reference):
    unconverged = solve_task1(0.5, max_evaluations=2)
    with pytest.raises(ValueError, match="did not converge"):
        Task2Problem(unconverged, r0=0.0)
    with pytest.raises(ValueError):
        Task2Problem(reference, r0=1.5)
    with pytest.raises(ValueError):
        Task2Problem(reference, r0=0.0, gamma=-1.0)
    with pytest.raises(ValueError):
        Task2Problem(reference, r0=0.0).solve(0.0)
