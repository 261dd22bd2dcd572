"""The domains of the theory's integrals follow their integrands: checks against computations that share
neither the grids nor the domains (adaptive quadrature on the infinite line, closed forms), convergence when the
domain AND the node count grow, and the corrected task-1 solution."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.optimize
import torch
from scipy.special import log_ndtr, ndtr

from mean_field_theory import quadrature
from mean_field_theory.channels import VariationalChannel, energy_gradient
from mean_field_theory.franz_parisi import Task2Problem
from mean_field_theory.site_measures import FlatMeasure, site_averages
from mean_field_theory.task1 import HIGH_INIT, solve_task1, sweep_task1

OMEGAS = (-200.0, -60.0, -30.0, -10.0, -5.0, -3.0, -1.0, -0.3, 0.0, 0.3, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)


def psi_by_adaptive_quadrature(omega: float, q: float, q_star: float, beta: float) -> float:
    """ψ(ω) = ln ∫Dx Φ^β((ω + √(q⋆−q) x)/√(1−q⋆)) with scipy.integrate.quad on (−∞, ∞): the integrand is divided by
    its maximum (found by scipy's scalar minimiser), and the line is split there and at the Φ^β wall."""
    sqrt_v, sqrt_e = math.sqrt(q_star - q), math.sqrt(1.0 - q_star)
    exponent = lambda x: -0.5 * x * x + beta * log_ndtr((omega + sqrt_v * x) / sqrt_e)
    peak = scipy.optimize.minimize_scalar(lambda x: -exponent(x), bracket=(-1.0, 1.0), tol=1e-12).x
    top = exponent(peak)
    wall = -omega / sqrt_v
    cuts = sorted({peak, wall, wall + 3.0 * sqrt_e / sqrt_v} if abs(wall - peak) < 50 else {peak})
    integrand = lambda x: math.exp(exponent(x) - top)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.integrate.IntegrationWarning)
        pieces = [(-np.inf, cuts[0]), *zip(cuts[:-1], cuts[1:]), (cuts[-1], np.inf)]
        total = sum(scipy.integrate.quad(integrand, a, b, epsabs=0, epsrel=1e-13, limit=500)[0] for a, b in pieces)
    return top - 0.5 * math.log(2 * math.pi) + math.log(total)


@pytest.mark.parametrize("q, q_star", [(0.849, 0.9118), (0.2, 0.5), (0.5, 0.99), (0.978, 0.9784), (0.01, 0.34),
                                  (0.3, 0.999), (0.1, 0.9999)])
@pytest.mark.parametrize("beta", [1.0, 20.0, 100.0])
def test_psi_matches_adaptive_quadrature_on_the_infinite_line(q, q_star, beta):
    """From very negative ω (the mass sits at x ≈ 10–1000, far outside any fixed window) to positive ω."""
    ours = VariationalChannel(beta).log_partition(torch.tensor(OMEGAS, dtype=torch.float64),
                                                   torch.tensor(q, dtype=torch.float64),
                                                   torch.tensor(q_star, dtype=torch.float64))
    for omega, value in zip(OMEGAS, ours.tolist()):
        reference = psi_by_adaptive_quadrature(omega, q, q_star, beta)
        assert abs(value - reference) <= 1e-10 * max(1.0, abs(reference)), (omega, value, reference)


def test_gaussian_rule_resolves_a_narrow_layer_away_from_the_bulk():
    """∫Dz Φ((z − c)/s) = Φ(−c/√(1 + s²)) exactly, for layers of width s = 1e-3 at c = 3 and at c = −11."""
    for center, width in ((3.0, 1e-3), (-11.0, 1e-3), (0.5, 1e-5)):
        z, log_w = quadrature.gaussian_sinh_nodes((center,), (width,), 161)
        value = float(torch.exp(log_w) @ torch.special.ndtr((z - center) / width))
        assert value == pytest.approx(ndtr(-center / math.sqrt(1 + width**2)), rel=1e-10, abs=1e-300)


@pytest.mark.parametrize("a, b", [(-3000.0, 2.0), (0.0, 5e3), (40.0, -2e5), (-50.0, 3e6), (2e4, 10.0)])
def test_single_site_integrals_at_large_fields_match_adaptive_quadrature(a, b):
    """ln ∫_{−1}^{1} e^{am² + bm} dm and ⟨m⟩ by scipy.quad in m (shifted by the maximum of the exponent), for the
    fields of the good branch at β = 100 (|b| up to 10⁶): the u-domain [−32, 32] must hold the boundary layer."""
    m_peak = min(max(b / (-2.0 * a), -1.0), 1.0) if a < 0 else (1.0 if b >= 0 else -1.0)
    top = a * m_peak**2 + b * m_peak
    weight = lambda m: math.exp(a * m * m + b * m - top)
    width = 1.0 / max(1.0, abs(2 * a * m_peak + b), math.sqrt(2 * abs(a)))
    points = sorted({max(-1.0, m_peak - 20 * width), m_peak, min(1.0, m_peak + 20 * width)})
    with warnings.catch_warnings():  # quad may flag roundoff at the requested 1e-13: its result is still 1e-15
        warnings.simplefilter("ignore", scipy.integrate.IntegrationWarning)
        z, first = (sum(scipy.integrate.quad(lambda m: m**power * weight(m), lo, hi, epsabs=0, epsrel=1e-13,
                                             limit=200)[0] for lo, hi in zip([-1.0, *points], [*points, 1.0]) if hi > lo)
                    for power in (0, 1))
    log_z, mean, _, _ = FlatMeasure(0.0).site(a, torch.tensor([b], dtype=torch.float64))
    assert float(log_z) == pytest.approx(top + math.log(z), rel=1e-12, abs=1e-10)
    assert float(mean) == pytest.approx(first / z, abs=1e-11)


@pytest.fixture(scope="module")
def poor_branch():
    """Poor-branch (or unique) solutions at β = 20 for α = 1.0 … 1.8 (upward continuation)."""
    rows = sweep_task1([1.0, 1.2, 1.4, 1.6, 1.8])
    return [row for row in rows if row["branch"] in ("poor", "unique") and row["r"] < 0.85]


def refinement_change(function):
    """max |f(default rule) − f(rule with 2× the nodes on a 1.5× larger domain)| (objects built inside)."""
    coarse = np.array(function())
    with quadrature.refined(nodes=2.0, domain=1.5):
        fine = np.array(function())
    return float(np.max(np.abs(coarse - fine)))


def test_energy_gradient_is_converged_in_domain_and_nodes_on_the_poor_branch(poor_branch):
    assert [row["alpha"] for row in poor_branch] == [1.0, 1.2, 1.4, 1.6, 1.8]
    for row in poor_branch:
        change = refinement_change(lambda: energy_gradient(VariationalChannel(20.0), row["q"], row["r"], row["q_star"]))
        assert change < 1e-9, (row["alpha"], change)
        change = refinement_change(lambda: [getattr(site_averages(FlatMeasure(0.0), row["q_hat"], row["r_hat"],
                                                                  row["q_star_hat"]), key)
                                            for key in ("log_z", "mean", "mean_sq", "second", "sign")])
        assert change < 1e-9, (row["alpha"], change)


def test_franz_parisi_point_is_converged_in_domain_and_nodes():
    """γ = 0.1, r₀ = −½, α₂ = 1 (small teacher overlaps: the ω the old window cut off)."""
    reference = solve_task1(2.0, init=HIGH_INIT)
    solution = Task2Problem(reference, r0=-0.5, gamma=0.1).solve(1.0)
    assert solution.converged
    change = refinement_change(lambda: energy_gradient(VariationalChannel(20.0), solution.q, solution.r,
                                                       solution.q_star))
    assert change < 1e-9
    a = solution.q_star_hat - solution.q_hat / 2

    def site():
        averages = Task2Problem(reference, r0=-0.5, gamma=0.1).measure.averages(solution.q_hat, solution.r_hat, a)
        return [averages.log_z, averages.mean, averages.mean_sq, averages.second, averages.sign,
                averages.extras["p_teachers"][0]]

    assert refinement_change(site) < 1e-9


def test_corrected_task1_solution_at_alpha_1():
    """β = 20, α = 1 on the untruncated line (two independent evaluations agree; the [−9, 9] window gave
    q = 0.850109, r = 0.606542, q⋆ = 0.911860)."""
    solution = solve_task1(1.0)
    assert solution.converged
    assert (solution.q, solution.r, solution.q_star) == pytest.approx((0.849057, 0.605352, 0.911751), abs=2e-6)
    assert solution.eps_g == pytest.approx(0.282758, abs=2e-6)
