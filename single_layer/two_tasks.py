"""Two tasks in a row: the Franz–Parisi theory curves and the two-task SGD protocol shared by Figs. 3 and A1.

Theory (docs/theory.md §5): ONE converged branch of the task-1 solution at α₁ is the reference; along an α₂ grid
the task-2 saddle point is followed from the reference up and from near-perfect generalization down (both
branches, the thermodynamic one marked).  SGD (docs/theory.md eq. 6): task 1 is trained once per trial batch —
teachers, initial fields and task-1 data depend only on the seed — and every (r₀, α₂) point continues from those
fields with its own task-2 data and γ KL(q_h ‖ q_h′) to them.  The point functions are plain top-level functions
of picklable arguments, so that the sweep executor (harness/sweep.py) can run them in other processes.  The SGD settings of
both figures (the original scripts') are the bases of their Configs, `Fig3SGDConfig` and `FigA1SGDConfig`, also read
by benchmarks/bench_paper_scale.py.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from harness.config import bounded
from harness.errors import SolverError, require
from harness.sweep import SweepConfig, run_points
from mean_field_theory.franz_parisi import Task2Problem
from mean_field_theory.rs_solver import RSSolution, eps_g_of
from mean_field_theory.task1 import task1_reference
from single_layer.comparison import compare, eps_g_resolution, joint_test
from single_layer.perceptron import OptimizerSpec, task_observer
from single_layer.training import train_task
from teacher_student import sample_trials, stack_tasks

THEORY_COLUMNS = ("eps_g1", "eps_g2", "p1", "p2", "converged", "branch", "thermodynamic", "q2", "r2", "q2_star",
                  "T", "free_entropy", "replicon", "rs_stable")


def solved_reference(alpha1: float, beta1: float, kappa1: float, branch: str, tol: float) -> tuple[RSSolution, str]:
    """The task-1 reference of one branch ('thermodynamic', 'poor' or 'good'); SolverError if it did not converge."""
    reference, found = task1_reference(alpha1, beta1, kappa1, branch, tol)
    if not reference.converged:
        raise SolverError(f"task-1 reference ({found} branch) at alpha1={alpha1}, beta1={beta1} did not converge "
                          f"(residual {reference.residual:.1e})")
    return reference, found


def theory_curve(reference: RSSolution, kappa1: float, beta2: float, gamma: float, r0: float, alpha2s,
                 tol: float, where: dict) -> list[dict]:
    """Both task-2 branches along `alpha2s` for one (γ, r₀): csv rows (q2, r2, q2_star: task-2 order parameters)."""
    rows = Task2Problem(reference, r0, gamma, beta2, kappa1, tol).sweep(alpha2s)
    renamed = [{**row, "q2": row["q"], "r2": row["r"], "q2_star": row["q_star"]} for row in rows]
    return [{**where, "alpha2": row["alpha"], "r0": r0, "gamma": gamma, "source": "theory", "seed": "",
             **{key: row[key] for key in THEORY_COLUMNS}} for row in renamed]


def near_reference_limit(reference: RSSolution, kappa1: float, beta2: float, gamma: float, r0: float) -> dict:
    """α₂ → 0: the student spread by exp(−κ₂KL) around the reference (all conjugates 0), and the values the limits
    of docs/theory.md §5 lead one to expect."""
    at_zero = Task2Problem(reference, r0, gamma, beta2, kappa1).measure.averages(0.0, 0.0, 0.0)
    p1 = at_zero.extras["p_teachers"][0]
    return {"p1": p1, "p2": at_zero.sign, "eps_g1": eps_g_of(p1), "eps_g2": eps_g_of(at_zero.sign),
            "eps_g2_expected_arccos_r0_p1": math.acos(r0 * reference.p1) / math.pi,
            "eps_g1_large_alpha2_arccos_r0": math.acos(r0) / math.pi}


# ---- the SGD settings of Figs. 3 and A1
# the α₂ of Fig. 3's SGD points per γ (the original script's grid)
SGD_ALPHA2S = {1.0: (0.1,) + tuple(0.5 * k for k in range(1, 15)), 0.1: (0.01, 0.1, 0.5, 1.0, 2.0, 5.0)}


@dataclasses.dataclass
class Fig3SGDConfig(SweepConfig):
    """The SGD of Fig. 3 (the original script's settings; the base of that script's Config); its points are the α₂
    of `SGD_ALPHA2S` per γ, for every r₀."""

    alpha1: float = bounded(2.0, above=0)  # data density of task 1 (α₁)
    r0s: tuple[float, ...] = bounded((-0.5, 0.0, 0.5), at_least=-1, at_most=1)  # teacher–teacher overlaps (r₀)
    n: int = bounded(1000, at_least=1)  # input dimension of the SGD runs (N)
    trials: int = bounded(20, at_least=1)  # independent SGD trials (seed + k)
    steps1: int = bounded(5000, at_least=1)  # full-batch Adam steps of task 1
    steps2: int = bounded(20000, at_least=1)  # full-batch Adam steps of task 2
    lr1: float = bounded(1e-3, above=0)  # Adam learning rate of task 1
    lr2_default: float = bounded(1e-3, above=0)  # task-2 learning rate where the paper's table has no entry
    weight_decay: float = bounded(1e-3, at_least=0)  # decoupled Adam weight decay, both tasks
    points_per_batch: int = bounded(1, at_least=1)  # task-2 points of one γ and learning rate trained as one
    # tensor computation (their data padded to a common P): the mode for a GPU; the numbers are the same


@dataclasses.dataclass
class FigA1SGDConfig(SweepConfig):
    """The SGD of Fig. A1 (the original script's settings; the base of that script's Config): panel a, task 1
    with the uniform prior; panels b–c, two tasks at α₁ = `alpha1` for every r₀; panel d, two tasks at α₁ =
    `alpha1_d`, r₀ = `r0_d`.  Validated by the script's Config, whose checks mix these with the theory's settings."""

    sgd_alphas: tuple[float, ...] = bounded(  # α of the panel-a SGD points
        tuple(round(0.2 * k, 1) for k in range(1, 13)), above=0)
    batch_sizes_a: tuple[int, ...] = bounded(  # Adam batch per SGD α (panel a)
        (16, 32, 64, 64, 16, 16, 16, 32, 32, 32, 16, 16), at_least=1)
    learning_rates_a: tuple[float, ...] = bounded(  # Adam learning rate per SGD α (panel a)
        (0.005, 0.001, 0.005, 0.005, 0.005, 0.001, 0.0005, 0.005, 0.005, 0.005, 0.005, 0.001), above=0)
    weight_decays_a: tuple[float, ...] = bounded(  # decoupled Adam weight decay per SGD α (panel a)
        (0.0005, 0.0005, 0.005, 0.005, 0.005, 0.0005, 0.0005, 0.0005, 0.0005, 0.0005, 0.0005, 0.0005), at_least=0)
    epochs_a: int = bounded(2000, at_least=1)  # maximal epochs of the panel-a SGD (stop at test accuracy 1)
    n_test: int = bounded(10000, at_least=1)  # test patterns of the panel-a early stop
    alpha1: float = bounded(2.0, above=0)  # data density of task 1 in panels b–c (α₁)
    r0s: tuple[float, ...] = bounded((-0.5, 0.0, 0.5), at_least=-1, at_most=1)  # teacher overlaps, b–c (r₀)
    alpha2s: tuple[float, ...] = bounded(  # α₂ of the theory and of the SGD points of panels b–d
        tuple(0.5 * k for k in range(1, 10)), above=0)
    lr1_bc: float = bounded(5e-3, above=0)  # Adam learning rate of task 1 (panels b–c)
    weight_decay1_bc: float = bounded(5e-4, at_least=0)  # Adam weight decay of task 1 (panels b–c)
    batch1_bc: int = bounded(32, at_least=1)  # minibatch size of task 1 (panels b–c)
    epochs1_bc: int = bounded(1000, at_least=1)  # epochs of task 1 (panels b–c), no early stop
    learning_rates_bc: tuple[float, ...] = bounded((  # task-2 Adam lr per (r₀, α₂), r₀-major (rows: r₀ = −½, 0, ½)
        0.005, 0.005, 0.001, 0.01, 0.005, 0.001, 0.01, 0.01, 0.001,
        0.001, 0.001, 0.01, 0.005, 0.01, 0.01, 0.005, 0.001, 0.001,
        0.005, 0.001, 0.005, 0.01, 0.01, 0.001, 0.001, 0.001, 0.001), above=0)
    batch_sizes_bc: tuple[int, ...] = bounded((  # task-2 minibatch size per (r₀, α₂), r₀-major
        32, 16, 32, 16, 16, 16, 16, 16, 16,
        16, 16, 32, 16, 16, 16, 16, 16, 16,
        64, 16, 32, 16, 16, 16, 16, 16, 16), at_least=1)
    weight_decay2_bc: float = bounded(1e-3, at_least=0)  # Adam weight decay of task 2 (panels b–c)
    epochs2_bc: int = bounded(3000, at_least=1)  # maximal epochs of task 2 (panels b–c; stop when sgn h = w²)
    alpha1_d: float = bounded(1.4, above=0)  # data density of task 1 in panel d (α₁)
    r0_d: float = bounded(0.0, at_least=-1, at_most=1)  # teacher–teacher overlap of panel d (r₀)
    lr1_d: float = bounded(2e-4, above=0)  # heavy-ball learning rate of task 1 (panel d)
    momentum1_d: float = bounded(0.9, at_least=0, below=1)  # heavy-ball momentum of task 1 (panel d)
    batch1_d: int = bounded(64, at_least=1)  # minibatch size of task 1 (panel d)
    epochs1_d: int = bounded(4500, at_least=1)  # maximal epochs of task 1 (panel d; stop when sgn h = w¹)
    momentum2_d: float = bounded(0.95, at_least=0, below=1)  # heavy-ball momentum of task 2 (panel d)
    learning_rates_d: tuple[float, ...] = bounded(  # task-2 heavy-ball lr per α₂ (panel d)
        (0.0005, 0.0005, 0.001, 0.005, 0.001, 0.001, 0.001, 0.0005, 0.0005), above=0)
    batch_sizes_d: tuple[int, ...] = bounded(  # task-2 batch per α₂ (panel d)
        (50, 100, 100, 50, 50, 50, 50, 100, 50), at_least=1)
    epochs2_d: int = bounded(7500, at_least=1)  # maximal epochs of task 2 (panel d; stop when sgn h = w²)
    n: int = bounded(1000, at_least=1)  # input dimension of the SGD runs (N)
    trials: int = bounded(20, at_least=1)  # independent SGD trials (seed + k)

    def spec_a(self, index: int) -> OptimizerSpec:
        """Panel a's optimiser at its `index`-th α."""
        return OptimizerSpec("adam", self.learning_rates_a[index], weight_decay=self.weight_decays_a[index],
                             batch_size=self.batch_sizes_a[index])

    def two_task_panel(self, panel: str, gamma: float) -> tuple[Protocol, list[tuple[float, float]], list]:
        """Panels b–c (α₁ = 2, every r₀, Adam, task 1 with the uniform prior) or d (α₁ = 1.4, r₀ = 0, heavy ball):
        the protocol, its (r₀, α₂) points and their task-2 optimisers."""
        if panel == "bc":
            protocol = Protocol(n=self.n, trials=self.trials, seed=self.seed, alpha1=self.alpha1, spec1=OptimizerSpec(
                "adam", self.lr1_bc, weight_decay=self.weight_decay1_bc, batch_size=self.batch1_bc),
                epochs1=self.epochs1_bc, uniform_prior=True, stop1=None, gamma=gamma, epochs2=self.epochs2_bc,
                stop2="teacher")
            specs = [OptimizerSpec("adam", lr, weight_decay=self.weight_decay2_bc, batch_size=batch)
                     for lr, batch in zip(self.learning_rates_bc, self.batch_sizes_bc)]
            return protocol, [(r0, alpha2) for r0 in self.r0s for alpha2 in self.alpha2s], specs
        protocol = Protocol(n=self.n, trials=self.trials, seed=self.seed, alpha1=self.alpha1_d, spec1=OptimizerSpec(
            "momentum", self.lr1_d, momentum=self.momentum1_d, batch_size=self.batch1_d), epochs1=self.epochs1_d,
            uniform_prior=False, stop1="teacher", gamma=gamma, epochs2=self.epochs2_d, stop2="teacher")
        specs = [OptimizerSpec("momentum", lr, momentum=self.momentum2_d, batch_size=batch)
                 for lr, batch in zip(self.learning_rates_d, self.batch_sizes_d)]
        return protocol, [(self.r0_d, alpha2) for alpha2 in self.alpha2s], specs



def uniform_prior_task(cfg: FigA1SGDConfig, index: int, device: str) -> list[dict]:
    """Fig. A1a: task 1 alone with KL to the uniform prior at the `index`-th α (Adam, stop at test accuracy 1)."""
    alpha = cfg.sgd_alphas[index]
    fields, (task,) = sample_trials(cfg.trials, cfg.n, [alpha], n_test=cfg.n_test, seed=cfg.seed, device=device)
    _, history = train_task(fields, task, cfg.spec_a(index), cfg.epochs_a, observe=task_observer([task]),
                            anchor=torch.zeros_like(fields), gamma=1.0, record_every=cfg.epochs_a,
                            early_stop="test_accuracy")
    return [{"panel": "a", "alpha": alpha, "source": "sgd", "seed": cfg.seed + trial, "eps_g1":
             history.final("eps_g1")[trial], "p1": history.final("p1")[trial],
             "epochs_trained": int(history.stop_epoch[trial])} for trial in range(cfg.trials)]


@dataclasses.dataclass
class Protocol:
    """The SGD of one figure's two-task points (everything but the task-2 learning rate and batch)."""

    n: int  # input dimension N
    trials: int  # trials, seed + k
    seed: int
    alpha1: float  # data density of task 1
    spec1: OptimizerSpec  # optimiser of task 1
    epochs1: int  # epochs (or full-batch steps) of task 1
    uniform_prior: bool  # task 1 with KL to h′ = 0 (appendix) or without prior
    stop1: str | None  # early stop of task 1
    gamma: float  # KL weight of task 2
    epochs2: int  # maximal epochs of task 2
    stop2: str | None  # early stop of task 2


def first_task(protocol: Protocol, device: str = "cpu"):
    """Task 1 for the whole trial batch: (fields after task 1, its history).  Deterministic given the protocol."""
    fields, tasks = sample_trials(protocol.trials, protocol.n, (protocol.alpha1, protocol.alpha1), 0.0,
                                  seed=protocol.seed, device=device)
    anchor = torch.zeros_like(fields) if protocol.uniform_prior else None
    return train_task(fields, tasks[0], protocol.spec1, protocol.epochs1, observe=task_observer(tasks[:1]),
                      anchor=anchor, gamma=1.0, record_every=protocol.epochs1, early_stop=protocol.stop1)


def first_task_rows(protocol: Protocol, history) -> list[dict]:
    """The SGD's task-1 state per trial (ε_g¹ and q⋆ at the switch): the reference SGD starts task 2 from."""
    return [{"seed": protocol.seed + trial, "eps_g1": history.final("eps_g1")[trial],
             "q_star": history.final("q_star")[trial]} for trial in range(protocol.trials)]


def task1_state(rows: list[dict]) -> dict:
    return {key: {"mean": float(np.mean([row[key] for row in rows])),
                  "sd": float(np.std([row[key] for row in rows], ddof=1)) if len(rows) > 1 else 0.0}
            for key in ("eps_g1", "q_star")}


def second_tasks(protocol: Protocol, after_task1: torch.Tensor, task1_epochs: int,
                 points: list[tuple[float, float, dict]], spec2: OptimizerSpec, device: str = "cpu") -> list[dict]:
    """(r₀, α₂) points = [(α₂, r₀, extra columns), …] of one protocol and task-2 optimiser: task 2 from the task-1
    fields with γ KL to them (`training.switch_task`'s protocol, epochs counted on from `task1_epochs`); one row per
    point and trial with both tasks' overlaps and the task-2 epochs.  Several points train as one tensor computation
    (`teacher_student.stack_tasks`: their training sets padded to a common P; full batch only) — a GPU's way to stay
    busy; every trial's numbers are those of its point alone."""
    require(spec2.batch_size is None or len(points) == 1, "points are trained together in full batch only")
    per_point = [sample_trials(protocol.trials, protocol.n, (protocol.alpha1, alpha2), r0, seed=protocol.seed,
                               device=device)[1] for alpha2, r0, _ in points]
    tasks = [stack_tasks([point_tasks[index] for point_tasks in per_point]) for index in (0, 1)]
    start = after_task1.to(device).repeat(len(points), 1)
    _, history = train_task(start, tasks[1], spec2, protocol.epochs2, observe=task_observer(tasks), anchor=start,
                            gamma=protocol.gamma, record_every=protocol.epochs2, early_stop=protocol.stop2,
                            epoch_offset=task1_epochs)
    return [{**where, "alpha2": alpha2, "r0": r0, "source": "sgd", "seed": protocol.seed + trial,
             **{key: history.final(key)[row] for key in ("eps_g1", "eps_g2", "p1", "p2")},
             "epochs_trained": int(history.stop_epoch[row]) - task1_epochs}
            for index, (alpha2, r0, where) in enumerate(points) for trial in range(protocol.trials)
            for row in [index * protocol.trials + trial]]


def point_batches(points: list[tuple], size: int) -> list[list[tuple]]:
    """The points (key, protocol, r₀, α₂, task-2 optimiser, extra columns) in batches of at most `size` that share
    their protocol and full-batch optimiser (`second_tasks`); a minibatched point is a batch of its own."""
    groups = {}
    for point in points:
        _, protocol, _, _, spec, _ = point
        shared = repr((protocol, spec)) if spec.batch_size is None else point[0]
        groups.setdefault(shared, []).append(point)
    return [group[start:start + size] for group in groups.values() for start in range(0, len(group), size)]


def run_sgd_points(cfg, store, protocol: Protocol, task1_key: str, points: list[tuple], device: str,
                   points_per_batch: int = 1) -> dict:
    """Task 1 of `protocol` (in this process, only if some point or the task-1 state is missing), then every
    point (key, protocol, r₀, α₂, task-2 optimiser, extra columns) from the same task-1 fields on the sweep
    executor, up to `points_per_batch` of them as one computation (`point_batches`; each point's rows are stored
    under its own key).  Returns the SGD's task-1 state (`task1_state`); the points' rows are in `store`."""
    missing = [point for point in points if store.get(point[0]) is None]
    if store.get(task1_key) is None or missing:
        after_task1, history1 = first_task(protocol, device)
        if store.get(task1_key) is None:
            store.put(task1_key, first_task_rows(protocol, history1))
        batches = point_batches(missing, points_per_batch)
        done = run_points(cfg, store, [
            (" + ".join(point[0] for point in batch), second_tasks,
             (batch[0][1], after_task1.cpu(), int(history1.epochs[-1]),
              [(alpha2, r0, where) for _, _, r0, alpha2, _, where in batch], batch[0][4], device))
            for batch in batches], desc=task1_key)
        for batch in (batch for batch in batches if len(batch) > 1):  # a batch's rows, each point under its key
            rows = done[" + ".join(point[0] for point in batch)]
            for key, _, r0, alpha2, _, _ in batch:
                store.put(key, [row for row in rows if (row["r0"], row["alpha2"]) == (r0, alpha2)])
    return task1_state(store.get(task1_key))


def agreement_points(rows: list[dict], keys: tuple[str, ...], quantity: str, n: int) -> list[dict]:
    """At every SGD point (grouped by `keys`): the thermodynamic theory's `quantity` against the SGD trials."""
    group = lambda row: tuple(row.get(key) for key in keys)
    theory = {group(row): row for row in rows if row["source"] == "theory" and row["thermodynamic"]}
    sgd = [row for row in rows if row["source"] == "sgd"]
    return [compare(theory[point][quantity], [row[quantity] for row in sgd if group(row) == point],
                    eps_g_resolution(n), **dict(zip(keys, point)))
            for point in sorted({group(row) for row in sgd}, key=str) if point in theory]


def joint_agreement(rows: list[dict], keys: tuple[str, ...], quantity: str) -> dict:
    """The points of `agreement_points` as one test: residuals grouped by trial (seed), which they share."""
    group = lambda row: tuple(row.get(key) for key in keys)
    theory = {group(row): row[quantity] for row in rows if row["source"] == "theory" and row["thermodynamic"]}
    residuals = {}
    for row in rows:
        if row["source"] == "sgd" and group(row) in theory:
            residuals.setdefault(row["seed"], []).append(row[quantity] - theory[group(row)])
    return joint_test(residuals)


R0_STYLE = {-0.5: ("red", "salmon", "o"), 0.0: ("blue", "royalblue", "s"), 0.5: ("black", "dimgrey", "^")}


def thermodynamic_curve(theory: list[dict], key: str) -> tuple[list[tuple], list[tuple]]:
    """The thermodynamic branch's `key` vs α₂ as a polyline with its first-order jumps drawn as jumps.

    Where the thermodynamic branch changes between two grid points at which both branches exist, the transition
    α₂* is the zero of the free-entropy difference, interpolated linearly between the two points (each branch's
    value at α₂* likewise); the polyline then runs to α₂* on one branch and continues from α₂* on the other.
    Returns (polyline, jumps as (α₂*, value before, value after)).
    """
    at = {}
    for row in theory:
        at.setdefault(row["alpha2"], {})[row["branch"]] = row
    alphas = sorted(at)
    stable = {alpha: next((row for row in at[alpha].values() if row["thermodynamic"]), None) for alpha in alphas}
    alphas = [alpha for alpha in alphas if stable[alpha] is not None]
    curve, jumps = [], []
    for index, alpha in enumerate(alphas):
        curve.append((alpha, stable[alpha][key]))
        if index + 1 == len(alphas):
            break
        following = alphas[index + 1]
        before, after = stable[alpha]["branch"], stable[following]["branch"]
        if before != after and {before, after} <= set(at[alpha]) & set(at[following]):
            gap = lambda a: at[a][before]["free_entropy"] - at[a][after]["free_entropy"]
            weight = gap(alpha) / (gap(alpha) - gap(following))  # in (0, 1): gap(alpha) > 0 > gap(following)
            where = alpha + weight * (following - alpha)
            value = lambda branch: (1 - weight) * at[alpha][branch][key] + weight * at[following][branch][key]
            curve += [(where, value(before)), (where, value(after))]
            jumps.append((where, value(before), value(after)))
    return curve, jumps


def draw_forgetting(axis, theory: list[dict], sgd: list[dict], key: str) -> None:
    """ε_g (column `key`) vs α₂ per r₀: the thermodynamic theory as a line (markers at the computed α₂, first-order
    jumps at their interpolated α₂*, dotted; × where the RS solution is unstable), SGD as mean ± s.d. (Figs. 3, A1b–c)."""
    for r0 in sorted({row["r0"] for row in theory + sgd}):
        dark, light, marker = R0_STYLE.get(r0, ("green", "lightgreen", "d"))
        curve, jumps = thermodynamic_curve([row for row in theory if row["r0"] == r0], key)
        if curve:
            axis.plot(*zip(*curve), "-", color=dark, label=f"theory $r_0={r0:g}$")
            axis.plot(*zip(*sorted((row["alpha2"], row[key]) for row in theory if row["r0"] == r0
                                   and row["thermodynamic"])), ls="none", color=dark, marker=marker, mfc="none")
        for alpha2, _, _ in jumps:
            axis.axvline(alpha2, color=dark, lw=0.5, ls=":")
        unstable = [(row["alpha2"], row[key]) for row in theory
                    if row["r0"] == r0 and row["thermodynamic"] and row.get("rs_stable") is False]
        if unstable:
            axis.plot(*zip(*unstable), "x", color=dark, ms=6, label=rf"RS unstable ($\lambda_R \geq 1$), $r_0={r0:g}$")
        sgd_errorbars(axis, [row for row in sgd if row["r0"] == r0], "alpha2", key, color=light, marker=marker,
                      label=f"SGD $r_0={r0:g}$")
    axis.set_xlabel(r"$\alpha_2$")
    axis.set_ylabel(r"$\epsilon_g^{%s}$" % key[-1])


def sgd_errorbars(axis, sgd: list[dict], x_key: str, key: str, **style) -> None:
    """Mean ± 1 s.d. over the SGD trials of column `key` at every value of `x_key` (the label says so)."""
    xs = sorted({row[x_key] for row in sgd})
    if "label" in style:
        style["label"] += " (mean ± 1 s.d.)"
    values = [np.array([row[key] for row in sgd if row[x_key] == x]) for x in xs]
    if xs:
        axis.errorbar(xs, [v.mean() for v in values], [v.std(ddof=1) if len(v) > 1 else 0.0 for v in values],
                      ls="--", mfc="none", lw=0.8, **style)
