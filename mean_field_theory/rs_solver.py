"""Replica-symmetric saddle point of a teacher–student perceptron with a pluggable prior and channel.

Free entropy per synapse (docs/theory.md eqs. 11–16; the conventions reproduce the paper's update rules):

    Φ = extr { −q̂⋆ q⋆ + ½ q̂ q − r̂ r + G_S(q̂, r̂, q̂⋆) + α G_E(q, r, q⋆) }

    G_S = ∫Dz ln ∫ dμ(m) exp[(q̂⋆ − q̂/2) m² + (√q̂ z + r̂) m]                 (single-site "measure")
    G_E = 2 ∫Dz Φ_N(r z / √(q − r²)) ψ(√q z),  ψ(ω) = ln ∫Dx exp ℓ(ω + √(q⋆ − q) x; q⋆)   (energy "channel")

with q⋆ the self-overlap, Φ_N the normal CDF and ℓ the log-likelihood of the channel.  Saddle point:
q̂ = −2α ∂_q G_E, r̂ = α ∂_r G_E, q̂⋆ = α ∂_{q⋆} G_E and q = E_z⟨m⟩², r = E_z⟨m⟩, q⋆ = E_z⟨m²⟩.

Measures: `FlatMeasure(kappa)` (this paper: flat m ∈ [−1, 1] plus κ·S(m), the uniform prior of the appendix),
`IsingMeasure` (w = ±1, q⋆ ≡ 1), `SphericalMeasure` (w ∈ ℝ with Σw² = N, q̂⋆ a Lagrange multiplier).
Channels: `VariationalChannel(beta)` (this paper: ℓ = β ln Φ_N(h/√(1−q⋆)), the Gaussian-approximation data term
at inverse temperature β) and `VersionSpaceChannel` (Gibbs learning, ℓ = ln Θ(h), q⋆ ≡ 1).
The same code path therefore gives the paper's theory and the classical results (Gardner & Derrida 1988,
Györgyi 1990, Krauth & Mézard 1989), which the tests use as a check.

Everything is float64 and deterministic: G_E is a differentiable torch function evaluated by quadrature and
its gradient is taken by autograd (exact derivative of the quadrature); the equations are solved with
a quasi-Newton method in unconstrained coordinates that keep r² < q < q⋆ < 1.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math

import numpy as np
import scipy.optimize
import torch

from mean_field_theory.quadrature import (DTYPE, LOG_SQRT_2PI, gauss_legendre, gaussian_sinh_nodes, n_nodes,
                                         resolution, sinh_cluster_nodes)

N_Z = 161  # nodes of the outer Gaussian integrals (sinh-mapped trapezoid)
N_X = 121  # nodes of the inner Gaussian integral of the variational channel
DAMPED_BLOCK = 50  # damped steps of the solver's fallback between two Newton attempts
MAX_EVALUATIONS = 5000  # default cap on evaluations of the saddle-point map per solve (hard points use ~1300)
CONTINUATION_BUDGET = 100  # evaluations allowed from a continued start (converged ones take ~10)
EXP_FLOOR = -700.0  # smallest exponent passed to exp in the site integrals (see FlatMeasure.site)


# ----------------------------------------------------------------------------- channels (energy term)
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


# ----------------------------------------------------------------------------- single-site measures
@dataclasses.dataclass
class SiteAverages:
    """Gaussian averages E_z[...] over the single-site problem at given conjugates."""

    log_z: float  # G_S = E_z ln Z(b)
    mean: float  # r = E_z⟨m⟩
    mean_sq: float  # q = E_z⟨m⟩²
    second: float  # q⋆ = E_z⟨m²⟩
    sign: float  # p = E_z⟨sgn m⟩ (teacher overlap of the clipped student)
    variance_sq: float = math.nan  # E_z[(⟨m²⟩ − ⟨m⟩²)²], the site factor of the replicon
    extras: dict = dataclasses.field(default_factory=dict)  # measure-specific averages (Franz–Parisi)


class LocalMeasure:
    """A single-site measure dμ(m): subclasses give `site(a, b)` = (ln Z, ⟨m⟩, ⟨m²⟩, ⟨sgn m⟩) of
    exp(a m² + b m) dμ(m) for a batch of fields b; `averages` takes E_z over b = √q̂ z + r̂ on a grid refined
    where b changes sign (width 1/√q̂ in z)."""

    fixed_q_star: float | None = None
    a_bounds: tuple | None = (-np.inf, np.inf)  # range of a = q̂⋆ − q̂/2 (None: q̂⋆ drops out)

    def averages(self, q_hat: float, r_hat: float, a: float) -> SiteAverages:
        sqrt_q_hat = math.sqrt(max(q_hat, 0.0))
        center = -r_hat / sqrt_q_hat if sqrt_q_hat > 0 else 0.0
        scale = 0.5 * min(1.0, 1.0 / sqrt_q_hat) if sqrt_q_hat > 0 else 0.5
        z, log_w = gaussian_sinh_nodes((center,), (scale,), N_Z)
        weights = torch.exp(log_w)
        log_z, mean, second, sign = self.site(a, sqrt_q_hat * z + r_hat)
        variance_sq = (second - mean**2) ** 2
        return SiteAverages(*(float(weights @ values) for values in (log_z, mean, mean**2, second, sign, variance_sq)))


class FlatMeasure(LocalMeasure):
    """This paper: m ∈ [−1, 1] with flat measure times exp(κ S(m)) (κ = 0 main text, κ = β uniform prior).

    Domain: u = artanh(m) ∈ [−U, U], U = 32.  Near m = ±1 the weight per du is sech²u·e^{am²+bm+κS(m)} ≤
    4e^{−2|u|}e^{a±b}, while Z ≥ e^{a±b}/(2c) with c = |b| + 2|a| (the slope of the exponent at the edge), so the
    neglected mass is below 4c·e^{−2U} ≈ 6·10⁻²⁸ c of Z; `site` returns NaN for fields with c > C_LIMIT = 10¹⁰,
    where this bound would exceed 10⁻¹⁷ (the solver treats NaN as a rejected step)."""

    U_LIMIT = 32.0
    C_LIMIT = 1e10

    def __init__(self, kappa: float = 0.0, panels: int = 27, nodes_per_panel: int = 12,
                 first_panel_scale: float = 0.25):
        if not kappa >= 0:
            raise ValueError(f"kappa must be >= 0, got {kappa}")
        self.kappa = float(kappa)
        # composite Gauss–Legendre in u = artanh(m) on [−U, 0] and [0, U] (no node at m = 0, so ⟨sgn m⟩ is
        # exact); panel edges s·sinh(kΔ): narrow near m = 0, where an interior peak of width 1/√|2a| is
        # narrowest in u, wide at large |u| where the boundary layers near m = ±1 are O(1) wide.
        u_limit, panels = self.U_LIMIT * resolution().domain, round(panels * resolution().nodes)
        step = math.asinh(u_limit / first_panel_scale) / panels
        edges = first_panel_scale * np.sinh(step * np.arange(panels + 1))
        u_nodes, u_weights = [], []
        for low, high in zip(edges[:-1], edges[1:]):
            nodes, weights = gauss_legendre(low, high, nodes_per_panel)
            u_nodes += [nodes, -nodes]
            u_weights += [weights, weights]
        self.u = u = torch.cat(u_nodes)  # m = tanh(u) rounds to ±1 for |u| > 19: use u where u is meant
        self.m = torch.tanh(u)
        log_cosh = torch.logaddexp(u, -u) - math.log(2.0)
        entropy = math.log(2.0) + log_cosh - u * self.m  # S(m) of the Ising distribution with mean m
        self.log_base = torch.log(torch.cat(u_weights)) - 2.0 * log_cosh + self.kappa * entropy
        self.moment_basis = torch.stack([torch.ones_like(self.m), self.m, self.m**2, torch.sign(self.m)], dim=-1)

    def site(self, a: float, b: torch.Tensor, chunk: int = 512):
        """ln Z, ⟨m⟩, ⟨m²⟩, ⟨sgn m⟩ of exp(a m² + b m) dμ(m) for a batch of fields b.

        Memory-bound: fields are processed in cache-sized chunks, the maximum is subtracted in place and one
        product with [1, m, m², sgn m] gives the normaliser and the three moments. Exponents below EXP_FLOOR
        are raised to it (e^−700 ≈ 1e−304 next to the peak's 1): exp of a more negative argument takes a slow
        path in the vectorised exp (underflow, subnormals) and made large-α points 10× slower."""
        base = self.log_base + a * self.m**2
        flat = b.reshape(-1)
        log_z, moments = torch.empty_like(flat), torch.empty(flat.shape[0], 3, dtype=flat.dtype)
        for start in range(0, flat.shape[0], chunk):
            weights = torch.addcmul(base, flat[start:start + chunk].unsqueeze(-1), self.m)
            peak = weights.amax(-1, keepdim=True)
            sums = weights.sub_(peak).clamp_(min=EXP_FLOOR).exp_() @ self.moment_basis
            log_z[start:start + chunk] = peak.squeeze(-1) + torch.log(sums[:, 0])
            moments[start:start + chunk] = sums[:, 1:] / sums[:, :1]
        outside = torch.abs(flat) + 2.0 * abs(a) > self.C_LIMIT  # the u-domain would cut mass off: no value
        log_z[outside], moments[outside] = math.nan, math.nan
        moments = moments.reshape(*b.shape, 3)
        return log_z.reshape(b.shape), moments[..., 0], moments[..., 1], moments[..., 2]


class IsingMeasure(LocalMeasure):
    """Binary weights w = ±1: q⋆ ≡ 1 and q̂⋆ drops out (set to 0)."""

    fixed_q_star = 1.0
    a_bounds = None

    def site(self, a: float, b: torch.Tensor):
        log_z = torch.logaddexp(b, -b) + a  # ln 2cosh b + a
        mean = torch.tanh(b)
        return log_z, mean, torch.ones_like(b), mean


class SphericalMeasure(LocalMeasure):
    """Real weights with the spherical constraint Σ w² = N: Gaussian single site, q̂⋆ fixes q⋆ = 1 (a < 0)."""

    fixed_q_star = 1.0
    a_bounds = (-np.inf, 0.0)

    def site(self, a: float, b: torch.Tensor):
        precision = -2.0 * a
        mean = b / precision
        log_z = 0.5 * math.log(2.0 * math.pi / precision) + 0.5 * b * mean
        sign = torch.erf(mean * math.sqrt(precision / 2.0))
        return log_z, mean, mean**2 + 1.0 / precision, sign


def site_averages(measure, q_hat: float, r_hat: float, q_star_hat: float) -> SiteAverages:
    """Gaussian averages of the single-site problem at conjugates (q̂, r̂, q̂⋆), a = q̂⋆ − q̂/2."""
    return measure.averages(q_hat, r_hat, q_star_hat - q_hat / 2.0)


def lagrange_multiplier(measure, q_hat: float, r_hat: float, q_star_target: float) -> float:
    """q̂⋆ such that E_z⟨m²⟩ = q⋆_target (fixed self-overlap; spherical constraint). E⟨m²⟩ increases with q̂⋆."""
    def excess(a):
        return measure.averages(q_hat, r_hat, a).second - q_star_target

    low_bound, high_bound = measure.a_bounds
    if high_bound == 0.0:  # spherical: a ∈ (−∞, 0); bracket in log(−a)
        root = scipy.optimize.brentq(lambda log_neg_a: -excess(-math.exp(log_neg_a)), -40.0, 40.0, xtol=1e-14)
        return -math.exp(root) + q_hat / 2.0
    low, high = -1.0, 1.0
    while excess(low) > 0:
        low *= 2.0
    while excess(high) < 0:
        high *= 2.0
    return scipy.optimize.brentq(excess, low, high, xtol=1e-13, rtol=1e-15) + q_hat / 2.0


def eps_g_of(p: float) -> float:
    """Generalization error of a clipped student whose sign overlap with a teacher is p: arccos(p)/π
    (docs/theory.md eqs. 8, 16, 22); p is clipped to [−1, 1] against rounding."""
    return math.acos(min(max(p, -1.0), 1.0)) / math.pi


# ----------------------------------------------------------------------------- the saddle point
@dataclasses.dataclass
class RSSolution:
    alpha: float
    q: float
    r: float
    q_star: float
    q_hat: float
    r_hat: float
    q_star_hat: float
    p1: float  # E_z⟨sgn m⟩: teacher overlap of the clipped student
    eps_g: float  # arccos(p1)/π
    free_entropy: float
    converged: bool
    iterations: int  # evaluations of the saddle-point map
    residual: float  # max |T(x) − x| at the returned point
    replicon: float = math.nan  # λ_R = α E_out[(ψ'')²] E_z[(⟨m²⟩ − ⟨m⟩²)²]: RS is locally stable iff λ_R < 1

    def as_row(self) -> dict:
        return {**dataclasses.asdict(self), "rs_stable": rs_stable(self.replicon)}


def rs_stable(replicon: float) -> bool:
    """The replica-symmetric saddle point is stable against replica-symmetry breaking (the replicon, or
    de Almeida–Thouless, eigenvalue of the Hessian of the replicated free entropy is negative) iff λ_R < 1."""
    return bool(replicon < 1.0)


class RSProblem:
    """The saddle-point map x = (q, r, q⋆) → T(x) of one (α, measure, channel) problem.

    teacher=False is the storage problem (random labels): r = r̂ = 0.  fixed_q⋆ clamps the self-overlap
    (q̂⋆ then becomes the Lagrange multiplier of E⟨m²⟩ = q⋆; Fig. 2d's "fixed q⋆" theory)."""

    def __init__(self, alpha: float, measure, channel, teacher: bool = True, fixed_q_star: float | None = None,
                 max_evaluations: int = MAX_EVALUATIONS):
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        if not max_evaluations >= 1:
            raise ValueError(f"max_evaluations must be >= 1, got {max_evaluations}")
        self.alpha, self.measure, self.channel, self.teacher = float(alpha), measure, channel, teacher
        for forced in (measure.fixed_q_star, channel.fixed_q_star):
            if forced is not None:
                if fixed_q_star is not None and fixed_q_star != forced:
                    raise ValueError(f"this measure/channel requires q_star = {forced}")
                fixed_q_star = forced
        if fixed_q_star is not None and not 0 < fixed_q_star <= 1:
            raise ValueError(f"fixed self-overlap must be in (0, 1], got {fixed_q_star}")
        self.fixed_q_star = fixed_q_star
        self.evaluations, self.max_evaluations = 0, int(max_evaluations)
        self.last = None  # the last evaluated point and its image (what a solve cut short returns)

    # unconstrained coordinates y ↔ order parameters with r² < q < q⋆ < 1 (r = 0 without teacher)
    def to_params(self, y: np.ndarray):
        with np.errstate(over="ignore"):  # |y| > 709: the logistic rounds to 0 or 1 (and `inside` says no)
            q_star = self.fixed_q_star if self.fixed_q_star is not None else float(1.0 / (1.0 + np.exp(-y[-1])))
            q = float(q_star / (1.0 + np.exp(-y[0])))
        r = math.sqrt(q) * math.tanh(y[1]) if self.teacher else 0.0
        return q, r, q_star

    def inside(self, q: float, r: float, q_star: float) -> bool:
        """r² < q < q⋆ < 1 in floating point (a long step in y can round onto the boundary, where G_E has no value)."""
        return r * r < q < q_star and (q_star < 1.0 or self.fixed_q_star is not None)

    def to_coords(self, q: float, r: float, q_star: float) -> np.ndarray:
        coords = [math.log(q / (q_star - q))]
        if self.teacher:
            coords.append(math.atanh(r / math.sqrt(q)))
        if self.fixed_q_star is None:
            coords.append(math.log(q_star / (1.0 - q_star)))
        return np.array(coords)

    def conjugates(self, q: float, r: float, q_star: float):
        g_e, d_q, d_r, d_q_star = energy_gradient(self.channel, q, r, q_star)
        q_hat = max(-2.0 * self.alpha * d_q, 0.0)
        r_hat = self.alpha * d_r if self.teacher else 0.0
        if self.fixed_q_star is None:
            q_star_hat = self.alpha * d_q_star
        elif self.measure.a_bounds is None:  # Ising: q⋆ ≡ 1 by the support, q̂⋆ drops out
            q_star_hat = 0.0
        else:
            q_star_hat = lagrange_multiplier(self.measure, q_hat, r_hat, self.fixed_q_star)
        return g_e, q_hat, r_hat, q_star_hat

    def step(self, q: float, r: float, q_star: float):
        """One application of the saddle-point map: returns (new (q, r, q⋆), conjugates, averages, G_E).
        Raises EvaluationBudgetSpent once `max_evaluations` maps have been evaluated."""
        if self.last is not None and self.last[0] == (q, r, q_star):  # the solver asks again for the point it just had
            return self.last[1]
        if self.evaluations >= self.max_evaluations:
            raise EvaluationBudgetSpent
        self.evaluations += 1
        g_e, q_hat, r_hat, q_star_hat = self.conjugates(q, r, q_star)
        averages = site_averages(self.measure, q_hat, r_hat, q_star_hat)
        new_Q = self.fixed_q_star if self.fixed_q_star is not None else averages.second
        new_r = averages.mean if self.teacher else 0.0
        image = (averages.mean_sq, new_r, new_Q), (q_hat, r_hat, q_star_hat), averages, g_e
        self.last = (float(q), float(r), float(q_star)), image
        return image

    def residual(self, y: np.ndarray) -> np.ndarray:
        params = self.to_params(y)
        if not self.inside(*params):
            return np.full(len(y), math.nan)  # a rejected step
        new, *_ = self.step(*params)
        return np.array([new[0] - params[0]] + ([new[1] - params[1]] if self.teacher else [])
                        + ([new[2] - params[2]] if self.fixed_q_star is None else []))

    def image_in_coords(self, y: np.ndarray) -> tuple[np.ndarray, float]:
        """T(x(y)) in the solver coordinates (projected inside r² < q < q⋆ < 1), and max |T(x) − x|.  Steps and
        Jacobians are well scaled in y; convergence (`tol`) is judged on the order parameters themselves."""
        params = self.to_params(y)
        if not self.inside(*params):
            return np.full(len(y), math.nan), math.inf  # a rejected step
        new = self.step(*params)[0]
        return self.to_coords(*_project(np.array(new), self)), max(abs(a - b) for a, b in zip(new, params))

    def solution(self, q: float, r: float, q_star: float) -> RSSolution:
        return self.as_solution((q, r, q_star), self.step(q, r, q_star))

    def as_solution(self, params, image) -> RSSolution:
        (new, (q_hat, r_hat, q_star_hat), averages, g_e), (q, r, q_star) = image, (float(value) for value in params)
        residual = max(abs(a - b) for a, b in zip(new, (q, r, q_star)))
        free_entropy = -q_star_hat * q_star + 0.5 * q_hat * q - r_hat * r + averages.log_z + self.alpha * g_e
        p1 = min(max(averages.sign, -1.0), 1.0)
        replicon = self.alpha * channel_curvature_sq(self.channel, q, r, q_star) * averages.variance_sq
        return RSSolution(self.alpha, q, r, q_star, q_hat, r_hat, q_star_hat, p1, eps_g_of(p1), free_entropy,
                          False, self.evaluations, residual, replicon)


class EvaluationBudgetSpent(Exception):
    """The solver used its `max_evaluations` evaluations of the saddle-point map."""


def solve_rs(alpha: float, measure, channel, init: tuple[float, float, float], teacher: bool = True,
             fixed_q_star: float | None = None, tol: float = 1e-10, damping: float = 0.3,
             max_damped_steps: int = 300, max_evaluations: int = MAX_EVALUATIONS) -> RSSolution:
    """Solve the RS saddle point from `init` = (q, r, q⋆).

    Newton's method in unconstrained coordinates (finite-difference Jacobian, Broyden updates, backtracking);
    if it stalls, damped fixed-point iteration x ← x + η(T(x) − x) from `init` and Newton again.
    `converged` means max |T(x) − x| < tol at the returned point.  After `max_evaluations` evaluations of the
    map the solve stops and returns the last evaluated point with converged=False."""
    problem = RSProblem(alpha, measure, channel, teacher, fixed_q_star, max_evaluations)
    with single_thread():
        try:
            return _solve(problem, init, tol, damping, max_damped_steps)
        except EvaluationBudgetSpent:
            return problem.as_solution(*problem.last)


@contextlib.contextmanager
def single_thread():
    """The quadrature tensors are small (~10⁵ elements): one thread is faster than two and cannot be
    slowed down by OpenMP over-subscription when other jobs share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _solve(problem: RSProblem, init, tol: float, damping: float, max_damped_steps: int,
           newton_radius: float = 0.01) -> RSSolution:
    start = np.array(_feasible(init, problem))
    for _ in range(20):  # far from the fixed point Newton in logit coordinates can stall: damp first
        step = np.array(problem.step(*start)[0]) - start
        if np.max(np.abs(step)) < newton_radius:
            break
        start = _project(start + damping * step, problem)
    y = _newton(problem.residual, problem.to_coords(*start), tol)
    solution = problem.solution(*problem.to_params(y))
    x = np.array(start)
    for _ in range(max_damped_steps // DAMPED_BLOCK):  # fallback: damped iteration, Newton after every block
        if solution.residual < tol:
            return dataclasses.replace(solution, converged=True, iterations=problem.evaluations)
        for _ in range(DAMPED_BLOCK):
            x = _project(x + damping * (np.array(problem.step(*x)[0]) - x), problem)
        y = _newton(problem.residual, problem.to_coords(*x), tol)
        solution = problem.solution(*problem.to_params(y))
    converged = solution.residual < tol
    return dataclasses.replace(solution, converged=converged, iterations=problem.evaluations)


def _newton(residual, y: np.ndarray, tol: float, max_steps: int = 40, fd_step: float = 1e-7) -> np.ndarray:
    """Quasi-Newton root finding of residual(y) = 0 until max |residual| < tol (returns the last iterate)."""
    def jacobian(y, f):
        columns = []
        for i in range(len(y)):
            shifted = y.copy()
            shifted[i] += fd_step * max(1.0, abs(y[i]))
            columns.append((residual(shifted) - f) / (shifted[i] - y[i]))
        return np.stack(columns, axis=1)

    f = residual(y)
    J = jacobian(y, f)
    stalls = 0
    for _ in range(max_steps):
        if np.max(np.abs(f)) < tol or not np.all(np.isfinite(f)):
            break
        try:
            step = -np.linalg.solve(J, f)
        except np.linalg.LinAlgError:
            break
        step *= min(1.0, 3.0 / max(np.max(np.abs(step)), 1e-300))  # trust region in the logit coordinates
        for _ in range(12):  # backtracking on the residual norm
            candidate = residual(y + step)
            if np.all(np.isfinite(candidate)) and np.linalg.norm(candidate) < np.linalg.norm(f):
                break
            step /= 2.0
        else:
            stalls += 1
            if stalls == 2:  # stalled again with a fresh Jacobian: no root nearby, give up
                break
            J = jacobian(y, f)  # stalled: refresh the Jacobian
            continue
        stalls = 0
        J += np.outer(candidate - f - J @ step, step) / (step @ step)  # Broyden rank-one update
        y, f = y + step, candidate
    return y


def _feasible(init, problem: RSProblem):
    q, r, q_star = (float(value) for value in init)
    if problem.fixed_q_star is not None:
        q_star = problem.fixed_q_star
    return tuple(_project(np.array([q, r if problem.teacher else 0.0, q_star]), problem, margin=1e-6))


def _project(x: np.ndarray, problem: RSProblem, margin: float = 1e-9) -> np.ndarray:
    """Clip (q, r, q⋆) into r² < q < q⋆ < 1, keeping a relative distance `margin` from each boundary."""
    q_star = problem.fixed_q_star if problem.fixed_q_star is not None else min(max(x[2], 1e-6), 1.0 - margin)
    q = min(max(x[0], 1e-12), q_star * (1.0 - margin))
    r = 0.0 if not problem.teacher else math.copysign(min(abs(x[1]), math.sqrt(q) * (1.0 - margin)), x[1])
    return np.array([q, r, q_star])


# ----------------------------------------------------------------------------- sweeps over α, both branches
def continuation(alphas, solve, default_init, joins=None, same_tol: float = 1e-7) -> list[RSSolution]:
    """Solve along `alphas` in the given order, starting each point from a linear extrapolation of the two
    previous solutions (the same branch).  `solve(alpha, init, max_evaluations)`.

    The first point starts from `default_init`.  A continued start converges in ~10 evaluations; if it has not
    after CONTINUATION_BUDGET, the branch has ended (a fold) or the step was too long for the extrapolation, and
    the point is solved again with the full budget from `default_init` (which finds this sweep's branch again if
    it still exists: on a coarse grid the second case is common), then from `joins`' solution at this α.
    `joins`: the solutions of the opposite sweep at the same `alphas` (continued from the other end, so smooth
    along this sweep's remaining α until its own jump, which lies behind us).  Once the two sweeps have differed
    and then agree at two consecutive points, this sweep has fallen onto the other's branch, and the rest is
    taken from it."""
    solutions: list[RSSolution] = []
    differed = False
    for index, alpha in enumerate(alphas):
        if joins is not None and index >= 1:
            differed = differed or not _same(solutions[index - 1], joins[index - 1], same_tol)
            if differed and index >= 2 and all(_same(solutions[k], joins[k], same_tol) for k in (index - 2, index - 1)):
                return solutions + list(joins[index:])
        previous = [s for s in solutions[-2:] if s.converged]
        guess = (previous[-1].q, previous[-1].r, previous[-1].q_star) if previous else None
        if len(previous) == 2 and previous[1].alpha != previous[0].alpha:
            slope = (alpha - previous[1].alpha) / (previous[1].alpha - previous[0].alpha)
            extrapolated = tuple(getattr(previous[1], k) + slope * (getattr(previous[1], k) - getattr(previous[0], k))
                                 for k in ("q", "r", "q_star"))
            if all(new >= 0.5 * old for new, old in zip(_gaps(*extrapolated), _gaps(*guess))):
                guess = extrapolated  # keep the linear extrapolation only if it stays well inside the domain
        if guess is None:  # the first point of the sweep
            solution = solve(alpha, default_init, MAX_EVALUATIONS)
        else:
            solution = solve(alpha, guess, CONTINUATION_BUDGET)
            if not solution.converged:  # the branch may have ended: where this sweep started from, else the other's
                solution = solve(alpha, default_init, MAX_EVALUATIONS)
                other = joins[index] if joins is not None and joins[index].converged else None
                if not solution.converged and other is not None:
                    solution = solve(alpha, (other.q, other.r, other.q_star), MAX_EVALUATIONS)
        solutions.append(solution)
    return solutions


def iteration_is_stable(problem: RSProblem, solution, step: float = 1e-6) -> bool:
    """Stable under damped iteration x ← x + η(T(x) − x) for small η: every eigenvalue of ∂T/∂x has real part
    < 1.  The middle (unphysical) solution between two coexisting branches has a real eigenvalue > 1.

    The Jacobian is taken in the solver's unconstrained coordinates y (at a fixed point it is similar to ∂T/∂x,
    D⁻¹(∂T/∂x)D with D = ∂x/∂y, so the eigenvalues are the same) where y ± step is always a valid point, even
    when q⋆ − q is 1e-7."""
    y = problem.to_coords(*_feasible((solution.q, solution.r, solution.q_star), problem))
    mapped = lambda coords: problem.image_in_coords(coords)[0]
    columns = []
    for index in range(len(y)):
        shift = np.zeros(len(y))
        shift[index] = step * max(abs(y[index]), 1.0)
        columns.append((mapped(y + shift) - mapped(y - shift)) / (2 * shift[index]))
    jacobian = np.stack(columns, axis=1)
    if not np.all(np.isfinite(jacobian)):
        return True  # undecidable: keep the solution rather than drop it
    return bool(np.max(np.linalg.eigvals(jacobian).real) < 1.0)


def _same(first, second, tol: float) -> bool:
    """The same converged solution (order parameters within `tol`)."""
    return (first.converged and second.converged
            and max(abs(first.q - second.q), abs(first.r - second.r), abs(first.q_star - second.q_star)) < tol)


def _gaps(q: float, r: float, q_star: float) -> tuple[float, float, float]:
    """Distances to the boundaries of r² < q < q⋆ ≤ 1."""
    return q - r * r, q_star - q, 1.0 - q_star


def sweep_branches(alphas, solve, low_init, high_init, is_stable=None, same_tol: float = 1e-7) -> list[dict]:
    """Both RS branches along α: continuation upward from `low_init` (poor generalization) and downward from
    `high_init` (good generalization).  Where the two sweeps meet the same solution the row is 'unique';
    where they differ two rows 'poor'/'good' are returned and `thermodynamic` marks the larger free entropy.
    `is_stable(solution)` (optional) discards a solution that is unstable under damped iteration (the middle
    solution Newton can land on after a large step in α)."""
    ordered = sorted({float(alpha) for alpha in alphas})
    upward = continuation(ordered, solve, low_init)
    downward = continuation(ordered[::-1], solve, high_init, joins=upward[::-1], same_tol=same_tol)[::-1]
    rows = []
    for low, high in zip(upward, downward):
        same = _same(low, high, same_tol)
        if not same and is_stable is not None and low.converged and high.converged:
            stable = [solution for solution in (low, high) if is_stable(solution)]
            if len(stable) == 1:
                low = high = stable[0]
                same = True
        if same or not (low.converged and high.converged):
            best = low if low.converged or not high.converged else high
            rows.append({**best.as_row(), "branch": "unique", "thermodynamic": True})
            continue
        poor, good = sorted((low, high), key=lambda solution: solution.r)
        for name, solution in (("poor", poor), ("good", good)):
            other = good if solution is poor else poor
            rows.append({**solution.as_row(), "branch": name,
                         "thermodynamic": solution.free_entropy >= other.free_entropy})
    return rows
