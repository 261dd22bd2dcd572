"""Training protocols of the field-space binary perceptron (docs/theory.md §2): one task, and a task switch.

`train_task` trains a batch of trials on one task with an optimiser of `single_layer.perceptron`: minibatches in
fixed order with a smaller last batch, the KL weight γ·bs/P per minibatch (eq. 6), and the early stops of the
original (docs/original_code.md); `switch_task` continues on the next task with γ KL to the fields where the
previous one ended, and `train_two_tasks` chains the two.  `History` holds the observables recorded on the way.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
import torch

from field_space import sign
from harness.errors import SolverError, require
from single_layer.perceptron import (FieldOptimizer, OptimizerSpec, objective_gradient, perfect_test_accuracy,
                                     task_observer)
from teacher_student import Task

EARLY_STOPS = (None, "test_accuracy", "teacher")


@dataclasses.dataclass
class History:
    """Observables recorded during training: values[name] has shape (n_records, T)."""

    epochs: np.ndarray  # (n_records,) epoch numbers (0 = before the first update)
    values: dict[str, np.ndarray]
    stop_epoch: np.ndarray  # (T,) last epoch each trial trained (early stop) — the epoch count if never stopped

    def final(self, name: str) -> np.ndarray:
        return self.values[name][-1]

    @staticmethod
    def concatenate(first: "History", second: "History") -> "History":
        return History(np.concatenate([first.epochs, second.epochs]),
                       {name: np.concatenate([first.values[name], second.values[name]]) for name in first.values},
                       second.stop_epoch)


def train_task(fields: torch.Tensor, task: Task, spec: OptimizerSpec, epochs: int, *,
               observe: Callable[[torch.Tensor], dict[str, torch.Tensor]], anchor: torch.Tensor | None = None,
               gamma: float = 1.0, beta_h: float = 1.0, record_every: int = 1, early_stop: str | None = None,
               epoch_offset: int = 0, use_autograd: bool = False,
               constrain: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
               progress=None, fused: bool = True) -> tuple[torch.Tensor, History]:
    """Train a batch of trials on one task; returns the final fields (T, N) and the recorded History.

    Each epoch sweeps the training set in fixed order (DataLoader(shuffle=False): the last minibatch may be
    smaller); an epoch of minibatches on int8 inputs on the CPU (no `constrain`, no autograd) is one fused numba call
    unless `fused` is False (the step-by-step path, for comparison). With an anchor h′ every minibatch adds γ·bs/P × ∇KL(q_h ‖ q_h′) (docs/theory.md eq. 6; γ for full batch).
    Records are taken before training (epoch `epoch_offset`) and every `record_every` epochs; a trial that meets
    the early stop rule ("test_accuracy": accuracy 1 on its test set; "teacher": sgn(h) = w) is frozen.
    `constrain(fields, epoch)`, if given, is applied after every optimiser step to the fields of the trials still
    training (e.g. the fixed-q⋆ projection of Fig. 2d with a q⋆ schedule over epochs)."""
    require(epochs >= 1, f"epochs must be >= 1, got {epochs}")
    require(record_every >= 1, f"record_every must be >= 1, got {record_every}")
    require(gamma >= 0, f"gamma must be >= 0, got {gamma}")
    require(beta_h > 0, f"beta_h must be > 0, got {beta_h}")
    require(early_stop in EARLY_STOPS, f"early_stop must be one of {EARLY_STOPS}, got {early_stop!r}")
    require(early_stop != "test_accuracy" or task.test_inputs is not None, "test_accuracy stop needs a test set")
    if task.inputs.device.type != "cpu":  # the int8 kernel is the CPU's; a GPU multiplies its own dtype, cast once
        task = dataclasses.replace(task, inputs=task.inputs.to(fields.dtype))
    n_trials, n_train = task.labels.shape
    batch_size = spec.batch_size or n_train
    kl_weight = gamma * batch_size / n_train
    optimizer = FieldOptimizer(spec, fields)
    active = torch.arange(n_trials, device=fields.device)
    fields, working, working_anchor = fields.clone(), task, anchor
    current = fields.clone()
    stop_epoch = np.full(n_trials, epoch_offset + epochs)
    recorded_epochs, records = [epoch_offset], [{key: value.cpu() for key, value in observe(fields).items()}]
    # minibatch epochs on int8 CPU inputs in one numba call (full batch gains nothing there: bench_perceptron_step)
    fused = fused and batch_size < n_train and constrain is None and not use_autograd and task.inputs.dtype == torch.int8
    for epoch in range(1, epochs + 1):
        if fused:  # the same steps in one numba pass per step (single_layer.data_kernel.train_epoch_int8)
            optimizer.epoch_int8(current, working, working_anchor, kl_weight, beta_h, batch_size)
        else:
            for start in range(0, n_train, batch_size):
                gradient = objective_gradient(current, working.inputs, working.labels, working_anchor, kl_weight,
                                              beta_h, use_autograd, slice(start, start + batch_size))
                current = optimizer.step(current, gradient)
                if constrain is not None:
                    current = constrain(current, epoch_offset + epoch)
        if not bool(torch.isfinite(current).all()):
            raise SolverError(f"non-finite fields at epoch {epoch_offset + epoch} (lr {spec.lr} too large?)")
        fields[active] = current
        if early_stop is not None:
            done = (sign(current) == working.teacher).all(-1) if early_stop == "teacher" \
                else perfect_test_accuracy(current, working)
            if bool(done.any()):
                stop_epoch[active[done].cpu().numpy()] = epoch_offset + epoch
                keep = torch.nonzero(~done).flatten()
                active, current, working = active[keep], current[keep], working.select(keep)
                working_anchor = None if anchor is None else working_anchor[keep]
                optimizer.select(keep)
        finished = len(active) == 0
        if epoch % record_every == 0 or epoch == epochs or finished:
            recorded_epochs.append(epoch_offset + epoch)
            records.append({key: value.cpu() for key, value in observe(fields).items()})
        if progress is not None:
            progress.update(1)
        if finished:
            break
    values = {key: torch.stack([record[key] for record in records]).double().numpy() for key in records[0]}
    return fields, History(np.array(recorded_epochs), values, stop_epoch)


def switch_task(fields: torch.Tensor, history: History, task: Task, spec: OptimizerSpec, epochs: int, *,
                observe: Callable[[torch.Tensor], dict[str, torch.Tensor]], gamma: float = 1.0, beta_h: float = 1.0,
                record_every: int = 1, early_stop: str | None = None, progress=None) -> tuple[torch.Tensor, History]:
    """Task switch (docs/theory.md eq. 6): continue from the end of a previous task (`fields`, its `history`) on `task` with a
    fresh optimiser and γ KL(q_h ‖ q_h′), h′ = `fields`; returns the final fields and the joined history (epochs
    continue across the switch)."""
    final, after = train_task(fields, task, spec, epochs, observe=observe, anchor=fields, gamma=gamma, beta_h=beta_h,
                              record_every=record_every, early_stop=early_stop,
                              epoch_offset=int(history.epochs[-1]), progress=progress)
    after.epochs, after.values = after.epochs[1:], {key: value[1:] for key, value in after.values.items()}
    return final, History.concatenate(history, after)


def train_two_tasks(fields: torch.Tensor, tasks: Sequence[Task], specs: Sequence[OptimizerSpec],
                    epochs: Sequence[int], *, gamma: float = 1.0, first_anchor: torch.Tensor | None = None,
                    early_stops: Sequence[str | None] = (None, None), beta_h: float = 1.0, record_every: int = 1,
                    progress=None) -> tuple[torch.Tensor, History]:
    """Task 1 (KL to `first_anchor` if given, e.g. zeros = uniform prior), then `switch_task` to task 2.
    Both teachers are observed throughout (p1, p2, eps_g1, eps_g2, q_star)."""
    observe = task_observer(tasks, beta_h)
    after_first, first = train_task(fields, tasks[0], specs[0], epochs[0], observe=observe, anchor=first_anchor,
                                    beta_h=beta_h, record_every=record_every, early_stop=early_stops[0],
                                    progress=progress)
    return switch_task(after_first, first, tasks[1], specs[1], epochs[1], observe=observe, gamma=gamma,
                       beta_h=beta_h, record_every=record_every, early_stop=early_stops[1], progress=progress)
