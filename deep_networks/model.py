"""Gaussian-field binary MLP in field space and its variational learning rule (docs/theory.md §9).

Every binary weight w_ij = ±1 has a real field θ_ij and q(w_ij) ∝ exp(βθ_ij w_ij), so

    m = tanh(βθ),    σ = 1 − m² = sech²(βθ)                                (σ is a variance)

The preactivation of unit i for input a (fan-in N) is replaced by its central-limit Gaussian (docs/theory.md eq. 26)

    z_i = N^{-1/2} Σ_j m_ij a_j + sqrt(N^{-1} Σ_j σ_ij a_j² + 1e-30) · ε_i,   ε_i ~ N(0, 1) fresh per call,

in every layer including the output; hidden units are ReLU, the output is a softmax over 10 classes.
Training: one Adam(lr, betas=(0.9, 0.99), eps=1e-8) step per mini-batch on the summed cross-entropy,
the gradient obtained by autograd through m and σ, plus the KL gradient

    K = λ β² σ(θ_t) (θ_t − θ_ref),       ∂KL(q_θ ‖ q_θref)/∂θ at θ = θ_t,            (docs/theory.md eq. 27)

added to θ.grad before the step. The released code uses θ_ref = the fields one optimizer step earlier and λ = 1
(`kl="previous_step"`, the faithful default); `kl="task_start"` anchors to the fields at the end of the previous
task (ambiguity A1), `kl="none"` drops the term.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from field_space import ising_kl
from harness.errors import SolverError

LAYER_SIZES = (784, 512, 512, 10)  # the paper's architecture, no biases
EVAL_MODES = ("noisy", "mean", "binary")  # Gaussian pass with fresh ε (faithful) | ε = 0 | sampled w = ±1
KL_MODES = ("previous_step", "task_start", "none")
VARIANCE_FLOOR = 1e-30  # inside the square root of the preactivation variance (docs/theory.md eq. 26)


@torch.no_grad()
def layer_moments(fields: Sequence[torch.Tensor], beta: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """m = tanh(βθ) and σ = sech²(βθ) of every layer as plain tensors (no graph; multi-tensor ops).

    σ is computed as e·(1 + |m|)² with e = exp(−2β|θ|) (= 4e/(1 + e)² = sech²) rather than 1 − tanh²(βθ): no
    cancellation in float32 (docs/original_code.md A13), no overflow, no division, relative accuracy down to the smallest normal
    number."""
    detached = [field.detach() for field in fields]
    means = torch._foreach_tanh(torch._foreach_mul(detached, beta))
    decays = torch._foreach_abs(detached)
    torch._foreach_mul_(decays, -2.0 * beta)
    torch._foreach_exp_(decays)  # e
    variances = torch._foreach_abs(means)
    torch._foreach_add_(variances, 1.0)
    torch._foreach_mul_(variances, variances)
    torch._foreach_mul_(variances, decays)
    return list(zip(means, variances))


def moment_values(field: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """layer_moments of a single field."""
    return layer_moments([field], beta)[0]


class _FieldMoments(torch.autograd.Function):
    """(m, σ) as one differentiable elementwise node of θ, with precomputed values (so that the moments computed
    for the KL term after an optimizer step are reused by the next forward pass). Its Jacobian
    dm/dθ = βσ, dσ/dθ = −2βmσ is written out so that the backward pass uses the stable σ instead of the
    1 − m² of tanh's own backward."""

    @staticmethod
    def forward(ctx, field, beta, mean, variance):
        ctx.save_for_backward(mean, variance)
        ctx.beta = beta
        return mean.view_as(mean), variance.view_as(variance)

    @staticmethod
    def backward(ctx, grad_mean, grad_variance):
        mean, variance = ctx.saved_tensors
        grad = grad_mean if grad_variance is None else torch.addcmul(grad_mean, mean, grad_variance, value=-2.0)
        return grad.mul(variance).mul_(ctx.beta), None, None, None


def field_moments(field: torch.Tensor, beta: float, values=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean m = tanh(βθ) and variance σ = sech²(βθ) of the binary weights, differentiable in θ.

    `values`: the (m, σ) of moment_values(field, beta) if already computed."""
    mean, variance = values if values is not None else moment_values(field, beta)
    return _FieldMoments.apply(field, float(beta), mean, variance)


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
    `moments`: precomputed moment_values of every layer (same β)."""
    hidden = x
    for layer, field in enumerate(fields):
        n_in = field.shape[-2]
        mean_w, var_w = field_moments(field, beta, moments[layer] if moments is not None else None)
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


class FieldLearner:
    """One optimizer for the whole run (never reset) + the KL-gradient buffer K of the released rule (docs/original_code.md A1).

    step(): summed cross-entropy → autograd → θ.grad += K → Adam step → K = λβ²σ(θ_new)(θ_new − θ_ref)."""

    def __init__(self, fields, lr: float, kl: str = "previous_step", kl_weight: float = 1.0):
        if kl not in KL_MODES:
            raise ValueError(f"kl must be one of {KL_MODES}, got {kl!r}")
        self.fields, self.kl, self.kl_weight = list(fields), kl, kl_weight
        options = {"fused": True} if fields[0].device.type in ("cpu", "cuda") else {}
        self.optimizer = torch.optim.Adam(self.fields, lr=lr, betas=(0.9, 0.99), eps=1e-8, **options)
        self.kl_grad = [torch.zeros_like(field) for field in self.fields]
        self.reference = None  # θ_ref of the anchored prior; none during the first task
        self._moments = None  # (β, layer_moments) of the current fields, reused by the next forward
        self._previous = [torch.empty_like(field) for field in self.fields] if kl == "previous_step" else None

    def start_task(self) -> None:
        """Boundary to a new task (call from the second task on): the anchored prior becomes the current fields."""
        if self.kl == "task_start":
            self.reference = [field.detach().clone() for field in self.fields]
            for buffer in self.kl_grad:
                buffer.zero_()

    def loss(self, x, labels, beta, generator=None, noise=None) -> torch.Tensor:
        cached = self._moments is not None and self._moments[0] == beta
        logits = forward(self.fields, x, beta, "noisy", generator, noise, self._moments[1] if cached else None)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="sum")

    def step(self, x, labels, beta: float, generator=None, where: str = "", extra_grad=None) -> float:
        """`extra_grad`: per-layer tensors added to the gradient (a penalty such as EWC), or None."""
        loss = self.loss(x, labels, beta, generator)
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise SolverError(f"non-finite loss ({loss_value}) at {where}; lower --lr or use --dtype float64")
        for field in self.fields:
            field.grad = None
        loss.backward()
        if self.kl == "previous_step" or self.reference is not None:
            torch._foreach_add_([field.grad for field in self.fields], self.kl_grad)
        if extra_grad is not None:
            torch._foreach_add_([field.grad for field in self.fields], extra_grad)
        if self._previous is not None:
            torch._foreach_copy_(self._previous, [field.detach() for field in self.fields])
        self.optimizer.step()
        self._moments = (beta, layer_moments(self.fields, beta))
        if self._previous is not None or self.reference is not None:
            self.update_kl_grad(beta, self._previous if self._previous is not None else self.reference)
        return loss_value

    @torch.no_grad()
    def update_kl_grad(self, beta: float, reference) -> None:
        """K = λ β² σ(θ) (θ − θ_ref) with the current β, stored for the next step."""
        self.kl_grad = torch._foreach_sub([field.detach() for field in self.fields], reference)
        torch._foreach_mul_(self.kl_grad, [variance for _, variance in self._moments[1]])
        torch._foreach_mul_(self.kl_grad, self.kl_weight * beta * beta)

    def state_dict(self) -> dict:
        return {"fields": [field.detach().clone() for field in self.fields], "optimizer": self.optimizer.state_dict(),
                "kl_grad": self.kl_grad, "reference": self.reference}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for field, saved in zip(self.fields, state["fields"]):
                field.copy_(saved)
        self.optimizer.load_state_dict(state["optimizer"])
        self.kl_grad = [buffer.clone() for buffer in state["kl_grad"]]
        self.reference = None if state["reference"] is None else [ref.clone() for ref in state["reference"]]
        self._moments = None


def beta_schedule(global_epoch: int, total_epochs: int, slope: float, beta_max: float = 10.0,
                  offset: float = 0.1) -> float:
    """β = β_max tanh(offset + slope · g / total_epochs) for epoch g = 1, 2, … (docs/theory.md §9).

    Permuted MNIST: slope 2, total 25 (1.781 … 9.705); MNIST → Fashion: slope 1, total 80 (1.120 … 8.005)."""
    return beta_max * math.tanh(offset + slope * global_epoch / total_epochs)
