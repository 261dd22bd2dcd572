"""Task-1 replica-symmetric theory of the field-space learning objective (docs/theory.md §3).

The Gibbs measure over variational means m ∈ [−1, 1]^N at inverse temperature β, with energy the Gaussian-
approximation data term and (optionally) the uniform-prior KL weighted by κ₁, is solved by the generic RS
machinery of `rs_solver` with `FlatMeasure(κ₁)` and `VariationalChannel(β)`.  Variants: κ₁ = 0 (main text),
κ₁ = β (uniform prior, appendix) and a clamped self-overlap q⋆ (Fig. 2d).
"""
from __future__ import annotations

from mean_field_theory.channels import VariationalChannel
from mean_field_theory.continuation import sweep_branches
from mean_field_theory.rs_solver import (MAX_EVALUATIONS, RSProblem, RSSolution, iteration_is_stable, single_thread,
                                         solve_rs)
from mean_field_theory.site_measures import FlatMeasure

LOW_INIT = (0.01, 0.01, 0.34)  # near the α → 0 limit q = r = 0, q⋆ = 1/3 (poor-generalization start)
HIGH_INIT = (0.97, 0.98, 0.975)  # near perfect generalization (good-branch start)


def solve_task1(alpha: float, beta: float = 20.0, kappa: float = 0.0, init=LOW_INIT, tol: float = 1e-10,
                q_star: float | None = None, max_evaluations: int = MAX_EVALUATIONS) -> RSSolution:
    """One task-1 saddle point; `q_star` clamps the self-overlap (Fig. 2d), κ = kappa weights S(m)."""
    return solve_rs(alpha, FlatMeasure(kappa), VariationalChannel(beta), init, fixed_q_star=q_star, tol=tol,
                    max_evaluations=max_evaluations)


def sweep_task1(alphas, beta: float = 20.0, kappa: float = 0.0, tol: float = 1e-10,
                max_evaluations: int = MAX_EVALUATIONS) -> list[dict]:
    """Both branches of the task-1 theory along α (rows of Fig. 2a; see continuation.sweep_branches)."""
    measure, channel = FlatMeasure(kappa), VariationalChannel(beta)

    def solve(alpha, init, budget):
        return solve_rs(alpha, measure, channel, init, tol=tol, max_evaluations=min(budget, max_evaluations))

    def is_stable(solution):
        with single_thread():
            return iteration_is_stable(RSProblem(solution.alpha, measure, channel), solution)

    return sweep_branches(alphas, solve, LOW_INIT, HIGH_INIT, is_stable)


def task1_reference(alpha: float, beta: float = 20.0, kappa: float = 0.0, branch: str = "thermodynamic",
                    tol: float = 1e-10) -> tuple[RSSolution, str]:
    """The task-1 solution of ONE branch at α, used as the task-2 reference (docs/theory.md §5: never an average
    across branches).  `branch`: 'thermodynamic' (larger free entropy), 'poor' or 'good' (a 'unique' solution
    counts as either).  Returns the solution (check `.converged`) and the name of its branch."""
    if branch not in ("thermodynamic", "poor", "good"):
        raise ValueError(f"branch must be thermodynamic, poor or good, got {branch!r}")
    rows = sweep_task1([alpha], beta=beta, kappa=kappa, tol=tol)
    row = next(row for row in rows if (row["thermodynamic"] if branch == "thermodynamic"
                                       else row["branch"] in (branch, "unique")))
    return RSSolution(**{name: row[name] for name in RSSolution.__dataclass_fields__}), row["branch"]
