"""The retention–plasticity trade-off of a chain of tasks: how strong should the prior be?

After T tasks (teachers a Markov chain with successive overlap r₀, every task at data density α), the mean
generalization error over all tasks, ε̄ = (1/T) Σ_s ε_g^{s,T}, as a function of the KL weight γ: a weak prior
learns each new task well and forgets the old ones, a strong prior keeps the old ones and learns the new one badly.
Theory: `mean_field_theory.chain` (β, κ = βγ) along a γ grid for every (α, r₀); the γ minimising ε̄ on the grid,
refined by a parabola through the grid minimum and its neighbours.  SGD: the chain protocol of
`single_layer/chain_of_tasks.py` (`single_layer.task_chain`: full-batch Adam, KL to the fields at the end of the
previous task) at a few γ for one (α, r₀), compared with the theory's ε̄ by the project's criterion.

Outputs: chain_tradeoff.csv (alpha, r0, gamma, source, seed, mean_eps_g, eps_g_first, eps_g_last, converged),
chain_tradeoff.json (best γ per (α, r₀), agreement), chain_tradeoff.png/pdf.
Runtime: the README's figure table (the wall time its json records).
Command: python single_layer/chain_tradeoff.py [--theory_only]
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
from single_layer.task_chain import ChainProtocol, ChainSGDConfig, sgd_chain, theory_rows

STEM = "chain_tradeoff"
COLUMNS = ["alpha", "r0", "gamma", "source", "seed", "mean_eps_g", "eps_g_first", "eps_g_last", "converged",
           "replicon", "rs_stable"]


# ---- hyperparameters
@dataclasses.dataclass
class Config(ChainSGDConfig):
    n_tasks: int = bounded(5, at_least=1)  # tasks in the chain (T)
    alphas: tuple[float, ...] = bounded((1.0, 2.0, 4.0), above=0)  # data densities (α, every task)
    r0s: tuple[float, ...] = bounded((0.0, 0.5), at_least=-1, at_most=1)  # overlaps of successive teachers (r₀)
    gammas: tuple[float, ...] = bounded(  # KL weights of the theory
        (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0), at_least=0)
    beta: float = bounded(20.0, above=0)  # inverse temperature of the theory; κ = βγ
    theory_only: bool = False  # skip the SGD simulations
    sgd_alpha: float = bounded(2.0, above=0)  # α of the SGD runs
    sgd_r0: float = bounded(0.5, at_least=-1, at_most=1)  # r₀ of the SGD runs
    sgd_gammas: tuple[float, ...] = bounded((0.1, 0.5, 1.0, 2.0), at_least=0)  # γ of the SGD runs


QUICK = {"n_tasks": 2, "alphas": (2.0,), "r0s": (0.5,), "gammas": (1.0,), "sgd_gammas": (1.0,), "n": 100,
         "trials": 2, "trials_per_point": 2, "steps1": 200, "steps": 200}


def final_row(rows: list[dict], n_tasks: int, **extra) -> dict:
    """ε̄ after the last task, with ε_g^{1,T} and ε_g^{T,T}, from one chain's (t, s) rows (one trial or theory)."""
    last = sorted((row for row in rows if row["task_trained"] == n_tasks), key=lambda row: row["task_eval"])
    return {"alpha": rows[0]["alpha"], "r0": rows[0]["r0"], "gamma": rows[0]["gamma"], **extra,
            "mean_eps_g": float(np.mean([row["eps_g"] for row in last])) if last else float("nan"),
            "eps_g_first": last[0]["eps_g"] if last else float("nan"),
            "eps_g_last": last[-1]["eps_g"] if last else float("nan"), "converged": len(last) == n_tasks}


def theory_point(n_tasks: int, alpha: float, r0: float, gamma: float, beta: float, tol: float) -> list[dict]:
    rows = [row for row in theory_rows(n_tasks, alpha, r0, gamma, beta, tol) if row["thermodynamic"]]
    replicon = max(row["replicon"] for row in rows)  # the least stable task of the chain
    return [final_row([row for row in rows if row["converged"]] or rows, n_tasks, source="theory", seed="",
                      replicon=replicon, rs_stable=replicon < 1.0)]


def sgd_point(protocol: ChainProtocol, seed: int, n_trials: int, device: str) -> list[dict]:
    rows = sgd_chain(protocol, seed, n_trials, device)
    return [final_row([row for row in rows if row["seed"] == seed + k], protocol.n_tasks, source="sgd",
                      seed=seed + k) for k in range(n_trials)]


def best_gamma(rows: list[dict]) -> dict:
    """Per (α, r₀): the grid γ with the smallest theory ε̄, refined by a parabola through it and its neighbours."""
    found = {}
    for alpha, r0 in sorted({(row["alpha"], row["r0"]) for row in rows}):
        curve = sorted((row["gamma"], row["mean_eps_g"]) for row in rows
                       if (row["alpha"], row["r0"]) == (alpha, r0) and row["converged"])
        if not curve:
            continue
        gammas, values = np.array(curve).T
        k = int(np.argmin(values))
        refined = float(gammas[k])
        if 0 < k < len(gammas) - 1:
            a, b, _ = np.polyfit(gammas[k - 1:k + 2], values[k - 1:k + 2], 2)
            refined = float(-b / (2 * a)) if a > 0 else refined
        found[f"alpha={alpha:g} r0={r0:g}"] = {
            "gamma_grid_minimum": float(gammas[k]), "gamma_refined": refined, "mean_eps_g_minimum": float(values[k]),
            "at_edge_of_grid": k in (0, len(gammas) - 1),
            "mean_eps_g_without_prior": float(values[0]) if gammas[0] == 0 else None}
    return found


def agreement(theory: list[dict], sgd: list[dict], n: int) -> dict:
    by_point = {(row["alpha"], row["r0"], row["gamma"]): row for row in theory}
    points = []
    for key in sorted({(row["alpha"], row["r0"], row["gamma"]) for row in sgd}):
        if key in by_point:
            for quantity in ("mean_eps_g", "eps_g_first", "eps_g_last"):
                samples = [row[quantity] for row in sgd if (row["alpha"], row["r0"], row["gamma"]) == key]
                points.append(compare(by_point[key][quantity], samples, eps_g_resolution(n), alpha=key[0], r0=key[1],
                                      gamma=key[2], quantity=quantity))
    return {"criterion": comparison_criterion(), "all": tally(points),
            "mean_eps_g": tally([p for p in points if p["quantity"] == "mean_eps_g"]), "points": points}


# ---- plot
def plot(cfg: Config, tables: dict, record: dict):
    import matplotlib.pyplot as plt

    plot_style()
    rows = tables["rows"]
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.8))
    theory = [row for row in rows if row["source"] == "theory" and row["converged"]]
    sgd = [row for row in rows if row["source"] == "sgd"]
    pairs = sorted({(row["alpha"], row["r0"]) for row in theory})
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(pairs)))
    for (alpha, r0), color in zip(pairs, colors):
        curve = [(row["gamma"], row["mean_eps_g"], row.get("rs_stable")) for row in theory
                 if (row["alpha"], row["r0"]) == (alpha, r0)]
        plot_by_stability(axes[0], curve, "-o", ms=3, color=color, label=rf"$\alpha={alpha:g}$, $r_0={r0:g}$")
    quantities = (("mean_eps_g", "o"), ("eps_g_first", "v"), ("eps_g_last", "^"))
    for quantity_index, (quantity, marker) in enumerate(quantities):
        curve = [(row["gamma"], row[quantity], row.get("rs_stable")) for row in theory
                 if (row["alpha"], row["r0"]) == (cfg.sgd_alpha, cfg.sgd_r0)]
        if curve:
            plot_by_stability(axes[1], curve, "-", marker=marker, ms=3, mfc="none", color=f"C{quantity_index}",
                              label=f"theory {quantity}")
        gammas = sorted({row["gamma"] for row in sgd})
        samples = [[row[quantity] for row in sgd if row["gamma"] == gamma] for gamma in gammas]
        if gammas:
            axes[1].errorbar(gammas, [np.mean(s) for s in samples], [np.std(s, ddof=1) if len(s) > 1 else 0.0
                                                                    for s in samples], fmt=marker, color="k", ms=4,
                             label=f"SGD {quantity} (mean ± 1 s.d.)")
    axes[0].set(xlabel=r"$\gamma$", ylabel=rf"$\bar\epsilon_g$ after {cfg.n_tasks} tasks",
                title="theory: mean error over all tasks\n(faded: a task of the chain RS unstable)")
    axes[1].set(xlabel=r"$\gamma$", ylabel=r"$\epsilon_g$ after the last task",
                title=rf"$\alpha={cfg.sgd_alpha:g}$, $r_0={cfg.sgd_r0:g}$: theory vs SGD")
    for ax in (ax for ax in axes if ax.get_legend_handles_labels()[0]):
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def compute(cfg: Config) -> Computed:
    device = torch_setup(cfg)
    store = sweep_store(cfg, STEM, numerics=NUMERICS_VERSION)
    points = [(f"theory alpha={alpha!r} r0={r0!r} gamma={gamma!r}", theory_point,
               (cfg.n_tasks, alpha, r0, gamma, cfg.beta, cfg.tol))
              for alpha in cfg.alphas for r0 in cfg.r0s for gamma in cfg.gammas]
    points += [(f"theory alpha={cfg.sgd_alpha!r} r0={cfg.sgd_r0!r} gamma={gamma!r}", theory_point,
                (cfg.n_tasks, cfg.sgd_alpha, cfg.sgd_r0, gamma, cfg.beta, cfg.tol)) for gamma in cfg.sgd_gammas
               if not (cfg.sgd_alpha in cfg.alphas and cfg.sgd_r0 in cfg.r0s and gamma in cfg.gammas)]
    if not cfg.theory_only:
        for gamma in cfg.sgd_gammas:
            points += cfg.sgd_points(cfg.protocol(cfg.n_tasks, cfg.sgd_alpha, cfg.sgd_r0, gamma), sgd_point,
                                     str(device), f"sgd gamma={gamma!r}")
    results = run_points(cfg, store, points, desc="chains")
    rows = [row for key, _, _ in points for row in results[key]]
    theory = [row for row in rows if row["source"] == "theory"]
    return Computed({"rows": rows}, dict(
        best_gamma=best_gamma([row for row in theory if row["alpha"] in cfg.alphas and row["r0"] in cfg.r0s]),
        agreement=agreement(theory, [row for row in rows if row["source"] == "sgd"], cfg.n),
        unconverged=[row for row in theory if not row["converged"]]),
        device=device, columns={"rows": COLUMNS}, stores=[store])


def unfinished(tables: dict, record: dict) -> str | None:
    unconverged = sorted({(row["alpha"], row["r0"], row["gamma"]) for row in tables["rows"]
                          if row["source"] == "theory" and not row["converged"]})
    return (f"the theory chain did not reach its last task at (alpha, r0, gamma) = {unconverged}; "
            f"its mean is over the tasks solved (csv: converged = False)") if unconverged else None


def main(cfg: Config):
    figure_main(cfg, STEM, compute, plot, failure=unfinished)


if __name__ == "__main__":
    run(main, Config, QUICK)
