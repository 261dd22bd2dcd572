"""Beyond the paper — the sampled Gibbs measure of eq. 9 against 1/N, N = 100 … 1600, and its N → ∞ value.

An analysis of committed runs, nothing sampled here: the MCMC rows (tempered HMC, `mean_field_theory.gibbs_vs_theory`)
of `figures/gibbs_vs_theory.csv` (N = 100 … 800), of the separate N = 1600 runs in `figures/gibbs_vs_theory_n1600/`
and of the β = 20 runs on the rest of the 1RSB α grid (`figures/gibbs_vs_theory_alpha_grid/`, N = 100 … 400, and
`figures/gibbs_vs_theory_alpha_grid_n800/`, N = 800) — the same protocol, all but the first with the leapfrog
products in bfloat16 (the chains stay exact) — pooled per (β, α).
Axes: x = 1/N; y = ε_g of sgn m, q⋆ and the replica overlap q (rows), β = 5 and 20 (columns), one colour per α.
Points: mean over instances ± 1 s.e. (hollow: chains not equilibrated by the sampler's criterion). Lines: the
weighted fit a + b/N over every N (`gibbs_sampler.inverse_size_fit`); at 1/N = 0 its a ± 1 s.e. (star), the RS value
(bar; faded where λ_R ≥ 1) and the 1RSB value at β = 20 where RS is unstable (diamond, `figures/rsb_task1.csv`).
The csv holds, per (β, α, observable), the fit over every N and over N ≥ `min_n` (a check of the form a + b/N), with
χ² per degree of freedom and the distance of a from RS and 1RSB in units of its s.e. — scaled by √(χ²/dof) where
that exceeds 1 (with 4 instances per N the per-N s.e. are themselves uncertain) — and, for ε_g at β = 20, whether
the SGD of Fig. 2b (N = 1000, 20 trials) agrees with RS and 1RSB by the one agreement criterion
(`single_layer.comparison`, the theory value taken as exact) and with the fit's a within 2 combined s.e. (the fit is a
measurement too: √(s.e.² of a + s.e.² of the SGD mean)); the json names the commit of every input.

Runtime: the README's figure table (from its json); nothing is sampled, only committed rows are read.
Command: python mean_field_theory/gibbs_size_scaling.py
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from harness.command_line import run
from harness.config import BaseConfig, bounded
from harness.errors import ConfigError, require
from harness.figure import Computed, figure_main
from harness.outputs import read_csv, read_json
from harness.paths import FIGURES_DIR
from harness.plotting import plot_style
from mean_field_theory.gibbs_sampler import inverse_size_fit
from mean_field_theory.references import rsb_rows, sgd_rows
from single_layer.comparison import compare, eps_g_resolution

STEM = "gibbs_size_scaling"
SGD_N = 1000  # N of the Fig. 2b SGD trials (the resolution of their ε_g)
OBSERVABLES = {"eps_g": r"$\epsilon_g$ of sgn $m$", "q_star": r"self-overlap $q_\star$", "q": r"replica overlap $q$",
               "r": r"teacher overlap $r$"}


# ---- hyperparameters
@dataclasses.dataclass
class Config(BaseConfig):
    sources: tuple[str, ...] = (  # csvs of gibbs_vs_theory runs, relative to figures/ (their MCMC rows are pooled)
        "gibbs_vs_theory.csv", "gibbs_vs_theory_n1600/beta5/gibbs_vs_theory.csv",
        "gibbs_vs_theory_n1600/beta20/gibbs_vs_theory.csv", "gibbs_vs_theory_n1600/beta20_alpha1/gibbs_vs_theory.csv",
        "gibbs_vs_theory_n1600/beta20_alpha13/gibbs_vs_theory.csv", "gibbs_vs_theory_alpha_grid/gibbs_vs_theory.csv",
        "gibbs_vs_theory_alpha_grid_n800/gibbs_vs_theory.csv")
    min_n: int = bounded(200, at_least=2)  # the second fit uses only N ≥ min_n (a check of the form a + b/N)

    def validate(self):
        super().validate()
        require(len(self.sources) >= 1, "--sources needs at least one csv")
        missing = [source for source in self.sources if not (FIGURES_DIR / source).is_file()]
        require(not missing, f"--sources: no such file under {FIGURES_DIR}: {missing}")


QUICK = {"sources": ("gibbs_vs_theory.csv",)}


def pooled_rows(cfg: Config) -> tuple[list[dict], dict]:
    """The MCMC rows of every source (each (β, α, N) once) and, per source, the commit and wall time of its run."""
    rows, seen, provenance = [], {}, {}
    for source in cfg.sources:
        path = FIGURES_DIR / source
        record = read_json(path.with_suffix(".json"))
        provenance[source] = {"git_commit": record["git_commit"], "wall_time_s": record["wall_time_s"]}
        for row in read_csv(path):
            if row["source"] != "mcmc":
                continue
            key = (row["beta"], row["alpha"], row["n"])
            if key in seen:
                raise ConfigError(f"--sources: β = {key[0]:g}, α = {key[1]:g}, N = {key[2]} is in both {seen[key]} "
                                  f"and {source}")
            seen[key] = source
            rows.append({**row, "source": "mcmc", "from": source})
    return sorted(rows, key=lambda row: (row["beta"], row["alpha"], row["n"])), provenance


def references(cfg: Config) -> dict:
    """(β, α) → {"rs": RS row, "1rsb": poor 1RSB row at β = 20 or None, "sgd": the ε_g of the Fig. 2b trials at
    β = 20 (empty elsewhere)}, from the committed results; the 1RSB replica overlap is its mean x q₀ + (1 − x) q₁."""
    rs = {(row["beta"], row["alpha"]): row for source in cfg.sources for row in read_csv(FIGURES_DIR / source)
          if row["source"] == "rs" and row["thermodynamic"]}
    rsb = {row["alpha"]: {**row, "q": row["q_mean"]} for row in rsb_rows()}
    sgd = sgd_rows()
    return {(beta, alpha): {"rs": row, "1rsb": rsb.get(alpha) if beta == 20.0 else None,
                            "sgd": [trial["eps_g"] for trial in sgd if trial["alpha"] == alpha] if beta == 20.0 else []}
            for (beta, alpha), row in rs.items()}


def fits(points: list[dict], theory: dict, min_n: int) -> list[dict]:
    """Per (β, α) with ≥ 3 sizes and observable: the fits over every N and over N ≥ min_n, against RS and 1RSB."""
    result = []
    for beta, alpha in sorted({(row["beta"], row["alpha"]) for row in points}):
        chosen = [row for row in points if (row["beta"], row["alpha"]) == (beta, alpha)]
        reference = theory.get((beta, alpha), {"rs": None, "1rsb": None, "sgd": []})
        for name in OBSERVABLES:
            for kind, used in (("all", chosen), ("large_n", [row for row in chosen if row["n"] >= min_n])):
                if len(used) < 3:
                    continue
                fit = inverse_size_fit([row["n"] for row in used], [row[name] for row in used],
                                       [row[f"{name}_se"] for row in used])
                row = {"source": f"fit_{kind}", "beta": beta, "alpha": alpha, "observable": name,
                       "ns": " ".join(str(row["n"]) for row in used),
                       "equilibrated": all(row["equilibrated"] for row in used), **fit}
                for label in ("rs", "1rsb"):
                    value = reference[label][name] if reference[label] and name in reference[label] else None
                    row[label] = "" if value in (None, "") else value
                    row[f"{label}_distance_in_se"] = "" if row[label] == "" else (fit["a"] - value) / fit["a_se_scaled"]
                row["rs_stable"] = reference["rs"]["rs_stable"] if reference["rs"] else ""
                if name == "eps_g" and len(reference.get("sgd", [])) > 1:
                    for label, value in (("rs", row["rs"]), ("1rsb", row["1rsb"]), ("mcmc", fit["a"])):
                        if value != "":
                            verdict = compare(value, reference["sgd"], eps_g_resolution(SGD_N))
                            row.update(sgd_mean=verdict["sgd_mean"], sgd_se=verdict["sgd_se"], sgd_trials=verdict["n"])
                            row[f"sgd_agrees_{label}"] = bool(verdict["within_2_se"] and verdict["within_1_sd"])
                    # the fit is a measurement too: its s.e. joins SGD's in the 2 s.e. test
                    combined = math.hypot(fit["a_se_scaled"], row["sgd_se"])
                    row["mcmc_minus_sgd_in_combined_se"] = (fit["a"] - row["sgd_mean"]) / combined
                    row["sgd_agrees_mcmc"] = bool(abs(fit["a"] - row["sgd_mean"]) <= 2 * combined)
                result.append(row)
    return result


def summary(rows: list[dict]) -> str:
    lines = []
    for row in rows:
        if row["source"] == "fit_all" and row["observable"] in ("eps_g", "q_star"):
            rsb = f", 1RSB {row['1rsb']:.4f} ({row['1rsb_distance_in_se']:+.1f} s.e.)" if row["1rsb"] != "" else ""
            agree = [label for label in ("rs", "1rsb", "mcmc") if row.get(f"sgd_agrees_{label}")]
            sgd = (f"; SGD {row['sgd_mean']:.4f} ± {row['sgd_se']:.4f} agrees with "
                   f"{', '.join(agree).upper() or 'none'}" if "sgd_mean" in row and row["sgd_mean"] != "" else "")
            lines.append(f"β = {row['beta']:g}, α = {row['alpha']:g}, {row['observable']} (N = {row['ns']}): "
                         f"{row['a']:.4f} ± {row['a_se_scaled']:.4f} (χ²/dof {row['chi2_per_dof']:.2f}); RS {row['rs']:.4f} "
                         f"({row['rs_distance_in_se']:+.1f} s.e.){rsb}"
                         + sgd + ("" if row["equilibrated"] else "; some N not equilibrated"))
    return "\n".join(lines)


def compute(cfg: Config) -> Computed:
    points, provenance = pooled_rows(cfg)
    rows = fits(points, references(cfg), cfg.min_n)
    return Computed({"rows": rows, "points": points}, {"sources": provenance, "summary": summary(rows)})


# ---- plot
def plot(cfg: Config, tables: dict, record: dict):
    import matplotlib.pyplot as plt

    plot_style()
    points, rows = tables["points"], tables["rows"]
    betas, alphas = sorted({row["beta"] for row in points}), sorted({row["alpha"] for row in points})
    colors = dict(zip(alphas, plt.cm.plasma(np.linspace(0.05, 0.8, len(alphas)))))
    names = [name for name in OBSERVABLES if name != "r"]
    fig, axes = plt.subplots(len(names), len(betas), figsize=(4.3 * len(betas), 2.6 * len(names)), squeeze=False)
    for column, beta in enumerate(betas):
        for line, name in enumerate(names):
            ax = axes[line, column]
            for alpha in alphas:
                chosen = [row for row in points if row["beta"] == beta and row["alpha"] == alpha]
                for row in chosen:
                    ax.errorbar(1 / row["n"], row[name], yerr=row[f"{name}_se"], fmt="o", ms=3.5, color=colors[alpha],
                                mfc=None if row["equilibrated"] else "none")
                fit = next((r for r in rows if r["source"] == "fit_all" and r["beta"] == beta and r["alpha"] == alpha
                            and r["observable"] == name), None)
                if fit is None:
                    continue
                grid = np.linspace(0, 1 / min(row["n"] for row in chosen), 20)
                ax.plot(grid, fit["a"] + fit["b"] * grid, "-", lw=0.8, color=colors[alpha])
                ax.errorbar(0, fit["a"], yerr=fit["a_se_scaled"], fmt="*", ms=7, color=colors[alpha],
                            mfc=None if fit["equilibrated"] else "none",
                            label=rf"$\alpha={alpha:g}$" if line == 0 else None)
                if fit["rs"] != "":
                    ax.plot(-0.0004, fit["rs"], "_", ms=14, mew=2, color=colors[alpha],
                            alpha=1.0 if fit["rs_stable"] else 0.35)
                if fit["1rsb"] != "":
                    ax.plot(-0.0004, fit["1rsb"], "D", ms=4, mfc="none", color=colors[alpha])
            ax.set(xlabel=r"$1/N$", ylabel=OBSERVABLES[name])
            if line == 0:
                ax.set_title(rf"$\beta = {beta:g}$")
    axes[0, 0].plot([], [], "o", color="grey", ms=3.5, label="MCMC, mean ± 1 s.e. over instances")
    axes[0, 0].plot([], [], "o", color="grey", mfc="none", ms=3.5, label="hollow: chains not equilibrated")
    axes[0, 0].plot([], [], "_", color="grey", ms=14, mew=2, label="RS at 1/N = 0 (faded: λ_R ≥ 1)")
    axes[0, 0].plot([], [], "D", color="grey", mfc="none", ms=4, label="1RSB at 1/N = 0 (β = 20)")
    axes[0, 0].plot([], [], "*", color="grey", ms=7, label=r"$N\to\infty$: a of a + b/N (± 1 s.e., scaled)")
    explained = [(handle, label) for handle, label in zip(*axes[0, 0].get_legend_handles_labels())
                 if not label.startswith(r"$\alpha")]
    axes[0, 0].legend(*zip(*explained), fontsize=5.5)  # what the markers mean, on the first panel
    by_alpha = {label: handle for ax in axes[0] for handle, label in zip(*ax.get_legend_handles_labels())
                if label.startswith(r"$\alpha")}  # one entry per α (its colour is the same in every column)
    ordered = sorted(by_alpha, key=lambda label: float(label.split("=")[1].rstrip("$")))
    fig.legend([by_alpha[label] for label in ordered], ordered, loc="lower center", ncol=len(ordered), fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def main(cfg: Config):
    figure_main(cfg, STEM, compute, plot, tables=("rows", "points"))


if __name__ == "__main__":
    run(main, Config, QUICK)
