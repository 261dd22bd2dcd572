"""Fig. 3 diagnostic — the γ = 1 forgetting gap with a task-1 reference matched to the SGD's task-1 state.

SGD starts task 2 from what its task-1 training reached: at N = 500–1000 a less confident and less accurate
state (q⋆ ≈ 0.95–0.96, ε_g¹ ≈ 0.02–0.03) than the β₁ = 20 thermodynamic reference of the theory (q⋆ = 0.978,
ε_g = 0.0013).  The direct test: the same Franz–Parisi theory (docs/theory.md §5, β₂ = 20, γ = 1) with the task-1
reference at the β₁ whose q⋆ equals the SGD's (found by root finding; one matched number), compared with the SGD
points of a finished Fig. 3 run.  The SGD's task-1 state (`sgd_after_task1`) comes from `--state_run`: by default the
same Fig. 3 run (its own task-1 students); another run that records such a state (e.g. a finite-size run) may be
named instead.  The reference's ε_g is a prediction (not matched) to set against the SGD's task-1 ε_g.
Outputs: fig3_matched_reference.csv (theory rows of both references at the SGD points), .json (β₁, both
references, agreement of each with the SGD points by single_layer.comparison), .png/.pdf.
Runtime: the README's figure table (the wall time its json records).
Command: python single_layer/fig3_matched_reference.py [--sgd_run figures/fig3_second_task
         --state_run figures/fig3_second_task]
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import scipy.optimize
from tqdm import tqdm

from harness.command_line import run
from harness.config import BaseConfig, bounded
from harness.errors import SolverError, require
from harness.figure import Computed, figure_main
from harness.outputs import read_csv, read_json
from harness.paths import REPO_ROOT
from harness.plotting import plot_style
from mean_field_theory.franz_parisi import Task2Problem
from mean_field_theory.task1 import task1_reference
from single_layer.comparison import compare, eps_g_resolution, tally

STEM = "fig3_matched_reference"
COLUMNS = ["reference", "beta1", "r0", "alpha2", "eps_g1", "eps_g2", "converged", "replicon", "rs_stable"]


# ---- hyperparameters
@dataclasses.dataclass
class Config(BaseConfig):
    sgd_run: str = "figures/fig3_second_task"  # csv/json stem of the Fig. 3 run whose γ = 1 SGD points are compared
    state_run: str = "figures/fig3_second_task"  # json stem with the SGD's task-1 state
    alpha1: float = bounded(2.0, above=0)  # data density of task 1 (α₁)
    beta1: float = bounded(20.0, above=0)  # inverse temperature of the original reference (β₁)
    beta2: float = bounded(20.0, above=0)  # inverse temperature of task 2 (β₂)
    gamma: float = bounded(1.0, at_least=0)  # KL weight of task 2 (γ)
    r0s: tuple[float, ...] = ()  # compare only at these r₀ (empty: every r₀ of the SGD run)
    alpha2s: tuple[float, ...] = ()  # compare only at these α₂ (empty: every SGD α₂)

    def validate(self):
        super().validate()
        for stem in (self.sgd_run, self.state_run):
            require((REPO_ROOT / f"{stem}.json").exists() or Path(f"{stem}.json").exists(),
                    f"{stem}.json does not exist (run single_layer/fig3_second_task.py first)")


QUICK = {"r0s": (0.0,), "alpha2s": (3.0,)}


def locate(stem: str) -> Path:
    return REPO_ROOT / stem if (REPO_ROOT / f"{stem}.json").exists() else Path(stem)


def sgd_points(cfg: Config) -> list[dict]:
    """The SGD rows of the Fig. 3 run --sgd_run at --gamma and the selected r₀, α₂ (the plot reads them too)."""
    return [row for row in read_csv(Path(f"{locate(cfg.sgd_run)}.csv")) if row["source"] == "sgd"
            and row["gamma"] == cfg.gamma and (not cfg.r0s or row["r0"] in cfg.r0s)
            and (not cfg.alpha2s or row["alpha2"] in cfg.alpha2s)]


def matched_beta(cfg: Config, target_q_star: float) -> float:
    """β₁ at which the thermodynamic task-1 solution at α₁ has q⋆ = target (q⋆ grows with β₁)."""
    def gap(log_beta):
        solution, _ = task1_reference(cfg.alpha1, float(np.exp(log_beta)))
        return solution.q_star - target_q_star

    return float(np.exp(scipy.optimize.brentq(gap, np.log(2.0), np.log(cfg.beta1), xtol=1e-5)))


def theory_points(cfg: Config, reference, label: str, beta1: float, points) -> list[dict]:
    rows = []
    for r0 in tqdm(sorted({r0 for r0, _ in points}), desc=f"{label} reference"):
        alpha2s = sorted(alpha2 for point_r0, alpha2 in points if point_r0 == r0)
        for row in Task2Problem(reference, r0, cfg.gamma, cfg.beta2).sweep(alpha2s):
            if row["thermodynamic"]:
                rows.append({"reference": label, "beta1": beta1, "r0": r0, "alpha2": row["alpha"],
                             "eps_g1": row["eps_g1"], "eps_g2": row["eps_g2"], "converged": row["converged"],
                             "replicon": row["replicon"], "rs_stable": row["rs_stable"]})
    return rows


def agreement(theory: list[dict], sgd: list[dict], n: int) -> dict:
    result = {}
    for label in ("original", "matched"):
        for key in ("eps_g1", "eps_g2"):
            points = [compare(row[key], [s[key] for s in sgd if (s["r0"], s["alpha2"]) == (row["r0"], row["alpha2"])],
                              eps_g_resolution(n), r0=row["r0"], alpha2=row["alpha2"])
                      for row in theory if row["reference"] == label]
            result[f"{label} {key}"] = {"summary": tally(points), "points": points}
    return result


def jump_pieces(points: list[tuple[float, float, float]]) -> tuple[list[list[tuple]], list[tuple[float, float]]]:
    """A theory curve at the SGD α₂, points (α₂, value, ε_g²), cut where task 2 jumps to perfect learning (ε_g² from
    above 0.02 to below 0.005 between neighbours): the pieces to draw, and the α₂ intervals that hold a jump (its
    place inside them is not located here; fig3_second_task locates it for the original reference)."""
    pieces, jumps = [[points[0]]], []
    for before, after in zip(points, points[1:]):
        if before[2] > 0.02 and after[2] < 0.005:
            pieces.append([])
            jumps.append((before[0], after[0]))
        pieces[-1].append(after)
    return pieces, jumps


def plot(cfg: Config, tables: dict, record: dict):
    import matplotlib.pyplot as plt

    plot_style()
    rows, sgd = tables["rows"], sgd_points(cfg)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    colors = {-0.5: "red", 0.0: "blue", 0.5: "black"}
    for ax, key in zip(axes, ("eps_g2", "eps_g1")):
        for r0, color in colors.items():
            for label, style in (("original", ":"), ("matched", "-")):
                points = sorted((row["alpha2"], row[key], row["eps_g2"]) for row in rows
                                if row["reference"] == label and row["r0"] == r0)
                if not points:
                    continue
                pieces, jumps = jump_pieces(points)
                for index, piece in enumerate(pieces):
                    ax.plot([p[0] for p in piece], [p[1] for p in piece], style, color=color,
                            label=f"{label} reference, $r_0={r0:g}$" if index == 0 else None)
                for low, high in jumps if label == "matched" else ():
                    ax.axvspan(low, high, color=color, alpha=0.08, lw=0)
            alphas = sorted({s["alpha2"] for s in sgd if s["r0"] == r0})
            values = [[s[key] for s in sgd if s["r0"] == r0 and s["alpha2"] == a] for a in alphas]
            if alphas:
                ax.errorbar(alphas, [np.mean(v) for v in values], [np.std(v, ddof=1) for v in values], fmt="o",
                            color=color, mfc="none", ms=3)
        ax.set(xlabel=r"$\alpha_2$", ylabel=rf"$\epsilon_g^{key[-1]}$")
    fig.suptitle(r"$\gamma = 1$; points: SGD mean ± 1 s.d. over trials; lines: theory at the SGD $\alpha_2$, cut at "
                 "a jump (shaded: the interval that holds the matched theory's jump, not located)", fontsize=8)
    axes[1].legend(fontsize=6)
    return fig


def compute(cfg: Config) -> Computed:
    sgd = sgd_points(cfg)
    state = read_json(Path(f"{locate(cfg.state_run)}.json")).get("sgd_after_task1")
    if not state:
        raise SolverError(f"{cfg.state_run}.json records no SGD task-1 state (sgd_after_task1)")
    points = sorted({(row["r0"], row["alpha2"]) for row in sgd})
    original, _ = task1_reference(cfg.alpha1, cfg.beta1)
    beta1 = matched_beta(cfg, state["q_star"]["mean"])
    matched, _ = task1_reference(cfg.alpha1, beta1)
    rows = theory_points(cfg, original, "original", cfg.beta1, points) + \
        theory_points(cfg, matched, "matched", beta1, points)
    n = read_json(Path(f"{locate(cfg.sgd_run)}.json"))["config"]["n"]
    return Computed({"rows": rows}, dict(
        sgd_task1_state=state, matched_beta1=beta1,
        references={label: {"beta1": solution_beta, "q_star": solution.q_star, "eps_g": solution.eps_g}
                    for label, solution, solution_beta in (("original", original, cfg.beta1),
                                                           ("matched", matched, beta1))},
        agreement=agreement(rows, sgd, n)), columns={"rows": COLUMNS})


def main(cfg: Config):
    figure_main(cfg, STEM, compute, plot)


if __name__ == "__main__":
    run(main, Config, QUICK)
