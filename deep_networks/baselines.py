"""Baselines for the continual-learning comparison (docs/theory.md §9): the metaplastic binarized network
of Laborieux et al. (Nat. Commun. 12, 2549, 2021), the plain BNN (m = 0), and EWC.

Binarized network (Laborieux et al. 2021): hidden real weights W_h, binary weights W_b = sign(W_h) used in the forward pass with a
straight-through estimator (the gradient at W_b is applied to W_h unchanged); no biases; BatchNorm (affine, batch
statistics at training *and* test time, eps 1e-5) after every linear layer; hidden activations sign(z) with the
STE gradient 1_{|z| ≤ 1}; the 784 pixels are not binarized; mean cross-entropy; W_h ~ U(−0.05, 0.05).

Metaplastic Adam (Laborieux et al. 2021): Adam(β1 0.9, β2 0.999, ε 1e-8) with L2 decay g ← g + decay·W_h, step
lr·√(1−β2^t)/(1−β1^t)·m̃/(√v + ε), where for weight matrices the first moment of an update that shrinks |W_h|
(sign(W_h)·m > 0) is attenuated, m̃ = (1 − tanh²(m_meta·|W_h|))·m. BatchNorm parameters get plain Adam. The
optimizer is re-created at the start of every task.

EWC (Kirkpatrick et al. 2017, as in the baseline's repository): after task k the diagonal empirical Fisher
F_k = E_n[(∂ℓ_n/∂W)²] over `samples` training images of that task (true labels, one image at a time) is stored with
W*_k, and later tasks add the gradient of ½λ Σ_k Σ F_k (W − W*_k)², λ in units of the mean per-image loss.
`FisherPenalty` serves both the binarized network (on W_h; BatchNorm excluded) and the field-space network (on θ).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from field_space import sign
from harness.errors import SolverError

BN_EPS = 1e-5
BN_MODES = ("shared_bn", "task_bn")  # evaluate previous tasks with the current BN parameters | those saved per task


def binary_weights(hidden: torch.Tensor) -> torch.Tensor:
    """W_b = sign(W_h) in the forward pass, identity in the backward pass (the gradient at W_b goes to W_h)."""
    return hidden + (sign(hidden) - hidden).detach()


def sign_activation(z: torch.Tensor) -> torch.Tensor:
    """sign(z) forward; gradient 1 where |z| ≤ 1 and 0 elsewhere (the hardtanh straight-through estimator)."""
    passed = z * (z.abs() <= 1)
    return passed + (sign(z) - passed).detach()


class BinaryMLP:
    """The binarized MLP as plain tensors: `weights[l]` is W_h of layer l stored (n_in, n_out),
    `norms[l]` = (scale, shift) of its BatchNorm."""

    def __init__(self, sizes: Sequence[int], generator: torch.Generator, dtype=torch.float32, device="cpu",
                 init_width: float = 0.1):
        self.weights = [((torch.rand(n_in, n_out, generator=generator, dtype=dtype, device=device) - 0.5)
                         * init_width).requires_grad_(True) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        self.norms = [(torch.ones(n_out, dtype=dtype, device=device).requires_grad_(True),
                       torch.zeros(n_out, dtype=dtype, device=device).requires_grad_(True)) for n_out in sizes[1:]]

    def parameters(self) -> list[torch.Tensor]:
        return self.weights + [p for norm in self.norms for p in norm]

    def forward(self, x: torch.Tensor, norms: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
                statistics: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None,
                record: list | None = None) -> torch.Tensor:
        """Logits for a batch x (B, 784). `norms`: BatchNorm parameters to use instead of the current ones (the
        task-specific evaluation); `statistics`: fixed per-layer (mean, variance) instead of the batch statistics;
        `record`: a list that receives the batch statistics of every layer."""
        hidden = x
        for layer, weight in enumerate(self.weights):
            z = hidden @ binary_weights(weight)
            if statistics is not None:
                mean, variance = statistics[layer]
            else:
                mean, variance = z.mean(0), z.var(0, unbiased=False)
                if record is not None:
                    record.append((mean.detach(), variance.detach()))
            scale, shift = (norms or self.norms)[layer]
            z = (z - mean) * torch.rsqrt(variance + BN_EPS) * scale + shift
            hidden = sign_activation(z) if layer < len(self.weights) - 1 else z
        return hidden

    def norm_state(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(scale.detach().clone(), shift.detach().clone()) for scale, shift in self.norms]

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, labels: torch.Tensor, norms=None, chunk: int = 1000) -> float:
        """Fraction correct, BatchNorm with the statistics of each test batch of `chunk` images (as the baseline)."""
        correct = sum(int((self.forward(x[start:start + chunk], norms).argmax(1) == labels[start:start + chunk]).sum())
                      for start in range(0, len(x), chunk))
        return correct / len(x)


class MetaplasticAdam(torch.optim.Optimizer):
    """Adam with metaplastic attenuation of |W_h|-shrinking updates; meta = 0 is the plain BNN's Adam."""

    def __init__(self, params, lr: float = 0.005, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 meta: float = 0.0):
        if lr <= 0 or eps < 0 or weight_decay < 0 or meta < 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"invalid MetaplasticAdam settings lr={lr}, betas={betas}, eps={eps}, "
                             f"weight_decay={weight_decay}, meta={meta}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "meta": meta})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad.add(param, alpha=group["weight_decay"]) if group["weight_decay"] else param.grad
                state = self.state[param]
                if not state:
                    state.update(step=0, exp_avg=torch.zeros_like(param), exp_avg_sq=torch.zeros_like(param))
                state["step"] += 1
                exp_avg, exp_avg_sq, step = state["exp_avg"], state["exp_avg_sq"], state["step"]
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step_size = group["lr"] * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
                first = exp_avg
                if param.dim() > 1 and group["meta"] > 0:
                    attenuation = 1 - torch.tanh(group["meta"] * param.abs()) ** 2
                    shrinks = param.sign() * exp_avg > 0
                    first = torch.where(shrinks, attenuation * exp_avg, exp_avg)
                param.addcdiv_(first, exp_avg_sq.sqrt().add_(group["eps"]), value=-step_size)


class FisherPenalty:
    """½λ Σ_k Σ_i F_k,i (p_i − p*_k,i)² over the finished tasks k, kept as ΣF and ΣF·p* so that its gradient
    λ(ΣF ⊙ p − ΣF·p*) costs two elementwise passes."""

    def __init__(self, params: Sequence[torch.Tensor], weight: float):
        if weight < 0:
            raise ValueError(f"EWC weight must be >= 0, got {weight}")
        self.params, self.weight = list(params), weight
        self.fisher = [torch.zeros_like(p) for p in self.params]
        self.anchor = [torch.zeros_like(p) for p in self.params]  # ΣF·p*

    def consolidate(self, fisher: Sequence[torch.Tensor]) -> None:
        """Add a finished task: its Fisher diagonal, anchored at the current parameters."""
        for total, anchored, new, param in zip(self.fisher, self.anchor, fisher, self.params):
            total.add_(new)
            anchored.add_(new * param.detach())

    @torch.no_grad()
    def gradient(self, scale: float = 1.0) -> list[torch.Tensor]:
        """scale·λ(ΣF ⊙ p − ΣF·p*), to be added to the gradient of the data loss."""
        return [(total * param - anchored).mul_(scale * self.weight)
                for total, anchored, param in zip(self.fisher, self.anchor, self.params)]

    def state_dict(self) -> dict:
        return {"fisher": [t.clone() for t in self.fisher], "anchor": [t.clone() for t in self.anchor]}

    def load_state_dict(self, state: dict) -> None:
        self.fisher = [t.clone() for t in state["fisher"]]
        self.anchor = [t.clone() for t in state["anchor"]]


def empirical_fisher(loss_of_one: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                     params: Sequence[torch.Tensor], x: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
    """Diagonal empirical Fisher E_n[(∂ℓ(x_n, y_n)/∂p)²], one image at a time (exact per-sample gradients)."""
    fisher = [torch.zeros_like(p) for p in params]
    for index in range(len(x)):
        grads = torch.autograd.grad(loss_of_one(x[index:index + 1], labels[index:index + 1]), params)
        torch._foreach_addcmul_(fisher, grads, grads)
    torch._foreach_div_(fisher, float(len(x)))
    return fisher


class BinaryLearner:
    """One run of the binarized baseline through a task sequence (the `Runner` interface of training.py):
    metaplastic Adam re-created per task, BatchNorm parameters saved at the end of every task for the task-BN
    evaluation, optional EWC on W_h."""

    beta = None

    def __init__(self, sizes: Sequence[int], generator: torch.Generator, dtype, device, lr: float, batch_size: int,
                 meta: float, weight_decay: float, ewc_weight: float = 0.0, ewc_samples: int = 0):
        self.net = BinaryMLP(sizes, generator, dtype, device)
        self.lr, self.batch_size, self.meta, self.weight_decay = lr, batch_size, meta, weight_decay
        self.ewc_samples = ewc_samples
        self.ewc = FisherPenalty(self.net.weights, ewc_weight) if ewc_weight > 0 else None
        self.task_norms: list[list[tuple[torch.Tensor, torch.Tensor]]] = []
        self._shared = None  # (images, accuracy) of the last shared-BN evaluation
        self.optimizer = self._optimizer()

    def _optimizer(self) -> MetaplasticAdam:
        return MetaplasticAdam([{"params": self.net.weights, "meta": self.meta},
                                {"params": [p for norm in self.net.norms for p in norm], "meta": 0.0}],
                               lr=self.lr, weight_decay=self.weight_decay)

    def begin_epoch(self, epoch: int) -> None:
        pass

    def begin_task(self, index: int) -> None:
        self.optimizer = self._optimizer()

    def end_task(self, index: int, x: torch.Tensor, labels: torch.Tensor, final: bool = False) -> None:
        self.task_norms.append(self.net.norm_state())
        if self.ewc is not None and not final:
            self.ewc.consolidate(self.fisher(x[:self.ewc_samples], labels[:self.ewc_samples]))

    def fisher(self, x: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
        """Empirical Fisher of W_h with BatchNorm frozen at the statistics of these images (a single image has
        no batch statistics)."""
        statistics = []
        with torch.no_grad():
            self.net.forward(x, record=statistics)
        return empirical_fisher(lambda xi, yi: F.cross_entropy(self.net.forward(xi, statistics=statistics), yi),
                                self.net.weights, x, labels)

    def step(self, x: torch.Tensor, labels: torch.Tensor, generator=None, where: str = "") -> float:
        loss = F.cross_entropy(self.net.forward(x), labels)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise SolverError(f"non-finite loss ({value}) at {where}; lower --bnn_lr")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.ewc is not None:
            torch._foreach_add_([w.grad for w in self.net.weights], self.ewc.gradient())
        self.optimizer.step()
        return value

    def evaluation_modes(self, end_of_task: bool) -> tuple[str, ...]:
        return BN_MODES

    def accuracy(self, x, labels, mode: str, task_index: int, generator=None) -> float:
        """`task_bn`: a task already finished is evaluated with the BatchNorm parameters saved at its end."""
        if mode not in BN_MODES:
            raise ValueError(f"unknown evaluation mode {mode!r}; expected one of {BN_MODES}")
        if mode == "task_bn" and task_index < len(self.task_norms):
            return self.net.accuracy(x, labels, self.task_norms[task_index])
        if mode == "task_bn" and self._shared is not None and self._shared[0] is x:
            return self._shared[1]  # current and future tasks: task BN = shared BN, already evaluated on x
        self._shared = (x, self.net.accuracy(x, labels))
        return self._shared[1]

    def snapshot(self):
        return None

    def state_dict(self) -> dict:
        return {"weights": [w.detach().clone() for w in self.net.weights], "norms": self.net.norm_state(),
                "optimizer": self.optimizer.state_dict(), "task_norms": self.task_norms,
                "ewc": self.ewc.state_dict() if self.ewc is not None else None}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for weight, saved in zip(self.net.weights, state["weights"]):
                weight.copy_(saved)
            for (scale, shift), (saved_scale, saved_shift) in zip(self.net.norms, state["norms"]):
                scale.copy_(saved_scale)
                shift.copy_(saved_shift)
        self.optimizer = self._optimizer()
        self.optimizer.load_state_dict(state["optimizer"])
        self.task_norms = state["task_norms"]
        if self.ewc is not None:
            self.ewc.load_state_dict(state["ewc"])
