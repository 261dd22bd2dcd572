"""A chain of T tasks: the theory's rows and the SGD protocol shared by the chain scripts
(`single_layer/chain_of_tasks.py`, `single_layer/chain_tradeoff.py`).

Teachers form a Markov chain with successive overlap r₀; every task has data density α and task t ≥ 2 is learned
with γ KL to the solution of task t − 1 (docs/theory.md §6).  Theory: `mean_field_theory.chain`.  SGD: full-batch
Adam, task 1 without prior, every later task with γ KL(q_h ‖ q_h′) to the fields h′ at the end of the previous
task, a batch of trials as one computation.  The point functions are plain top-level functions of picklable
arguments, so that the sweep executor (harness/sweep.py) can run them in other processes.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from harness.config import bounded
from harness.sweep import SweepConfig
from mean_field_theory.chain import chain_of_tasks
from single_layer.perceptron import OptimizerSpec, task_observer
from single_layer.training import train_task
from teacher_student import sample_trials


@dataclasses.dataclass
class ChainSGDConfig(SweepConfig):
    """The SGD of a chain and the theory's tolerance: the base of the Configs of single_layer/chain_of_tasks.py and
    single_layer/chain_tradeoff.py."""

    n: int = bounded(500, at_least=1)  # input dimension of the SGD runs (N)
    trials: int = bounded(10, at_least=1)  # independent SGD trials (seed + k)
    trials_per_point: int = bounded(  # trials trained together as one batched computation (one point of the sweep)
        5, at_least=1)
    steps1: int = bounded(5000, at_least=1)  # full-batch Adam steps of task 1
    steps: int = bounded(12500, at_least=1)  # full-batch Adam steps of every later task
    lr: float = bounded(1e-3, above=0)  # Adam learning rate
    weight_decay: float = bounded(1e-3, at_least=0)  # decoupled Adam weight decay
    tol: float = bounded(1e-10, above=0)  # saddle-point tolerance

    def protocol(self, n_tasks: int, alpha: float, r0: float, gamma: float) -> "ChainProtocol":
        return ChainProtocol(n_tasks, alpha, r0, gamma, self.n, self.steps1, self.steps, self.lr, self.weight_decay)

    def sgd_points(self, protocol: "ChainProtocol", function, device: str, label: str = "sgd") -> list[tuple]:
        """The trials in batches of `trials_per_point`: points (key, function, (protocol, first seed, size, device))."""
        return [(f"{label} trials {first}-{min(first + self.trials_per_point, self.trials) - 1}", function,
                 (protocol, self.seed + first, min(self.trials_per_point, self.trials - first), device))
                for first in range(0, self.trials, self.trials_per_point)]


def theory_rows(n_tasks: int, alpha: float, r0: float, gamma: float, beta: float, tol: float) -> list[dict]:
    """Every branch of every task: one row per (t, s).  A chain that stopped early ends with the rows of the task
    that did not converge (converged = False)."""
    chain = chain_of_tasks(n_tasks, alpha, r0, gamma, beta, tol)
    return [{"task_trained": task.task, "task_eval": s, "alpha": alpha, "r0": r0, "gamma": gamma,
             "source": "theory", "seed": "", "eps_g": task.eps_g[s - 1], "p": task.p[s - 1],
             "converged": task.converged, "branch": task.branch, "thermodynamic": task.thermodynamic, "q": task.q,
             "r": task.r, "q_star": task.q_star, "overlap_reference": task.overlap_reference,
             "free_entropy": task.free_entropy, "replicon": task.replicon, "rs_stable": task.replicon < 1.0}
            for task in chain.tasks for s in range(1, task.task + 1)]


@dataclasses.dataclass
class ChainProtocol:
    """Everything one batch of SGD trials of the chain depends on."""

    n_tasks: int
    alpha: float
    r0: float
    gamma: float
    n: int
    steps1: int
    steps: int
    lr: float
    weight_decay: float


def sgd_chain(protocol: ChainProtocol, seed: int, n_trials: int, device: str = "cpu") -> list[dict]:
    """Trials seed … seed + n_trials − 1 through the whole chain as one batched computation: one row per (t, s,
    trial) at the end of task t."""
    fields, tasks = sample_trials(n_trials, protocol.n, (protocol.alpha,) * protocol.n_tasks, protocol.r0,
                                  seed=seed, device=device)
    observe, spec = task_observer(tasks), OptimizerSpec("adam", protocol.lr, weight_decay=protocol.weight_decay)
    rows, anchor = [], None
    for t, task in enumerate(tasks, start=1):
        steps = protocol.steps1 if t == 1 else protocol.steps
        fields, history = train_task(fields, task, spec, steps, observe=observe, anchor=anchor, gamma=protocol.gamma,
                                     record_every=max(1, steps // 2))
        anchor = fields
        values = history.values
        settling = np.abs(values[f"eps_g{t}"][-1] - values[f"eps_g{t}"][-2])
        rows += [{"task_trained": t, "task_eval": s, "alpha": protocol.alpha, "r0": protocol.r0,
                  "gamma": protocol.gamma, "source": "sgd", "seed": seed + k, "eps_g": values[f"eps_g{s}"][-1][k],
                  "p": values[f"p{s}"][-1][k], "converged": True, "r": values[f"r{t}"][-1][k],
                  "q_star": values["q_star"][-1][k], "settling": settling[k]}
                 for s in range(1, t + 1) for k in range(n_trials)]
    return rows
