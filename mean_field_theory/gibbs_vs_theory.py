"""Beyond the paper — the theory's Gibbs measure sampled at finite N against its RS solution (and SGD).

Axes: x = α; y = ε_g of the clipped student sgn m (left), the overlap q of two replicas (middle), and
the distribution P(q) of the overlap of two replicas at the largest α of each β (right).  Lines: the RS solution
(thermodynamic branch; faded where its replicon λ_R ≥ 1, docs/theory.md §3b).  Points: tempered HMC of eq. 9
(`mean_field_theory.gibbs_sampler`) at each N, mean over instances ± 1 s.e. over instances; a point whose chains did
not equilibrate (R̂ between random and teacher-near starts > 1.05, or too few effective samples) is drawn hollow and
makes the script exit 3.  Diamonds: the one-step RSB solution at β = 20 (`figures/rsb_task1.csv`, where RS is
unstable).  Squares: SGD of Fig. 2b at β = 20 where `figures/fig2b_theory_vs_sgd.csv` has the same α.
The csv also gives ε_g, r and q⋆ averaged over the random and over the teacher-near starts apart
(`*_random_start`, `*_teacher_start`): where the chains have not met, which state each start reached.
The N → ∞ value of each observable is a weighted least-squares fit a + b/N over the N of the run (its s.e. from
the fit) when there are at least three N.

Runtime: a point costs ∝ instances · replicas · rungs · N · P · (warmup + sweeps) · leapfrog (rungs ∝ √N); the
committed run is the default (β = 5 and 20, α = 0.5, 1.0, 1.3, N = 100 … 800), its wall time in the README's figure
table (from its json); its costliest point (β = 20, α = 1.3, N = 800) is most of it.  N = 1600 is a separate run
(figures/gibbs_vs_theory_n1600/: β = 5, and β = 20 at α = 0.5, 1.0 and 1.3), as is β = 20 on the rest of the 1RSB α
grid at N = 100 … 400 (figures/gibbs_vs_theory_alpha_grid/); `gibbs_size_scaling.py` pools them for the N → ∞ fits.
Left out: N = 800 and 1600 on that grid and the rest of the Fig. 2b α grid (a β = 20 point at N = 1600 costs ≈ 5–6×
one at N = 800).
Command: python mean_field_theory/gibbs_vs_theory.py
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from harness.command_line import run
from harness.config import bounded
from harness.errors import require
from harness.figure import Computed, figure_main
from harness.plotting import plot_by_stability, plot_style
from harness.sweep import SweepConfig, sweep
from mean_field_theory import gibbs_sampler
from mean_field_theory.references import rsb_rows, sgd_rows
from mean_field_theory.task1 import sweep_task1
from teacher_student import n_patterns

STEM = "gibbs_vs_theory"
OBSERVABLES = ("eps_g", "r", "q_star", "q")


# ---- hyperparameters
@dataclasses.dataclass
class Config(SweepConfig):
    betas: tuple[float, ...] = bounded(  # inverse temperatures of eq. 9 (β); 5 lies below the AT line
        (5.0, 20.0), above=0)
    alphas: tuple[float, ...] = bounded((0.5, 1.0, 1.3), above=0)  # data densities α
    ns: tuple[int, ...] = bounded((100, 200, 400, 800), at_least=2)  # system sizes N
    instances: int = bounded(4, at_least=2)  # teacher–student instances per point (seed + k, as SGD trial k)
    replicas: int = bounded(4, at_least=2)  # chains per instance: half from random starts, half near the teacher
    sweeps: int = bounded(3000, at_least=1)  # recorded HMC sweeps
    warmup: int = bounded(1000, at_least=0)  # sweeps before recording (step sizes tuned, then frozen)
    leapfrog: int = bounded(10, at_least=1)  # leapfrog steps per proposal
    beta_min: float = bounded(  # hottest rung of the tempering ladder (RS-stable: a single state, fast mixing)
        5.0, above=0)
    rungs_per_unit: float = bounded(0.75, at_least=0)  # tempering rungs per unit of ln(β/β_min)·√N (0: no tempering)
    thin: int = bounded(2, at_least=1)  # record every thin-th sweep
    gradient_dtype: str = "float32"  # the leapfrog gradient's products over the data: float32 | bfloat16 (faster on
    #                                  CPUs with bfloat16 arithmetic, e.g. AVX512-BF16; the chain stays exact)
    theory_points: int = bounded(40, at_least=2)  # α grid of the RS curves (plus the sampled α)

    def validate(self):
        super().validate()
        require(self.betas and self.alphas and self.ns, "--betas, --alphas and --ns need at least one value each")
        require(all(n_patterns(alpha, n) >= 1 for alpha in self.alphas for n in self.ns), "every α·N must be >= 1")
        require(self.replicas % 2 == 0, f"--replicas must be even and >= 2: {self.replicas}")
        require(self.gradient_dtype in ("float32", "bfloat16"),
                f"--gradient_dtype must be float32 or bfloat16, got {self.gradient_dtype!r}")


QUICK = {"betas": (5.0,), "alphas": (1.0,), "ns": (40,), "instances": 2, "replicas": 2, "sweeps": 200, "warmup": 100,
         "leapfrog": 5, "thin": 1, "theory_points": 6}


def schedule(cfg: Config, beta: float, n: int) -> gibbs_sampler.Schedule:
    """The chains of one point (rungs: `gibbs_sampler.rung_count`)."""
    rungs = gibbs_sampler.rung_count(beta, cfg.beta_min, cfg.rungs_per_unit, n)
    return gibbs_sampler.Schedule(cfg.sweeps, cfg.warmup, cfg.leapfrog, rungs, min(cfg.beta_min, beta), cfg.replicas,
                                  cfg.thin)


def point(cfg: Config, beta: float, alpha: float, n: int) -> list[dict]:
    """One (β, α, N): the summary row (means ± s.e. over instances), its diagnostics and P(q)."""
    teacher, measure = gibbs_sampler.task1_instances(n, alpha, cfg.instances, cfg.seed,
                                                     getattr(torch, cfg.gradient_dtype))
    chains = gibbs_sampler.sample(measure, teacher, beta, schedule(cfg, beta, n), cfg.seed)
    checks = gibbs_sampler.diagnostics(chains)
    density, edges = gibbs_sampler.overlap_histogram(chains)
    return [{"beta": beta, "alpha": alpha, "n": n, "source": "mcmc", **gibbs_sampler.summary(chains),
             "equilibrated": checks["equilibrated"], "rungs": len(checks["betas"]),
             "diagnostics": checks, "p_of_q": density.tolist(), "q_edges": edges.tolist()}]


def extrapolate(rows: list[dict]) -> list[dict]:
    """Per (β, α) and observable: a + b/N by weighted least squares over the N (≥ 3 of them,
    `gibbs_sampler.inverse_size_fit`), a and its s.e.;
    `equilibrated` only if the chains of every N are (an extrapolation of unequilibrated chains is drawn hollow)."""
    result = []
    for beta, alpha in sorted({(row["beta"], row["alpha"]) for row in rows}):
        chosen = sorted((row for row in rows if (row["beta"], row["alpha"]) == (beta, alpha)), key=lambda r: r["n"])
        if len(chosen) < 3:
            continue
        extrapolated = {"beta": beta, "alpha": alpha, "n": "", "source": "mcmc_extrapolated",  # N → ∞
                        "equilibrated": all(row["equilibrated"] for row in chosen)}
        for name in OBSERVABLES:
            fit = gibbs_sampler.inverse_size_fit([row["n"] for row in chosen], [row[name] for row in chosen],
                                                 [row[f"{name}_se"] for row in chosen])
            extrapolated[name], extrapolated[f"{name}_se"] = fit["a"], fit["a_se"]
        result.append(extrapolated)
    return result


def theory_rows(cfg: Config) -> list[dict]:
    grid = sorted({*np.round(np.linspace(0.05, max(cfg.alphas) + 0.2, cfg.theory_points), 4), *cfg.alphas})
    return [{"source": "rs", "beta": beta, "n": "", **row} for beta in cfg.betas
            for row in sweep_task1([float(alpha) for alpha in grid], beta=beta)]


# ---- plot
def point_key(row: dict) -> str:
    return f"beta={row['beta']:g} alpha={row['alpha']:g} n={row['n']}"


def plot(cfg: Config, tables: dict, record: dict):
    import matplotlib.pyplot as plt

    plot_style()
    rows, sgd = tables["rows"], sgd_rows()
    fig, (error_ax, overlap_ax, histogram_ax) = plt.subplots(1, 3, figsize=(13.5, 3.8))
    mcmc = [row for row in rows if row["source"] == "mcmc"]
    betas = sorted({row["beta"] for row in mcmc})
    colors = dict(zip(betas, plt.cm.viridis(np.linspace(0.1, 0.8, len(betas)))))
    sizes = sorted({row["n"] for row in mcmc})
    markers = dict(zip(sizes, "ovs^D"))
    offsets = {n: 0.015 * (index - (len(sizes) - 1) / 2) for index, n in enumerate(sizes)}  # N side by side in α
    for beta in betas:
        theory = [row for row in rows if row["source"] == "rs" and row["beta"] == beta and row["thermodynamic"]]
        plot_by_stability(error_ax, [(r["alpha"], r["eps_g"], r["rs_stable"]) for r in theory], "-",
                          color=colors[beta], label=rf"RS, $\beta={beta:g}$ (faded: $\lambda_R \geq 1$)")
        plot_by_stability(overlap_ax, [(r["alpha"], r["q"], r["rs_stable"]) for r in theory], "-", color=colors[beta],
                          label=rf"RS $q$, $\beta={beta:g}$")
        for n, marker in markers.items():
            chosen = [row for row in mcmc if row["beta"] == beta and row["n"] == n]
            for ax, name in ((error_ax, "eps_g"), (overlap_ax, "q")):
                for row in chosen:
                    ax.errorbar(row["alpha"] + offsets[n], row[name], yerr=row[f"{name}_se"], fmt=marker,
                                color=colors[beta], mfc=None if row["equilibrated"] else "none", ms=4)
    for n, marker in markers.items():  # legend proxies: one per N, and what a hollow marker means
        error_ax.plot([], [], marker, color="grey", ms=4, label=f"MCMC N={n} (± 1 s.e. over instances)")
    error_ax.plot([], [], "o", color="grey", mfc="none", ms=4, label="hollow: chains not equilibrated")
    for equilibrated in (True, False):
        extrapolated = [row for row in rows if row["source"] == "mcmc_extrapolated"
                        and row["equilibrated"] == equilibrated]
        if extrapolated:
            error_ax.errorbar([r["alpha"] for r in extrapolated], [r["eps_g"] for r in extrapolated],
                              yerr=[r["eps_g_se"] for r in extrapolated], fmt="*", color="k", ms=7,
                              mfc=None if equilibrated else "none",
                              label=r"MCMC, $N\to\infty$ (a + b/N, ± 1 s.e. of the fit)" + (
                                  "" if equilibrated else ", some N not equilibrated"))
    shown = max(row["alpha"] for row in mcmc) + 0.2  # the α range of the comparisons at β = 20
    rsb = sorted((row for row in rsb_rows() if row["alpha"] <= shown), key=lambda row: row["alpha"])
    if rsb and 20.0 in betas:
        error_ax.plot([r["alpha"] for r in rsb], [r["eps_g"] for r in rsb], "D--", color="tab:orange", ms=3,
                      label=r"1RSB, $\beta=20$ (rsb_task1)")
        overlap_ax.plot([r["alpha"] for r in rsb], [r["q_mean"] for r in rsb], "D--",
                        color="tab:orange", ms=3, label=r"1RSB mean overlap $x q_0 + (1-x) q_1$, $\beta=20$")
    if sgd and 20.0 in betas:
        alphas = sorted({row["alpha"] for row in sgd if row["alpha"] <= shown})
        values = [[row["eps_g"] for row in sgd if row["alpha"] == alpha] for alpha in alphas]
        error_ax.errorbar(alphas, [np.mean(v) for v in values], yerr=[np.std(v, ddof=1) / math.sqrt(len(v))
                                                                     for v in values],
                          fmt="s", color="tab:red", mfc="none", ms=4, label="SGD, Fig. 2b (± 1 s.e. over trials)")
    error_ax.set(xlabel=r"$\alpha$", ylabel=r"$\epsilon_g$ of sgn $m$", title="generalization error")
    overlap_ax.set(xlabel=r"$\alpha$", ylabel=r"replica overlap $q$", title="overlap of two replicas")
    error_ax.legend(fontsize=5.5, loc="lower left")
    overlap_ax.legend(fontsize=6)
    for beta in betas:
        top = max((row for row in mcmc if row["beta"] == beta), key=lambda r: (r["alpha"], r["n"]))
        edges = np.array(record["points"][point_key(top)]["q_edges"])
        histogram_ax.step(0.5 * (edges[1:] + edges[:-1]), record["points"][point_key(top)]["p_of_q"], where="mid", color=colors[beta],
                          label=rf"$\beta={beta:g}$, $\alpha={top['alpha']:g}$, $N={top['n']}$")
    histogram_ax.set(xlabel=r"$q_{ab}$", ylabel=r"$P(q)$", title="overlap distribution (two peaks: RSB)")
    histogram_ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def compute(cfg: Config) -> Computed:
    theory = theory_rows(cfg)
    points = [(f"beta={beta!r} alpha={alpha!r} n={n!r}", point, (cfg, beta, alpha, n))  # costliest first
              for n in sorted(cfg.ns, reverse=True) for beta in sorted(cfg.betas, reverse=True)
              for alpha in sorted(cfg.alphas, reverse=True)]
    mcmc, store = sweep(cfg, STEM, points, desc="(beta, alpha, N)")
    mcmc.sort(key=lambda row: (row["beta"], row["alpha"], row["n"]))
    details = {point_key(row): {key: row.pop(key) for key in ("diagnostics", "p_of_q", "q_edges")} for row in mcmc}
    return Computed({"rows": theory + mcmc + extrapolate(mcmc)}, {"points": details}, stores=[store])


def not_equilibrated(tables: dict, record: dict) -> str | None:
    failing = [key for key, value in record["points"].items() if not value["diagnostics"]["equilibrated"]]
    return (f"not equilibrated by its own criterion at {failing} (rows kept, equilibrated=False; reasons in "
            f"{STEM}.json)" if failing else None)


def main(cfg: Config):
    figure_main(cfg, STEM, compute, plot, failure=not_equilibrated)


if __name__ == "__main__":
    run(main, Config, QUICK)
