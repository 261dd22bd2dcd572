"""Benchmark: the Franz–Parisi (task-2) solver against the original Monte-Carlo evaluation (docs/original_code.md).

Measured side by side in one run, on the CPU:
1. one evaluation of the task-2 saddle-point map (conjugates from ∂G_E, then the single-site averages over the
   task-1 reference) by our quadrature, and by Monte Carlo at the original sample sizes (energy 10⁴ z × 10⁴ x;
   single site z 500 × m₁ 500 × x 500 × m 500 × B 2, i.e. 2.5·10⁸-element tensors; the original averages 20 such
   evaluations per iteration and runs ≤ 100 iterations × 20 restarts per point); the Monte-Carlo spread and bias;
2. one Franz–Parisi point solved to 1e-10 from the α₂ → 0 guess;
3. the theory of one Fig. 3 panel: 16 α₂ × 3 r₀ at γ = 1, both branches with the stability check.
Outputs: figures/bench_franz_parisi.{csv,json,png,pdf}.  Command: python benchmarks/bench_franz_parisi.py
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from benchmarks.common import benchmark_main, relative_error_bars
from harness.command_line import run
from harness.config import BaseConfig, bounded
from mean_field_theory import monte_carlo, rs_solver, site_measures
from mean_field_theory.franz_parisi import Task2Problem
from mean_field_theory.task1 import task1_reference

STEM = "bench_franz_parisi"


# ---- hyperparameters
@dataclasses.dataclass
class Config(BaseConfig):
    alpha1: float = bounded(2.0, above=0)  # task-1 data density of the reference
    beta: float = bounded(20.0, above=0)  # β₁ = β₂
    alpha2: float = bounded(1.0, above=0)  # α₂ of the benchmark point
    r0: float = bounded(0.5, at_least=-1, at_most=1)  # teacher overlap of the benchmark point
    gamma: float = bounded(1.0, at_least=0)  # KL weight (κ₂ = βγ)
    mc_energy: tuple[int, int] = bounded((10000, 10000), at_least=10)  # original sample sizes of the energy term (z, x)
    mc_site: tuple[int, int, int, int] = bounded(  # original sample sizes of the site term (z, m₁, x, m)
        (500, 500, 500, 500), at_least=10)
    mc_repeats: int = bounded(3, at_least=2)  # independent Monte-Carlo evaluations (spread)
    panel_alpha2s: tuple[float, ...] = (0.01, 0.1) + tuple(0.5 * k for k in range(1, 15))  # Fig. 3's γ = 1 grid
    panel_r0s: tuple[float, ...] = bounded((-0.5, 0.0, 0.5), at_least=-1, at_most=1)  # r₀ of the timed panel


QUICK = {"mc_energy": (500, 500), "mc_site": (50, 50, 50, 50), "mc_repeats": 2, "panel_alpha2s": (0.5, 1.0),
         "panel_r0s": (0.5,)}
NAMES = ("q_hat", "r_hat", "q_star_hat", "q", "r", "q_star")


def quadrature_evaluation(problem: rs_solver.RSProblem, point) -> np.ndarray:
    with rs_solver.single_thread():
        _, q_hat, r_hat, q_star_hat = problem.conjugates(*point)
        site = site_measures.site_averages(problem.measure, q_hat, r_hat, q_star_hat)
    return np.array([q_hat, r_hat, q_star_hat, site.mean_sq, site.mean, site.second])


def monte_carlo_evaluation(cfg: Config, reference, point, hats, generator) -> np.ndarray:
    """Energy term at the point; single-site term at the exact conjugates (so that its error is its own)."""
    d_q, d_r, d_q_star = monte_carlo.energy_gradient(*point, cfg.beta, *cfg.mc_energy, generator)
    site = monte_carlo.task2_site_averages((reference.q_hat, reference.r_hat, reference.q_star_hat), 0.0, hats,
                                           cfg.beta * cfg.gamma, cfg.r0, *cfg.mc_site, generator)
    return np.array([-2 * cfg.alpha2 * d_q, cfg.alpha2 * d_r, cfg.alpha2 * d_q_star, *site])


def measure(cfg: Config) -> tuple[list[dict], dict]:
    reference, _ = task1_reference(cfg.alpha1, cfg.beta, 0.0, "thermodynamic", 1e-10)
    task2 = Task2Problem(reference, cfg.r0, cfg.gamma, cfg.beta)
    started = time.perf_counter()
    solution = task2.solve(cfg.alpha2)
    t_point = time.perf_counter() - started
    point = (solution.q, solution.r, solution.q_star)
    problem = rs_solver.RSProblem(cfg.alpha2, task2.measure, task2.channel)
    quadrature_evaluation(problem, point)  # warm-up
    started = time.perf_counter()
    exact = quadrature_evaluation(problem, point)
    t_quad = time.perf_counter() - started
    generator = torch.Generator().manual_seed(cfg.seed)
    started = time.perf_counter()
    estimates = np.array([monte_carlo_evaluation(cfg, reference, point, exact[:3], generator)
                          for _ in range(cfg.mc_repeats)])
    t_mc = (time.perf_counter() - started) / cfg.mc_repeats
    spread = estimates.std(0, ddof=1)
    rows = [{"quantity": name, "quadrature": exact[i], "mc_mean": estimates[:, i].mean(),
             "mc_std_one_evaluation": spread[i], "mc_bias": estimates[:, i].mean() - exact[i]}
            for i, name in enumerate(NAMES)]
    started, panel = time.perf_counter(), []
    for r0 in cfg.panel_r0s:
        panel += Task2Problem(reference, r0, cfg.gamma, cfg.beta).sweep(cfg.panel_alpha2s)
    t_panel = time.perf_counter() - started
    summary = {"seconds_per_quadrature_evaluation": t_quad, "seconds_per_mc_evaluation_original_sizes": t_mc,
               "mc_over_quadrature_time_ratio": t_mc / t_quad,
               "original_iteration_seconds_20_mc_evaluations": 20 * t_mc,
               "point_seconds": t_point, "point_map_evaluations": solution.iterations,
               "point_converged": solution.converged, "point_residual": solution.residual,
               "panel_seconds": t_panel, "panel_points": len(cfg.panel_alpha2s) * len(cfg.panel_r0s),
               "panel_rows": len(panel), "panel_map_evaluations": int(sum(row["iterations"] for row in panel)),
               "panel_all_converged": all(row["converged"] for row in panel),
               "torch_threads_quadrature": 1, "torch_threads_mc": torch.get_num_threads()}
    return rows, summary


def plot(rows):
    return relative_error_bars(rows, {"mc_std_one_evaluation": "MC spread, original sizes",
                                      "mc_bias": "|MC mean − quadrature|"})


def main(cfg: Config):
    benchmark_main(cfg, STEM, measure, plot)


if __name__ == "__main__":
    run(main, Config, QUICK)
