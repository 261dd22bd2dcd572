"""Output channels of the replica-symmetric free entropy: the energy term G_E and its derivatives.

The energy term of the RS free entropy (docs/theory.md eqs. 11–12) averages over the teacher field and the
Gaussian part of the student field:

    G_E = 2 ∫Dz Φ_N(r z / √(q − r²)) ψ(√q z),  ψ(ω) = ln ∫Dx exp ℓ(ω + √(q⋆ − q) x; q⋆)

with q⋆ the self-overlap, Φ_N the normal CDF and ℓ the log-likelihood of the channel.  Channels:
`VariationalChannel(beta)` (this paper: ℓ = β ln Φ_N(h/√(1−q⋆)), the Gaussian-approximation data term at inverse
temperature β, eq. 9) and `VersionSpaceChannel` (Gibbs learning, ℓ = ln Θ(h), q⋆ ≡ 1).  A channel gives ψ
(`log_partition`) and the width of its bend (`layer_width`); `outer_rule` is the quadrature of the z-average,
`energy_term` G_E as a differentiable torch function of (q, r, q⋆), `energy_gradient` its value and gradient by
autograd (exact derivatives of the quadrature; the conjugates of eq. 14), `channel_curvature_sq` the channel
factor of the replicon (§3b).  Everything is float64 and deterministic.
"""
from __future__ import annotations

import math

import torch

from mean_field_theory.quadrature import (DTYPE, LOG_SQRT_2PI, N_Z, gaussian_sinh_nodes, n_nodes, resolution,
                                         sinh_cluster_nodes)

N_X = 121  # nodes of the inner Gaussian integral of the variational channel


class VariationalChannel:
    """This paper's data term: ℓ(h; q⋆) = β ln Φ_N(h / √(1 − q⋆)) (docs/theory.md eq. 9)."""

    fixed_q_star = None
    INNER_TAIL = 12.0  # half-width of the inner domain in units of the bounds below

    def __init__(self, beta: float):
        if not beta > 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        self.beta = float(beta)
        # edge of the Φ^β wall: where β ln Φ_N(t) = −1
        self.wall_t = float(torch.special.ndtri(torch.tensor(math.exp(-1.0 / self.beta), dtype=DTYPE)))

    def log_partition(self, omega: torch.Tensor, q: torch.Tensor, q_star: torch.Tensor) -> torch.Tensor:
        """ψ(ω) = ln ∫Dx Φ_N^β((ω + √(q⋆−q) x)/√(1−q⋆)), computed in log space (never forms Φ^β).

        The domain follows the integrand e^{f(x)}, f = −x²/2 + β ln Φ_N(t), t = (ω + √(q⋆−q) x)/√(1−q⋆), for each
        ω.  f is strictly concave and its curvature −f'' = 1 + β (q⋆−q)/(1−q⋆)·V(t), with V = −(ln Φ_N)'' falling
        from 1 to 0 as t grows, decreases with x.  Hence, with x⋆ the maximum and σ = (−f''(x⋆))^{−1/2}:
        left of x⋆, f ≤ f⋆ − (x−x⋆)²/(2σ²); right of it, f ≤ f⋆ − (x−x⋆)²/2 and f ≥ f⋆ − (x−x⋆)²/(2σ²).  On
        [x⋆ − 12σ, x⋆ + 12] the neglected mass is therefore below erfc(12/√2)(1 + 1/σ) ≈ 4·10⁻³³/σ of the
        integral (σ ≥ (1 + β(q⋆−q)/(1−q⋆))^{−1/2}).  For very negative ω, x⋆ lies far outside any fixed window.
        Nodes cluster at x⋆ (width σ) and at the wall where β ln Φ_N(t) = −1 (width 1/|d(β ln Φ_N)/dx| there):
        when x⋆ sits on the plateau Φ_N ≈ 1 the integrand is a unit Gaussian cut by that steep wall."""
        sqrt_v, sqrt_e = torch.sqrt(q_star - q), torch.sqrt(1.0 - q_star)
        with torch.no_grad():
            peak, width = self.inner_peak(omega, float(sqrt_v), float(sqrt_e))
            ratio = max(float(sqrt_v), 1e-150) / float(sqrt_e)
            wall = (float(sqrt_e) * self.wall_t - omega) / max(float(sqrt_v), 1e-150)
            wall_width = 1.0 / (self.beta * ratio * float(_mills_ratio(torch.tensor(self.wall_t, dtype=DTYPE))))
            tail = self.INNER_TAIL * resolution().domain
            x, log_w = sinh_cluster_nodes(peak - tail * width, peak + tail,
                                          ((peak, width), (wall, torch.full_like(wall, wall_width))), n_nodes(N_X))
        argument = (omega.unsqueeze(-1) + sqrt_v * x) / sqrt_e
        exponent = log_w - 0.5 * x**2 - LOG_SQRT_2PI + self.beta * torch.special.log_ndtr(argument)
        return torch.logsumexp(exponent, dim=-1)

    def inner_peak(self, omega: torch.Tensor, sqrt_v: float, sqrt_e: float, max_steps: int = 100):
        """Maximum x⋆ of f(x) = −x²/2 + β ln Φ_N((ω + √v x)/√e) and the width σ = (−f''(x⋆))^{−1/2}, batched over ω.

        Newton's method on f', which is decreasing and convex (the Mills ratio φ/Φ is convex): from any start the
        first step lands left of the root and the iterates then increase monotonically to it."""
        ratio = sqrt_v / sqrt_e
        x = torch.zeros_like(omega)
        for _ in range(max_steps):
            t = (omega + sqrt_v * x) / sqrt_e
            mills = _mills_ratio(t)
            curvature = 1.0 + self.beta * ratio**2 * mills * _t_plus_mills_ratio(t)
            step = (self.beta * ratio * mills - x) / curvature
            x = x + step
            if not torch.any(torch.abs(step) > 1e-12 * (1.0 + torch.abs(x))):  # (NaN ω pass: the solver rejects them)
                t = (omega + sqrt_v * x) / sqrt_e
                mills = _mills_ratio(t)
                return x, torch.rsqrt(1.0 + self.beta * ratio**2 * mills * _t_plus_mills_ratio(t))
        raise RuntimeError(f"inner_peak: Newton did not converge (beta={self.beta}, sqrt_v={sqrt_v}, sqrt_e={sqrt_e})")

    def layer_width(self, q: float, q_star: float) -> float:
        """Width in ω of the bend of ψ(ω) from ≈ 0 (Φ_N^β ≈ 1 over the bulk of x) to −βω²/(2(1−q⋆) + 2β(q⋆−q)):
        the steepness of the Φ^β wall at x = 0, smeared by √(q⋆−q) x (for β = 1 exactly √(1−q), since
        ∫Dx Φ_N((ω + √v x)/√e) = Φ_N(ω/√(1−q))).  The bend sits at ω ≈ √(1−q⋆)·t_w, within t_w·β·φ(t_w)/Φ_N(t_w)
        ≈ 2 ln β widths of ω = 0."""
        steepness = self.beta * float(_mills_ratio(torch.tensor(self.wall_t, dtype=DTYPE)))
        return math.sqrt((1.0 - q_star) / steepness**2 + (q_star - q))


def _mills_ratio(t: torch.Tensor) -> torch.Tensor:
    """φ(t)/Φ_N(t) = d ln Φ_N/dt = √(2/π)/erfcx(−t/√2): accurate for all t (≈ −t for t → −∞, → 0 for t → ∞)."""
    return math.sqrt(2.0 / math.pi) / torch.special.erfcx(-t / math.sqrt(2.0))


def _t_plus_mills_ratio(t: torch.Tensor, depth: int = 40) -> torch.Tensor:
    """t + φ(t)/Φ_N(t) without the cancellation of two large numbers at t → −∞: there, with s = −t, Laplace's
    continued fraction Φ_N(−s)/φ(s) = 1/(s + 1/(s + 2/(s + 3/(s + …)))) gives t + φ/Φ_N = 1/(s + 2/(s + 3/(s + …)))
    (40 levels: converged to float64 for s ≥ 5)."""
    s = torch.clamp(-t, min=5.0)
    tail = torch.zeros_like(s)
    for level in range(depth, 1, -1):
        tail = level / (s + tail)
    return torch.where(t < -5.0, 1.0 / (s + tail), t + _mills_ratio(t))


class VersionSpaceChannel:
    """Gibbs learning of a noiseless perceptron: ℓ = ln Θ(h), so ψ(ω) = ln Φ_N(ω / √(1 − q)), q⋆ ≡ 1."""

    fixed_q_star = 1.0

    def log_partition(self, omega, q, q_star):
        return torch.special.log_ndtr(omega / torch.sqrt(q_star - q))

    def layer_width(self, q: float, q_star: float) -> float:
        """ψ bends at ω = 0 over a width √(q⋆ − q)."""
        return math.sqrt(q_star - q)


def outer_rule(channel, q, r, q_star) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes z and log weights of the outer average E_out[f] = 2 ∫Dz Φ_N(r z/√(q−r²)) f(√q z) (teacher included).

    r = 0 gives the storage problem (random labels): E_out[f] = ∫Dz f(√q z).  The z-rule clusters its nodes at
    z = 0 on the narrower of the teacher sigmoid (width √(q−r²)/|r|) and the bend of ψ (`channel.layer_width`/√q),
    which both sit at or within a few widths of z = 0 (a separate cluster for the bend measured worse)."""
    spread = torch.sqrt(q - r**2)
    with torch.no_grad():
        width = channel.layer_width(float(q), float(q_star)) / math.sqrt(float(q))
        if float(r) != 0.0:
            width = min(width, float(spread) / abs(float(r)))
    z, log_w = gaussian_sinh_nodes((0.0,), (max(width, 1e-12) / 2.0,), N_Z)
    return z, log_w + math.log(2.0) + torch.special.log_ndtr(r * z / spread)


def energy_term(channel, q, r, q_star) -> torch.Tensor:
    """G_E(q, r, q⋆) = 2 ∫Dz Φ_N(r z/√(q−r²)) ψ(√q z). Differentiable in the torch tensors q, r, q⋆."""
    z, log_w = outer_rule(channel, q, r, q_star)
    return torch.sum(torch.exp(log_w) * channel.log_partition(torch.sqrt(q) * z, q, q_star))


def channel_curvature_sq(channel, q: float, r: float, q_star: float) -> float:
    """E_out[(∂²_ω ψ)²], the channel factor of the replicon (docs/theory.md §3b), with ψ'' by autograd through the
    quadrature of ψ (its nodes depend on ω but carry no gradient: the derivative of the rule at fixed nodes)."""
    q, r, q_star = (torch.tensor(float(value), dtype=DTYPE) for value in (q, r, q_star))
    z, log_w = outer_rule(channel, q, r, q_star)
    omega = (torch.sqrt(q) * z).requires_grad_(True)
    slope, = torch.autograd.grad(channel.log_partition(omega, q, q_star).sum(), omega, create_graph=True)
    curvature, = torch.autograd.grad(slope.sum(), omega)
    return float(torch.sum(torch.exp(log_w) * curvature**2))


def energy_gradient(channel, q: float, r: float, q_star: float):
    """(G_E, ∂G_E/∂q, ∂G_E/∂r, ∂G_E/∂q⋆) by autograd through the quadrature."""
    params = [torch.tensor(float(value), dtype=DTYPE, requires_grad=True) for value in (q, r, q_star)]
    value = energy_term(channel, *params)
    grads = torch.autograd.grad(value, params)
    return float(value.detach()), *(float(grad) for grad in grads)
