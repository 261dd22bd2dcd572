"""Fig. 2d — generalization error versus the self-overlap q⋆ at α = 2: fixed-q⋆ theory and SGD trajectories.

Axes: x = q⋆ = (1/N) Σ tanh²(h_i) (1 − q⋆ = mean weight variance), y = ε_g.  Three curves:
* "replica": task-1 RS theory with the self-overlap clamped to q⋆ (docs/theory.md eq. 17; q̂⋆ becomes the Lagrange
  multiplier of E_z⟨m²⟩ = q⋆), α = 2, β = 5, q⋆ = 0.75 … 0.99; ε_g = arccos(p₁)/π;
* "SGD": heavy-ball SGD (lr 1e-3, momentum 0.9, batch 32, no KL) for 4000 epochs, N = 1000, 20 trials; every 50
  epochs the mean q⋆ and the empirical test error on 10 000 patterns (points with mean q⋆ ≥ 0.75 shown);
* "SGD slow": the same, but after every minibatch the fields are projected so that q⋆ follows the schedule
  q⋆(epoch j) = 0.3 + 0.7 j/3000 (capped at `q_star_cap`), with the projection done correctly (docs/original_code.md B9: rescale m by
  √(target/q⋆), iterate because of the clamp; `perceptron.project_self_overlap`).

Runtime: the README's figure table (the wall time its json records).
Command: python single_layer/fig2d_fixed_self_overlap.py
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
from tqdm import tqdm

from harness.command_line import run
from harness.config import bounded
from harness.devices import torch_setup
from harness.errors import require
from harness.figure import Computed, figure_main
from harness.plotting import plot_style
from harness.sweep import SweepConfig, sweep
from mean_field_theory.task1 import solve_task1
from single_layer.perceptron import OptimizerSpec, empirical_test_error, project_self_overlap, self_overlap
from single_layer.theory_refresh import kept_sgd_rows, provenance_of
from single_layer.training import train_task
from teacher_student import sample_trials

STEM = "fig2d_fixed_self_overlap"
COLUMNS = ["q_star", "source", "seed", "epoch", "eps_g", "p1", "converged", "replicon", "rs_stable"]
SGD_FIELDS = ("alpha", "n", "trials", "n_test", "epochs", "lr", "momentum", "batch_size", "record_every",
              "schedule_start", "schedule_epochs", "q_star_cap", "seed")  # what the SGD rows depend on


# ---- hyperparameters
@dataclasses.dataclass
class Config(SweepConfig):
    alpha: float = bounded(2.0, above=0)  # data density (α)
    beta: float = bounded(5.0, above=0)  # inverse temperature of the fixed-q⋆ theory (β)
    q_stars: tuple[float, ...] = bounded(  # clamped self-overlaps (q⋆)
        tuple(round(0.75 + 0.01 * k, 2) for k in range(25)), above=0, below=1)
    n: int = bounded(1000, at_least=1)  # input dimension of the SGD runs (N)
    trials: int = bounded(20, at_least=1)  # independent SGD trials (seed + k)
    n_test: int = bounded(10000, at_least=1)  # test patterns for the empirical test error
    epochs: int = bounded(4000, at_least=1)  # SGD epochs
    lr: float = bounded(1e-3, above=0)  # heavy-ball learning rate (η)
    momentum: float = bounded(0.9, at_least=0, below=1)  # heavy-ball momentum (μ)
    batch_size: int = bounded(32, at_least=1)  # minibatch size
    record_every: int = bounded(50, at_least=1)  # epochs between recorded points
    schedule_start: float = bounded(0.3, above=0)  # "SGD slow": q⋆ target at epoch 0
    schedule_epochs: int = bounded(3000, at_least=1)  # "SGD slow": epochs over which the target rises by 0.7
    q_star_cap: float = bounded(  # "SGD slow": the target never exceeds this (the original's schedule passes 1)
        0.999, below=1)
    q_star_min_plot: float = 0.75  # SGD points with a smaller mean q⋆ are not drawn
    theory_only: bool = False  # skip the SGD simulations
    refresh_theory: bool = False  # recompute the theory, keep the SGD rows of the csv/json already in out_dir
    run_only_fields: ClassVar[tuple[str, ...]] = (*SweepConfig.run_only_fields, "refresh_theory")

    def validate(self):
        super().validate()
        require(self.schedule_start < self.q_star_cap, "need 0 < schedule_start < q_star_cap < 1")


QUICK = {"q_stars": (0.8, 0.9), "n": 100, "trials": 2, "n_test": 500, "epochs": 20, "record_every": 5,
         "schedule_epochs": 15, "q_star_min_plot": 0.0}


def run_theory(cfg: Config) -> list[dict]:
    rows, init = [], (0.5, 0.5, cfg.q_stars[0])
    for q_star in tqdm(sorted(cfg.q_stars), desc="fixed-q* theory"):
        solution = solve_task1(cfg.alpha, beta=cfg.beta, q_star=q_star, init=init)
        if solution.converged:
            init = (solution.q, solution.r, q_star)
        rows.append({"q_star": q_star, "source": "theory", "seed": "", "epoch": "", "eps_g": solution.eps_g,
                     "p1": solution.p1, "converged": solution.converged, "replicon": solution.replicon,
                     "rs_stable": solution.replicon < 1.0})
    return rows


def sgd_run(cfg: Config, slow: bool, device: str) -> list[dict]:
    """One trajectory batch: plain SGD, or ("SGD slow") with the fields projected after every minibatch so that q⋆
    follows the schedule."""
    fields, (task,) = sample_trials(cfg.trials, cfg.n, (cfg.alpha,), n_test=cfg.n_test, seed=cfg.seed, device=device)
    spec = OptimizerSpec("momentum", cfg.lr, momentum=cfg.momentum, batch_size=cfg.batch_size)
    observe = lambda f: {"q_star": self_overlap(f), "test_error": empirical_test_error(f, task)}

    def schedule(fields, epoch):  # called after every minibatch of epoch (1-based); target of epoch j = epoch − 1
        target = min(cfg.schedule_start + 0.7 * (epoch - 1) / cfg.schedule_epochs, cfg.q_star_cap)
        return project_self_overlap(fields, target)

    _, history = train_task(fields, task, spec, cfg.epochs, observe=observe, record_every=cfg.record_every,
                            constrain=schedule if slow else None)
    return [{"q_star": history.values["q_star"][index, trial], "source": "sgd_slow" if slow else "sgd",
             "seed": cfg.seed + trial, "epoch": int(epoch), "eps_g": history.values["test_error"][index, trial],
             "p1": "", "converged": ""} for index, epoch in enumerate(history.epochs) for trial in range(cfg.trials)]


def plot(cfg: Config, tables: dict, record: dict):
    import matplotlib.pyplot as plt

    plot_style()
    rows = tables["rows"]
    fig, ax = plt.subplots()
    theory = sorted((r["q_star"], r["eps_g"]) for r in rows if r["source"] == "theory" and r["converged"])
    if theory:
        ax.plot(*zip(*theory), "k-", label=f"replica ($\\beta={cfg.beta:g}$)")
    for source, style in (("sgd", "o"), ("sgd_slow", "s")):
        epochs = sorted({r["epoch"] for r in rows if r["source"] == source})
        points = []
        for epoch in epochs:
            at = [r for r in rows if r["source"] == source and r["epoch"] == epoch]
            q, eps = np.array([r["q_star"] for r in at]), np.array([r["eps_g"] for r in at])
            if q.mean() >= cfg.q_star_min_plot:
                points.append((q.mean(), eps.mean(), q.std(ddof=1), eps.std(ddof=1)))
        if points:
            q, eps, q_err, eps_err = map(np.array, zip(*points))
            ax.errorbar(q, eps, eps_err, q_err, ls="none", marker=style, mfc="none", label=source.replace("_", " ") + " (mean ± 1 s.d. over trials)")
    ax.set_xlabel(r"$q_\star$")
    ax.set_ylabel(r"$\epsilon_g$")
    ax.legend()
    return fig


def compute(cfg: Config) -> Computed:
    device = torch_setup(cfg)
    kept = kept_sgd_rows(cfg, STEM, SGD_FIELDS) if cfg.refresh_theory else None
    rows, stores = run_theory(cfg), []
    if kept is not None:
        rows += kept[0]
    elif not cfg.theory_only:
        sgd_rows, store = sweep(cfg, STEM, [(source, sgd_run, (cfg, source == "sgd_slow", str(device)))
                                            for source in ("sgd", "sgd_slow")], "fig2d SGD")
        rows, stores = rows + sgd_rows, [store]
    return Computed({"rows": rows}, dict(unconverged_q_stars=[r["q_star"] for r in rows if r["converged"] is False],
                                         **({"sgd_rows_from": provenance_of(kept[1])} if kept else {})),
                    device=device, columns={"rows": COLUMNS}, stores=stores)


def unconverged(tables: dict, record: dict) -> str | None:
    q_stars = record["unconverged_q_stars"]
    return f"fixed-q* theory did not converge at q* = {q_stars} (rows kept in {STEM}.csv)" if q_stars else None


def main(cfg: Config):
    figure_main(cfg, STEM, compute, plot, failure=unconverged)


if __name__ == "__main__":
    run(main, Config, QUICK)
