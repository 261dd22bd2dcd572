"""The replicon (de Almeida–Thouless) eigenvalue of every RS solution, against computations that share none of the
solver's grids: adaptive quadrature on the infinite line (scipy.integrate) from the saddle point's own order
parameters and conjugates, the classical AT line of the Ising perceptron (Gardner & Derrida 1988: α_AT = 1.015),
the marginality of the spherical perceptron at its capacity, the Nishimori line of Bayes-optimal learning (RS stable),
and the γ = 0 limit of the Franz–Parisi potential (the reference drops out: task 2 is task 1)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize, special

from mean_field_theory.channels import VersionSpaceChannel
from mean_field_theory.franz_parisi import Task2Problem
from mean_field_theory.rs_solver import solve_rs
from mean_field_theory.site_measures import IsingMeasure, SphericalMeasure
from mean_field_theory.task1 import LOW_INIT, solve_task1

SQRT_2PI = math.sqrt(2 * math.pi)


def gaussian(z):
    return math.exp(-z * z / 2) / SQRT_2PI


def line(function, breaks, **options):
    """∫ function over ℝ by adaptive quadrature, split at the sorted `breaks` (infinite end intervals)."""
    edges = [-math.inf, *sorted(breaks), math.inf]
    return sum(integrate.quad_vec(function, low, high, epsabs=0, epsrel=1e-11, limit=400, **options)[0]
               for low, high in zip(edges[:-1], edges[1:]))


def psi_curvature(omega, q, q_star, beta):
    """ψ''(ω) for ψ(ω) = ln ∫Dx Φ_N(t)^β, t = (ω + √(q⋆−q) x)/√(1−q⋆): ⟨g'⟩ + ⟨g²⟩ − ⟨g⟩² over the tilted x-measure,
    g = ∂_ω β ln Φ_N(t)."""
    sqrt_v, sqrt_e = math.sqrt(q_star - q), math.sqrt(1 - q_star)

    def exponent(x):
        return -x * x / 2 + beta * special.log_ndtr((omega + sqrt_v * x) / sqrt_e)

    peak = optimize.minimize_scalar(lambda x: -exponent(x), bracket=(-1.0, 1.0)).x
    top = exponent(peak)
    wall_t = special.ndtri(math.exp(-1 / beta))  # where β ln Φ_N(t) = −1: the steep side of the integrand
    wall = (sqrt_e * wall_t - omega) / sqrt_v

    def moments(x):
        t = (omega + sqrt_v * x) / sqrt_e
        mills = math.exp(-t * t / 2 - special.log_ndtr(t)) / SQRT_2PI
        g, g_prime = beta * mills / sqrt_e, -beta * mills * (t + mills) / sqrt_e**2
        return math.exp(exponent(x) - top) * np.array([1.0, g, g * g, g_prime])

    norm, mean, second, slope = line(moments, (peak, wall))
    return (slope + second) / norm - (mean / norm) ** 2


def channel_factor(q, r, q_star, beta):
    """E_out[(ψ'')²] = 2 ∫Dz Φ_N(r z/√(q−r²)) ψ''(√q z)²."""
    spread = math.sqrt(q - r * r)
    return line(lambda z: 2 * gaussian(z) * special.ndtr(r * z / spread) * psi_curvature(math.sqrt(q) * z, q, q_star,
                                                                                         beta) ** 2, (0.0,))


def site_variance(a, b):
    """⟨m²⟩ − ⟨m⟩² of exp(a m² + b m) dm on [−1, 1]."""
    inner = [-b / (2 * a)] if a < 0 and abs(b) < -2 * a else []  # an interior maximum of the exponent
    top = max([a + abs(b)] + [-b * b / (4 * a) for _ in inner])
    weights = integrate.quad_vec(lambda m: math.exp(a * m * m + b * m - top) * np.array([1.0, m, m * m]), -1.0, 1.0,
                                 epsabs=0, epsrel=1e-12, limit=400, points=inner or None)[0]
    return weights[2] / weights[0] - (weights[1] / weights[0]) ** 2


def site_factor(q_hat, r_hat, q_star_hat):
    """E_z[(⟨m²⟩ − ⟨m⟩²)²] at fields b = √q̂ z + r̂ and a = q̂⋆ − q̂/2 (flat measure on [−1, 1])."""
    a, sqrt_q_hat = q_star_hat - q_hat / 2, math.sqrt(q_hat)
    return line(lambda z: gaussian(z) * site_variance(a, sqrt_q_hat * z + r_hat) ** 2, (-r_hat / sqrt_q_hat,))


@pytest.mark.slow
@pytest.mark.parametrize("beta, alpha", [(5.0, 1.0), (20.0, 1.3)])
def test_the_replicon_of_the_paper_measure_agrees_with_adaptive_quadrature(beta, alpha):
    """An RS-stable point (β = 5) and an unstable one (β = 20, λ_R ≈ 6) of the poor branch."""
    solution = solve_task1(alpha, beta=beta)
    assert solution.converged
    reference = alpha * channel_factor(solution.q, solution.r, solution.q_star, beta) * site_factor(
        solution.q_hat, solution.r_hat, solution.q_star_hat)
    assert solution.replicon == pytest.approx(reference, rel=1e-6)


def test_the_ising_perceptron_storage_reaches_its_at_line_at_gardner_derrida_alpha():
    """Random ±1 labels, Ising couplings, version-space Gibbs measure: RS becomes unstable at α_AT ≈ 1.015
    (Gardner & Derrida, J. Phys. A 21, 271 (1988)), above the capacity 0.833 where RS is still stable."""
    init, replicon = (0.5, 0.0, 1.0), {}
    for alpha in (0.833, 1.0, 1.005, 1.025, 1.1):
        solution = solve_rs(alpha, IsingMeasure(), VersionSpaceChannel(), init, teacher=False)
        assert solution.converged
        init, replicon[alpha] = (solution.q, 0.0, 1.0), solution.replicon
    assert replicon[0.833] < replicon[1.0] < replicon[1.005] < 1.0 < replicon[1.025] < replicon[1.1]


def test_the_spherical_perceptron_is_rs_stable_below_capacity_and_marginal_at_it():
    """Gardner (1988), margin κ = 0: RS is exact for α < α_c = 2; as q → 1 the replicon → α_c · ½ = 1."""
    values = []
    for alpha in (0.5, 1.0, 1.5, 1.9, 1.995):
        solution = solve_rs(alpha, SphericalMeasure(), VersionSpaceChannel(), (0.3, 0.0, 1.0), teacher=False)
        assert solution.converged
        values.append(solution.replicon)
    assert all(low < high for low, high in zip(values, values[1:])) and 0.95 < values[-1] < 1.0


def test_bayes_optimal_learning_is_rs_stable_on_the_nishimori_line():
    """Teacher–student Ising perceptron, version-space Gibbs learning = the posterior: q = r and RS is stable on the
    equilibrium branch up to Györgyi's transition α = 1.245 (the unstable middle solution of the coexistence window
    is not a state of the measure and is not tested)."""
    init, values = (0.3, 0.3, 1.0), []
    for alpha in (0.3, 0.6, 0.9, 1.2):
        solution = solve_rs(alpha, IsingMeasure(), VersionSpaceChannel(), init)
        assert solution.converged and solution.q == pytest.approx(solution.r, abs=1e-8)
        assert solution.as_row()["rs_stable"]
        init = (solution.q, solution.r, 1.0)
        values.append(solution.replicon)
    assert all(low < high < 1.0 for low, high in zip(values, values[1:]))


@pytest.mark.slow
def test_the_franz_parisi_replicon_at_zero_prior_strength_is_the_task1_replicon():
    """γ = 0: the reference no longer enters, task 2 is task 1 at α₂ (a different single-site grid, the same λ_R)."""
    reference = solve_task1(1.0, beta=20.0)
    task2 = Task2Problem(reference, r0=0.5, gamma=0.0, beta2=20.0).solve(1.3, init=LOW_INIT)
    task1 = solve_task1(1.3, beta=20.0)
    assert task2.converged and task2.eps_g2 == pytest.approx(task1.eps_g, abs=1e-7)
    assert task2.replicon == pytest.approx(task1.replicon, rel=1e-5) and task2.replicon > 1.0
