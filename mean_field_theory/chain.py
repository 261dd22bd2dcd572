"""A chain of T tasks, each learned with the typical solution of the previous one as prior (docs/theory.md §6).

Teachers form a Markov chain: w^t = w^{t−1}B_t with P(B_t = ±1) = (1 ± r₀)/2 per site, so teachers s and t overlap
r₀^|t−s|.  Task 1 is the task-1 theory at (α, β) without prior; task t ≥ 2 is the Franz–Parisi problem of
`franz_parisi.NextTask` at (α, β, κ = βγ) whose reference is a typical solution of task t − 1.  Since the reference
enters the single site only as the field shift κ·atanh(m′), everything task t needs from the past is, per site,

    ρ_{t−1}(u)     the law of u = atanh(m′) of the reference, in the gauge of its teacher (w^{t−1} = +1),
    ν_s(u)         the signed masses E[w^s w^{t−1}; u] of every older teacher s (ν_{t−1} = ρ_{t−1}),

all on one grid of u nodes.  Solving task t gives its conjugates; the law of its typical solution is
ρ_t(u) = Σ_v ρ′(v) ∫Dx P_t(u | x, v) and ν_s likewise (`ReferenceMeasure.next_law`), and the teacher-s overlap
of the clipped task-t student is p_{s,t} = Σ_v ν′_s(v) ∫Dx ⟨sgn m⟩, ε_g^{s,t} = arccos(p_{s,t})/π.  Where two
branches coexist both are reported; the thermodynamic one (larger free entropy) is the next task's reference.
"""
from __future__ import annotations

import dataclasses
import math

from mean_field_theory.franz_parisi import NextTask, TaskSolution, task1_law
from mean_field_theory.rs_solver import RSSolution, eps_g_of, rs_stable
from mean_field_theory.task1 import sweep_task1

APPROACH_STEPS = 4  # each task is continued in α along α·k/steps, k = 1 … steps (the gradual branch from its α → 0 limit)


@dataclasses.dataclass
class ChainTask:
    """One branch of task t: its order parameters and ε_g^{s,t}, p_{s,t} for s = 1 … t."""

    task: int
    branch: str  # unique | poor | good
    thermodynamic: bool
    q: float
    r: float
    q_star: float
    overlap_reference: float  # ⟪m′⟨m⟩⟫ with the reference (NaN for task 1)
    free_entropy: float
    converged: bool
    p: tuple  # p_{s,t}, s = 1 … t
    eps_g: tuple  # ε_g^{s,t}
    replicon: float  # of this task's replicas at a fixed reference (rs_solver.RSSolution); RS stable iff < 1

    def as_row(self) -> dict:
        return {**dataclasses.asdict(self), "rs_stable": rs_stable(self.replicon)}


@dataclasses.dataclass
class Chain:
    tasks: list[ChainTask]  # every branch of every task solved, in task order
    failure: str = ""  # why the chain stopped before its last task ('' if it did not)

    def thermodynamic(self) -> list[ChainTask]:
        return [task for task in self.tasks if task.thermodynamic]


def _branches(rows: list[dict], alpha: float) -> list[dict]:
    return [row for row in rows if row["alpha"] == alpha]


def chain_of_tasks(n_tasks: int, alpha: float, r0: float, gamma: float, beta: float = 20.0, tol: float = 1e-10,
                   steps: int = APPROACH_STEPS, progress=None) -> Chain:
    """The theory of a chain of `n_tasks` tasks at equal (α, β, γ) and teacher overlap r₀ (module docstring).
    Stops at the first task whose thermodynamic solution did not converge (`Chain.failure` says where);
    `progress(t)` is called after each task."""
    if n_tasks < 1 or not alpha > 0 or not abs(r0) <= 1 or not gamma >= 0 or not beta > 0:
        raise ValueError(f"need n_tasks >= 1, alpha > 0, |r0| <= 1, gamma >= 0, beta > 0; got {n_tasks}, {alpha}, "
                         f"{r0}, {gamma}, {beta}")
    grid = [alpha * k / steps for k in range(1, steps + 1)]
    tasks, history = [], []
    first = _branches(sweep_task1(grid, beta, 0.0, tol), grid[-1])
    for row in first:
        tasks.append(ChainTask(1, row["branch"], row["thermodynamic"], row["q"], row["r"], row["q_star"], math.nan,
                               row["free_entropy"], row["converged"], (row["p1"],), (row["eps_g"],),
                               row["replicon"]))
    chosen = next(row for row in first if row["thermodynamic"])
    if not chosen["converged"]:
        return Chain(tasks, f"task 1 did not converge (residual {chosen['residual']:.1e})")
    law = task1_law(RSSolution(**{name: chosen[name] for name in RSSolution.__dataclass_fields__}))
    history = [law]
    if progress:
        progress(1)
    for t in range(2, n_tasks + 1):
        problem = NextTask(law, r0, gamma, beta, tol, earlier=history[:-1])
        rows = _branches(problem.sweep(grid), grid[-1])
        for row in rows:
            p = (*row["p_teachers"], row["p"])
            tasks.append(ChainTask(t, row["branch"], row["thermodynamic"], row["q"], row["r"], row["q_star"],
                                   row["overlap_reference"], row["free_entropy"], row["converged"], p,
                                   tuple(eps_g_of(value) for value in p), row["replicon"]))
        chosen = next(row for row in rows if row["thermodynamic"])
        if not chosen["converged"]:
            return Chain(tasks, f"task {t} did not converge (residual {chosen['residual']:.1e})")
        solution = TaskSolution(**{name: chosen[name] for name in TaskSolution.__dataclass_fields__})
        law, history = problem.next_law(solution)
        if progress:
            progress(t)
    return Chain(tasks)
