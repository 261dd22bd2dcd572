"""One-step RSB of task 1 (mean_field_theory/one_step_rsb.py) against computations that do not share its code:
adaptive quadrature on the infinite line, exact identities of the ansatz (x = 1, q₁ = q₀), finite differences of
its free entropy, and the RS replicon as the growth rate of a small block splitting."""
import math

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import scipy.special
import torch

from mean_field_theory import one_step_rsb
from mean_field_theory.channels import VariationalChannel, energy_term as rs_energy_term
from mean_field_theory.quadrature import DTYPE
from mean_field_theory.site_measures import FlatMeasure
from mean_field_theory.task1 import solve_task1

POINT = (0.80, 0.90, 0.62, 0.905)  # (q₀, q₁, r, q⋆): blocks well split, near the β = 20 solutions
CONJUGATES = (60.0, 95.0, 8.0, 50.0)  # (q̂₀, q̂₁, r̂, q̂⋆): a bimodal single site (a = q̂⋆ − q̂₁/2 > 0)


def tensors(*values):
    return [torch.tensor(float(value), dtype=DTYPE) for value in values]


def site_by_adaptive_quadrature(q0_hat, q1_hat, r_hat, q_star_hat, x):
    """G_S, r, q₀, q₁, q⋆ with quad_vec on the infinite line for z₀ and z₁ and a 300-node Gauss–Legendre rule in m
    (κ₁ = 0; not the code's artanh-panel rule)."""
    m, weights = np.polynomial.legendre.leggauss(300)
    a, root0, spread = q_star_hat - q1_hat / 2, math.sqrt(q0_hat), math.sqrt(q1_hat - q0_hat)

    def site(b):  # ln Z, ⟨m⟩, ⟨m²⟩
        exponent = a * m**2 + b * m
        top = exponent.max()
        w = weights * np.exp(exponent - top)
        total = w.sum()
        return top + math.log(total), (w @ m) / total, (w @ m**2) / total

    def inner(z0):  # E_{z1}[Z^x (1, ⟨m⟩, ⟨m⟩², ⟨m²⟩, ln Z)] relative to a shift, and the shift
        b0 = root0 * z0 + r_hat
        shift = x * site(b0)[0]

        def integrand(z1):
            log_z, mean, second = site(b0 + spread * z1)
            weight = math.exp(x * log_z - shift - 0.5 * z1 * z1) / math.sqrt(2 * math.pi)
            return weight * np.array([1.0, mean, mean**2, second])
        values = scipy.integrate.quad_vec(integrand, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-11)[0]
        return shift, values

    def outer(z0):
        shift, (norm, mean, mean_sq, second) = inner(z0)
        gauss = math.exp(-0.5 * z0 * z0) / math.sqrt(2 * math.pi)
        return gauss * np.array([(shift + math.log(norm)) / x, mean / norm, (mean / norm) ** 2, mean_sq / norm,
                                 second / norm])
    return scipy.integrate.quad_vec(outer, -np.inf, np.inf, epsabs=1e-12, epsrel=1e-10)[0]


def test_site_averages_against_adaptive_quadrature():
    site = one_step_rsb.site_averages(FlatMeasure(0.0), *CONJUGATES, x=0.4)
    reference = site_by_adaptive_quadrature(*CONJUGATES, x=0.4)
    assert np.allclose([site.log_z, site.r, site.q0, site.q1, site.q_star], reference, rtol=1e-7, atol=1e-9)


def test_site_closed_forms_are_derivatives_of_the_free_entropy():
    """q⋆ = ∂G_S/∂q̂⋆, r = ∂G_S/∂r̂, q₁ = −2/(1−x) ∂G_S/∂q̂₁, q₀ = −2/x ∂G_S/∂q̂₀ and ∂G_S/∂x: central differences."""
    measure, x = FlatMeasure(0.0), 0.4
    site = one_step_rsb.site_averages(measure, *CONJUGATES, x)

    def g_s(index, step, new_x=x):
        shifted = list(CONJUGATES)
        shifted[index] += step
        return one_step_rsb.site_averages(measure, *shifted, new_x).log_z

    h = 1e-4
    slope = {index: (g_s(index, h) - g_s(index, -h)) / (2 * h) for index in range(4)}
    slope_x = (g_s(0, 0.0, x + h) - g_s(0, 0.0, x - h)) / (2 * h)
    assert slope[3] == pytest.approx(site.q_star, rel=1e-6)
    assert slope[2] == pytest.approx(site.r, rel=1e-6)
    assert -2 / (1 - x) * slope[1] == pytest.approx(site.q1, rel=1e-6)
    assert -2 / x * slope[0] == pytest.approx(site.q0, rel=1e-6)
    assert slope_x == pytest.approx(site.d_log_z_dx, rel=1e-5, abs=1e-8)


def test_energy_term_at_beta_one_against_adaptive_quadrature():
    """β = 1: ψ₁(ω) = ln Φ_N(ω/√(1 − q₁)) exactly, so G_E is a two-level integral that quad does on the line."""
    q0, q1, r, q_star, x = (*POINT, 0.4)
    value = float(one_step_rsb.energy_term(VariationalChannel(1.0), *tensors(q0, q1, r, q_star, x)))

    def inner(z0):  # (1/x) ln ∫Dz₁ Φ_N(·)^x, the exponent shifted by its maximum (found by a scalar search)
        omega0 = math.sqrt(q0) * z0
        exponent = lambda z1: x * scipy.special.log_ndtr((omega0 + math.sqrt(q1 - q0) * z1)
                                                         / math.sqrt(1 - q1)) - 0.5 * z1 * z1
        peak = -scipy.optimize.minimize_scalar(lambda z1: -exponent(z1)).fun
        integral = scipy.integrate.quad(lambda z1: math.exp(exponent(z1) - peak), -np.inf, np.inf,
                                        epsabs=1e-14, epsrel=1e-12)[0]
        return (peak + math.log(integral / math.sqrt(2 * math.pi))) / x

    def outer(z0):
        gauss = math.exp(-0.5 * z0 * z0) / math.sqrt(2 * math.pi)
        return 0.0 if gauss == 0.0 else 2 * scipy.special.ndtr(r * z0 / math.sqrt(q0 - r * r)) * inner(z0) * gauss
    reference = scipy.integrate.quad(outer, -np.inf, np.inf, epsabs=1e-12, epsrel=1e-10)[0]
    assert value == pytest.approx(reference, rel=1e-8)


def test_energy_term_at_x_one_is_the_rs_energy_at_q0():
    """x = 1: ∫Dz₁ e^{ψ₁(ω₀ + √(q₁−q₀) z₁)} composes two Gaussians, so G_E = G_E^RS(q₀, r, q⋆) (β = 20)."""
    q0, q1, r, q_star = POINT
    channel = VariationalChannel(20.0)
    value = float(one_step_rsb.energy_term(channel, *tensors(q0, q1, r, q_star, 1.0)))
    assert value == pytest.approx(float(rs_energy_term(channel, *tensors(q0, r, q_star))), rel=1e-9)


@pytest.mark.parametrize("beta, replicon", [(5.0, 0.185), (20.0, 2.59)])
def test_rs_limit_and_growth_of_a_small_splitting_is_the_replicon(beta, replicon):
    """At q₁ = q₀ = q_RS the 1RSB map is the RS map and Φ the RS free entropy; a splitting q₁ − q₀ = δ is mapped to
    λ_R δ, with λ_R the replicon of rs_solver (another formula, §3b): it dies out at β = 5 and grows at β = 20."""
    rs = solve_task1(1.0, beta)
    assert rs.replicon == pytest.approx(replicon, abs=0.01)
    problem, delta = one_step_rsb.RSB1Problem(1.0, beta, 0.5), 1e-7
    params = (rs.q - delta, rs.q, rs.r, rs.q_star)
    image = problem.step(*params)
    (q0, q1, r, q_star), (q0_hat, q1_hat, r_hat, q_star_hat) = image[0], image[1]
    assert (q1 - q0) / delta == pytest.approx(rs.replicon, rel=1e-3)
    assert (q1, r, q_star) == pytest.approx((rs.q, rs.r, rs.q_star), abs=1e-6)
    assert (q1_hat, r_hat, q_star_hat) == pytest.approx((rs.q_hat, rs.r_hat, rs.q_star_hat), rel=1e-5)
    solution = problem.solution(params, image, False, 0.0)
    assert solution.free_entropy == pytest.approx(rs.free_entropy, abs=1e-7)
    assert solution.replicon == pytest.approx(rs.replicon, rel=1e-5)


def test_the_committed_beta_20_solution_is_a_stationary_point():
    """figures/rsb_task1.csv at α = 1 (x = 0.3637): solved again from a start 10⁻³ away, it is a converged fixed point
    (a second evaluation of the map returns it), the blocks are split (q₀ < q₁ < q⋆), ∂Φ/∂x vanishes there and
    Φ^1RSB lies below Φ^RS (Φ is a minimum in x)."""
    x, committed = 0.36365290731101324, (0.7545195177519513, 0.8808218615225432, 0.618986611793934, 0.8906755147730384)
    start = tuple(value - 1e-3 for value in committed)
    solution = one_step_rsb.solve_fixed_x(1.0, 20.0, x, start)
    assert solution.converged
    assert (solution.q0, solution.q1, solution.r, solution.q_star) == pytest.approx(committed, abs=1e-7)
    image = one_step_rsb.RSB1Problem(1.0, 20.0, x).step(solution.q0, solution.q1, solution.r, solution.q_star)[0]
    assert image == pytest.approx((solution.q0, solution.q1, solution.r, solution.q_star), abs=1e-8)
    assert solution.r**2 < solution.q0 < solution.q1 - 0.1 < solution.q_star < 1
    assert abs(solution.dphi_dx) < 1e-4  # ∂²Φ/∂x² ≈ 0.5 here: x is right to ~2·10⁻⁴
    assert solution.free_entropy < solve_task1(1.0, 20.0).free_entropy
