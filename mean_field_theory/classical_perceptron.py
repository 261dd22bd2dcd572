"""Classical perceptron results reproduced with the paper's RS code path (validation of the solver).

The generic solver of `rs_solver` (the one behind Figs. 2–3) is run with other single-site measures
(`site_measures`) and channels (`channels`) and compared with the literature:
* binary (Ising) teacher–student, Gibbs learning (version space): first-order transition to perfect
  generalization where the poor branch's entropy reaches 0 (Györgyi 1990: α ≈ 1.245) and spinodal of the poor branch (Sompolinsky, Tishby & Seung 1990; Barbier et al. 2019: 1.493);
  its overlap q at α = 0.5, 1.0, 1.3 against the RS equations reduced to the Nishimori line (q = r, q̂ = r̂),
  evaluated independently here with scipy's adaptive quadrature;
* binary storage capacity: zero of the RS entropy (Krauth & Mézard 1989: α_c ≈ 0.833);
* spherical teacher–student (Gardner & Derrida 1988 setting): α·ε_g → 0.625 for Gibbs learning and
  → 0.442 for the Bayes classifier as α → ∞ (Engel & Van den Broeck 2001, ch. 2–3), from a Richardson
  extrapolation of α·ε_g at large α.
Axes of the figure: x = α, y = ε_g (binary teacher–student poor branch, spherical Gibbs and Bayes).

Runtime: the README's figure table (the wall time its json records).  Command: python mean_field_theory/classical_perceptron.py
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.integrate
import scipy.optimize
from scipy.special import log_ndtr

from harness.command_line import run
from harness.config import BaseConfig, bounded
from harness.errors import SolverError, require
from harness.figure import Computed, figure_main
from harness.plotting import plot_style
from mean_field_theory.channels import VersionSpaceChannel
from mean_field_theory.continuation import follow_in_alpha
from mean_field_theory.rs_solver import solve_rs
from mean_field_theory.site_measures import IsingMeasure, SphericalMeasure

STEM = "classical_perceptron"
LITERATURE = {  # quantity: (value, reference)
    "binary_teacher_student_transition_alpha": (1.245, "Gyorgyi, Phys. Rev. A 41, 7097 (1990)"),
    "binary_teacher_student_spinodal_alpha": (1.493, "Sompolinsky, Tishby & Seung, PRL 65, 1683 (1990); Barbier et al. (2019)"),
    "binary_capacity_alpha": (0.833, "Krauth & Mezard, J. Phys. France 50, 3057 (1989)"),
    "spherical_gibbs_alpha_eps_limit": (0.625, "Engel & Van den Broeck, Statistical Mechanics of Learning (2001), Gibbs learning"),
    "spherical_bayes_alpha_eps_limit": (0.442, "Engel & Van den Broeck (2001), Bayes-optimal classifier"),
}
NISHIMORI_REFERENCE = "Gyorgyi (1990) RS equations on the Nishimori line q = r, solved with scipy.integrate.quad"


# ---- hyperparameters
@dataclasses.dataclass
class Config(BaseConfig):
    q_alphas: tuple[float, ...] = bounded(  # α at which the binary teacher–student overlap q is reported
        (0.5, 1.0, 1.3), above=0)
    curve_alphas: tuple[float, ...] = bounded(  # α grid of the plotted curves
        tuple(round(0.1 * k, 1) for k in range(1, 21)), above=0)
    large_alphas: tuple[float, ...] = bounded((100.0, 200.0, 400.0), above=0)  # α used to extrapolate α·ε_g (spherical)
    spinodal_tol: float = bounded(1e-4, above=0, below=0.1)  # bisection tolerance on the spinodal α
    tol: float = 1e-10  # solver tolerance on max |T(x) − x|

    def validate(self):
        super().validate()
        require(len(self.large_alphas) >= 2, "--large_alphas needs at least two values for the extrapolation")


QUICK = {"curve_alphas": (0.5, 1.0), "large_alphas": (50.0, 100.0), "spinodal_tol": 1e-2}


def binary_teacher_student(alpha, init, tol):
    return solve_rs(alpha, IsingMeasure(), VersionSpaceChannel(), init, tol=tol)


def poor_branch_exists(solution) -> bool:
    return solution.converged and solution.q < 0.99


def transition_and_spinodal(cfg: Config):
    """α where the poor branch's entropy vanishes (perfect generalization has entropy 0) and where the
    poor branch ends (bisection on its existence, continuing from the last solution found)."""
    start = follow_in_alpha(np.linspace(0.5, 1.2, 8),
                            lambda a, init, budget: binary_teacher_student(a, init, cfg.tol), (0.1, 0.1, 1.0))[-1]
    last = start
    entropy = lambda alpha: binary_teacher_student(alpha, (last.q, last.r, 1.0), cfg.tol).free_entropy
    transition = scipy.optimize.brentq(entropy, 1.2, 1.4, xtol=1e-6)
    low, high = 1.3, 1.8
    while high - low > cfg.spinodal_tol:
        middle = 0.5 * (low + high)
        solution = binary_teacher_student(middle, (last.q, last.r, 1.0), cfg.tol)
        if poor_branch_exists(solution):
            low, last = middle, solution
        else:
            high = middle
    return transition, 0.5 * (low + high)


def capacity(cfg: Config) -> float:
    """Zero of the RS entropy of the binary storage problem (random labels: r = r̂ = 0)."""
    def entropy(alpha):
        return solve_rs(alpha, IsingMeasure(), VersionSpaceChannel(), (0.5, 0.0, 1.0), teacher=False,
                        tol=cfg.tol).free_entropy
    return scipy.optimize.brentq(entropy, 0.6, 1.0, xtol=1e-6)


def spherical_limits(cfg: Config):
    """Richardson extrapolation of α·ε_g = c + d/α (Gibbs: arccos r; Bayes: arccos(r/√q))."""
    solutions = follow_in_alpha(cfg.large_alphas, lambda a, init, budget: solve_rs(a, SphericalMeasure(),
                                VersionSpaceChannel(), init, tol=cfg.tol), (0.999, 0.999, 1.0))
    if not all(solution.converged for solution in solutions):
        raise SolverError("spherical teacher-student saddle point did not converge at large alpha")
    alphas = np.array(cfg.large_alphas)
    gibbs = alphas * np.array([math.acos(s.r) for s in solutions]) / math.pi
    bayes = alphas * np.array([math.acos(s.r / math.sqrt(s.q)) for s in solutions]) / math.pi
    design = np.stack([np.ones_like(alphas), 1.0 / alphas], axis=1)
    return [float(np.linalg.lstsq(design, values, rcond=None)[0][0]) for values in (gibbs, bayes)]


def nishimori_overlap(alpha: float, tol: float = 1e-13) -> float:
    """Independent reference: q = E_z tanh(√q̂ z + q̂), q̂ = 2α/(1−q) ∫Dξ N(kξ)²/Φ(kξ), k = √(q/(1−q)).

    The map is increasing in q, so iterating from q = 0 converges monotonically to its smallest fixed
    point, the poor-generalization branch."""
    log_gauss = lambda z: -0.5 * z * z - 0.5 * math.log(2.0 * math.pi)

    def update(q):
        k = math.sqrt(q / (1.0 - q))
        integrand = lambda xi: math.exp(log_gauss(xi) + 2.0 * log_gauss(k * xi) - log_ndtr(k * xi))
        q_hat = 2.0 * alpha / (1.0 - q) * scipy.integrate.quad(integrand, -12, 12, epsabs=1e-15, limit=200)[0]
        prior = lambda z: math.exp(log_gauss(z)) * math.tanh(math.sqrt(q_hat) * z + q_hat)
        return scipy.integrate.quad(prior, -12, 12, epsabs=1e-15, limit=200)[0]

    q = 0.0
    for _ in range(5000):
        new_q = update(q)
        if abs(new_q - q) < tol:
            return new_q
        q = new_q
    raise SolverError(f"Nishimori-line iteration did not converge at alpha={alpha}")


def compute(cfg: Config) -> Computed:
    rows = []
    transition, spinodal = transition_and_spinodal(cfg)
    gibbs, bayes = spherical_limits(cfg)
    values = {"binary_teacher_student_transition_alpha": transition,
              "binary_teacher_student_spinodal_alpha": spinodal, "binary_capacity_alpha": capacity(cfg),
              "spherical_gibbs_alpha_eps_limit": gibbs, "spherical_bayes_alpha_eps_limit": bayes}
    for quantity, value in values.items():
        rows.append({"quantity": quantity, "value": value, "literature": LITERATURE[quantity][0],
                     "reference": LITERATURE[quantity][1]})
    q_alphas = sorted(cfg.q_alphas)
    poor = follow_in_alpha(q_alphas, lambda a, init, budget: binary_teacher_student(a, init, cfg.tol),
                           (0.1, 0.1, 1.0))
    for alpha, solution in zip(q_alphas, poor):
        rows.append({"quantity": f"binary_teacher_student_q_at_{alpha:g}", "value": solution.q,
                     "literature": nishimori_overlap(alpha), "reference": NISHIMORI_REFERENCE})
    curves = []
    binary = follow_in_alpha(sorted(cfg.curve_alphas),
                             lambda a, init, budget: binary_teacher_student(a, init, cfg.tol), (0.1, 0.1, 1.0))
    spherical = follow_in_alpha(sorted(cfg.curve_alphas), lambda a, init, budget: solve_rs(a, SphericalMeasure(),
                                VersionSpaceChannel(), init, tol=cfg.tol), (0.1, 0.1, 1.0))
    for solution in binary:
        if poor_branch_exists(solution):
            curves.append({"model": "binary_gibbs", "alpha": solution.alpha, "eps_g": math.acos(solution.r) / math.pi})
    for solution in spherical:
        curves.append({"model": "spherical_gibbs", "alpha": solution.alpha, "eps_g": math.acos(solution.r) / math.pi})
        curves.append({"model": "spherical_bayes", "alpha": solution.alpha,
                       "eps_g": math.acos(solution.r / math.sqrt(solution.q)) / math.pi})
    return Computed({"rows": rows, "curves": curves}, dict(
        abs_deviation_from_literature={row["quantity"]: abs(row["value"] - row["literature"]) for row in rows},
        summary="\n".join(f"{row['quantity']:45s} {row['value']:.5f}   literature {row['literature']:.5f}"
                          for row in rows)),
        columns={"rows": ["quantity", "value", "literature", "reference"], "curves": ["model", "alpha", "eps_g"]})


def plot(cfg: Config, tables: dict, record: dict):
    import matplotlib.pyplot as plt

    plot_style()
    rows, curves = tables["rows"], tables["curves"]
    fig, ax = plt.subplots()
    for model, style in (("binary_gibbs", "k-"), ("spherical_gibbs", "b--"), ("spherical_bayes", "g:")):
        points = sorted((c["alpha"], c["eps_g"]) for c in curves if c["model"] == model)
        if points:
            ax.plot(*zip(*points), style, label=model.replace("_", " "))
    found = {row["quantity"]: row for row in rows}
    for key, color in (("binary_teacher_student_transition_alpha", "red"), ("binary_teacher_student_spinodal_alpha", "orange")):
        ax.axvline(found[key]["value"], color=color, lw=0.8, label=f"{key.split('_')[-2]} {found[key]['value']:.3f} "
                   f"(lit. {found[key]['literature']})")
    ax.set_xlabel(r"$\alpha$")
    ax.set_ylabel(r"$\epsilon_g$")
    ax.legend()
    return fig


def main(cfg: Config):
    figure_main(cfg, STEM, compute, plot, tables=("rows", "curves"))


if __name__ == "__main__":
    run(main, Config, QUICK)
