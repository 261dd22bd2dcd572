"""A chain of T tasks: forgetting curves ε_g^{s,t} from the Franz–Parisi chain, against SGD of the same chain.

Teachers form a Markov chain (teacher t overlaps teacher t − 1 by r₀, teacher s by r₀^|t−s|); every task has data
density α.  Task t ≥ 2 is learned with γ KL to the solution of task t − 1 (docs/theory.md §6).
Theory (`mean_field_theory.chain`): task 1 at inverse temperature β without prior, every later task at β with
κ = βγ and the typical solution of the previous task as reference; both branches where they coexist, the
thermodynamic one continues the chain.  ε_g^{s,t} = arccos(p_{s,t})/π of the clipped task-t student towards
teacher s.
SGD (`single_layer.task_chain` on `single_layer.perceptron`; the Fig. 3 settings): N weights, full-batch Adam
(lr 1e-3, weight decay 1e-3), task 1 for `steps1` steps without prior, every later task for `steps` steps with
γ KL(q_h ‖ q_h′), h′ = the fields at the end of the previous task.  The Fig. 3 task-2 runs settle within 10 000 of
their 20 000 steps (ε_g changes < 10⁻³ after that); `settling` in the csv is the change of the own-task ε_g over the
second half of each task.  Trials run in batches of `trials_per_point`, each batch one point of the sweep executor.

Outputs: chain_of_tasks.csv (one row per (task trained t, task evaluated s) and trial; theory rows per branch),
chain_of_tasks.json (agreement with the project's criterion, the SGD's task-1 state), chain_of_tasks.png/pdf
(forgetting curves; the theory's and the SGD's accuracy matrices 1 − ε_g^{s,t}).
Runtime: the README's figure table (the wall time its json records).
Command: python single_layer/chain_of_tasks.py --n_tasks 10 --alpha 2 --r0 0 --gamma 1 [--theory_only]
"""
from __future__ import annotations

import dataclasses

import numpy as np

from harness.command_line import run
from harness.config import bounded
from harness.devices import torch_setup
from harness.figure import Computed, figure_main
from harness.plotting import plot_by_stability, plot_style
from harness.points import sweep_store
from harness.sweep import run_points
from mean_field_theory.quadrature import NUMERICS_VERSION
from single_layer.comparison import compare, comparison_criterion, eps_g_resolution, tally
from single_layer.task_chain import ChainSGDConfig, sgd_chain, theory_rows

STEM = "chain_of_tasks"
COLUMNS = ["task_trained", "task_eval", "alpha", "r0", "gamma", "source", "seed", "eps_g", "p", "converged",
           "branch", "thermodynamic", "q", "r", "q_star", "overlap_reference", "free_entropy", "replicon", "rs_stable",
           "settling"]


# ---- hyperparameters
@dataclasses.dataclass
class Config(ChainSGDConfig):
    n_tasks: int = bounded(10, at_least=1)  # tasks in the chain (T)
    alpha: float = bounded(2.0, above=0)  # data density of every task (α)
    r0: float = bounded(0.0, at_least=-1, at_most=1)  # overlap of successive teachers (r₀)
    gamma: float = bounded(1.0, at_least=0)  # KL weight to the previous task's solution (γ)
    beta: float = bounded(20.0, above=0)  # inverse temperature of the theory, every task; κ = βγ
    theory_only: bool = False  # skip the SGD simulations


QUICK = {"n_tasks": 3, "n": 100, "trials": 2, "trials_per_point": 1, "steps1": 200, "steps": 200}


def where(cfg: Config) -> dict:
    return {"alpha": cfg.alpha, "r0": cfg.r0, "gamma": cfg.gamma}


# ---- theory against SGD
def agreement(rows: list[dict], n: int) -> dict:
    """ε_g^{s,t} of the thermodynamic theory against the SGD trials at every (t, s) (single_layer.comparison)."""
    theory = {(row["task_trained"], row["task_eval"]): row["eps_g"] for row in rows
              if row["source"] == "theory" and row["thermodynamic"] and row["converged"]}
    sgd = [row for row in rows if row["source"] == "sgd"]
    points = [compare(theory[(t, s)], [row["eps_g"] for row in sgd if (row["task_trained"], row["task_eval"]) == (t, s)],
                      eps_g_resolution(n), task_trained=t, task_eval=s)
              for t, s in sorted({(row["task_trained"], row["task_eval"]) for row in sgd}) if (t, s) in theory]
    return {"criterion": comparison_criterion(), "all": tally(points),
            "current task (s = t)": tally([p for p in points if p["task_eval"] == p["task_trained"]]),
            "earlier tasks (s < t)": tally([p for p in points if p["task_eval"] < p["task_trained"]]),
            "points": points}


def task1_states(rows: list[dict]) -> dict:
    """q⋆ and ε_g¹ after task 1: the theory's reference against the SGD's (the γ = 1 gap of Fig. 3)."""
    first = [row for row in rows if row["task_trained"] == 1 and row["task_eval"] == 1]
    theory = [row for row in first if row["source"] == "theory" and row["thermodynamic"]]
    sgd = [row for row in first if row["source"] == "sgd"]
    summary = {"theory": {key: theory[0][key] for key in ("q_star", "eps_g")} if theory else None}
    if sgd:
        summary["sgd"] = {key: {"mean": float(np.mean([row[key] for row in sgd])),
                                "sd": float(np.std([row[key] for row in sgd], ddof=1)) if len(sgd) > 1 else 0.0}
                          for key in ("q_star", "eps_g")}
    return summary


# ---- plot
def accuracy_matrix(rows: list[dict], n_tasks: int) -> np.ndarray:
    """1 − mean ε_g^{s,t} (rows t, columns s; NaN above the diagonal)."""
    matrix = np.full((n_tasks, n_tasks), np.nan)
    for t in range(1, n_tasks + 1):
        for s in range(1, t + 1):
            values = [row["eps_g"] for row in rows if (row["task_trained"], row["task_eval"]) == (t, s)]
            if values:
                matrix[t - 1, s - 1] = 1.0 - float(np.mean(values))
    return matrix


def plot(cfg: Config, tables: dict, record: dict):
    import matplotlib.pyplot as plt

    plot_style()
    rows = tables["rows"]
    theory = [row for row in rows if row["source"] == "theory" and row["thermodynamic"]]
    sgd = [row for row in rows if row["source"] == "sgd"]
    n_tasks = max(row["task_trained"] for row in rows)
    fig, axes = plt.subplots(1, 3 if sgd else 2, figsize=(13 if sgd else 9, 3.8))
    colors = plt.cm.viridis(np.linspace(0, 0.9, n_tasks))
    for s, color in zip(range(1, n_tasks + 1), colors):
        curve = [(row["task_trained"], row["eps_g"], row.get("rs_stable")) for row in theory if row["task_eval"] == s]
        if curve:
            plot_by_stability(axes[0], curve, "-", color=color, label=f"task {s}")
        samples = {t: [row["eps_g"] for row in sgd if row["task_eval"] == s and row["task_trained"] == t]
                   for t in range(s, n_tasks + 1)}
        samples = {t: values for t, values in samples.items() if values}
        if samples:
            axes[0].errorbar(list(samples), [np.mean(v) for v in samples.values()],
                             [np.std(v, ddof=1) if len(v) > 1 else 0.0 for v in samples.values()], fmt="o",
                             color=color, mfc="none", ms=3, lw=0.8)
    axes[0].set(xlabel="tasks learned $t$", ylabel=r"$\epsilon_g^{s,t}$")
    axes[0].set_title(rf"$\alpha={cfg.alpha:g}$, $r_0={cfg.r0:g}$, $\gamma={cfg.gamma:g}$; lines: theory (faded: RS "
                      r"unstable, $\lambda_R\geq 1$)" "\npoints: SGD mean ± 1 s.d.", fontsize=8)
    axes[0].legend(fontsize=6, ncol=2)
    for ax, (name, selected) in zip(axes[1:], (("theory", theory), ("SGD", sgd))):
        image = ax.imshow(accuracy_matrix(selected, n_tasks), vmin=0.5, vmax=1.0, cmap="magma",
                          extent=(0.5, n_tasks + 0.5, n_tasks + 0.5, 0.5))
        ax.set(xlabel="task evaluated $s$", ylabel="task learned $t$", title=f"{name}: $1-\\epsilon_g^{{s,t}}$")
        fig.colorbar(image, ax=ax, fraction=0.046)
    for row in theory:  # the theory's cells whose task-t solution is RS-unstable
        if row.get("rs_stable") is False:
            axes[1].text(row["task_eval"], row["task_trained"], "×", ha="center", va="center", color="w", fontsize=10)
    axes[1].set_title(r"theory: $1-\epsilon_g^{s,t}$ (×: RS unstable)")
    fig.tight_layout()
    return fig


def compute(cfg: Config) -> Computed:
    device = torch_setup(cfg)
    store = sweep_store(cfg, STEM, numerics=NUMERICS_VERSION)
    points = [("theory", theory_rows, (cfg.n_tasks, cfg.alpha, cfg.r0, cfg.gamma, cfg.beta, cfg.tol))]
    if not cfg.theory_only:
        points += cfg.sgd_points(cfg.protocol(cfg.n_tasks, cfg.alpha, cfg.r0, cfg.gamma), sgd_chain, str(device))
    results = run_points(cfg, store, points, desc="chain")
    rows = [row for key, _, _ in points for row in results[key]]
    stopped = sorted({row["task_trained"] for row in rows if row["source"] == "theory" and row["thermodynamic"]
                      and not row["converged"]})
    return Computed({"rows": rows}, dict(agreement=agreement(rows, cfg.n), task1=task1_states(rows),
                                         theory_stopped_at_task=stopped[0] if stopped else None),
                    device=device, columns={"rows": COLUMNS}, stores=[store])


def theory_stopped(tables: dict, record: dict) -> str | None:
    failed = [row["task_trained"] for row in tables["rows"] if row["source"] == "theory" and not row["converged"]]
    return (f"the theory chain did not converge at task {min(failed)}; the rows of tasks < {min(failed)} are in "
            f"{STEM}.csv") if failed else None


def main(cfg: Config):
    figure_main(cfg, STEM, compute, plot, failure=theory_stopped)


if __name__ == "__main__":
    run(main, Config, QUICK)
