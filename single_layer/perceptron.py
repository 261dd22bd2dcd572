"""The field-space binary perceptron of docs/theory.md §1–§2: the one definition used by every single-layer script.

The data (eqs. 1–2: teachers, Rademacher inputs, labels) are drawn by teacher_student.py.

Model (eqs. 3–6): every weight has a field h_i, m_i = tanh(β_h h_i), σ_i = 1 − m_i², and the objective of a task is

    F(h) = −Σ_μ ln H(−y^μ m·x^μ / √Σσ) + γ KL(q_h ‖ q_h′)      (data term in log space: ln H(−a) = log_ndtr(a))

with the hand-written gradient of eq. 7 (an autograd path exists for checking) and the optimisers as coded in the
original (docs/original_code.md: heavy-ball SGD, Adam with decoupled weight decay and eps 1e-20, plain gradient descent).
The evaluation metric (eq. 8) is the overlap p = mean(sgn(h)·w) and ε_g = arccos(p)/π.  sgn and the KL of one
weight are the field primitives of field_space.py.  The training protocols that use all this (one task, a task
switch) are in `single_layer.training`.

Many independent trials are one batched computation: fields are (n_trials, N), data (n_trials, P, N); trial k
draws its teacher, data and initial fields from its own generator seeded with seed + k, so its numbers do not
depend on how many trials are batched together.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import numpy as np
import torch

from field_space import ising_kl, sign
from harness.errors import SolverError, require
from single_layer.data_kernel import data_term_gradient_int8, train_epoch_int8
from teacher_student import Task

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
ADAM_BETAS = (0.9, 0.999)  # moment decay rates of the original Adamoptim
ADAM_EPS = 1e-20  # the original's epsilon (not the usual 1e-8)
OPTIMIZERS = ("momentum", "adam", "gd")


# ----------------------------------------------------------------------------- objective (docs/theory.md eqs. 4–7)
def _means(fields: torch.Tensor, beta_h: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mean = torch.tanh(beta_h * fields)
    variance = 1 - mean**2
    return mean, variance, variance.sum(-1, keepdim=True)


def data_term(fields: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor, beta_h: float = 1.0) -> torch.Tensor:
    """E(h) = −Σ_μ ln H(−y m·x/√Σσ) per trial (T,), in log space (autograd-differentiable)."""
    mean, _, variance_sum = _means(fields, beta_h)
    margin = labels * torch.einsum("tpn,tn->tp", inputs.to(mean.dtype), mean) / variance_sum.sqrt()
    return -torch.special.log_ndtr(margin).sum(-1)


def data_term_gradient(fields: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor, beta_h: float = 1.0,
                       batch: slice = slice(None)) -> torch.Tensor:
    """∂E/∂h_i = Σ_μ y β σ_i (x_i S + m_i m·x) / S^{3/2} · H′(t)/H(t), t = −y m·x/√S (docs/theory.md eq. 7),
    shape (T, N), over the patterns in `batch`.  int8 inputs on the CPU go through the one-pass kernel of
    `single_layer.data_kernel`; other inputs through two batched products."""
    if inputs.dtype == torch.int8 and inputs.device.type == "cpu":
        mean = torch.tanh(beta_h * fields)
        return beta_h * data_term_gradient_int8(mean, inputs, labels, batch)
    inputs, labels = inputs[:, batch].to(fields.dtype), labels[:, batch]
    mean, variance, variance_sum = _means(fields, beta_h)
    # m·x^μ, (T, B); the (1, N) × (N, B) form is about twice as fast as (B, N) × (N, 1) on CPU
    preactivation = torch.bmm(mean.unsqueeze(1), inputs.transpose(1, 2)).squeeze(1)
    margin = labels * preactivation / variance_sum.sqrt()
    # H′(t)/H(t) = −φ(a)/Φ(a) with a = −t, evaluated in log space
    hazard = -torch.exp(-0.5 * margin**2 - LOG_SQRT_2PI - torch.special.log_ndtr(margin))
    weight = hazard * labels  # (T, B)
    input_part = torch.bmm(weight.unsqueeze(1), inputs).squeeze(1) / variance_sum.sqrt()
    norm_part = mean * (weight * preactivation).sum(-1, keepdim=True) / variance_sum**1.5
    return beta_h * variance * (input_part + norm_part)


def kl_divergence(fields: torch.Tensor, anchor: torch.Tensor, beta_h: float = 1.0) -> torch.Tensor:
    """KL(q_h ‖ q_h′) summed over synapses, per trial (T,)."""
    return ising_kl(fields, anchor, beta_h).sum(-1)


def kl_gradient(fields: torch.Tensor, anchor: torch.Tensor, beta_h: float = 1.0) -> torch.Tensor:
    """∂KL/∂h_i = β² σ_i (h_i − h′_i) (docs/theory.md eq. 5)."""
    return beta_h**2 * (1 - torch.tanh(beta_h * fields) ** 2) * (fields - anchor)


def objective_gradient(fields: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor,
                       anchor: torch.Tensor | None = None, kl_weight: float = 0.0, beta_h: float = 1.0,
                       use_autograd: bool = False, batch: slice = slice(None)) -> torch.Tensor:
    """Gradient of E(h) over the patterns in `batch` + kl_weight·KL(q_h ‖ q_anchor), hand-written or by autograd of
    the same objective."""
    if use_autograd:
        with torch.enable_grad():
            leaf = fields.detach().requires_grad_(True)
            objective = data_term(leaf, inputs[:, batch], labels[:, batch], beta_h)
            if anchor is not None:
                objective = objective + kl_weight * kl_divergence(leaf, anchor, beta_h)
            return torch.autograd.grad(objective.sum(), leaf)[0]
    gradient = data_term_gradient(fields, inputs, labels, beta_h, batch)
    if anchor is not None:
        gradient = gradient + kl_weight * kl_gradient(fields, anchor, beta_h)
    return gradient


# ----------------------------------------------------------------------------- optimisers (as in the original code)
@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """How one task is trained: optimiser kind, its constants and the minibatch size (None: full batch)."""

    kind: str  # "momentum" (heavy ball, v ← μv + lr·g, h ← h − v) | "adam" (decoupled weight decay) | "gd"
    lr: float
    momentum: float = 0.9  # μ of the heavy-ball optimiser
    weight_decay: float = 0.0  # decoupled weight decay of Adam
    batch_size: int | None = None

    def __post_init__(self):
        require(self.kind in OPTIMIZERS, f"optimiser must be one of {OPTIMIZERS}, got {self.kind!r}")
        require(self.lr > 0, f"learning rate must be > 0, got {self.lr}")
        require(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        require(self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}")
        require(self.weight_decay == 0 or self.kind == "adam", "weight decay is only defined for Adam")
        require(self.batch_size is None or self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}")


class FieldOptimizer:
    """Per-trial optimiser state for fields of shape (T, N); `select` keeps the rows of the trials still training."""

    def __init__(self, spec: OptimizerSpec, fields: torch.Tensor):
        self.spec = spec
        self.steps = 0
        self.state = [torch.zeros_like(fields) for _ in range({"momentum": 1, "adam": 2, "gd": 0}[spec.kind])]

    def select(self, trials: torch.Tensor) -> None:
        self.state = [buffer[trials] for buffer in self.state]

    def epoch_int8(self, fields: torch.Tensor, task: Task, anchor: torch.Tensor | None, kl_weight: float,
                   beta_h: float, batch_size: int) -> None:
        """One epoch of `step`s with the gradient of `objective_gradient` over consecutive minibatches, in place on the
        contiguous `fields`, for int8 inputs on the CPU: fused into one numba pass per step
        (single_layer.data_kernel.train_epoch_int8; equal to the step-by-step path to rounding, tests/test_perceptron.py)."""
        spec = self.spec
        train_epoch_int8(fields, self.state, self.steps, task.inputs, task.labels, anchor, kl_weight, beta_h,
                         batch_size, spec.kind, spec.lr, spec.momentum, spec.weight_decay, (*ADAM_BETAS, ADAM_EPS))
        self.steps += -(-task.labels.shape[1] // batch_size)

    def step(self, fields: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        self.steps += 1
        if spec.kind == "gd":
            return fields - spec.lr * gradient
        if spec.kind == "momentum":
            velocity = self.state[0].mul_(spec.momentum).add_(spec.lr * gradient)
            return fields - velocity
        first, second = self.state
        first.mul_(ADAM_BETAS[0]).add_((1 - ADAM_BETAS[0]) * gradient)
        second.mul_(ADAM_BETAS[1]).add_((1 - ADAM_BETAS[1]) * gradient**2)
        first_hat = first / (1 - ADAM_BETAS[0] ** self.steps)
        second_hat = second / (1 - ADAM_BETAS[1] ** self.steps)
        return fields - spec.lr * (first_hat / (second_hat.sqrt() + ADAM_EPS) + spec.weight_decay * fields)


# ----------------------------------------------------------------------------- observables (docs/theory.md eq. 8)
def overlap(fields: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """p = (1/N) Σ_i sgn(h_i) w_i of the clipped student, per trial (T,)."""
    return (sign(fields) * teacher).mean(-1)


def generalization_error(p):
    """ε_g = arccos(p)/π (tensor or array)."""
    if isinstance(p, torch.Tensor):
        return torch.arccos(p.clamp(-1, 1)) / math.pi
    return np.arccos(np.clip(p, -1, 1)) / np.pi


def self_overlap(fields: torch.Tensor, beta_h: float = 1.0) -> torch.Tensor:
    """q⋆ = (1/N) Σ_i tanh²(β_h h_i), per trial (T,)."""
    return (torch.tanh(beta_h * fields) ** 2).mean(-1)


def empirical_test_error(fields: torch.Tensor, task: Task) -> torch.Tensor:
    """Empirical test error of the clipped student on the task's test set, per trial (T,)."""
    student = sign(fields).unsqueeze(1)
    errors = [(sign(torch.bmm(student, task.test_inputs[:, :, start:start + 1000].to(fields.dtype)).squeeze(1))
               != sign(task.test_fields[:, start:start + 1000])).sum(-1)
              for start in range(0, task.test_fields.shape[1], 1000)]
    return torch.stack(errors).sum(0).to(fields.dtype) / task.test_fields.shape[1]


def perfect_test_accuracy(fields: torch.Tensor, task: Task, max_flips: int = 32) -> torch.Tensor:
    """(T,) bool: the clipped student labels every test pattern like the teacher (test accuracy exactly 1).

    Only the weights where sgn(h) ≠ w change the preactivation (by −2 Σ_flipped w_i x_i), so the check costs
    n_test × (#flips).  A student with more than `max_flips` flips has ε_g ≥ arccos(1 − 2·33/N)/π (≥ 0.11 at
    N = 1000, ≈ 1 000 expected errors on 10 000 patterns) and is counted as imperfect without evaluation."""
    flipped = sign(fields) != task.teacher
    n_flipped = flipped.sum(-1)
    perfect = n_flipped == 0
    for trial in torch.nonzero((n_flipped > 0) & (n_flipped <= max_flips)).flatten().tolist():
        columns = torch.nonzero(flipped[trial]).flatten()
        shift = task.teacher[trial, columns] @ task.test_inputs[trial, columns].to(fields.dtype)
        teacher_fields = task.test_fields[trial]
        perfect[trial] = bool((sign(teacher_fields - 2 * shift) == sign(teacher_fields)).all())
    return perfect


def mean_overlap(fields: torch.Tensor, teacher: torch.Tensor, beta_h: float = 1.0) -> torch.Tensor:
    """r = (1/N) Σ_i tanh(β_h h_i) w_i: teacher overlap of the variational means (the theory's r), per trial (T,)."""
    return (torch.tanh(beta_h * fields) * teacher).mean(-1)


def task_observer(tasks: Sequence[Task], beta_h: float = 1.0) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    """Observables recorded during training: p_t, ε_g^t and r_t for every task t (1-based) and q⋆."""
    def observe(fields: torch.Tensor) -> dict[str, torch.Tensor]:
        values = {"q_star": self_overlap(fields, beta_h)}
        for index, task in enumerate(tasks, start=1):
            values[f"r{index}"] = mean_overlap(fields, task.teacher, beta_h)
            values[f"p{index}"] = overlap(fields, task.teacher)
            values[f"eps_g{index}"] = generalization_error(values[f"p{index}"])
        return values

    return observe


def project_self_overlap(fields: torch.Tensor, target, beta_h: float = 1.0, bound: float = 1 - 1e-8,
                         tol: float = 1e-12, max_iter: int = 100) -> torch.Tensor:
    """Fields with mean tanh²(β_h h) = target, signs kept (the "SGD slow" projection of Fig. 2d, docs/original_code.md B9 fixed).

    m is rescaled by s = √(target/q⋆) (the original used target/q⋆, which maps q⋆ to target²/q⋆) and clamped to
    ±bound.  Clamping removes mass, so s is re-solved with the clamped weights held at ±bound,
    s² = (target − q⋆_clamped)/q⋆_free, until the clamped set stops changing (a few iterations).  Computed in
    float64 (1 − 1e-8 is 1 in float32) and returned in the dtype of `fields`."""
    target = torch.as_tensor(target, dtype=torch.float64, device=fields.device).expand(fields.shape[0])
    require(bool(((target > 0) & (target < bound**2)).all()), f"target q* must be in (0, {bound**2}), got {target}")
    original = torch.tanh(beta_h * fields.double())
    scale = (target / (original**2).mean(-1)).sqrt()
    for _ in range(max_iter):
        scaled = original * scale.unsqueeze(-1)
        mean = scaled.clamp(-bound, bound)
        if bool((((mean**2).mean(-1) - target).abs() < tol).all()):
            return (torch.atanh(mean) / beta_h).to(fields.dtype)
        clamped = scaled.abs() >= bound
        free = torch.where(clamped, 0.0, original**2).mean(-1)
        scale = ((target - bound**2 * clamped.double().mean(-1)) / free).sqrt()
    raise SolverError(f"q* projection did not reach the target within {max_iter} iterations")
