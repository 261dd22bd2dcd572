"""Gaussian-field binary MLP in field space and its variational learning rule (docs/theory.md §9).

Every binary weight w_ij = ±1 has a real field θ_ij and q(w_ij) ∝ exp(βθ_ij w_ij), so

    m = tanh(βθ),    σ = 1 − m² = sech²(βθ)                                (σ is a variance)

The preactivation of unit i for input a (fan-in N) is replaced by its central-limit Gaussian (docs/theory.md eq. 26)

    z_i = N^{-1/2} Σ_j m_ij a_j + sqrt(N^{-1} Σ_j σ_ij a_j² + 1e-30) · ε_i,   ε_i ~ N(0, 1) fresh per call,

in every layer including the output; hidden units are ReLU, the output is a softmax over 10 classes.
Training: one Adam(lr, betas=(0.9, 0.99), eps=1e-8) step per mini-batch on the summed cross-entropy,
the gradient obtained by autograd through m and σ, plus the KL gradient

    K = λ β² σ(θ_t) (θ_t − θ_ref),       ∂KL(q_θ ‖ q_θref)/∂θ at θ = θ_t,            (docs/theory.md eq. 27)

added to the gradient before the step. The released code uses θ_ref = the fields one optimizer step earlier and λ = 1
(`kl="previous_step"`, the faithful default); `kl="task_start"` anchors to the fields at the end of the previous
task (ambiguity A1), `kl="none"` drops the term. The per-weight part of a step (chain rule, K, Adam, new moments) is
`field_step`; `--compile_step` fuses it by torch.compile (`FieldLearner(compiled=True)`).
"""
from __future__ import annotations

import math
import sys
from typing import Sequence

import torch
import torch.nn.functional as F

from field_space import ising_kl
from harness.errors import SolverError

LAYER_SIZES = (784, 512, 512, 10)  # the paper's architecture, no biases
EVAL_MODES = ("noisy", "mean", "binary")  # Gaussian pass with fresh ε (faithful) | ε = 0 | sampled w = ±1
KL_MODES = ("previous_step", "task_start", "none")
VARIANCE_FLOOR = 1e-30  # inside the square root of the preactivation variance (docs/theory.md eq. 26)


def weight_moments(field: torch.Tensor, beta, mean=None, variance=None) -> tuple[torch.Tensor, torch.Tensor]:
    """m = tanh(βθ) and σ = sech²(βθ), elementwise (plain tensors; written into `mean`, `variance` where given;
    also inside the compiled step below).

    σ is computed as e·(1 + |m|)² with e = exp(−2β|θ|) (= 4e/(1 + e)² = sech²) rather than 1 − tanh²(βθ): no
    cancellation in float32 (docs/original_code.md A13), no overflow, no division, relative accuracy down to the
    smallest normal number."""
    mean = (field * beta if mean is None else mean.copy_(field).mul_(beta)).tanh_()
    variance = (field.abs() if variance is None else variance.copy_(field).abs_()).mul_(-2.0 * beta).exp_()
    return mean, variance.mul_(mean.abs().add_(1.0).square_())


@torch.no_grad()
def layer_moments(fields: Sequence[torch.Tensor], beta: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(m, σ) of every layer as plain tensors (no graph)."""
    return [weight_moments(field.detach(), beta) for field in fields]


def moment_values(field: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """layer_moments of a single field."""
    return layer_moments([field], beta)[0]


def field_gradient(grad_mean, grad_variance, mean, variance, beta):
    """∂L/∂θ from ∂L/∂m and ∂L/∂σ by the chain rule dm/dθ = βσ, dσ/dθ = −2βmσ (the stable σ, not tanh's own
    backward 1 − m²)."""
    return grad_mean.addcmul(mean, grad_variance, value=-2.0).mul_(variance).mul_(beta)


class _FieldMoments(torch.autograd.Function):
    """(m, σ) as one differentiable elementwise node of θ with the Jacobian of field_gradient."""

    @staticmethod
    def forward(ctx, field, beta):
        mean, variance = moment_values(field, beta)
        ctx.save_for_backward(mean, variance)
        ctx.beta = beta
        return mean, variance

    @staticmethod
    def backward(ctx, grad_mean, grad_variance):
        mean, variance = ctx.saved_tensors
        if grad_variance is None:
            grad_variance = torch.zeros_like(mean)
        return field_gradient(grad_mean, grad_variance, mean, variance, ctx.beta), None


def field_moments(field: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean m = tanh(βθ) and variance σ = sech²(βθ) of the binary weights, differentiable in θ."""
    return _FieldMoments.apply(field, float(beta))


def kl_divergence(field: torch.Tensor, reference: torch.Tensor, beta: float) -> torch.Tensor:
    """KL(q_θ ‖ q_θ') summed over synapses, same β in both (docs/theory.md eq. 5)."""
    return ising_kl(field, reference, beta).sum()


def init_fields(sizes: Sequence[int], generator, dtype=torch.float32, device="cpu"):
    """θ ~ N(0, 1) i.i.d., one leaf tensor per layer stored as (n_in, n_out), i.e. θ_ij transposed, so that
    z = a @ m needs no transpose and autograd returns contiguous gradients.

    `generator` may be a list of generators, one per seed: the fields then carry a leading seed dimension
    (S, n_in, n_out), seed s drawn exactly as a run of its own would draw it, and every function of this module
    trains and evaluates the S networks as one batched computation (inputs (S, B, n_in), logits (S, B, 10))."""
    generators = generator if isinstance(generator, (list, tuple)) else None
    fields = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):  # every generator draws its layers in the same order
        draw = lambda gen: torch.randn(n_in, n_out, generator=gen, dtype=dtype, device=device)
        field = torch.stack([draw(gen) for gen in generators]) if generators else draw(generator)
        fields.append(field.requires_grad_(True))
    return fields


def forward(fields: Sequence[torch.Tensor], x: torch.Tensor, beta: float, mode: str = "noisy",
            generator: torch.Generator | None = None, noise: Sequence[torch.Tensor] | None = None,
            moments: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
    """Logits of the Gaussian-field network (docs/theory.md eq. 26) for a batch x of shape (B, 784).

    mode "noisy": fresh ε ~ N(0,1) per unit and sample (or the given `noise` list, for tests);
    "mean": ε = 0; "binary": one network w = ±1 drawn from q_θ (P(w = +1) = (1 + m)/2), z = N^{-1/2} w a.
    `moments`: (m, σ) of every layer at this β, used as they are (the gradient goes to them, not to the fields);
    without it the moments are computed differentiably in θ (field_moments)."""
    hidden = x
    for layer, field in enumerate(fields):
        n_in = field.shape[-2]
        mean_w, var_w = moments[layer] if moments is not None else field_moments(field, beta)
        if mode == "binary":
            uniform = torch.rand(field.shape, generator=generator, dtype=field.dtype, device=field.device)
            weights = torch.where(2 * uniform < 1 + mean_w, 1.0, -1.0).to(field.dtype)
            pre = (hidden @ weights).mul_(n_in ** -0.5)
        else:
            pre = (hidden @ mean_w).mul_(n_in ** -0.5)
            if mode == "noisy":
                spread = ((hidden * hidden) @ var_w).div_(n_in).add_(VARIANCE_FLOOR).sqrt_()
                eps = noise[layer] if noise is not None else torch.randn(
                    pre.shape, generator=generator, dtype=pre.dtype, device=pre.device)
                pre = torch.addcmul(pre, spread, eps)
            elif mode != "mean":
                raise ValueError(f"unknown evaluation mode {mode!r}; expected one of {EVAL_MODES}")
        hidden = torch.relu(pre) if layer < len(fields) - 1 else pre
    return hidden


@torch.no_grad()
def accuracy(fields, x: torch.Tensor, labels: torch.Tensor, beta: float, mode: str, generator: torch.Generator,
             chunk: int = 10000):
    """Fraction of correct argmax predictions; evaluated in large chunks (same numbers as batches of 64).
    With a seed dimension (x of shape (S, n, 784), labels (S, n)): a list of S fractions."""
    correct = 0
    moments = layer_moments(fields, beta)
    n_images = x.shape[-2]
    for start in range(0, n_images, chunk):
        logits = forward(fields, x[..., start:start + chunk, :], beta, mode, generator, moments=moments)
        correct = correct + (logits.argmax(dim=-1) == labels[..., start:start + chunk]).sum(-1)
    return (correct.double() / n_images).tolist()


ADAM_BETAS = (0.9, 0.99)  # Adam of the field rule (the released code's), never reset
ADAM_EPS = 1e-8


def field_step(fields, grad_means, grad_variances, means, variances, kl_grads, exp_avgs, exp_avg_sqs, references,
               extras, scalars) -> None:
    """One step of the field rule, in place, layer by layer (lists of per-layer tensors; `references`, `extras`: a
    list or None), as one pass over each layer's weights where compiled (FieldLearner).

    g = ∂L/∂θ (field_gradient of ∂L/∂m, ∂L/∂σ) + K (+ extra); Adam (ADAM_BETAS, ADAM_EPS; `scalars` = β, the KL
    coefficient λβ², lr/(1 − β₁ᵗ), √(1 − β₂ᵗ) as one tensor, so that a new step or β needs no recompilation) moves
    θ; then (m, σ) of the new θ, and K = λβ²σ(θ_new)(θ_new − θ_ref) with θ_ref = the reference, or the θ before this
    step where `references` is None."""
    beta, kl_coefficient, step_size, bias_root = scalars.unbind()
    for layer, field in enumerate(fields):
        mean, variance, kl_grad, exp_avg, exp_avg_sq = (means[layer], variances[layer], kl_grads[layer],
                                                        exp_avgs[layer], exp_avg_sqs[layer])
        gradient = field_gradient(grad_means[layer], grad_variances[layer], mean, variance, beta).add_(kl_grad)
        if extras is not None:
            gradient.add_(extras[layer])
        exp_avg.lerp_(gradient, 1.0 - ADAM_BETAS[0])
        exp_avg_sq.mul_(ADAM_BETAS[1]).addcmul_(gradient, gradient, value=1.0 - ADAM_BETAS[1])
        kl_grad.copy_(field if references is None else references[layer])  # θ_ref, before θ moves
        field.sub_(exp_avg_sq.sqrt().div_(bias_root).add_(ADAM_EPS).reciprocal_().mul_(exp_avg).mul_(step_size))
        weight_moments(field, beta, mean, variance)
        kl_grad.sub_(field).mul_(variance).mul_(-kl_coefficient)


_COMPILED = {}  # "step": torch.compile(field_step), or None once compilation has failed in this process


def _run_step(compiled: bool, *args) -> None:
    """field_step, through torch.compile where asked and available; a compilation that fails (no C++ compiler, an
    unsupported device) says so in one line and the step runs eagerly from then on (it fails before writing)."""
    if compiled and "step" not in _COMPILED:
        _COMPILED["step"] = torch.compile(field_step, dynamic=True)
    if compiled and _COMPILED["step"] is not None:
        try:
            return _COMPILED["step"](*args)
        except Exception as error:  # torch.compile raises many kinds (compiler missing, backend failure)
            print(f"torch.compile unavailable ({type(error).__name__}): the field step runs eagerly", file=sys.stderr)
            _COMPILED["step"] = None
    field_step(*args)


class FieldLearner:
    """The field rule's optimizer state for a whole run (Adam, never reset) and the KL-gradient buffer K of the
    released rule (docs/original_code.md A1).

    step(): summed cross-entropy → autograd to the layers' (m, σ) → field_step per layer: θ.grad = chain rule + K,
    Adam, the new (m, σ) (reused by the next forward pass) and K = λβ²σ(θ_new)(θ_new − θ_ref).
    `compiled`: run field_step through torch.compile (one pass over the weights instead of about twenty; where
    compilation fails, one line says so and the same function runs eagerly — equal to rounding)."""

    def __init__(self, fields, lr: float, kl: str = "previous_step", kl_weight: float = 1.0, compiled: bool = False):
        if kl not in KL_MODES:
            raise ValueError(f"kl must be one of {KL_MODES}, got {kl!r}")
        self.fields, self.kl, self.kl_weight, self.lr, self.compiled = list(fields), kl, kl_weight, lr, compiled
        self.adam_steps = 0
        self.exp_avg = [torch.zeros_like(field, requires_grad=False) for field in self.fields]
        self.exp_avg_sq = [torch.zeros_like(field, requires_grad=False) for field in self.fields]
        self.kl_grad = [torch.zeros_like(field, requires_grad=False) for field in self.fields]
        self.reference = None  # θ_ref of the anchored prior; none during the first task
        self._moments = None  # (β, layer_moments) of the current fields, updated in place by every step

    def start_task(self) -> None:
        """Boundary to a new task (call from the second task on): the anchored prior becomes the current fields."""
        if self.kl == "task_start":
            self.reference = [field.detach().clone() for field in self.fields]
            for buffer in self.kl_grad:
                buffer.zero_()

    def loss(self, x, labels, beta, generator=None, noise=None, moments=None) -> torch.Tensor:
        """Summed cross-entropy of a noisy pass; differentiable in the fields, or in `moments` where given."""
        logits = forward(self.fields, x, beta, "noisy", generator, noise, moments)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="sum")

    def step(self, x, labels, beta: float, generator=None, where: str = "", extra_grad=None, noise=None) -> float:
        """`extra_grad`: per-layer tensors added to the gradient (a penalty such as EWC), or None; `noise`: the ε of
        the noisy pass (tests), else drawn from `generator`."""
        if self._moments is None or self._moments[0] != beta:
            self._moments = (beta, layer_moments(self.fields, beta))
        leaves = [(mean.detach().requires_grad_(True), variance.detach().requires_grad_(True))
                  for mean, variance in self._moments[1]]
        loss = self.loss(x, labels, beta, generator, noise, leaves)
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise SolverError(f"non-finite loss ({loss_value}) at {where}; lower --lr or use --dtype float64")
        loss.backward()
        self.adam_steps += 1
        anchored = self.kl == "previous_step" or self.reference is not None
        bias_first, bias_second = (1.0 - b ** self.adam_steps for b in ADAM_BETAS)
        scalars = torch.tensor([beta, self.kl_weight * beta * beta if anchored else 0.0, self.lr / bias_first,
                                math.sqrt(bias_second)], dtype=self.fields[0].dtype, device=self.fields[0].device)
        with torch.no_grad():
            _run_step(self.compiled, [field.detach() for field in self.fields], [mean.grad for mean, _ in leaves],
                      [variance.grad for _, variance in leaves], [mean for mean, _ in self._moments[1]],
                      [variance for _, variance in self._moments[1]], self.kl_grad, self.exp_avg, self.exp_avg_sq,
                      self.reference, None if extra_grad is None else list(extra_grad), scalars)
        return loss_value

    def state_dict(self) -> dict:
        return {"fields": [field.detach().clone() for field in self.fields], "adam_steps": self.adam_steps,
                "exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "kl_grad": self.kl_grad,
                "reference": self.reference}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for field, saved in zip(self.fields, state["fields"]):
                field.copy_(saved)
        self.adam_steps = state["adam_steps"]
        self.exp_avg, self.exp_avg_sq, self.kl_grad = ([buffer.clone() for buffer in state[key]]
                                                       for key in ("exp_avg", "exp_avg_sq", "kl_grad"))
        self.reference = None if state["reference"] is None else [ref.clone() for ref in state["reference"]]
        self._moments = None


def beta_schedule(global_epoch: int, total_epochs: int, slope: float, beta_max: float = 10.0,
                  offset: float = 0.1) -> float:
    """β = β_max tanh(offset + slope · g / total_epochs) for epoch g = 1, 2, … (docs/theory.md §9).

    Permuted MNIST: slope 2, total 25 (1.781 … 9.705); MNIST → Fashion: slope 1, total 80 (1.120 … 8.005)."""
    return beta_max * math.tanh(offset + slope * global_epoch / total_epochs)
