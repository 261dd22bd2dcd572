"""Benchmark: does flushing subnormal floats to zero make the perceptron's task-2 step faster?  (It does not pay:
the code keeps them; docs/results.md §14.)

Adam's moving averages of a weight whose gradient has become (nearly) zero — a saturated field, 1 − m² = 0 in
float32 — decay geometrically into the subnormal range (|x| < 1.2·10⁻³⁸ in float32), where an x86 core computes a
square root up to ~35× slower, and a Fig. 3 task 2 starts from the saturated fields of 5 000 task-1 steps.  The
hypothesis tested: that this is why the paper-scale Fig. 3 ran slower than the estimate of bench_paper_scale, whose
steps start from fresh fields.

Workload: a Fig. 3 point (N = 1000, 20 trials, full-batch Adam lr 1e-3, wd 1e-3): task 1 at α₁ = 2 for `steps1`
steps, then task 2 with γ KL to the task-1 fields for `steps2` steps at (γ, r₀, α₂) = (0.1, 0, 0.5) and (1, 0, 3),
with subnormals kept and flushed (`torch.set_flush_denormal`, in this thread), alternating `repeats` times, in one
process (`single_layer.two_tasks`, the scripts' own path).  Reported: ms per task-2 step (median over repeats), the ratio kept / flushed, and the largest
difference of ε_g¹, ε_g² between the modes (they should agree to rounding).  The json records the load average
before the run (a 1-minute average: it lags).

Runtime: the README's figure table (the wall time its json records).
Command:  python benchmarks/bench_denormals.py
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
from harness.plotting import plot_style
from single_layer.perceptron import OptimizerSpec
from single_layer.two_tasks import Protocol, first_task, second_tasks

STEM = "bench_denormals"
POINTS = ((0.1, 0.0, 0.5), (1.0, 0.0, 3.0))  # (γ, r₀, α₂) of Fig. 3


# ---- hyperparameters
@dataclasses.dataclass
class Config(BaseConfig):
    n: int = bounded(1000, at_least=2)  # input dimension N (Fig. 3: 1000)
    trials: int = bounded(20, at_least=1)  # trials per point (Fig. 3: 20)
    steps1: int = bounded(5000, at_least=1)  # task-1 Adam steps (Fig. 3: 5 000)
    steps2: int = bounded(2000, at_least=1)  # task-2 Adam steps timed per mode and repeat (Fig. 3 runs 20 000)
    repeats: int = bounded(2, at_least=1)  # alternating timings of each mode (median reported)


QUICK = {"n": 50, "trials": 2, "steps1": 20, "steps2": 10, "repeats": 1}


def measure(cfg: Config) -> tuple[list[dict], dict]:
    torch_setup(cfg)
    summary = {"load_average_before": os.getloadavg()[0], "threads": torch.get_num_threads(),
               "flushing supported": torch.set_flush_denormal(True)}
    spec = OptimizerSpec("adam", lr=1e-3, weight_decay=1e-3)
    rows = []
    for gamma, r0, alpha2 in POINTS:
        protocol = Protocol(n=cfg.n, trials=cfg.trials, seed=cfg.seed, alpha1=2.0, spec1=spec, epochs1=cfg.steps1,
                            uniform_prior=False, stop1=None, gamma=gamma, epochs2=cfg.steps2, stop2=None)
        after_task1, history = first_task(protocol)
        seconds, results = {"kept": [], "flushed": []}, {}
        for _ in range(cfg.repeats):
            for mode in seconds:
                torch.set_flush_denormal(mode == "flushed")
                begin = time.perf_counter()
                results[mode] = second_tasks(protocol, after_task1, int(history.epochs[-1]), [(alpha2, r0, {})], spec)
                seconds[mode].append(time.perf_counter() - begin)
        torch.set_flush_denormal(False)
        name = f"γ = {gamma}, r₀ = {r0}, α₂ = {alpha2}"
        for mode, times in seconds.items():
            rows.append({"point": name, "mode": mode, "ms_per_step": 1e3 * statistics.median(times) / cfg.steps2})
        summary[f"{name}: ms per step kept / flushed"] = (rows[-2]["ms_per_step"], rows[-1]["ms_per_step"])
        summary[f"{name}: speed-up of flushing"] = rows[-2]["ms_per_step"] / rows[-1]["ms_per_step"]
        summary[f"{name}: max |difference| of eps_g1, eps_g2 between the modes"] = max(
            abs(kept[key] - flushed[key]) for kept, flushed in zip(results["kept"], results["flushed"])
            for key in ("eps_g1", "eps_g2"))
    return rows, summary


def plot(rows: list[dict]):
    """ms per task-2 step of each point, subnormals kept (grey) and flushed (blue), side by side."""
    import matplotlib.pyplot as plt

    plot_style()
    fig, axis = plt.subplots(figsize=(4.5, 3.0))
    names = list(dict.fromkeys(row["point"] for row in rows))
    modes = {"kept": (-0.2, "grey"), "flushed": (0.2, "royalblue")}
    for mode, (offset, color) in modes.items():
        heights = [next(row["ms_per_step"] for row in rows if row["point"] == name and row["mode"] == mode)
                   for name in names]
        axis.bar([index + offset for index in range(len(names))], heights, width=0.4, color=color,
                 label=f"subnormals {mode}")
    axis.legend(loc="upper left")
    axis.set(ylabel="ms per task-2 step (median)")
    axis.set_xticks(range(len(names)), names, fontsize=7)
    return fig


def main(cfg: Config) -> None:
    benchmark_main(cfg, STEM, measure, plot)


if __name__ == "__main__":
    run(main, Config, QUICK)
