"""Benchmark: the cost of the paper-scale SGD runs (Figs. 2c, 3, A1) in core-hours, from timed subsets.

Each protocol is run for a few steps or epochs at the paper's sizes on one core, through the same code as the figure
script (`single_layer.training.train_task`, batched trials), and the time per step/epoch is multiplied by the steps
the full run takes (the figures' SGD settings: `single_layer.one_task`, `single_layer.two_tasks`):
* Fig. 2c — N = 3000, 20 samples, 51 α ∈ [1, 2], 10 000 full-batch GD steps each (no early stop: exact);
* Fig. 3 — N = 1000, 20 trials, task 1 (α₁ = 2, 5 000 Adam steps) once, then 63 (γ, r₀, α₂) points of 20 000 full-batch
  Adam steps (exact);
* Fig. A1 — N = 1000, 20 trials, the original's per-point batch sizes; epochs as in the committed run (4 trials): a
  point runs until its last trial meets the early stop, so with 20 trials it may run longer (a lower estimate);
  panel d's task 1 is counted at its maximum of 4 500 epochs.
A point is the unit of the sweep executor, so K workers need ≈ max(total / K, longest point).
Outputs: bench_paper_scale.csv (figure, part, seconds per unit, units, core-hours), .json (totals, wall time on
K workers), .png/.pdf.  Runtime: 110 s (the recorded wall time of the committed run,
one thread per point).
Command:  python benchmarks/bench_paper_scale.py
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch

from harness.command_line import run
from harness.config import BaseConfig, bounded
from harness.devices import torch_setup
from harness.outputs import print_written, read_csv, read_json, save_figure, write_csv, write_json
from harness.paths import REPO_ROOT
from harness.plotting import plot_style
from harness.provenance import run_metadata
from single_layer.one_task import Fig2cGDConfig
from single_layer.perceptron import OptimizerSpec, task_observer
from single_layer.training import train_task
from single_layer.two_tasks import SGD_ALPHA2S, Fig3SGDConfig, FigA1SGDConfig
from teacher_student import sample_trials

STEM = "bench_paper_scale"
WORKERS = (1, 2, 8, 64)


# ---- hyperparameters
@dataclasses.dataclass
class Config(BaseConfig):
    timed_steps: int = bounded(20, at_least=2)  # full-batch steps timed per configuration
    timed_epochs: int = bounded(2, at_least=1)  # minibatch epochs timed per configuration (Fig. A1)
    scale: float = bounded(  # fraction of the paper's N (the --quick smoke run uses a small one)
        1.0, above=0, at_most=1)
    threads: int = bounded(1, at_least=1)  # torch CPU threads (core-hours are per thread)


QUICK = {"timed_steps": 2, "timed_epochs": 1, "scale": 0.1}


def seconds_per_unit(n: int, trials: int, alpha: float, spec: OptimizerSpec, units: int, record_every: int,
                     early_stop: str | None = None, n_test: int = 0, anchor: bool = False) -> float:
    """Wall seconds per step (full batch) or epoch (minibatch) of `train_task` at these sizes."""
    fields, (task,) = sample_trials(trials, n, [alpha], n_test=n_test)
    arguments = dict(observe=task_observer([task]), record_every=record_every, early_stop=early_stop,
                     anchor=torch.zeros_like(fields) if anchor else None)
    train_task(fields, task, spec, 1, **arguments)  # warm-up (allocation, first-call costs)
    started = time.perf_counter()
    train_task(fields, task, spec, units, **arguments)
    return (time.perf_counter() - started) / units


def step_seconds(alpha: float, probes: tuple[float, ...], times: list[float]) -> float:
    """Seconds per step at data density α, interpolated linearly between the timed probes (a step costs about
    ∝ P = αN plus a fixed part; outside the probes the nearest probe's time, never an extrapolation)."""
    return float(np.interp(alpha, probes, times))


def part(figure: str, name: str, seconds: float, units: int, points: int = 1) -> dict:
    return {"figure": figure, "part": name, "seconds_per_unit": seconds, "units": units, "points": points,
            "core_hours": seconds * units / 3600.0}


def fig2c_parts(cfg: Config) -> list[dict]:
    paper = Fig2cGDConfig()
    n = max(10, round(paper.n * cfg.scale))
    gd = OptimizerSpec("gd", lr=paper.lr)
    probes = (1.0, 1.5, 2.0)
    times = [seconds_per_unit(n, paper.samples, alpha, gd, cfg.timed_steps, 1) for alpha in probes]
    return [part("fig2c", f"alpha={alpha:g}", step_seconds(alpha, probes, times), paper.steps)
            for alpha in paper.alphas]


def fig3_parts(cfg: Config) -> list[dict]:
    paper = Fig3SGDConfig()
    n = max(10, round(paper.n * cfg.scale))
    adam = OptimizerSpec("adam", paper.lr1, weight_decay=paper.weight_decay)
    probes = (0.1, 1.0, 3.0, 7.0)
    times = [seconds_per_unit(n, paper.trials, alpha, adam, cfg.timed_steps, paper.steps2) for alpha in probes]
    parts = [part("fig3", "task 1", step_seconds(paper.alpha1, probes, times), paper.steps1)]
    for gamma, alpha2s in SGD_ALPHA2S.items():
        for alpha2 in alpha2s:
            parts.append(part("fig3", f"gamma={gamma:g} alpha2={alpha2:g}", step_seconds(alpha2, probes, times),
                              paper.steps2, points=len(paper.r0s)))
    return parts


def committed_epochs(panel: str) -> dict:
    """Epochs each committed Fig. A1 point ran (the largest over its trials), keyed by α (a) or (r₀, α₂)."""
    rows = [row for row in read_csv(REPO_ROOT / "figures" / "figA1_uniform_prior.csv")
            if row["panel"] == panel and row["source"] == "sgd"]
    key = (lambda row: row["alpha"]) if panel == "a" else (lambda row: (row["r0"], row["alpha2"]))
    found = {}
    for row in rows:
        found[key(row)] = max(found.get(key(row), 0), int(row["epochs_trained"]))
    return found


def figA1_parts(cfg: Config) -> list[dict]:
    paper = FigA1SGDConfig()
    n, trials = max(10, round(paper.n * cfg.scale)), 20
    n_test = max(10, round(paper.n_test * cfg.scale))
    timed = lambda alpha, spec, stop, anchor: seconds_per_unit(n, trials, alpha, spec, cfg.timed_epochs,
                                                               cfg.timed_epochs, stop, n_test if stop else 0, anchor)
    parts, epochs_a = [], committed_epochs("a")
    for index, alpha in enumerate(paper.sgd_alphas):
        parts.append(part("figA1", f"a alpha={alpha:g}", timed(alpha, paper.spec_a(index), "test_accuracy", True),
                          epochs_a.get(alpha, paper.epochs_a)))
    for panel in ("bc", "d"):
        protocol, points, specs = paper.two_task_panel(panel, gamma=1.0)
        parts.append(part("figA1", f"{panel} task 1", timed(protocol.alpha1, protocol.spec1, protocol.stop1,
                                                           protocol.uniform_prior), protocol.epochs1))
        epochs = committed_epochs(panel)
        for (r0, alpha2), spec in zip(points, specs):
            parts.append(part("figA1", f"{panel} r0={r0:g} alpha2={alpha2:g}" if panel == "bc" else
                              f"d alpha2={alpha2:g}", timed(alpha2, spec, "teacher", True),
                              epochs.get((r0, alpha2), protocol.epochs2)))
    return parts


def totals(rows: list[dict]) -> dict:
    summary = {}
    for figure in dict.fromkeys(row["figure"] for row in rows):
        parts = [row for row in rows if row["figure"] == figure]
        core_hours = sum(row["core_hours"] * row["points"] for row in parts)
        longest = max(row["core_hours"] for row in parts)
        summary[figure] = {"core_hours": core_hours, "longest_point_hours": longest,
                           "wall_hours_on_K_workers": {str(k): max(core_hours / k, longest) for k in WORKERS}}
    return summary


# ---- plot
def plot(summary: dict):
    import matplotlib.pyplot as plt

    plot_style()
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for figure, values in summary.items():
        walls = values["wall_hours_on_K_workers"]
        ax.plot([int(k) for k in walls], list(walls.values()), "-o", label=f"{figure} ({values['core_hours']:.1f} "
                                                                           "core-h)")
    ax.set(xscale="log", yscale="log", xlabel="workers K", ylabel="wall time (h)",
           title="paper-scale SGD runs, from timed subsets")
    ax.legend(fontsize=7)
    return fig


def main(cfg: Config):
    out_dir, started = cfg.output_dir, time.time()
    if not cfg.replot:
        device = torch_setup(cfg)
        rows = fig2c_parts(cfg) + fig3_parts(cfg) + figA1_parts(cfg)
        summary = totals(rows)
        write_csv(out_dir / f"{STEM}.csv", rows)
        write_json(out_dir / f"{STEM}.json", run_metadata(cfg, started, device, totals=summary))
    summary = read_json(out_dir / f"{STEM}.json")["totals"]
    paths = save_figure(plot(summary), out_dir, STEM)
    print_written([out_dir / f"{STEM}.csv", out_dir / f"{STEM}.json", *paths])
    for figure, values in summary.items():
        print(f"{figure}: {values['core_hours']:.1f} core-hours; "
              + ", ".join(f"{k} workers {math.ceil(60 * hours)} min" for k, hours in
                          values["wall_hours_on_K_workers"].items()))


if __name__ == "__main__":
    run(main, Config, QUICK)
