"""Benchmark: the Gibbs sampler's cost — its leapfrog gradient (autograd of the float64 density, written out with
float32 or bfloat16 products over the data) and whole tempered sweeps, against the goal of 5 min per N = 800 point.

Workload: the chains of one `mean_field_theory/gibbs_vs_theory.py` point at β = 20, α = 1.3 (4 instances × 4
replicas × its tempering rungs, which grow like √N) for N = 200, 400, 800.  Per N, in one process:
* one gradient of every chain, the modes alternating `repeats` times: autograd through the float64 log density (the
  sampler's gradient before it was written out), `Measure.leapfrog_gradient` with float32 products and with bfloat16
  products (±1 data exact, m and φ/Φ_N rounded to 8 bits; the Metropolis test in float64 keeps the chain exact), and
  their agreement with autograd (relative, norm-wise); and the gradient's two batched products over the data alone
  in each dtype — the arithmetic floor of a point: `sweeps` × `leapfrog` of them;
* whole sweeps as the script runs them (`gibbs_sampler.sample`: leapfrog proposals, float64 Metropolis test,
  tempering swaps, recording), `timed_sweeps` of them (half warm-up) per gradient dtype, alternating `sweep_repeats`
  times: ms per sweep (median), the HMC acceptance of the short run, and the projected point = ms per sweep ×
  (warm-up + recorded sweeps of the script's default, 1000 + 3000).
Run with `--threads 1` for the goal's one core.  The json records the load average before the run.

Runtime: the README's figure table (the wall time its json records).
Command:  python benchmarks/bench_gibbs_sampler.py --threads 1
"""
from __future__ import annotations

import dataclasses
import os
import statistics
import time

import torch

from benchmarks.common import benchmark_main
from harness.command_line import run
from harness.config import BaseConfig, bounded
from harness.devices import torch_setup
from harness.errors import require
from harness.plotting import plot_style
from mean_field_theory import gibbs_sampler

STEM = "bench_gibbs_sampler"


# ---- hyperparameters
@dataclasses.dataclass
class Config(BaseConfig):
    ns: tuple[int, ...] = bounded((200, 400, 800), at_least=2)  # system sizes N
    alpha: float = bounded(1.3, above=0)  # data density (α)
    beta: float = bounded(20.0, above=0)  # target inverse temperature (β)
    beta_min: float = bounded(5.0, above=0)  # hottest rung (as gibbs_vs_theory)
    rungs_per_unit: float = 0.75  # rungs per unit of ln(β/β_min)·√N (as gibbs_vs_theory)
    instances: int = bounded(4, at_least=1)  # disorder samples
    replicas: int = bounded(4, at_least=1)  # chains per instance and rung
    sweeps: int = bounded(  # warm-up + recorded sweeps of the projected point (gibbs_vs_theory: 1000 + 3000)
        4000, at_least=1)
    leapfrog: int = bounded(10, at_least=1)  # leapfrog steps per proposal
    repeats: int = bounded(5, at_least=1)  # alternating timings per gradient mode (median reported)
    timed_sweeps: int = bounded(20, at_least=2)  # sweeps of a timed run (half warm-up)
    sweep_repeats: int = bounded(3, at_least=1)  # alternating timed runs per gradient dtype (median reported)

    def validate(self):
        super().validate()
        require(len(self.ns) > 0, "--ns needs at least one value")


QUICK = {"ns": (40,), "repeats": 2, "instances": 2, "replicas": 2, "timed_sweeps": 4, "sweep_repeats": 1}
GRADIENT_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def autograd_gradient(measure, u, betas):
    u = u.detach().requires_grad_(True)
    return torch.autograd.grad(measure.log_density(u, betas)[0].sum(), u)[0]


def data_products(measure, m):
    """The leapfrog gradient's two products over the data (y x·m per pattern, then Σ_μ h_μ y x^μ; m already in the
    products' dtype), nothing else."""
    raw = torch.einsum("drkn,dpn->drkp", m, measure.signed_single)
    return torch.einsum("drkp,dpn->drkn", raw, measure.signed_single)


def elapsed(function) -> float:
    begin = time.perf_counter()
    function()
    return time.perf_counter() - begin


def measure_all(cfg: Config) -> tuple[list[dict], dict]:
    torch_setup(cfg)
    rows, summary = [], {"load_average_before": os.getloadavg()[0], "threads": torch.get_num_threads()}
    for n in cfg.ns:
        k = gibbs_sampler.rung_count(cfg.beta, cfg.beta_min, cfg.rungs_per_unit, n)
        schedule = gibbs_sampler.Schedule(sweeps=cfg.timed_sweeps - cfg.timed_sweeps // 2,
                                          warmup=cfg.timed_sweeps // 2, leapfrog=cfg.leapfrog, temperatures=k,
                                          beta_min=cfg.beta_min, replicas=cfg.replicas)
        betas = gibbs_sampler.ladder(cfg.beta, schedule)
        u = torch.randn(cfg.instances, cfg.replicas, k, n, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(cfg.seed))
        measures = {name: gibbs_sampler.task1_instances(n, cfg.alpha, cfg.instances, cfg.seed, dtype)
                    for name, dtype in GRADIENT_DTYPES.items()}
        teacher = measures["float32"][0]
        gradients = {"autograd float64": lambda: autograd_gradient(measures["float32"][1], u, betas),
                     **{f"written out, {name} products": (lambda m=m: m.leapfrog_gradient(u, betas))
                        for name, (_, m) in measures.items()}}
        products = {f"products only, {name}": (lambda m=m, means=torch.tanh(u).to(dtype): data_products(m, means))
                    for (name, (_, m)), dtype in zip(measures.items(), GRADIENT_DTYPES.values())}
        seconds = {mode: [] for mode in [*gradients, *products]}
        for _ in range(cfg.repeats):
            for mode, function in [*gradients.items(), *products.items()]:
                seconds[mode].append(elapsed(function))
        exact = gradients["autograd float64"]()
        for mode, function in gradients.items():
            gradient = statistics.median(seconds[mode])
            rows.append({"n": n, "rungs": k, "chains": cfg.instances * cfg.replicas * k, "kind": "gradient",
                         "mode": mode, "ms": 1e3 * gradient, "hmc_acceptance": "",
                         "relative_difference": float((function() - exact).norm() / exact.norm()),
                         "projected_point_minutes": gradient * cfg.sweeps * (cfg.leapfrog + 1) / 60})
        for mode in products:
            rows.append({"n": n, "rungs": k, "chains": cfg.instances * cfg.replicas * k, "kind": "products",
                         "mode": mode, "ms": 1e3 * statistics.median(seconds[mode]), "hmc_acceptance": "",
                         "relative_difference": "",
                         "projected_point_minutes": statistics.median(seconds[mode]) * cfg.sweeps * cfg.leapfrog / 60})
        runs = {name: [] for name in GRADIENT_DTYPES}
        for _ in range(cfg.sweep_repeats):
            for name, (_, measure) in measures.items():
                begin = time.perf_counter()
                chains = gibbs_sampler.sample(measure, teacher, cfg.beta, schedule, cfg.seed)
                runs[name].append((time.perf_counter() - begin, float(chains.hmc_acceptance.mean())))
        for name, timings in runs.items():
            sweep = statistics.median(seconds for seconds, _ in timings) / cfg.timed_sweeps
            rows.append({"n": n, "rungs": k, "chains": cfg.instances * cfg.replicas * k, "kind": "sweep",
                         "mode": f"sweeps, {name} products", "ms": 1e3 * sweep,
                         "hmc_acceptance": timings[0][1], "relative_difference": "",
                         "projected_point_minutes": sweep * cfg.sweeps / 60})
        by_mode = {row["mode"]: row for row in rows if row["n"] == n}
        summary[f"N={n}: gradient ms, autograd / float32 / bfloat16"] = [
            by_mode[mode]["ms"] for mode in gradients]
        summary[f"N={n}: gradient speed-up of bfloat16 over float32 products"] = (
            by_mode["written out, float32 products"]["ms"] / by_mode["written out, bfloat16 products"]["ms"])
        summary[f"N={n}: relative difference to autograd, float32 / bfloat16"] = [
            by_mode[f"written out, {name} products"]["relative_difference"] for name in GRADIENT_DTYPES]
        summary[f"N={n}: projected point from whole sweeps, float32 / bfloat16 (min)"] = [
            by_mode[f"sweeps, {name} products"]["projected_point_minutes"] for name in GRADIENT_DTYPES]
        summary[f"N={n}: floor of a point, the products over the data alone, float32 / bfloat16 (min)"] = [
            by_mode[f"products only, {name}"]["projected_point_minutes"] for name in GRADIENT_DTYPES]
    return rows, summary


def plot(rows: list[dict]):
    import matplotlib.pyplot as plt

    plot_style()
    fig, axis = plt.subplots(figsize=(4.0, 3.0))
    for mode, color in (("autograd float64", "grey"), ("written out, float32 products", "royalblue"),
                        ("written out, bfloat16 products", "tab:cyan"), ("sweeps, float32 products", "tab:orange"),
                        ("sweeps, bfloat16 products", "tab:red")):
        chosen = [row for row in rows if row["mode"] == mode]
        axis.plot([row["n"] for row in chosen], [row["projected_point_minutes"] for row in chosen], "o-",
                  color=color, label=mode)
    axis.axhline(5.0, color="tab:red", lw=0.8, ls="--", label="goal at N = 800")
    axis.set(xscale="log", yscale="log", xlabel="N", ylabel="projected minutes per point")
    axis.legend(fontsize=7)
    return fig


def main(cfg: Config) -> None:
    benchmark_main(cfg, STEM, measure_all, plot)


if __name__ == "__main__":
    run(main, Config, QUICK)
