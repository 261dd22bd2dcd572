"""Beyond the paper — the second task's Gibbs measure sampled at finite N against its Franz–Parisi RS solution.

The measure of task 2 (docs/theory.md §5) is eq. 9 on the task-2 data with the KL term γ KL(m‖m′) to a reference
m′ that is an equilibrium sample of task 1 (κ₂ = β₂γ; `mean_field_theory.gibbs_sampler`, whose measure has this term).
Per instance (teacher–student instance k = SGD trial k of Fig. 3: `teacher_student.sample_trials`, teachers overlapping
r₀): (1) the task-1 measure at (α₁, β₁) is sampled by tempered HMC and the last state of its first replica is taken
as m′; (2) the task-2 measure at (α₂, β₂, γ) with that m′ is sampled, all replicas sharing it (so that the overlap of
two replicas is the Franz–Parisi q₂).  Both runs must pass the sampler's equilibration test (R̂ between random and
teacher-near starts, effective sample size); a point that does not is drawn hollow and makes the script exit 3.

Axes: x = α₂; y = ε_g² of sgn m on task 2, ε_g¹ on task 1, and the overlap q₂ of two task-2 replicas, per γ.  Lines:
the thermodynamic Franz–Parisi RS solution (`franz_parisi.Task2Problem`, reference: the task-1 RS solution at
(α₁, β₁)); faded where its replicon λ_R ≥ 1 (RS unstable).  Points: mean over instances ± 1 s.e. over instances.
The default points test RS where it is stable (γ = 1, α₂ = 2 and 4: λ_R ≪ 1) and where it is not (γ = 0.1,
α₂ = 1: λ_R ≈ 3.9 in the committed Fig. 3).

Runtime: two sampler runs per point, each ∝ instances · replicas · rungs · N · P · (warmup + sweeps) · leapfrog;
the README's figure table (the wall time its json records).
Command: python mean_field_theory/gibbs_task2.py
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from harness.command_line import run
from harness.config import bounded
from harness.errors import require
from harness.figure import Computed, figure_main
from harness.plotting import plot_by_stability, plot_style
from harness.sweep import SweepConfig, sweep
from mean_field_theory import gibbs_sampler
from mean_field_theory.franz_parisi import Task2Problem
from mean_field_theory.task1 import task1_reference
from teacher_student import n_patterns, sample_trials

STEM = "gibbs_task2"
OBSERVABLES = {"eps_g2": "eps_g", "eps_g1": "eps_g_other", "q2": "q", "q2_star": "q_star", "r2": "r"}  # csv: run


# ---- hyperparameters
@dataclasses.dataclass
class Config(SweepConfig):
    alpha1: float = bounded(2.0, above=0)  # data density of task 1 (α₁, Fig. 3)
    beta1: float = bounded(20.0, above=0)  # inverse temperature of the task-1 measure that m′ is drawn from (β₁)
    beta2: float = bounded(20.0, above=0)  # inverse temperature of the task-2 measure (β₂)
    r0: float = bounded(0.0, at_least=-1, at_most=1)  # overlap of the two teachers (r₀)
    gammas: tuple[float, ...] = bounded((1.0, 1.0, 0.1), at_least=0)  # KL weight γ of each sampled point
    alpha2s: tuple[float, ...] = bounded(  # data density α₂ of each sampled point (paired with --gammas)
        (2.0, 4.0, 1.0), above=0)
    n: int = bounded(100, at_least=2)  # system size N
    instances: int = bounded(4, at_least=2)  # teacher–student instances per point (seed + k)
    replicas: int = bounded(4, at_least=2)  # chains per instance: half from random starts, half near the teacher
    sweeps: int = bounded(2000, at_least=1)  # recorded HMC sweeps of each run
    warmup: int = bounded(1000, at_least=0)  # sweeps before recording (step sizes tuned, then frozen)
    leapfrog: int = bounded(10, at_least=1)  # leapfrog steps per proposal
    beta_min: float = bounded(5.0, above=0)  # hottest rung of the tempering ladders
    rungs_per_unit: float = bounded(  # tempering rungs per unit of ln(β/β_min)·√N (gibbs_sampler.rung_count)
        0.75, at_least=0)
    thin: int = bounded(2, at_least=1)  # record every thin-th sweep
    theory_points: int = bounded(30, at_least=2)  # α₂ grid of the RS curves per γ (plus the sampled α₂)

    def validate(self):
        super().validate()
        require(len(self.gammas) == len(self.alpha2s) > 0, "--gammas and --alpha2s: equal, nonzero lengths")
        require(min(n_patterns(a, self.n) for a in (self.alpha1, *self.alpha2s)) >= 1, "every α·N must be >= 1")
        require(self.replicas % 2 == 0, f"--replicas must be even and >= 2: {self.replicas}")


QUICK = {"beta1": 5.0, "beta2": 5.0, "gammas": (1.0,), "alpha2s": (1.0,), "n": 30, "instances": 2, "replicas": 2,
         "sweeps": 100, "warmup": 50, "leapfrog": 5, "thin": 1, "theory_points": 4}


def schedule(cfg: Config, beta: float) -> gibbs_sampler.Schedule:
    rungs = gibbs_sampler.rung_count(beta, cfg.beta_min, cfg.rungs_per_unit, cfg.n)
    return gibbs_sampler.Schedule(cfg.sweeps, cfg.warmup, cfg.leapfrog, rungs, min(cfg.beta_min, beta), cfg.replicas,
                                  cfg.thin)


def point(cfg: Config, gamma: float, alpha2: float) -> list[dict]:
    """One (γ, α₂): task 1 sampled for the references m′, then task 2 with them; means ± s.e. and diagnostics."""
    _, (task1, task2) = sample_trials(cfg.instances, cfg.n, [cfg.alpha1, alpha2], r0=cfg.r0, seed=cfg.seed,
                                      dtype=gibbs_sampler.DTYPE)
    first = gibbs_sampler.sample(gibbs_sampler.Measure(task1.inputs, task1.labels), task1.teacher, cfg.beta1,
                                 schedule(cfg, cfg.beta1), cfg.seed)
    reference = torch.tanh(first.last[:, :1, -1])  # (D, 1, N): one task-1 sample per instance, shared by the replicas
    measure = gibbs_sampler.Measure(task2.inputs, task2.labels, reference=reference, gamma=gamma)
    second = gibbs_sampler.sample(measure, task2.teacher, cfg.beta2, schedule(cfg, cfg.beta2), cfg.seed + 1,
                                  other_teacher=task1.teacher)
    checks = {"task1": gibbs_sampler.diagnostics(first), "task2": gibbs_sampler.diagnostics(second)}
    sampled, reference_state = gibbs_sampler.summary(second), gibbs_sampler.summary(first)
    row = {"source": "mcmc", "gamma": gamma, "alpha2": alpha2, "n": cfg.n,
           **{name: sampled[key] for name, key in OBSERVABLES.items()},
           **{f"{name}_se": sampled[f"{key}_se"] for name, key in OBSERVABLES.items()},
           "task1_eps_g": reference_state["eps_g"], "task1_q_star": reference_state["q_star"],
           "equilibrated": checks["task1"]["equilibrated"] and checks["task2"]["equilibrated"]}
    return [{**row, "diagnostics": checks}]


def theory_rows(cfg: Config) -> list[dict]:
    """The Franz–Parisi RS solution (both branches) along α₂ for every sampled γ."""
    reference, _ = task1_reference(cfg.alpha1, cfg.beta1)
    rows = []
    for gamma in sorted(set(cfg.gammas)):
        sampled = [a for g, a in zip(cfg.gammas, cfg.alpha2s) if g == gamma]
        grid = sorted({*np.round(np.linspace(0.1, max(sampled) + 1.0, cfg.theory_points), 4), *sampled})
        for row in Task2Problem(reference, cfg.r0, gamma, cfg.beta2).sweep([float(a) for a in grid]):
            rows.append({"source": "rs", "gamma": gamma, "alpha2": row["alpha"], "n": "", "eps_g1": row["eps_g1"],
                         "eps_g2": row["eps_g2"], "q2": row["q"], "q2_star": row["q_star"], "r2": row["r"],
                         "branch": row["branch"], "thermodynamic": row["thermodynamic"],
                         "replicon": row["replicon"], "rs_stable": row["rs_stable"], "converged": row["converged"]})
    return rows


def agreement(rows: list[dict]) -> list[dict]:
    """Per sampled point: the RS value at that α₂ against the sampled mean, in units of its s.e., and RS stability."""
    result = []
    for row in (r for r in rows if r["source"] == "mcmc"):
        theory = next(r for r in rows if r["source"] == "rs" and r["thermodynamic"] and r["gamma"] == row["gamma"]
                      and r["alpha2"] == row["alpha2"])
        result.append({"gamma": row["gamma"], "alpha2": row["alpha2"], "rs_stable": theory["rs_stable"],
                       "replicon": theory["replicon"], "equilibrated": row["equilibrated"],
                       **{name: {"rs": theory[name], "mcmc": row[name], "se": row[f"{name}_se"],
                                 "gap_in_se": (theory[name] - row[name]) / row[f"{name}_se"]}
                          for name in ("eps_g2", "eps_g1", "q2")}})
    return result


# ---- plot
def plot(cfg: Config, tables: dict, record: dict):
    import matplotlib.pyplot as plt

    plot_style()
    rows = tables["rows"]
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.8))
    gammas = sorted({row["gamma"] for row in rows if row["source"] == "mcmc"}, reverse=True)
    colors = dict(zip(gammas, ("tab:blue", "tab:red", "tab:green", "tab:purple")))
    for ax, name, label in zip(axes, ("eps_g2", "eps_g1", "q2"), (r"$\epsilon_g^2$", r"$\epsilon_g^1$",
                                                                  r"overlap $q_2$ of two task-2 replicas")):
        for gamma in gammas:
            theory = [r for r in rows if r["source"] == "rs" and r["gamma"] == gamma and r["thermodynamic"]]
            plot_by_stability(ax, [(r["alpha2"], r[name], r["rs_stable"]) for r in theory], "-", color=colors[gamma],
                              label=rf"RS, $\gamma={gamma:g}$ (faded: $\lambda_R \geq 1$)")
            for equilibrated in (True, False):
                part = [r for r in rows if r["source"] == "mcmc" and r["gamma"] == gamma
                        and r["equilibrated"] == equilibrated]
                if part:
                    ax.errorbar([r["alpha2"] for r in part], [r[name] for r in part],
                                yerr=[r[f"{name}_se"] for r in part], fmt="o", color=colors[gamma],
                                mfc=None if equilibrated else "none", ms=4,
                                label=f"MCMC N={part[0]['n']}, $\\gamma={gamma:g}$ (± 1 s.e. over instances"
                                      + (")" if equilibrated else ", not equilibrated)"))
        ax.set(xlabel=r"$\alpha_2$", ylabel=label)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def compute(cfg: Config) -> Computed:
    theory = theory_rows(cfg)
    points = [(f"gamma={gamma!r} alpha2={alpha2!r}", point, (cfg, gamma, alpha2))
              for gamma, alpha2 in zip(cfg.gammas, cfg.alpha2s)]
    mcmc, store = sweep(cfg, STEM, points, desc="(gamma, alpha2)")
    details = {f"gamma={row['gamma']:g} alpha2={row['alpha2']:g}": row.pop("diagnostics") for row in mcmc}
    return Computed({"rows": theory + mcmc}, dict(agreement=agreement(theory + mcmc), points=details), stores=[store])


def not_equilibrated(tables: dict, record: dict) -> str | None:
    failing = [key for key, value in record["points"].items()
               if not (value["task1"]["equilibrated"] and value["task2"]["equilibrated"])]
    return (f"not equilibrated by its own criterion at {failing} (rows kept, equilibrated=False; reasons in "
            f"{STEM}.json)" if failing else None)


def main(cfg: Config):
    figure_main(cfg, STEM, compute, plot, failure=not_equilibrated)


if __name__ == "__main__":
    run(main, Config, QUICK)
