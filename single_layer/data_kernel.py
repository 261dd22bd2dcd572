"""The perceptron's data-term gradient (docs/theory.md eq. 7) as one pass over int8 inputs, and whole minibatch epochs
(numba, CPU).

The torch path reads the (trials, P, N) float32 inputs twice per step — m·x for every pattern, then Σ_μ w_μ x^μ —
and at the paper's sizes that tensor is far larger than the caches, so a step runs at main-memory bandwidth.  The
inputs are ±1: int8 holds them exactly in a quarter of the bytes.  This kernel takes each pattern's row once: its
dot product with m, the weight w_μ = y φ(t)/Φ_N(t) of eq. 7 (t the margin), and w_μ x^μ added to the
accumulator while the row is still in L1.  Trials run in parallel (numba prange).  The products and sums over i
are in the means' dtype — float32 fields: float32, as accurate as the torch float32 path it replaces (both ~7e-7
relative to float64 at the Fig. 3 size); float64 fields: float64, equal to the float64 torch path to ~1e-12 — and
the per-pattern scalars (margin, weight, the norm term) in float64.  Each ±1 input is cast to the means' dtype
(`_like`) before it is multiplied: numba types int8 · float32 as float64, which made the float32 loops convert
every product to float64 (half the vector width) — 1.4× slower at the Fig. 3 and Fig. 2c sizes.

A minibatch epoch (`train_epoch_int8`) runs every step of the epoch in one call: per step and trial the means, this
gradient over the minibatch, the KL term and the optimiser update, with no torch operation in between — at the
minibatch sizes of the original scripts (16–100 patterns) the ~20 small torch operations of a step cost more than
its arithmetic (benchmarks/bench_perceptron_step.py).

φ/Φ_N = √(2/π)/erfcx(−t/√2) is evaluated without cancellation for every t (continued fraction of erfcx for
arguments ≥ 5, exp(x²)·erfc(x) below), as `torch.special.log_ndtr` does in the torch path.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch
from numba.extending import overload

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_PI = 1.0 / math.sqrt(math.pi)


@numba.njit(cache=True)
def _erfcx(x: float) -> float:
    """e^{x²} erfc(x): directly for x < 5 (erfc(5) ≈ 1.5e-12 keeps its relative accuracy), else Laplace's continued
    fraction erfc(x) = e^{−x²}/√π · 1/(x + ½/(x + 1/(x + 3/2/(x + …)))) (40 levels: float64-exact for x ≥ 5)."""
    if x < 5.0:
        return math.exp(x * x) * math.erfc(x)
    tail = 0.0
    for level in range(40, 0, -1):
        tail = 0.5 * level / (x + tail)
    return INV_SQRT_PI / (x + tail)


def _like(value, array):
    """`value` cast to the dtype of `array` (compiled code only)."""


@overload(_like)
def _like_in_compiled_code(value, array):
    dtype = array.dtype
    return lambda value, array: dtype(value)


@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def _dot(row, mean):
    """Σ_i x_i m_i in m's dtype (vectorised: the sum may be reassociated)."""
    total = _like(0, mean)
    for i in range(row.shape[0]):
        total += _like(row[i], mean) * mean[i]
    return total


@numba.njit(cache=True, fastmath={"contract"})
def _add_scaled(accumulator, weight, row) -> None:
    """accumulator += weight · row, in the accumulator's dtype."""
    weight = _like(weight, accumulator)
    for i in range(row.shape[0]):
        accumulator[i] += weight * _like(row[i], accumulator)


@numba.njit(parallel=True, cache=True)
def _gradient(mean, inputs, labels, start, stop, out):
    trials, _, n = inputs.shape
    for trial in numba.prange(trials):
        m = mean[trial]
        variance_sum = 0.0
        for i in range(n):
            variance_sum += 1.0 - float(m[i]) * float(m[i])
        root = math.sqrt(variance_sum)
        accumulator = np.zeros(n, dtype=mean.dtype)
        norm_sum = 0.0
        for mu in range(start, stop):
            row = inputs[trial, mu]
            preactivation = float(_dot(row, m))
            label = labels[trial, mu]
            margin = label * preactivation / root
            weight = -label * SQRT_2_OVER_PI / _erfcx(-margin / math.sqrt(2.0))
            norm_sum += weight * preactivation
            _add_scaled(accumulator, weight, row)
        for i in range(n):
            mean_i = float(m[i])
            out[trial, i] = (1.0 - mean_i * mean_i) * (float(accumulator[i]) / root
                                                       + mean_i * norm_sum / (variance_sum * root))


def data_term_gradient_int8(mean: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor,
                            batch: slice = slice(None)) -> torch.Tensor:
    """∂E/∂h / β_h of eq. 7 for means m (T, N), int8 inputs (T, P, N) and labels (T, P) of the patterns in `batch` (a
    slice of the P patterns: the minibatch is read in place), on `torch.get_num_threads()` threads, in m's dtype
    (float32 or float64); returns a (T, N) tensor of m's dtype."""
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
    start, stop, _ = batch.indices(inputs.shape[1])
    out = np.empty(mean.shape, dtype=np.float64)
    _gradient(mean.detach().contiguous().numpy(), inputs.contiguous().numpy(),
              labels.detach().double().contiguous().numpy(), start, stop, out)
    return torch.from_numpy(out).to(mean.dtype)


OPTIMIZER_CODES = {"gd": 0, "momentum": 1, "adam": 2}


@numba.njit(parallel=True, cache=True)
def _epoch(fields, first, second, inputs, labels, anchor, has_anchor, kl_weight, beta, batch_size, steps_before,
           kind, lr, momentum, weight_decay, beta1, beta2, eps):
    trials, n_train, n = inputs.shape
    for trial in numba.prange(trials):
        h, m = fields[trial], np.empty(n, dtype=fields.dtype)
        accumulator = np.empty(n, dtype=fields.dtype)
        step = steps_before
        for start in range(0, n_train, batch_size):
            step += 1
            variance_sum = 0.0
            for i in range(n):
                m[i] = math.tanh(beta * float(h[i]))
                variance_sum += 1.0 - float(m[i]) * float(m[i])
            root = math.sqrt(variance_sum)
            accumulator[:] = 0
            norm_sum = 0.0
            for mu in range(start, min(start + batch_size, n_train)):
                row = inputs[trial, mu]
                preactivation = float(_dot(row, m))
                label = labels[trial, mu]
                weight = -label * SQRT_2_OVER_PI / _erfcx(-label * preactivation / root / math.sqrt(2.0))
                norm_sum += weight * preactivation
                _add_scaled(accumulator, weight, row)
            correction1, correction2 = 1.0 - beta1**step, 1.0 - beta2**step
            for i in range(n):
                mean_i, field = float(m[i]), float(h[i])
                gradient = beta * (1.0 - mean_i * mean_i) * (float(accumulator[i]) / root
                                                             + mean_i * norm_sum / (variance_sum * root))
                if has_anchor:
                    gradient += kl_weight * beta * beta * (1.0 - mean_i * mean_i) * (field - float(anchor[trial, i]))
                if kind == 0:
                    field -= lr * gradient
                elif kind == 1:
                    first[trial, i] = momentum * float(first[trial, i]) + lr * gradient
                    field -= float(first[trial, i])
                else:
                    first[trial, i] = beta1 * float(first[trial, i]) + (1.0 - beta1) * gradient
                    second[trial, i] = beta2 * float(second[trial, i]) + (1.0 - beta2) * gradient * gradient
                    field -= lr * (float(first[trial, i]) / correction1
                                   / (math.sqrt(float(second[trial, i]) / correction2) + eps) + weight_decay * field)
                h[i] = field


def train_epoch_int8(fields: torch.Tensor, state: list[torch.Tensor], steps_before: int, inputs: torch.Tensor,
                     labels: torch.Tensor, anchor: torch.Tensor | None, kl_weight: float, beta_h: float,
                     batch_size: int, kind: str, lr: float, momentum: float, weight_decay: float,
                     adam: tuple[float, float, float]) -> None:
    """One epoch of minibatch steps (in order, the last one smaller) for every trial, in place on the contiguous
    `fields` (T, N) and the optimiser `state` (heavy ball: [velocity]; Adam: [first, second] moments; gd: []): per
    step the means, the data-term gradient of eq. 7 over the minibatch as in `_gradient`, + kl_weight ∇KL(q_h ‖
    q_anchor), and the update of single_layer.perceptron.FieldOptimizer (`adam` = (β₁, β₂, ε)), all in one pass per
    step while a trial's fields stay in cache — the torch path's ~20 small operations per step are what a
    minibatch epoch costs there.  Per-element arithmetic in float64, stored in the fields' dtype."""
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
    arrays = [buffer.numpy() for buffer in state] + [fields.numpy()] * (2 - len(state))  # unused slots: any array
    anchor_array = fields.numpy() if anchor is None else anchor.contiguous().numpy()
    _epoch(fields.numpy(), arrays[0], arrays[1], inputs.contiguous().numpy(),
           labels.double().contiguous().numpy(), anchor_array, anchor is not None, float(kl_weight), float(beta_h),
           int(batch_size), int(steps_before), OPTIMIZER_CODES[kind], float(lr), float(momentum), float(weight_decay),
           *map(float, adam))
