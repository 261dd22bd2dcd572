"""Benchmark: deterministic quadrature (this repository) vs the original Monte-Carlo evaluation of the same
task-1 saddle-point equations (docs/original_code.md).

Measured side by side in one run, on the CPU:
1. one evaluation of the saddle-point map (∂G_E/∂(q, r, q⋆) and the single-site averages) by our quadrature,
   and its change when every rule gets 4× the nodes on a 1.5× larger domain;
2. one evaluation of the same quantities by Monte Carlo at the original sample sizes (energy: 10⁴ z × 2·10⁴ x,
   single site: 10⁴ z × 10⁴ uniform m; the original averages 20 such evaluations per iteration), its
   statistical error (spread over repeats), and the error Monte Carlo would reach in the time of one
   quadrature evaluation (1/√n scaling);
3. the full Fig. 2a sweep (200 α, both branches, tol 1e-10) with our solver, wall time.
Outputs: figures/bench_task1_solver.{csv,json,png,pdf}.  Command: python benchmarks/bench_task1_solver.py
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch

from benchmarks.common import benchmark_main, relative_error_bars
from harness.command_line import run
from harness.config import BaseConfig, bounded
from harness.errors import require
from mean_field_theory import channels, monte_carlo, rs_solver, site_measures
from mean_field_theory.quadrature import refined as refined_rules
from mean_field_theory.task1 import sweep_task1

STEM = "bench_task1_solver"


# ---- hyperparameters
@dataclasses.dataclass
class Config(BaseConfig):
    alpha: float = bounded(2.0, above=0)  # α of the benchmark point (hardest: narrow layers)
    beta: float = bounded(20.0, above=0)  # inverse temperature β
    order_params: tuple[float, ...] = (0.98767, 0.99301, 0.98801)  # (q, r, q⋆) near the good branch at α = 2, β = 20
    mc_z: int = bounded(10000, at_least=10)  # original Monte-Carlo sample size in z
    mc_x: int = bounded(20000, at_least=10)  # original Monte-Carlo sample size in x (energy term)
    mc_m: int = bounded(10000, at_least=10)  # original Monte-Carlo sample size in m (single site)
    mc_repeats: int = bounded(4, at_least=2)  # independent Monte-Carlo evaluations to measure the spread
    sweep_alphas: tuple[float, ...] = tuple(round(0.01 * k, 2) for k in range(1, 201))  # timed sweep: Fig. 2a's grid

    def validate(self):
        super().validate()
        require(len(self.order_params) == 3, "--order_params takes q r q_star")


QUICK = {"mc_z": 400, "mc_x": 800, "mc_m": 400, "mc_repeats": 2, "sweep_alphas": (0.5, 1.0)}


def quadrature_evaluation(cfg: Config):
    """One saddle-point map evaluation: (∂_q, ∂_r, ∂_q⋆ of G_E) then the single-site averages."""
    channel, measure = channels.VariationalChannel(cfg.beta), site_measures.FlatMeasure(0.0)
    q, r, q_star = cfg.order_params
    with rs_solver.single_thread():
        _, d_q, d_r, d_q_star = channels.energy_gradient(channel, q, r, q_star)
        hats = (-2 * cfg.alpha * d_q, cfg.alpha * d_r, cfg.alpha * d_q_star)
        site = site_measures.site_averages(measure, *hats)
    return np.array([*hats, site.mean_sq, site.mean, site.second])


def monte_carlo_evaluation(cfg: Config, hats, generator: torch.Generator, chunk: int = 250):
    """The original estimators (docs/original_code.md): ln of the sample mean of H^β over x, derivative formulas
    of docs/theory.md eq. 14, uniform m samples with weights exp(𝓗₁ − max) normalised per z."""
    d_q, d_r, d_q_star = monte_carlo.energy_gradient(*cfg.order_params, cfg.beta, cfg.mc_z, cfg.mc_x, generator, chunk)
    q_hat, r_hat, q_star_hat = hats  # the single-site part is evaluated at the exact conjugates
    m = 2 * torch.rand(1, cfg.mc_m, generator=generator, dtype=torch.float64) - 1
    site = torch.zeros(3, dtype=torch.float64)
    for start in range(0, cfg.mc_z, chunk):
        z = torch.randn(min(chunk, cfg.mc_z - start), 1, generator=generator, dtype=torch.float64)
        exponent = (q_star_hat - q_hat / 2) * m**2 + (math.sqrt(q_hat) * z + r_hat) * m
        weights = torch.softmax(exponent, dim=1)
        mean = (weights * m).sum(1)
        site += torch.stack([(mean**2).sum(), mean.sum(), (weights * m**2).sum(1).sum()])
    return np.array([-2 * cfg.alpha * d_q, cfg.alpha * d_r, cfg.alpha * d_q_star, *(site / cfg.mc_z).tolist()])


def measure(cfg: Config) -> tuple[list[dict], dict]:
    quadrature_evaluation(cfg)  # warm-up
    started = time.perf_counter()
    exact = quadrature_evaluation(cfg)
    t_quad = time.perf_counter() - started
    with refined_rules(nodes=4.0, domain=1.5):  # every rule: 4× the nodes on a 1.5× larger domain
        refined = quadrature_evaluation(cfg)
    generator = torch.Generator().manual_seed(cfg.seed)
    estimates, started = [], time.perf_counter()
    for _ in range(cfg.mc_repeats):
        estimates.append(monte_carlo_evaluation(cfg, exact[:3], generator))
    t_mc = (time.perf_counter() - started) / cfg.mc_repeats
    estimates = np.array(estimates)
    names = ["q_hat", "r_hat", "q_star_hat", "q", "r", "q_star"]
    spread = estimates.std(0, ddof=1)
    rows = [{"quantity": name, "quadrature": exact[i], "quadrature_error_vs_refined": abs(exact[i] - refined[i]),
             "mc_mean": estimates[:, i].mean(), "mc_std_one_evaluation": spread[i],
             "mc_bias": estimates[:, i].mean() - exact[i],
             "mc_std_at_quadrature_time": spread[i] * math.sqrt(t_mc / t_quad)} for i, name in enumerate(names)]
    started = time.perf_counter()
    sweep = sweep_task1(cfg.sweep_alphas, beta=cfg.beta)
    t_sweep = time.perf_counter() - started
    summary = {"seconds_per_quadrature_evaluation": t_quad, "seconds_per_mc_evaluation_original_sizes": t_mc,
               "mc_over_quadrature_time_ratio": t_mc / t_quad,
               "original_iteration_seconds_20_mc_evaluations": 20 * t_mc,
               "sweep_seconds": t_sweep, "sweep_points": len(cfg.sweep_alphas), "sweep_rows": len(sweep),
               "sweep_map_evaluations": int(sum(row["iterations"] for row in sweep)),
               "sweep_all_converged": all(row["converged"] for row in sweep),
               "torch_threads_quadrature": 1, "torch_threads_mc": torch.get_num_threads()}
    return rows, summary


def plot(rows):
    return relative_error_bars(rows, {"quadrature_error_vs_refined": "quadrature (vs 4× nodes, 1.5× domain)",
                                      "mc_std_one_evaluation": "MC, original sizes",
                                      "mc_std_at_quadrature_time": "MC, same time as quadrature"})


def main(cfg: Config):
    benchmark_main(cfg, STEM, measure, plot)


if __name__ == "__main__":
    run(main, Config, QUICK)
