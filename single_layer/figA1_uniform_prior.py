"""Appendix Fig. A1a–d — continual learning when task 1 is trained with a uniform prior (KL to h′ = 0).

(a) Task 1 alone, p₁ and ε_g vs α.  Theory: docs/theory.md eqs. 11–16 with κ₁S(m) in the single site, β₁ = κ₁ =
    100, both branches.  SGD: Adam on E(h) + KL(q_h ‖ q_0), ≤ 2000 epochs, stop at test accuracy 1; points at their
    own α (docs/original_code.md B12 absent).
(b) ε_g², (c) ε_g¹ vs α₂ for r₀ ∈ {−½, 0, ½}, α₁ = 2.  Theory: the Franz–Parisi potential (docs/theory.md §5) around
    ONE converged branch of the κ₁ = 100 task-1 solution (B2 absent), β₂ = 20, κ₂ = 20 in the saddle point and the
    observables (B11 absent).  SGD: task 1 Adam with KL to uniform, 1000 epochs, once per trial batch; task 2 Adam
    with γ KL to the task-1 fields, ≤ 3000 epochs, stop at sgn h = w².
(d) SGD only, α₁ = 1.4, r₀ = 0 (B13 absent): heavy ball, task 1 ≤ 4500 epochs, stop at sgn h = w¹; task 2 γ = 1,
    ≤ 7500 epochs.  Every SGD setting (the original's, per α or (r₀, α₂)): FigA1SGDConfig in single_layer/two_tasks.py.
Runtime: the README's figure table (the wall time its json records); the cost of the paper's sizes is in docs/scaling.md.
Points resume after an interruption; those of a --theory_only or --panels run are kept for a later run.
Command:  python single_layer/figA1_uniform_prior.py [--theory_only] [--panels a b c d] [--trials 20]
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from harness.command_line import run
from harness.config import bounded, config_dict
from harness.devices import torch_setup
from harness.errors import require
from harness.figure import Computed, figure_main
from harness.plotting import plot_style
from harness.points import PointStore
from harness.sweep import run_points
from mean_field_theory.quadrature import NUMERICS_VERSION
from mean_field_theory.task1 import sweep_task1
from single_layer.comparison import comparison_criterion, tally
from single_layer.theory_refresh import kept_sgd_rows, provenance_of
from single_layer.two_tasks import (FigA1SGDConfig, agreement_points, draw_forgetting, joint_agreement,
                                    near_reference_limit, run_sgd_points, sgd_errorbars, solved_reference, theory_curve,
                                    uniform_prior_task)
from teacher_student import n_patterns

STEM = "figA1_uniform_prior"
COLUMNS = ["panel", "alpha", "alpha2", "r0", "gamma", "source", "seed", "eps_g1", "eps_g2", "p1", "p2", "converged",
           "branch", "thermodynamic", "q", "r", "q_star", "q2", "r2", "q2_star", "T", "free_entropy",
           "replicon", "rs_stable", "epochs_trained"]
THEORY_FIELDS = ("beta1", "kappa1", "theory_alphas", "sgd_alphas", "alpha1", "reference_branch", "beta2", "gamma",
                 "r0s", "alpha2s", "tol")  # what the theory depends on (its resumable points are kept apart)
SGD_FIELDS = ("seed", "gamma", *FigA1SGDConfig.__annotations__)  # what the SGD depends on: its settings, seed and γ


# ---- hyperparameters
@dataclasses.dataclass
class Config(FigA1SGDConfig):
    panels: tuple[str, ...] = ("a", "b", "c", "d")  # panels to compute (b and c share one computation)
    beta1: float = bounded(100.0, above=0)  # inverse temperature of the task-1 theory (β₁)
    kappa1: float = bounded(100.0, at_least=0)  # weight of the uniform-prior entropy S(m) in the task-1 theory (κ₁ = β₁)
    theory_alphas: tuple[float, ...] = bounded(  # α of the panel-a theory
        tuple(round(0.1 * k, 1) for k in range(1, 25)), above=0)
    reference_branch: str = "thermodynamic"  # task-1 branch used as task-2 reference: thermodynamic | poor | good
    beta2: float = bounded(20.0, above=0)  # inverse temperature of task 2 (β₂); κ₂ = β₂γ
    gamma: float = bounded(1.0, at_least=0)  # weight of the task-2 KL term (γ)
    theory_only: bool = False  # skip the SGD simulations
    refresh_theory: bool = False  # recompute the theory, keep the SGD rows of the csv/json already in out_dir
    run_only_fields: ClassVar[tuple[str, ...]] = (*FigA1SGDConfig.run_only_fields, "refresh_theory")
    tol: float = bounded(1e-10, above=0)  # saddle-point tolerance (max |T(x) − x|)

    def validate(self):
        super().validate()
        require(self.panels and set(self.panels) <= set("abcd"), f"--panels must be among a b c d, got {self.panels}")
        require(self.reference_branch in ("thermodynamic", "poor", "good"), "--reference_branch: thermodynamic|poor|good")
        require(len({len(self.sgd_alphas), len(self.batch_sizes_a), len(self.learning_rates_a),
                     len(self.weight_decays_a)}) == 1, "--sgd_alphas and the *_a lists need equal lengths")
        require(len(self.learning_rates_bc) == len(self.batch_sizes_bc) == len(self.r0s) * len(self.alpha2s),
                "--learning_rates_bc and --batch_sizes_bc need len(r0s) × len(alpha2s) entries (r₀-major)")
        require(len(self.learning_rates_d) == len(self.batch_sizes_d) == len(self.alpha2s),
                "--learning_rates_d and --batch_sizes_d need one entry per α₂")
        require(all(n_patterns(a, self.n) >= 1 for a in (*self.sgd_alphas, *self.alpha2s, self.alpha1, self.alpha1_d)),
                "every α·N must give at least one pattern")


QUICK = {"theory_alphas": (0.5, 2.0), "sgd_alphas": (0.6, 2.0), "batch_sizes_a": (16, 32),
         "learning_rates_a": (0.005, 0.005), "weight_decays_a": (0.005, 0.0005), "epochs_a": 20, "n_test": 500,
         "r0s": (0.5,), "alpha2s": (1.0,), "learning_rates_bc": (0.005,), "batch_sizes_bc": (16,),
         "epochs1_bc": 20, "epochs2_bc": 20, "learning_rates_d": (0.001,), "batch_sizes_d": (50,), "epochs1_d": 20,
         "epochs2_d": 20, "n": 100, "trials": 2, "tol": 1e-6}


def wants(cfg: Config, panel: str) -> bool:
    return any(p in cfg.panels for p in ("b", "c")) if panel == "bc" else panel in cfg.panels


def theory_a(cfg: Config) -> list[dict]:
    """Task 1 with the uniform prior, both branches, at the theory α and the SGD α (so every SGD point has one)."""
    alphas = sorted({round(a, 10) for a in (*cfg.theory_alphas, *cfg.sgd_alphas)})
    return [{"panel": "a", "source": "theory", "seed": "", "eps_g1": row["eps_g"],
             **{key: row[key] for key in ("alpha", "p1", "converged", "branch", "thermodynamic", "q", "r", "q_star",
                                          "free_entropy", "replicon", "rs_stable")}}
            for row in sweep_task1(alphas, beta=cfg.beta1, kappa=cfg.kappa1, tol=cfg.tol)]


def run_sgd(cfg: Config, store: PointStore, device: str) -> tuple[list[dict], dict]:
    rows, state = [], {}
    if wants(cfg, "a"):
        done = run_points(cfg, store, [(f"sgd a alpha={alpha!r}", uniform_prior_task, (cfg, index, device))
                                       for index, alpha in enumerate(cfg.sgd_alphas)], desc="SGD a (alpha)")
        rows += [row for found in done.values() for row in found]
    for panel in [panel for panel in ("bc", "d") if wants(cfg, panel)]:
        protocol, points, specs = cfg.two_task_panel(panel, cfg.gamma)
        keys = [f"sgd {panel} r0={r0!r} alpha2={alpha2!r}" for r0, alpha2 in points]
        state[panel] = run_sgd_points(cfg, store, protocol, f"sgd {panel} task1", [
            (key, protocol, r0, alpha2, spec, {"panel": panel, "alpha": protocol.alpha1})
            for key, (r0, alpha2), spec in zip(keys, points, specs)], device)
        rows += [row for key in keys for row in store.get(key)]
    return rows, state


def agreement(rows: list[dict], n: int) -> dict:
    """Thermodynamic theory against the SGD trials at every SGD point of panels a–c (single_layer.comparison)."""
    task1 = [{**row, "alpha2": ""} for row in rows if row["panel"] == "a"]
    task2 = [row for row in rows if row["panel"] == "bc"]
    points = {"a_eps_g": agreement_points(task1, ("alpha",), "eps_g1", n),
              "b_eps_g2": agreement_points(task2, ("r0", "alpha2"), "eps_g2", n),
              "c_eps_g1": agreement_points(task2, ("r0", "alpha2"), "eps_g1", n)}
    # panels b–c: every point of one trial continues that trial's task-1 student; one joint test per (quantity, r₀)
    joint = {f"{name} r0={r0:g}": joint_agreement([row for row in task2 if row["r0"] == r0], ("r0", "alpha2"), key)
             for name, key in (("b_eps_g2", "eps_g2"), ("c_eps_g1", "eps_g1"))
             for r0 in sorted({row["r0"] for row in task2 if row["source"] == "sgd"})}
    return {"criterion": comparison_criterion(), "summary": {name: tally(found) for name, found in points.items()},
            "joint": joint, "points": points}


def plot(cfg: Config, tables: dict, record: dict):
    import matplotlib.pyplot as plt

    plot_style()
    rows = tables["rows"]
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.5))
    select = lambda panel, source: [r for r in rows if r["panel"] == panel and r["source"] == source]
    for key, colour, label in (("p1", "black", "p_1"), ("eps_g1", "dimgrey", r"\epsilon_g")):
        for thermodynamic, style in ((True, "o-"), (False, ":")):  # dotted: the metastable branch
            curve = sorted((r["alpha"], r[key]) for r in select("a", "theory") if r["thermodynamic"] == thermodynamic)
            if curve:
                axes[0, 0].plot(*zip(*curve), style, color=colour, mfc="none",
                                label=f"${label}$" if thermodynamic else None)
        sgd_errorbars(axes[0, 0], select("a", "sgd"), "alpha", key, color=colour, marker="s",
                      label=rf"${label}^{{\rm SGD}}$")
    axes[0, 0].set(xlabel=r"$\alpha$", title=r"(a) task 1, uniform prior ($\beta=\kappa_1=100$)")
    for axis, key, label in ((axes[0, 1], "eps_g2", "(b)"), (axes[1, 0], "eps_g1", "(c)")):
        draw_forgetting(axis, select("bc", "theory"), select("bc", "sgd"), key)
        axis.set_title(rf"{label} $\alpha_1=2$, $\gamma=1$", fontsize=9)
    for key, colour, marker in (("eps_g2", "black", "o"), ("eps_g1", "dimgrey", "s")):
        sgd_errorbars(axes[1, 1], select("d", "sgd"), "alpha2", key, color=colour, marker=marker,
                      label=r"$\epsilon_g^{%s}$ (SGD)" % key[-1])
    axes[1, 1].set(xlabel=r"$\alpha_2$", title=r"(d) SGD, $\alpha_1=1.4$, $r_0=0$")
    for axis in axes.flat:
        if axis.has_data():
            axis.legend(fontsize=6)
    fig.tight_layout()
    return fig


def compute(cfg: Config) -> Computed:
    device, settings = str(torch_setup(cfg)), config_dict(cfg)
    theory_store = PointStore(cfg.output_dir, f"{STEM}_theory", {"numerics": NUMERICS_VERSION,
                                                                 **{key: settings[key] for key in THEORY_FIELDS}})
    store = PointStore(cfg.output_dir, STEM, {key: settings[key] for key in SGD_FIELDS})
    kept = kept_sgd_rows(cfg, STEM, SGD_FIELDS) if cfg.refresh_theory else None
    rows, extra = [], {}
    if wants(cfg, "a"):
        rows += theory_store.fetch("theory a", lambda: theory_a(cfg))
    if wants(cfg, "bc"):
        reference, branch = solved_reference(cfg.alpha1, cfg.beta1, cfg.kappa1, cfg.reference_branch, cfg.tol)
        print(f"task-1 reference at alpha1={cfg.alpha1}: {branch} branch, eps_g = {reference.eps_g:.4f}")
        where = {"panel": "bc", "alpha": cfg.alpha1}
        done = run_points(cfg, theory_store, [(f"theory bc r0={r0!r}", theory_curve, (
            reference, cfg.kappa1, cfg.beta2, cfg.gamma, r0, cfg.alpha2s, cfg.tol, where)) for r0 in cfg.r0s],
            desc="theory b-c")
        rows += [row for found in done.values() for row in found]
        extra.update(task1_reference={"branch": branch, "requested": cfg.reference_branch, **reference.as_row()},
                     near_reference_limits={f"{r0:g}": near_reference_limit(reference, cfg.kappa1, cfg.beta2,
                                                                             cfg.gamma, r0) for r0 in cfg.r0s})
    if kept is not None:
        rows += kept[0]
        extra.update(sgd_after_task1=kept[1].get("sgd_after_task1"), sgd_rows_from=provenance_of(kept[1]))
    elif not cfg.theory_only:
        sgd_rows, state = run_sgd(cfg, store, device)
        rows += sgd_rows
        extra.update(sgd_after_task1=state)
    comparison = agreement(rows, cfg.n)
    print("; ".join(f"{name}: {text}" for name, text in comparison["summary"].items()))
    complete = set(cfg.panels) == set("abcd") and not cfg.theory_only  # else keep the points for a later run
    return Computed({"rows": rows}, dict(
        seeds=[cfg.seed + trial for trial in range(cfg.trials)], kappa2=cfg.beta2 * cfg.gamma, **extra,
        agreement=comparison, summary=comparison["summary"], unconverged=[r for r in rows if r.get("converged") is False]),
        device=device, columns={"rows": COLUMNS}, stores=[theory_store, store] if complete else [])


def main(cfg: Config) -> None:
    figure_main(cfg, STEM, compute, plot)


if __name__ == "__main__":
    run(main, Config, QUICK)
