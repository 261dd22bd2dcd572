"""Fig. 3a–d — learning a second task with the first task's posterior as prior: Franz–Parisi theory vs SGD.

Panels: (a) ε_g² vs α₂ at γ = 1, (b) ε_g¹ vs α₂ at γ = 1, (c) ε_g¹ vs α₂ at γ = 0.1, (d) ε_g² vs α₂ at γ = 0.1
(log x), for teacher overlaps r₀ ∈ {−½, 0, ½}; ε_g^t = arccos(p_t)/π of the clipped student.
Theory (docs/theory.md §5): task-1 reference at α₁ = 2, β₁ = 20, κ₁ = 0 (one branch, converged), task 2 at β₂ = 20,
κ₂ = β₂γ, solved by `mean_field_theory.franz_parisi.Task2Problem` (deterministic quadrature, both branches).
SGD (settings of the original script): N = 1000, full-batch Adam (wd 1e-3): task 1 lr 1e-3 for 5000 steps without KL, task 2
with γ KL(q_h ‖ q_h′) (h′ = fields at the end of task 1) for 20 000 steps with the paper's lr per (γ, r₀, α₂);
task 1 is trained once per trial and shared by every (r₀, α₂) of that trial.  On a GPU, `--points_per_batch K`
trains up to K task-2 points of one γ and learning rate as one tensor computation (same numbers; docs/scaling.md).

Runtime: the README's figure table (the wall time its json records); the cost of the paper's sizes is in docs/scaling.md.
Interrupted runs resume from the finished points.
Command: python single_layer/fig3_second_task.py [--theory_only]
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from harness.command_line import run
from harness.config import bounded
from harness.devices import torch_setup
from harness.errors import require
from harness.figure import Computed, figure_main
from harness.plotting import plot_style
from harness.points import PointStore
from harness.sweep import run_points
from mean_field_theory.quadrature import NUMERICS_VERSION
from mean_field_theory.rs_solver import RSSolution
from single_layer.comparison import comparison_criterion, tally
from single_layer.perceptron import OptimizerSpec
from single_layer.theory_refresh import kept_sgd_rows, provenance_of
from single_layer.two_tasks import (SGD_ALPHA2S, Fig3SGDConfig, Protocol, agreement_points, draw_forgetting,
                                    joint_agreement, run_sgd_points, solved_reference, theory_curve)

STEM = "fig3_second_task"
COLUMNS = ["alpha2", "r0", "gamma", "source", "seed", "eps_g1", "eps_g2", "p1", "p2", "converged", "branch",
           "thermodynamic", "q2", "r2", "q2_star", "T", "free_entropy", "replicon", "rs_stable"]
PAPER_ALPHA2S = {1.0: (0.01, 0.1) + tuple(0.5 * k for k in range(1, 15)), 0.1: (0.01, 0.1, 0.5, 1.0, 2.0, 5.0)}
SGD_LR = {  # learning rate of task 2 per (γ, r₀), aligned with SGD_ALPHA2S[γ] (the original script's table)
    (1.0, -0.5): (0.001, 0.005, 0.01, 0.001, 0.001, 0.01, 0.01, 0.001, 0.01, 0.01, 0.001, 0.01, 0.005, 0.001, 0.001),
    (1.0, 0.0): (0.001, 0.001, 0.005, 0.01, 0.001, 0.005, 0.01, 0.005, 0.005, 0.01, 0.001, 0.001, 0.001, 0.001, 0.001),
    (1.0, 0.5): (0.001, 0.005, 0.001, 0.01, 0.001, 0.001, 0.01, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001, 0.001),
    (0.1, -0.5): (0.05, 0.01, 0.01, 0.01, 0.1, 0.1), (0.1, 0.0): (0.01, 0.1, 0.05, 0.1, 0.1, 0.1),
    (0.1, 0.5): (0.01, 0.01, 0.01, 0.05, 0.1, 0.1)}
THEORY_FIELDS = ("alpha1", "beta1", "beta2", "reference_branch", "alpha2s", "tol")  # what the theory points depend on
SGD_FIELDS = ("alpha1", "n", "trials", "steps1", "steps2", "lr1", "lr2_default", "weight_decay", "seed")  # SGD points


# ---- hyperparameters
@dataclasses.dataclass
class Config(Fig3SGDConfig):
    beta1: float = bounded(20.0, above=0)  # inverse temperature of the task-1 reference (β₁)
    beta2: float = bounded(20.0, above=0)  # inverse temperature of task 2 (β₂); κ₂ = β₂γ
    reference_branch: str = "thermodynamic"  # task-1 branch used as reference: thermodynamic | poor | good
    gammas: tuple[float, ...] = bounded((1.0, 0.1), at_least=0)  # KL weights of task 2 (γ)
    alpha2s: tuple[float, ...] = bounded((), above=0)  # α₂ grid for every γ (empty: the paper's grids, to 7 / 5)
    theory_only: bool = False  # skip the SGD simulations
    refresh_theory: bool = False  # recompute the theory, keep the SGD rows of the csv/json already in out_dir
    run_only_fields: ClassVar[tuple[str, ...]] = (*Fig3SGDConfig.run_only_fields, "refresh_theory")
    sgd_alpha2s: tuple[float, ...] = bounded((), above=0)  # SGD only at these α₂ of each γ's SGD grid (empty: all)
    tol: float = bounded(1e-10, above=0)  # saddle-point tolerance

    def validate(self):
        super().validate()
        require(self.reference_branch in ("thermodynamic", "poor", "good"), "--reference_branch: thermodynamic|poor|good")
        require(self.theory_only or len(sgd_points(self)) > 0,
                f"--sgd_alpha2s {self.sgd_alpha2s} selects no point of the SGD grid")


QUICK = {"gammas": (1.0,), "r0s": (0.5,), "alpha2s": (0.5, 2.0), "n": 100, "trials": 2, "steps1": 200,
         "steps2": 200}


def theory_grid(cfg: Config, gamma: float):
    return cfg.alpha2s or PAPER_ALPHA2S.get(gamma, PAPER_ALPHA2S[1.0])


def run_theory(cfg: Config, store: PointStore, reference: RSSolution) -> list[dict]:
    """One curve (both branches along α₂) per (γ, r₀), each an independent point of the sweep."""
    curves = [(gamma, r0) for gamma in cfg.gammas for r0 in cfg.r0s]
    done = run_points(cfg, store, [(f"theory gamma={gamma} r0={r0}", theory_curve,
                                    (reference, 0.0, cfg.beta2, gamma, r0, theory_grid(cfg, gamma), cfg.tol, {}))
                                   for gamma, r0 in curves], desc="theory curves")
    return [row for rows in done.values() for row in rows]


def sgd_learning_rate(cfg: Config, gamma: float, r0: float, alpha2: float) -> float:
    grid, table = SGD_ALPHA2S.get(gamma, ()), SGD_LR.get((gamma, r0))
    if table is not None and alpha2 in grid:
        return table[grid.index(alpha2)]
    return cfg.lr2_default


def sgd_points(cfg: Config) -> list[tuple[float, float, float]]:
    """The (γ, r₀, α₂) simulated: each γ's SGD grid (or --alpha2s), restricted to --sgd_alpha2s if given."""
    return [(gamma, r0, alpha2) for gamma in cfg.gammas for r0 in cfg.r0s
            for alpha2 in (cfg.alpha2s or SGD_ALPHA2S.get(gamma, SGD_ALPHA2S[1.0]))
            if not cfg.sgd_alpha2s or alpha2 in cfg.sgd_alpha2s]


def protocol(cfg: Config, gamma: float) -> Protocol:
    """Full-batch Adam (wd 1e-3) in both tasks; task 1 without prior for `steps1` steps."""
    return Protocol(n=cfg.n, trials=cfg.trials, seed=cfg.seed, alpha1=cfg.alpha1,
                    spec1=OptimizerSpec("adam", cfg.lr1, weight_decay=cfg.weight_decay), epochs1=cfg.steps1,
                    uniform_prior=False, stop1=None, gamma=gamma, epochs2=cfg.steps2, stop2=None)


def run_sgd(cfg: Config, store: PointStore, device) -> tuple[list[dict], dict]:
    """Task 1 once per trial batch, then every (γ, r₀, α₂) from the same task-1 fields (single_layer/two_tasks.py);
    also the SGD's task-1 state (mean and s.d. of ε_g¹ and q⋆ after task 1)."""
    points = sgd_points(cfg)
    spec = lambda gamma, r0, alpha2: OptimizerSpec("adam", sgd_learning_rate(cfg, gamma, r0, alpha2),
                                                   weight_decay=cfg.weight_decay)
    state = run_sgd_points(cfg, store, protocol(cfg, 1.0), "sgd task1", [
        (f"sgd {(gamma, r0, alpha2)}", protocol(cfg, gamma), r0, alpha2, spec(gamma, r0, alpha2), {"gamma": gamma})
        for gamma, r0, alpha2 in points], str(device), cfg.points_per_batch)
    return [row for point in points for row in store.get(f"sgd {point}")], state


def agreement(rows: list[dict], n: int) -> dict:
    """Per (γ, r₀, α₂) with SGD: the thermodynamic theory against the SGD trials (single_layer.comparison)."""
    points = {name: agreement_points(rows, ("gamma", "r0", "alpha2"), name, n) for name in ("eps_g1", "eps_g2")}
    gammas = sorted({row["gamma"] for row in rows if row["source"] == "sgd"}, reverse=True)
    summary = {f"{name} gamma={gamma:g}": tally([p for p in found if p["gamma"] == gamma])
               for name, found in points.items() for gamma in gammas}
    # every point of one trial continues that trial's task-1 student: one joint test per (quantity, γ, r₀)
    joint = {f"{name} gamma={gamma:g} r0={r0:g}": joint_agreement(
                 [row for row in rows if row["gamma"] == gamma and row["r0"] == r0], ("gamma", "r0", "alpha2"), name)
             for name in points for gamma in gammas
             for r0 in sorted({row["r0"] for row in rows if row["source"] == "sgd" and row["gamma"] == gamma})}
    return {"criterion": comparison_criterion(), "summary": summary, "joint": joint, "points": points}


def plot(cfg: Config, tables: dict, record: dict):
    import matplotlib.pyplot as plt

    plot_style()
    rows = tables["rows"]
    panels = [("a", 1.0, "eps_g2"), ("b", 1.0, "eps_g1"), ("c", 0.1, "eps_g1"), ("d", 0.1, "eps_g2")]
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.5))
    for ax, (label, gamma, key) in zip(axes.flat, panels):
        select = lambda source: [row for row in rows if row["source"] == source and row["gamma"] == gamma]
        draw_forgetting(ax, select("theory"), select("sgd"), key)
        ax.set_title(f"({label}) $\\gamma={gamma:g}$", fontsize=9)
        if gamma != 1.0:
            ax.set_xscale("log")
    axes[0, 0].legend(fontsize=6)
    for ax in axes[1]:  # the γ = 0.1 panels: their own legend when they mark RS-unstable points
        handles, labels = ax.get_legend_handles_labels()
        shown = [(h, l) for h, l in zip(handles, labels) if l.startswith("RS unstable")]
        if shown:
            ax.legend(*zip(*shown), fontsize=6)
    fig.tight_layout()
    return fig


def compute(cfg: Config) -> Computed:
    device = torch_setup(cfg)
    # finished points are kept (also after the run) in two stores, each keyed by the settings its points depend
    # on: other SGD settings keep the theory; other r₀, γ or --sgd_alpha2s keep every finished point
    stores = [PointStore(cfg.output_dir, f"{STEM}_{part}", {"numerics": NUMERICS_VERSION if part == "theory" else None,
                                                            **{key: getattr(cfg, key) for key in fields}})
              for part, fields in (("theory", THEORY_FIELDS), ("sgd", SGD_FIELDS))]
    kept = kept_sgd_rows(cfg, STEM, SGD_FIELDS) if cfg.refresh_theory else None
    reference, _ = solved_reference(cfg.alpha1, cfg.beta1, 0.0, cfg.reference_branch, cfg.tol)
    rows, task1_state, extra = run_theory(cfg, stores[0], reference), None, {}
    if kept is not None:
        rows += kept[0]
        task1_state, extra = kept[1].get("sgd_after_task1"), {"sgd_rows_from": provenance_of(kept[1])}
    elif not cfg.theory_only:
        sgd_rows, task1_state = run_sgd(cfg, stores[1], device)
        rows += sgd_rows
    return Computed({"rows": rows}, dict(agreement=agreement(rows, cfg.n), task1_reference=reference.as_row(),
                                         sgd_after_task1=task1_state, **extra,
                                         unconverged=[r for r in rows if r.get("converged") is False]),
                    device=device, columns={"rows": COLUMNS})  # the stores stay: no `stores` to close


def main(cfg: Config):
    figure_main(cfg, STEM, compute, plot)


if __name__ == "__main__":
    run(main, Config, QUICK)
