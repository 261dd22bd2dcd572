"""Benchmark: the leapfrog gradient of the Gibbs sampler, autograd of the float64 density vs the written-out gradient.

Workload: the chains of one `mean_field_theory/gibbs_vs_theory.py` point at β = 20, α = 1.3 (4 instances × 4
replicas × its tempering rungs, which grow like √N) for N = 200, 400, 800.  Per N, alternating the two modes
`repeats` times in one process: the time of one gradient of every chain — autograd through the float64 log density
(the sampler's gradient before) and `Measure.leapfrog_gradient` (written out, in float32) —
and their agreement (relative, norm-wise).  The projected cost of a point is (warmup + sweeps) × leapfrog ×
gradient time (the density, once per proposal, adds ~1/leapfrog); the summary compares it with the goal of 5 min
per N = 800 point.  The json records the load average before the run.

Runtime: the README's figure table (the wall time its json records).
Command:  python benchmarks/bench_gibbs_sampler.py
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
    repeats: int = bounded(5, at_least=1)  # alternating timings per mode (median reported)

    def validate(self):
        super().validate()
        require(len(self.ns) > 0, "--ns needs at least one value")


QUICK = {"ns": (40,), "repeats": 2, "instances": 2, "replicas": 2}


def autograd_gradient(measure, u, betas):
    u = u.detach().requires_grad_(True)
    return torch.autograd.grad(measure.log_density(u, betas)[0].sum(), u)[0]


def measure_all(cfg: Config) -> tuple[list[dict], dict]:
    torch_setup(cfg)
    rows, summary = [], {"load_average_before": os.getloadavg()[0], "threads": torch.get_num_threads()}
    for n in cfg.ns:
        teacher, measure = gibbs_sampler.task1_instances(n, cfg.alpha, cfg.instances, cfg.seed)
        k = gibbs_sampler.rung_count(cfg.beta, cfg.beta_min, cfg.rungs_per_unit, n)
        betas = gibbs_sampler.ladder(cfg.beta, gibbs_sampler.Schedule(temperatures=k, beta_min=cfg.beta_min))
        u = torch.randn(cfg.instances, cfg.replicas, k, n, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(cfg.seed))
        modes = {"autograd float64": lambda: autograd_gradient(measure, u, betas),
                 "written out": lambda: measure.leapfrog_gradient(u, betas)}
        seconds = {mode: [] for mode in modes}
        for _ in range(cfg.repeats):
            for mode, function in modes.items():
                begin = time.perf_counter()
                function()
                seconds[mode].append(time.perf_counter() - begin)
        exact, written = modes["autograd float64"](), modes["written out"]()
        for mode in modes:
            gradient = statistics.median(seconds[mode])
            rows.append({"n": n, "rungs": k, "chains": cfg.instances * cfg.replicas * k, "mode": mode,
                         "ms_per_gradient": 1e3 * gradient,
                         "projected_point_minutes": gradient * cfg.sweeps * (cfg.leapfrog + 1) / 60})
        summary[f"N={n}: speed-up of the gradient"] = rows[-2]["ms_per_gradient"] / rows[-1]["ms_per_gradient"]
        summary[f"N={n}: projected point, autograd / written out (min)"] = (rows[-2]["projected_point_minutes"],
                                                                          rows[-1]["projected_point_minutes"])
        summary[f"N={n}: relative difference"] = float((written - exact).norm() / exact.norm())
    return rows, summary


def plot(rows: list[dict]):
    import matplotlib.pyplot as plt

    plot_style()
    fig, axis = plt.subplots(figsize=(4.0, 3.0))
    for mode, color in (("autograd float64", "grey"), ("written out", "royalblue")):
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
