"""Beyond the paper — why the tempered chains of eq. 9 at β = 20, α ≥ 1 do not meet: the valleys of one instance.

Two stages per N, on the instances of `gibbs_vs_theory` (teacher–student instance k = SGD trial k):
1. The tempered HMC of `gibbs_vs_theory` (β ladder from beta_min to β): per ladder (one per replica; half started at
   random, half near the teacher) the means at the target β of A, q⋆ = m·m/N, r = m·w/N and ε_g, the mean A of the
   next-hotter rung, and the ladder's round trips (a configuration travelling hottest → coldest → hottest rung).
2. Umbrella windows in q⋆ at the target β: rung k of a ladder adds −(κN/2)(q⋆ − c_k)² (centres c_k evenly over
   `q_star_range`, κ = 1/(N·spacing²): a window's q⋆ spread is one spacing), configurations of adjacent windows are
   exchanged (Hamiltonian replica exchange), every window of a ladder starts from that ladder's last configuration at
   the target β of stage 1.  If q⋆ were the coordinate that separates the states, ladders from different states would
   give one curve A(q⋆); two curves mean the states differ in directions q⋆ does not see.
3. Population annealing (`gibbs_sampler.anneal`) from beta_min to β, `annealing_runs` independent populations per
   instance, nothing started near the teacher: which valley the Boltzmann weights select, the population's means,
   its effective number of families, ln Z(β)/Z(beta_min), and the overlap q of configurations from two
   independent populations (the replica overlap of the measure).

Axes: left, for the instance whose ladders disagree most (largest R̂ of A in stage 1): mean A in each window against
the window's mean q⋆, one line per ladder (solid: random start, dashed: teacher-near start), stage 1's
unrestrained (q⋆, A) of each ladder (large markers) and 200 configurations of each annealed population (dots); right, the flow fraction f_k (the share of configurations at rung
k that last visited the hottest rung; falls from 1 to 0 on a working ladder) against β, per N.  The csv has one row per
ladder (`source` = "ladder"), per ladder and window (`source` = "window") and per instance and annealing run
(`source` = "annealing"); the json the diagnostics of the stages and the plotted configurations.
No exit 3 for chains that do not meet: showing where and how they do not is the purpose of this script.

Runtime: stage 1 as a `gibbs_vs_theory` point of the same N, stages 2 and 3 about as long again each; the committed
run is the
default (N = 100 and 200), its wall time in the README's figure table (from its json).
Command: python mean_field_theory/gibbs_valleys.py
"""
from __future__ import annotations

import dataclasses

import numpy as np

from harness.command_line import run
from harness.config import bounded
from harness.errors import require
from harness.figure import Computed, figure_main
from harness.plotting import plot_style
from harness.sweep import SweepConfig, sweep
from mean_field_theory import gibbs_sampler
from teacher_student import n_patterns

STEM = "gibbs_valleys"


# ---- hyperparameters
@dataclasses.dataclass
class Config(SweepConfig):
    beta: float = bounded(20.0, above=0)  # inverse temperature of eq. 9 (β)
    alpha: float = bounded(1.0, above=0)  # data density α
    ns: tuple[int, ...] = bounded((100, 200), at_least=2)  # system sizes N
    instances: int = bounded(4, at_least=2)  # teacher–student instances (seed + k, as SGD trial k)
    replicas: int = bounded(4, at_least=2)  # ladders per instance: half from random starts, half near the teacher
    sweeps: int = bounded(3000, at_least=1)  # recorded HMC sweeps of stage 1
    warmup: int = bounded(1000, at_least=0)  # sweeps before recording (step sizes tuned, then frozen)
    leapfrog: int = bounded(10, at_least=1)  # leapfrog steps per proposal
    beta_min: float = bounded(5.0, above=0)  # hottest rung of the β ladder
    rungs_per_unit: float = bounded(0.75, at_least=0)  # β rungs per unit of ln(β/β_min)·√N (as gibbs_vs_theory)
    thin: int = bounded(2, at_least=1)  # record every thin-th sweep
    windows: int = bounded(21, at_least=2)  # umbrella windows in q⋆ of stage 2
    q_star_range: tuple[float, ...] = bounded((0.84, 0.94), above=0)  # first and last window centre
    window_sweeps: int = bounded(1500, at_least=1)  # recorded sweeps of stage 2
    window_warmup: int = bounded(300, at_least=0)  # stage-2 sweeps before recording
    population: int = bounded(1000, at_least=2)  # configurations per instance of stage 3
    annealing_steps: int = bounded(100, at_least=1)  # β steps from beta_min to β
    annealing_sweeps: int = bounded(5, at_least=1)  # HMC sweeps after each resampling
    annealing_runs: int = bounded(2, at_least=2)  # independent populations per instance

    def validate(self):
        super().validate()
        require(self.ns, "--ns needs at least one value")
        require(all(n_patterns(self.alpha, n) >= 1 for n in self.ns), "every α·N must be >= 1")
        require(self.replicas % 2 == 0, f"--replicas must be even and >= 2: {self.replicas}")
        require(len(self.q_star_range) == 2 and self.q_star_range[0] < self.q_star_range[1] < 1,
                f"--q_star_range needs two increasing values below 1: {self.q_star_range}")


QUICK = {"ns": (40,), "instances": 2, "replicas": 2, "sweeps": 100, "warmup": 50, "leapfrog": 5, "thin": 1,
         "windows": 4, "window_sweeps": 60, "window_warmup": 20, "population": 40, "annealing_steps": 5,
         "annealing_sweeps": 2}
SHOWN = 200  # configurations per annealed population kept for the plot


def windows(cfg: Config, n: int) -> gibbs_sampler.Restraint:
    centers = np.linspace(*cfg.q_star_range, cfg.windows)
    return gibbs_sampler.Restraint(1.0 / (n * (centers[1] - centers[0]) ** 2), tuple(centers.tolist()))


def point(cfg: Config, n: int) -> list[dict]:
    """Both stages at one N: a row per ladder and per (ladder, window), the diagnostics in the first row."""
    teacher, measure = gibbs_sampler.task1_instances(n, cfg.alpha, cfg.instances, cfg.seed)
    rungs = gibbs_sampler.rung_count(cfg.beta, cfg.beta_min, cfg.rungs_per_unit, n)
    tempered = gibbs_sampler.sample(measure, teacher, cfg.beta, gibbs_sampler.Schedule(
        cfg.sweeps, cfg.warmup, cfg.leapfrog, rungs, min(cfg.beta_min, cfg.beta), cfg.replicas, cfg.thin), cfg.seed)
    restraint = windows(cfg, n)
    restrained = measure.restrained(restraint)
    start = tempered.last[:, :, -1:].expand(-1, -1, cfg.windows, -1)
    umbrella = gibbs_sampler.sample(restrained, teacher, cfg.beta, gibbs_sampler.Schedule(
        cfg.window_sweeps, cfg.window_warmup, cfg.leapfrog, cfg.windows, cfg.beta, cfg.replicas, cfg.thin),
        cfg.seed + 1, start=start)
    checks = gibbs_sampler.diagnostics(tempered)
    trips = np.array(checks["round_trips"])
    rows = []
    for d in range(cfg.instances):
        spread = gibbs_sampler.r_hat(tempered.action[:, d, :])
        for a in range(cfg.replicas):
            common = {"n": n, "instance": d, "replica": a, "start": "random" if a < cfg.replicas // 2 else "teacher",
                      "r_hat_action": spread}
            rows.append({**common, "source": "ladder", "action": tempered.action[:, d, a].mean(),
                         "q_star": tempered.q_star[:, d, a].mean(), "r": tempered.r[:, d, a].mean(),
                         "eps_g": tempered.eps_g[:, d, a].mean(),
                         "action_next_rung": tempered.action_by_rung[:, d, a, -2].mean() if rungs > 1 else np.nan,
                         "round_trips": trips[d, a]})
            for k, center in enumerate(restraint.centers):
                rows.append({**common, "source": "window", "window": k, "center": center,
                             "action": umbrella.action_by_rung[:, d, a, k].mean(),
                             "q_star": umbrella.q_star_by_rung[:, d, a, k].mean(),
                             "r": umbrella.r_by_rung[:, d, a, k].mean()})
    window_checks = {key: value for key, value in gibbs_sampler.diagnostics(umbrella).items()
                     if key in ("hmc_acceptance", "swap_acceptance", "steps", "round_trips_mean", "round_trips_min",
                                "round_trips")}
    schedule = gibbs_sampler.Annealing(cfg.population, cfg.annealing_steps, cfg.annealing_sweeps, cfg.warmup // 5,
                                       cfg.leapfrog, cfg.beta_min)
    shown = {}
    populations = [gibbs_sampler.anneal(measure, teacher, cfg.beta, schedule, cfg.seed + 2 + k)
                   for k in range(cfg.annealing_runs)]
    for k, population in enumerate(populations):
        other = populations[(k + 1) % len(populations)]  # q between two independent populations of an instance
        for d in range(cfg.instances):
            rows.append({"n": n, "instance": d, "replica": k, "source": "annealing",
                         "action": population.action[d].mean(), "action_sd": population.action[d].std(), "q_star": population.q_star[d].mean(),
                         "q_star_sd": population.q_star[d].std(), "r": population.r[d].mean(),
                         "eps_g": population.eps_g[d].mean(),
                         "q": float((population.m[d] @ other.m[d].T).mean()) / n,
                         "log_partition": population.log_partition[d], "families": population.families[d],
                         "acceptance": population.acceptance})
            shown[f"instance={d} run={k}"] = {"q_star": population.q_star[d][:SHOWN].tolist(),
                                              "action": population.action[d][:SHOWN].tolist()}
    rows[0]["diagnostics"] = {"tempered": checks, "windows": {**window_checks, "stiffness": restraint.stiffness},
                              "annealed": shown}
    return [{key: float(value) if isinstance(value, np.floating) else value for key, value in row.items()}
            for row in rows]


# ---- plot
def plot(cfg: Config, tables: dict, record: dict):
    import matplotlib.pyplot as plt

    plot_style()
    rows = tables["rows"]
    sizes = sorted({row["n"] for row in rows})
    fig, axes = plt.subplots(1, len(sizes) + 1, figsize=(4.4 * (len(sizes) + 1), 3.8))
    colors = plt.cm.tab10(np.arange(10))
    for ax, n in zip(axes, sizes):
        ladders = [row for row in rows if row["n"] == n and row["source"] == "ladder"]
        worst = max(ladders, key=lambda row: row["r_hat_action"])["instance"]
        for ladder in (row for row in ladders if row["instance"] == worst):
            chosen = sorted((row for row in rows if row["n"] == n and row["source"] == "window"
                             and row["instance"] == worst and row["replica"] == ladder["replica"]),
                            key=lambda row: row["window"])
            color, style = colors[ladder["replica"] % 10], "-" if ladder["start"] == "random" else "--"
            ax.plot([row["q_star"] for row in chosen], [row["action"] for row in chosen], style, color=color,
                    label=f"ladder {ladder['replica']} ({ladder['start']} start), windows")
            ax.plot(ladder["q_star"], ladder["action"], "o" if ladder["start"] == "random" else "s", color=color,
                    ms=8, mfc="none", label=f"ladder {ladder['replica']}, unrestrained at β = {cfg.beta:g}")
        annealed = record["points"][f"n={n}"]["annealed"]
        runs = [value for key, value in annealed.items() if key.startswith(f"instance={worst} ")]
        for k, configurations in enumerate(runs):
            ax.plot(configurations["q_star"], configurations["action"], ".", ms=1.5, color="k", alpha=0.4,
                    label=f"population annealing ({SHOWN} of each of {len(runs)} runs)" if k == 0 else None)
        spread = next(row["r_hat_action"] for row in ladders if row["instance"] == worst)
        ax.set(xlabel=r"self-overlap $q_\star$ (window mean)", ylabel=r"mean action $A$",
               title=rf"$N={n}$, $\alpha={cfg.alpha:g}$, instance {worst} ($\hat R_A = {spread:.2f}$)")
        ax.legend(fontsize=5.5)
    flow_ax = axes[-1]
    for n in sizes:
        checks = record["points"][f"n={n}"]["tempered"]
        flow_ax.plot(checks["betas"], checks["flow_fraction"], "o-", ms=3, label=f"N={n}")
    flow_ax.set(xlabel=r"$\beta$ of the rung", ylabel=r"flow fraction $f_k$ (from the hottest rung)",
                title="tempering ladder (mean over ladders)")
    flow_ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def compute(cfg: Config) -> Computed:
    points = [(f"n={n!r}", point, (cfg, n)) for n in sorted(cfg.ns, reverse=True)]  # costliest first
    rows, store = sweep(cfg, STEM, points, desc="N")
    details = {f"n={row['n']}": row.pop("diagnostics") for row in rows if "diagnostics" in row}
    rows.sort(key=lambda row: (row["n"], row["source"], row["instance"], row["replica"], row.get("window", -1)))
    return Computed({"rows": rows}, {"points": details}, stores=[store])


def main(cfg: Config):
    figure_main(cfg, STEM, compute, plot)


if __name__ == "__main__":
    run(main, Config, QUICK)
