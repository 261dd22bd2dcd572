"""The exact sampler of eq. 9 (mean_field_theory/gibbs_sampler.py) against computations it does not share: adaptive
numerical integration over the cube at N = 2 and 3 (tempering and HMC together must give the target marginals), the
RS solution where RS is stable (β = 5, λ_R ≈ 0.19), and its own reproducibility (same seed, same chain)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import special

from conftest import run_in_process
from harness.paths import REPO_ROOT
from mean_field_theory.gibbs_sampler import (Annealing, Measure, Restraint, Schedule, Walkers, anneal, diagnostics,
                                             integrated_time, mills_ratio_single, r_hat, sample, summary,
                                             task1_instances)
from mean_field_theory.task1 import solve_task1


def exact_averages(inputs, labels, teacher, beta, entropy_weight=0.0, nodes=12, panels=6, reference=None, gamma=0.0,
                   window=None):
    """E[r], E[q⋆] and E[A] of P(m) ∝ e^{βA(m)} on [−1, 1]^N (N = 2 or 3): a tensor-product composite Gauss–Legendre
    rule (`panels` panels of `nodes` nodes per axis), vectorised; the test checks it against twice the nodes.  With
    a reference m′, A has −γ KL(m‖m′), the KL of two Ising distributions written with probabilities (1 ± m)/2; with a
    window (κ, c) the density has the factor exp(−κN(q⋆ − c)²/2)."""
    edges = np.linspace(-1.0, 1.0, panels + 1)
    base, weights = np.polynomial.legendre.leggauss(nodes)
    axis = np.concatenate([(high - low) / 2 * base + (high + low) / 2 for low, high in zip(edges[:-1], edges[1:])])
    axis_weights = np.concatenate([(high - low) / 2 * weights for low, high in zip(edges[:-1], edges[1:])])
    n = inputs.shape[1]
    m = np.stack(np.meshgrid(*[axis] * n, indexing="ij"), axis=-1).reshape(-1, n)
    weight = np.prod(np.stack(np.meshgrid(*[axis_weights] * n, indexing="ij"), axis=-1).reshape(-1, n), axis=-1)
    action = special.log_ndtr(m @ (inputs * labels[:, None]).T / np.sqrt(np.sum(1 - m**2, axis=-1, keepdims=True)))
    action = action.sum(-1)
    if entropy_weight:
        plus, minus = (1 + m) / 2, (1 - m) / 2
        action = action - entropy_weight * np.sum(special.xlogy(plus, plus) + special.xlogy(minus, minus), axis=-1)
    if gamma:
        plus, minus = (1 + m) / 2, (1 - m) / 2
        kl = special.xlogy(plus, plus) + special.xlogy(minus, minus) - plus * np.log((1 + reference) / 2) \
            - minus * np.log((1 - reference) / 2)
        action = action - gamma * kl.sum(-1)
    log_density = beta * action
    if window is not None:
        log_density = log_density - 0.5 * window[0] * n * (np.mean(m**2, axis=-1) - window[1]) ** 2
    density = weight * np.exp(log_density - log_density.max())
    log_partition = math.log(density.sum()) + log_density.max()  # ln ∫ e^{βA} dm over the cube
    density /= density.sum()
    return {"r": density @ (m @ teacher / n), "q_star": density @ np.mean(m**2, axis=-1), "action": density @ action,
            "log_partition": log_partition}


@pytest.mark.slow
@pytest.mark.parametrize("n, beta, entropy_weight, temperatures, gamma, centers, gradient_dtype",
                         [(2, 3.0, 0.0, 3, 0.0, None, torch.float32), (3, 2.0, 1.0, 1, 0.0, None, torch.float32),
                          (2, 2.5, 0.0, 2, 0.8, None, torch.float32), (2, 3.0, 0.0, 3, 0.0, (0.1, 0.3, 0.5), torch.float32),
                          (3, 3.0, 0.0, 3, 0.0, None, torch.bfloat16)])
def test_the_chains_sample_the_exact_measure_of_a_tiny_instance(n, beta, entropy_weight, temperatures, gamma, centers,
                                                                gradient_dtype):
    """Many independent replicas of one instance; the sampled means agree with the integrals over the cube within 4
    standard errors (from the spread of the replicas' own means: independent chains).  The third case is a second
    task's measure: a KL term to a reference m′ (gibbs_task2.py); the fourth has umbrella windows in q⋆, one per rung,
    exchanged together with the temperatures (gibbs_valleys.py): its target rung is the windowed measure.  The last
    moves the chains with a gradient whose products over the data are in bfloat16: the Metropolis test keeps the
    chain exact."""
    generator = np.random.default_rng(n)
    inputs = generator.choice([-1.0, 1.0], size=(n, n))
    teacher = generator.choice([-1.0, 1.0], size=n)
    labels = np.where(inputs @ teacher >= 0, 1.0, -1.0)
    reference = np.array([0.6, -0.3, 0.1][:n])
    measure = Measure(torch.tensor(inputs)[None], torch.tensor(labels)[None], entropy_weight=entropy_weight,
                      reference=torch.tensor(reference)[None, None], gamma=gamma, gradient_dtype=gradient_dtype)
    window = None
    if centers is not None:
        measure = measure.restrained(Restraint(20.0, centers))
        window = (20.0, centers[-1])
    schedule = Schedule(sweeps=400, warmup=100, leapfrog=5, temperatures=temperatures, beta_min=1.0, replicas=256,
                        thin=1)
    run = sample(measure, torch.tensor(teacher)[None], beta, schedule, seed=3)
    exact = exact_averages(inputs, labels, teacher, beta, entropy_weight, reference=reference, gamma=gamma,
                           window=window)
    finer = exact_averages(inputs, labels, teacher, beta, entropy_weight, nodes=24, reference=reference, gamma=gamma,
                           window=window)
    assert all(abs(exact[name] - finer[name]) < 1e-6 for name in ("r", "q_star", "action"))  # the reference converged
    for name in ("r", "q_star", "action"):
        per_chain = getattr(run, name)[:, 0, :].mean(axis=0)
        error = per_chain.std(ddof=1) / math.sqrt(len(per_chain))
        assert abs(per_chain.mean() - exact[name]) < 4 * error + 1e-3, (name, per_chain.mean(), exact[name], error)


@pytest.mark.slow
def test_where_rs_is_stable_the_sampled_measure_is_the_rs_solution():
    """β = 5, α = 1 (λ_R ≈ 0.19): N = 150, 4 instances; agreement within 4 s.e. plus 0.01 for finite N."""
    teacher, measure = task1_instances(150, 1.0, 4, seed=0)
    run = sample(measure, teacher, 5.0, Schedule(sweeps=250, warmup=150, temperatures=1), seed=1)
    checks = diagnostics(run)
    assert checks["equilibrated"], checks["reason"]
    sampled, theory = summary(run), solve_task1(1.0, beta=5.0)
    for name in ("eps_g", "r", "q_star", "q"):
        assert abs(sampled[name] - getattr(theory, name)) < 4 * sampled[f"{name}_se"] + 0.01, name
    for name in ("eps_g", "r", "q_star"):  # the two starts have met: their means agree and make up the whole
        random, near = sampled[f"{name}_random_start"], sampled[f"{name}_teacher_start"]
        assert abs(random - near) < 0.02 and (random + near) / 2 == pytest.approx(sampled[name], abs=1e-12), name


def test_the_same_seed_gives_the_same_chain():
    teacher, measure = task1_instances(20, 1.0, 2, seed=0)
    schedule = Schedule(sweeps=20, warmup=10, temperatures=2, replicas=2)
    first, second = (sample(measure, teacher, 5.0, schedule, seed=7) for _ in range(2))
    assert np.array_equal(first.action, second.action) and np.array_equal(first.overlaps, second.overlaps)
    assert not np.array_equal(first.action, sample(measure, teacher, 5.0, schedule, seed=8).action)


def test_the_diagnostics_on_known_series():
    """τ_int of an AR(1) series is (1 + ρ)/(1 − ρ); R̂ is ≈ 1 for chains of one law and large for two laws."""
    generator = np.random.default_rng(0)
    rho, series = 0.8, np.zeros(200_000)
    noise = generator.normal(size=series.size)
    for index in range(1, series.size):
        series[index] = rho * series[index - 1] + noise[index]
    assert integrated_time(series) == pytest.approx((1 + rho) / (1 - rho), rel=0.1)
    same = generator.normal(size=(2000, 4))
    assert r_hat(same) < 1.01 and r_hat(same + np.array([0, 0, 3, 3])) > 1.5


@pytest.mark.slow
def test_population_annealing_gives_the_exact_measure_and_partition_function_of_a_tiny_instance():
    """Eight independent populations (one instance copied eight times) annealed from β = 1 to 3 at N = 3: their
    means of r, q⋆, A and their ln Z(3) − ln Z(1) agree with the integrals over the cube within 4 standard errors
    over the populations (plus 10⁻³ for the O(1/population) bias of ln Z)."""
    generator = np.random.default_rng(11)
    n, copies = 3, 8
    inputs = generator.choice([-1.0, 1.0], size=(n, n))
    teacher = generator.choice([-1.0, 1.0], size=n)
    labels = np.where(inputs @ teacher >= 0, 1.0, -1.0)
    measure = Measure(torch.tensor(inputs).expand(copies, -1, -1), torch.tensor(labels).expand(copies, -1))
    population = anneal(measure, torch.tensor(teacher).expand(copies, -1), 3.0,
                        Annealing(population=2000, steps=10, sweeps=4, equilibration=40, leapfrog=5, beta_min=1.0),
                        seed=2)
    exact = exact_averages(inputs, labels, teacher, 3.0)
    start = exact_averages(inputs, labels, teacher, 1.0)
    finer = exact_averages(inputs, labels, teacher, 3.0, nodes=24)
    assert all(abs(exact[name] - finer[name]) < 1e-6 for name in exact)  # the reference is converged
    estimates = {name: getattr(population, name).mean(axis=1) for name in ("r", "q_star", "action")}
    estimates["log_partition"] = population.log_partition
    exact["log_partition"] -= start["log_partition"]
    for name, values in estimates.items():
        error = values.std(ddof=1) / math.sqrt(copies)
        assert abs(values.mean() - exact[name]) < 4 * error + 1e-3, (name, values.mean(), exact[name], error)
    assert np.all(population.families > 1) and 0.3 < population.acceptance < 1


def test_the_round_trips_of_a_known_walk():
    """Three rungs; configuration 0 goes hottest → coldest → hottest (one round trip, two half trips), the others
    reach one end only.  Rung 0 holds only configurations from the hot end (f = 1), the coldest rung none (f = 0)."""
    walkers = Walkers((1, 1, 3))
    walkers.record()
    for order in ([1, 0, 2], [0, 2, 1], [0, 2, 1], [1, 0, 2]):  # adjacent swaps: 0 goes rung 0 → 1 → 2 → 1 → 0
        walkers.move(torch.tensor([[order]]))
        walkers.record()
    assert walkers.at_rung.tolist() == [[[0, 1, 2]]]
    result = walkers.summary()
    assert result["round_trips"] == [[1.0]] and result["round_trips_min"] == 1.0
    assert result["flow_fraction"][0] == 1.0 and result["flow_fraction"][2] == 0.0


@pytest.mark.parametrize("options", [{"replicas": 3}, {"sweeps": 0}, {"beta_min": 0.0}, {"temperatures": 0}])
def test_a_bad_schedule_is_refused(options):
    with pytest.raises(ValueError):
        Schedule(**options)


@pytest.mark.parametrize("gradient_dtype, tolerance", [(torch.float32, 1e-5), (torch.bfloat16, 1e-2)])
def test_the_leapfrog_gradient_is_the_gradient_of_the_density(gradient_dtype, tolerance):
    """The written-out gradient (float32, its products over the data in float32 or bfloat16) against autograd of the
    float64 log density, with the entropy term, a task-2 KL reference and umbrella windows in q⋆, on a tempered batch
    of chains; bfloat16 rounds m and φ/Φ_N to 8 bits (relative 2⁻⁹) before the products."""
    generator = torch.Generator().manual_seed(5)
    instances, patterns, n = 2, 30, 40
    inputs = torch.randint(0, 2, (instances, patterns, n), generator=generator).double() * 2 - 1
    labels = torch.randint(0, 2, (instances, patterns), generator=generator).double() * 2 - 1
    reference = torch.tanh(torch.randn(instances, 3, n, generator=generator, dtype=torch.float64))
    measure = Measure(inputs, labels, entropy_weight=0.7, reference=reference, gamma=0.4,
                      restraint=Restraint(3.0, (0.2, 0.5, 0.8)), gradient_dtype=gradient_dtype)
    betas = torch.tensor([2.0, 5.0, 20.0], dtype=torch.float64)
    u = torch.randn(instances, 3, 3, n, generator=generator, dtype=torch.float64).requires_grad_(True)
    exact, = torch.autograd.grad(measure.log_density(u, betas)[0].sum(), u)
    written = measure.leapfrog_gradient(u.detach(), betas)
    assert torch.allclose(written, exact, rtol=tolerance, atol=tolerance * float(exact.abs().max()))
    if gradient_dtype == torch.bfloat16:  # and it is not the float32 gradient: the test can tell them apart
        assert not torch.allclose(written, exact, rtol=1e-5, atol=1e-5 * float(exact.abs().max()))


def test_the_float32_mills_ratio_against_scipy():
    """φ(t)/Φ_N(t) of the leapfrog gradient (float32: direct ratio and Laplace's continued fraction) against scipy's
    float64 log Φ_N on both sides of the switch at t = −6 and deep in both tails."""
    t = np.concatenate([np.linspace(-60.0, 10.0, 20001), -np.logspace(-3, 3, 500)])
    exact = np.exp(-0.5 * t**2 - 0.5 * math.log(2 * math.pi) - special.log_ndtr(t))
    computed = mills_ratio_single(torch.tensor(t, dtype=torch.float32)).double().numpy()
    assert np.all(np.isfinite(computed))
    assert np.max(np.abs(computed - exact) / exact) < 1e-5


def test_the_n_to_infinity_fit_recovers_a_known_limit_and_keeps_the_equilibration_verdict():
    """gibbs_vs_theory.extrapolate on rows that follow a + b/N exactly (a = 0.25, b = 3) with unequal s.e.: the fit
    returns a, and the s.e. of numpy's weighted polyfit (unscaled covariance); one unequilibrated N makes the limit
    unequilibrated; fewer than three N give no limit."""
    from mean_field_theory.gibbs_vs_theory import OBSERVABLES, extrapolate

    def rows(equilibrated_400=True, sizes=(100, 200, 400, 800)):
        return [{"beta": 20.0, "alpha": 1.0, "n": n, "source": "mcmc", "equilibrated": equilibrated_400 or n != 400,
                 **{name: 0.25 + 3.0 / n for name in OBSERVABLES},
                 **{f"{name}_se": 0.01 * (n / 100) ** -0.5 for name in OBSERVABLES}} for n in sizes]

    (limit,) = extrapolate(rows())
    sizes = np.array([100, 200, 400, 800])
    _, covariance = np.polyfit(1.0 / sizes, 0.25 + 3.0 / sizes, 1, w=1.0 / (0.01 * (sizes / 100) ** -0.5),
                               cov="unscaled")
    for name in OBSERVABLES:
        assert limit[name] == pytest.approx(0.25, abs=1e-10)
        assert limit[f"{name}_se"] == pytest.approx(math.sqrt(covariance[1, 1]), rel=1e-8)
    assert limit["equilibrated"] and not extrapolate(rows(equilibrated_400=False))[0]["equilibrated"]
    assert extrapolate(rows(sizes=(100, 200))) == []


def test_an_unknown_gradient_dtype_is_refused_before_computing(tmp_path, capsys):
    script = REPO_ROOT / "mean_field_theory" / "gibbs_vs_theory.py"
    assert run_in_process(script, "--gradient_dtype", "float16", "--out_dir", str(tmp_path)) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--gradient_dtype" in error[0] and not any(tmp_path.iterdir())


def test_the_size_fit_reports_chi2_and_widens_its_error_only_when_the_points_scatter():
    """gibbs_sampler.inverse_size_fit on points off a + b/N: χ² against numpy's weighted polyfit residuals, the s.e.
    against its unscaled covariance, and the Birge-scaled s.e. = s.e. · √(χ²/dof) only where χ²/dof > 1."""
    from mean_field_theory.gibbs_sampler import inverse_size_fit

    sizes = np.array([100, 200, 400, 800, 1600])
    errors = 0.01 * (sizes / 100) ** -0.5
    for scatter in (0.1, 3.0):  # points within their errors, then three times beyond them
        values = 0.25 + 3.0 / sizes + scatter * errors * np.array([1, -1, 1, -1, 1])
        fit = inverse_size_fit(sizes.tolist(), values.tolist(), errors.tolist())
        (slope, limit), residuals, *_ = np.polyfit(1.0 / sizes, values, 1, w=1.0 / errors, full=True)
        _, covariance = np.polyfit(1.0 / sizes, values, 1, w=1.0 / errors, cov="unscaled")
        assert fit["a"] == pytest.approx(limit, rel=1e-10) and fit["b"] == pytest.approx(slope, rel=1e-8)
        assert fit["chi2_per_dof"] == pytest.approx(residuals[0] / 3, rel=1e-8)
        assert fit["a_se"] == pytest.approx(math.sqrt(covariance[1, 1]), rel=1e-8)
        expected = fit["a_se"] * max(1.0, math.sqrt(fit["chi2_per_dof"]))
        assert fit["a_se_scaled"] == pytest.approx(expected, rel=1e-12)
        assert (fit["a_se_scaled"] > fit["a_se"]) == (scatter > 1)


def test_the_size_scaling_refuses_a_missing_or_repeated_source(tmp_path, capsys):
    script = REPO_ROOT / "mean_field_theory" / "gibbs_size_scaling.py"
    for sources in (["no_such_run.csv"], ["gibbs_vs_theory.csv", "gibbs_vs_theory.csv"]):
        assert run_in_process(script, "--sources", *sources, "--out_dir", str(tmp_path)) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and "--sources" in error[0] and not any(tmp_path.iterdir())


def test_the_size_scaling_verdict_against_sgd():
    """gibbs_size_scaling.fits on points that follow a + b/N exactly (a = 0.22): SGD trials whose mean is 0.22 agree
    with the fit and with a theory value 0.22, not with one 0.25 (the one criterion), and trials far from 0.22 agree
    with the fit only within 2 combined s.e."""
    from mean_field_theory.gibbs_size_scaling import fits

    points = [{"beta": 20.0, "alpha": 1.3, "n": n, "equilibrated": True,
               **{name: 0.22 + 1.0 / n for name in ("eps_g", "q_star", "q", "r")},
               **{f"{name}_se": 0.002 for name in ("eps_g", "q_star", "q", "r")}} for n in (100, 200, 400, 800)]
    spread = [0.005 * k for k in (-2, -1, 0, 1, 2)] * 4  # mean 0, s.d. 0.0073, s.e. 0.0016

    def verdict(sgd_mean):
        theory = {(20.0, 1.3): {"rs": {"eps_g": 0.25, "rs_stable": False}, "1rsb": {"eps_g": 0.22},
                                "sgd": [sgd_mean + value for value in spread]}}
        (row,) = [row for row in fits(points, theory, 200) if row["source"] == "fit_all" and row["observable"] == "eps_g"]
        return row

    row = verdict(0.22)
    assert row["a"] == pytest.approx(0.22, abs=1e-9) and row["chi2_per_dof"] == pytest.approx(0.0, abs=1e-12)
    assert row["sgd_agrees_1rsb"] and row["sgd_agrees_mcmc"] and not row["sgd_agrees_rs"]
    combined = math.hypot(row["a_se_scaled"], row["sgd_se"])
    assert verdict(0.22 + 1.9 * combined)["sgd_agrees_mcmc"] and not verdict(0.22 + 2.1 * combined)["sgd_agrees_mcmc"]
