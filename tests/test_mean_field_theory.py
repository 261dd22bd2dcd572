"""Task-1 replica theory checked against independent computations (docs/theory.md §3, §7)."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.integrate
from scipy.special import dawsn, erf, log_ndtr

from harness.paths import REPO_ROOT
from mean_field_theory import classical_perceptron as classical
from mean_field_theory import rs_solver
from mean_field_theory.channels import VariationalChannel, VersionSpaceChannel, energy_gradient
from mean_field_theory.quadrature import gaussian_sinh_nodes
from mean_field_theory.rs_solver import RSProblem, iteration_is_stable, solve_rs
from mean_field_theory.site_measures import FlatMeasure, IsingMeasure, site_averages
from mean_field_theory.task1 import solve_task1, sweep_task1

import torch

RNG = np.random.default_rng(12345)


# ----------------------------------------------------------------------------- energy term
def code_form_energy(q, r, q_star, beta, n=4001):
    """G_E in the original code's form 2∫Dz H(rz/√(q−r²)) ln ∫Dx H^β(g) on dense uniform grids (numpy)."""
    z = np.linspace(-9, 9, n)
    dz = z[1] - z[0]
    gauss = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    g = (math.sqrt(q) * z[:, None] + math.sqrt(q_star - q) * z[None, :]) / math.sqrt(1 - q_star)
    log_inner = np.log(dz) + np.logaddexp.reduce(np.log(gauss)[None, :] + beta * log_ndtr(-g), axis=1)
    teacher = np.exp(log_ndtr(-r * z / math.sqrt(q - r**2)))  # H(a) = Φ(−a)
    return 2.0 * np.sum(gauss * teacher * log_inner) * dz


@pytest.mark.parametrize("point", [(0.5, 0.45, 0.7, 20.0), (0.3, 0.2, 0.6, 5.0), (0.98767, 0.99301, 0.98801, 20.0)])
def test_energy_equals_code_form_on_dense_grids(point):
    """Our sinh-mapped quadrature of the physical form equals the code's H(+·) form (symmetry z,x → −z,−x)."""
    q, r, q_star, beta = point
    ours = energy_gradient(VariationalChannel(beta), q, r, q_star)[0]
    assert ours == pytest.approx(code_form_energy(q, r, q_star, beta), rel=1e-7, abs=1e-9)


def test_energy_gradient_matches_spec_formulas_by_monte_carlo():
    """Autograd of the quadrature vs the analytic derivative formulas of docs/theory.md eq. 14 (the original
    `partial_E`), evaluated independently: Monte Carlo over z, dense trapezoid over x."""
    q, r, q_star, beta, n_z = 0.5, 0.45, 0.7, 20.0, 20000
    s, e = math.sqrt(q - r**2), math.sqrt(1 - q_star)
    z = RNG.standard_normal(n_z)[:, None]
    x = np.linspace(-9, 9, 1201)[None, :]
    log_wx = np.log(x[0, 1] - x[0, 0]) - 0.5 * x**2 - 0.5 * math.log(2 * math.pi)
    g = (math.sqrt(q) * z + math.sqrt(q_star - q) * x) / e
    log_h = log_ndtr(-g)  # ln H(g)
    log_d = np.logaddexp.reduce(log_wx + beta * log_h, axis=1, keepdims=True)  # ln D(z)
    posterior = np.exp(log_wx + beta * log_h - log_d)  # H^β(g) Dx / D
    ratio = -np.exp(-0.5 * g**2 - 0.5 * math.log(2 * math.pi) - log_h)  # H'(g)/H(g)
    a = r * z / s
    h_a, h_prime_a = np.exp(log_ndtr(-a)), -np.exp(-0.5 * a**2) / math.sqrt(2 * math.pi)
    samples = {
        "r": 2 * h_prime_a * z * (1 / s + r**2 / s**3) * log_d,
        "q": 2 * (h_prime_a * (-r * z / (2 * s**3)) * log_d + h_a * np.sum(
            posterior * beta * ratio / (2 * e) * (z / math.sqrt(q) - x / math.sqrt(q_star - q)), axis=1, keepdims=True)),
        "q_star": 2 * h_a * np.sum(posterior * beta * ratio * (g / (2 * e**2) + x / (2 * math.sqrt(q_star - q) * e)),
                              axis=1, keepdims=True),
    }
    _, d_q, d_r, d_Q = energy_gradient(VariationalChannel(beta), q, r, q_star)
    for name, ours in (("q", d_q), ("r", d_r), ("q_star", d_Q)):
        mean, stderr = samples[name].mean(), samples[name].std() / math.sqrt(n_z)
        assert abs(ours - mean) < 4 * stderr, f"∂G_E/∂{name}: quadrature {ours}, MC {mean} ± {stderr}"


def test_energy_gradient_of_the_hard_point_is_grid_converged():
    """Good branch at α = 2 (β = 20), (q, r, q⋆) = (0.98767, 0.99301, 0.98801), q̂ = −4 ∂G_E/∂q = 1365.0."""
    _, d_q, _, _ = energy_gradient(VariationalChannel(20.0), 0.98767, 0.99301, 0.98801)
    assert -4 * d_q == pytest.approx(1365.0, abs=0.1)


# ----------------------------------------------------------------------------- single-site problem
def closed_form_log_z(a, b):
    """ln ∫_{−1}^{1} exp(a m² + b m) dm: Dawson function for a > 0, error functions for a < 0."""
    if a > 0:
        root = math.sqrt(a)
        return math.log((math.exp(a + b) * dawsn(root + b / (2 * root))
                         - math.exp(a - b) * dawsn(-root + b / (2 * root))) / root)
    center, root = b / (-2 * a), math.sqrt(-a)
    return b * b / (-4 * a) + math.log(0.5 * math.sqrt(math.pi) / root
                                      * (erf(root * (1 - center)) + erf(root * (1 + center))))


@pytest.mark.parametrize("a", [-400.0, -40.0, -2.5, 0.7, 6.0, 300.0])
@pytest.mark.parametrize("b", [-0.8, 0.3, 9.0])
def test_flat_measure_matches_closed_form(a, b):
    log_z, mean, second, _ = FlatMeasure(0.0).site(a, torch.tensor([b], dtype=torch.float64))
    step = 1e-5
    d_b = (closed_form_log_z(a, b + step) - closed_form_log_z(a, b - step)) / (2 * step)
    d_a = (closed_form_log_z(a + step, b) - closed_form_log_z(a - step, b)) / (2 * step)
    assert float(log_z) == pytest.approx(closed_form_log_z(a, b), rel=1e-11, abs=1e-12)
    assert float(mean) == pytest.approx(d_b, abs=1e-8)  # ⟨m⟩ = ∂_b ln Z
    assert float(second) == pytest.approx(d_a, abs=1e-8)  # ⟨m²⟩ = ∂_a ln Z


@pytest.mark.parametrize("kappa", [0.0, 3.0])
def test_site_averages_match_monte_carlo(kappa):
    """q, r, q⋆, p from quadrature vs self-normalised Monte Carlo (uniform m samples), 10 replicas."""
    q_hat, r_hat, q_star_hat = 4.0, 1.5, 2.5
    ours = site_averages(FlatMeasure(kappa), q_hat, r_hat, q_star_hat)
    estimates = []
    for _ in range(10):
        z = RNG.standard_normal((4000, 1))
        m = RNG.uniform(-1, 1, (1, 2000))
        entropy = -(1 + m) / 2 * np.log((1 + m) / 2) - (1 - m) / 2 * np.log((1 - m) / 2)
        log_w = (q_star_hat - q_hat / 2) * m**2 + (math.sqrt(q_hat) * z + r_hat) * m + kappa * entropy
        w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        mean = (w * m).sum(1)
        estimates.append([np.mean(mean**2), np.mean(mean), np.mean((w * m**2).sum(1)), np.mean((w * np.sign(m)).sum(1))])
    estimates = np.array(estimates)
    center, stderr = estimates.mean(0), estimates.std(0, ddof=1) / math.sqrt(len(estimates))
    for value, mc, err in zip((ours.mean_sq, ours.mean, ours.second, ours.sign), center, stderr):
        assert abs(value - mc) < 4 * err + 2e-4  # + small bias of the self-normalised estimator


def test_stein_identity():
    """E_z⟨−m²/2 + z m/(2√q̂)⟩ = −½ E_z⟨m⟩² (the original code's q estimator equals ours)."""
    q_hat, r_hat, q_star_hat = 37.0, 4.0, 20.0
    z, log_w = gaussian_sinh_nodes((-r_hat / math.sqrt(q_hat),), (0.5 / math.sqrt(q_hat),), 161)
    _, mean, second, _ = FlatMeasure(0.0).site(q_star_hat - q_hat / 2, math.sqrt(q_hat) * z + r_hat)
    weights = torch.exp(log_w)
    code_form = float(weights @ (-second / 2 + z * mean / (2 * math.sqrt(q_hat))))
    assert code_form == pytest.approx(-0.5 * float(weights @ mean**2), abs=1e-12)


# ----------------------------------------------------------------------------- the saddle point
def test_small_alpha_limit():
    """α → 0: flat measure on [−1, 1], so q = r = p₁ = 0, q⋆ = 1/3, ε_g = 1/2."""
    solution = solve_task1(1e-5)
    assert solution.converged
    assert solution.q_star == pytest.approx(1 / 3, abs=1e-3)
    assert solution.eps_g == pytest.approx(0.5, abs=2e-3)
    assert solution.q < 1e-3 and abs(solution.r) < 1e-3


def test_small_alpha_limit_with_uniform_prior():
    """With κ S(m) (appendix, κ₁ = β) the α → 0 self-overlap is ∫m² e^{κS}dm / ∫e^{κS}dm."""
    kappa = 100.0
    entropy = lambda m: -(1 + m) / 2 * math.log((1 + m) / 2) - (1 - m) / 2 * math.log((1 - m) / 2)
    weight = lambda m: math.exp(kappa * (entropy(m) - math.log(2)))
    exact = scipy.integrate.quad(lambda m: m * m * weight(m), -1, 1, points=[0])[0] / \
        scipy.integrate.quad(weight, -1, 1, points=[0])[0]
    solution = solve_task1(1e-6, beta=100.0, kappa=kappa)
    assert solution.converged and solution.q_star == pytest.approx(exact, rel=1e-3)


def test_sweep_branches_and_order_parameter_bounds():
    rows = sweep_task1([0.2, 0.9, 1.55, 2.0])
    assert all(row["converged"] for row in rows)
    for row in rows:
        assert row["r"] ** 2 <= row["q"] <= row["q_star"] <= 1.0
        assert row["eps_g"] == pytest.approx(math.acos(row["p1"]) / math.pi)
    at_155 = {row["branch"]: row for row in rows if row["alpha"] == 1.55}
    assert set(at_155) == {"poor", "good"}  # β = 20: two RS solutions coexist (docs/theory.md §4)
    assert at_155["good"]["eps_g"] < 0.05 < 0.15 < at_155["poor"]["eps_g"]
    assert at_155["poor"]["thermodynamic"] != at_155["good"]["thermodynamic"]
    good_2 = next(row for row in rows if row["alpha"] == 2.0)  # the original's Fig. 2a values at α = 2
    assert (good_2["q"], good_2["r"], good_2["q_star"]) == pytest.approx((0.9782, 0.9890, 0.9784), abs=1e-4)
    eps = [row["eps_g"] for row in rows if row["branch"] in ("unique", "good")]
    assert eps == sorted(eps, reverse=True)


@pytest.mark.parametrize("measure, channel, init", [
    (FlatMeasure(0.0), VariationalChannel(20.0), (0.6, 0.5, 0.75)),
    (IsingMeasure(), VersionSpaceChannel(), (0.5, 0.5, 1.0))])
def test_free_entropy_derivative_is_the_energy_term(measure, channel, init):
    """Envelope theorem: dΦ/dα = G_E at the saddle point; checks the free-entropy expression used to pick
    the thermodynamic branch."""
    alpha, step = 0.8, 1e-4
    phi = [solve_rs(alpha + sign * step, measure, channel, init).free_entropy for sign in (-1, 1)]
    solution = solve_rs(alpha, measure, channel, init)
    g_e = energy_gradient(channel, solution.q, solution.r, solution.q_star)[0]
    assert (phi[1] - phi[0]) / (2 * step) == pytest.approx(g_e, rel=1e-6)


def test_fixed_self_overlap_reproduces_the_free_solution():
    free = solve_task1(1.0)
    fixed = solve_task1(1.0, q_star=free.q_star, init=(0.5, 0.4, free.q_star))
    assert fixed.converged
    assert (fixed.q, fixed.r, fixed.q_star_hat) == pytest.approx((free.q, free.r, free.q_star_hat), rel=1e-7)


def test_a_solve_cut_short_is_reported_not_hidden():
    """Two evaluations of the map from the α → 0 start cannot reach 1e-10 at α = 0.5 (residual ~0.3)."""
    solution = solve_task1(0.5, max_evaluations=2)
    assert not solution.converged and solution.iterations == 2 and solution.residual > 1e-3


@pytest.mark.parametrize("kwargs", [{"alpha": -1.0}, {"alpha": 1.0, "beta": 0.0}, {"alpha": 1.0, "kappa": -1.0}])
def test_invalid_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        solve_task1(**kwargs)


def test_script_reports_non_convergence_with_exit_code_3(tmp_path):
    result = subprocess.run([sys.executable, "single_layer/fig2a_order_parameters.py", "--alphas", "0.5",
                             "--max_evaluations", "2", "--out_dir", str(tmp_path)], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 3 and "did not converge" in result.stderr


# ----------------------------------------------------------------------------- classical results, same code path
def test_binary_teacher_student_is_on_the_nishimori_line_and_matches_reduced_equations():
    solution = solve_rs(1.0, IsingMeasure(), VersionSpaceChannel(), (0.3, 0.3, 1.0))
    assert solution.q == pytest.approx(solution.r, abs=1e-9)
    assert solution.q_hat == pytest.approx(solution.r_hat, rel=1e-8)
    assert solution.q == pytest.approx(classical.nishimori_overlap(1.0), abs=1e-8)


def test_classical_literature_values():
    cfg = classical.Config(spinodal_tol=1e-3)
    transition, spinodal = classical.transition_and_spinodal(cfg)
    assert transition == pytest.approx(1.245, abs=1e-3)  # Györgyi 1990
    assert spinodal == pytest.approx(1.493, abs=3e-3)  # Sompolinsky, Tishby & Seung 1990
    assert classical.capacity(cfg) == pytest.approx(0.833, abs=1e-3)  # Krauth & Mézard 1989
    gibbs, bayes = classical.spherical_limits(cfg)
    assert gibbs == pytest.approx(0.625, abs=2e-3) and bayes == pytest.approx(0.442, abs=2e-3)


def test_middle_solution_of_the_coexistence_window_is_flagged_unstable():
    """At α = 1.55 (β = 20) Newton finds three RS solutions; the middle one (ε_g ≈ 0.10) is unstable under damped
    iteration and must never be reported as a branch."""
    problem = lambda: RSProblem(1.55, FlatMeasure(0.0), VariationalChannel(20.0))
    found = {}
    for init in [(0.96, 0.741, 0.98), (0.948, 0.971, 0.9496), (0.9236, 0.9221, 0.9296)]:
        newton = problem()
        y = rs_solver._newton(newton.residual, newton.to_coords(*init), 1e-10)
        solution = newton.solution(*newton.to_params(y))
        assert solution.residual < 1e-10
        found[round(solution.eps_g, 2)] = iteration_is_stable(problem(), solution)
    assert found == {0.23: True, 0.03: True, 0.1: False}
