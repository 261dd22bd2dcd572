"""One-step replica-symmetry breaking (1RSB) of the task-1 Gibbs measure (docs/theory.md §3c).

Where the replicon of the RS saddle point exceeds 1 (§3b) two typical solutions of eq. 9 no longer overlap by one
value q.  The 1RSB ansatz groups the n replicas in blocks of size x: overlap q₁ inside a block, q₀ between blocks,
self-overlap q⋆, teacher overlap r.  With the conjugates q̂₁, q̂₀, q̂⋆, r̂ the free entropy is

    Φ = extr { −q̂⋆ q⋆ + ½(1 − x) q̂₁ q₁ + ½ x q̂₀ q₀ − r̂ r + G_S + α G_E }

    G_S = ∫Dz₀ (1/x) ln ∫Dz₁ Z(√q̂₀ z₀ + √(q̂₁ − q̂₀) z₁ + r̂)^x,    Z(b) = ∫dμ(m) e^{(q̂⋆ − q̂₁/2) m² + b m}
    G_E = 2∫Dz₀ Φ_N(r z₀/√(q₀ − r²)) (1/x) ln ∫Dz₁ exp[x ψ₁(√q₀ z₀ + √(q₁ − q₀) z₁)]

with ψ₁ the RS channel ψ of eq. 12 at q = q₁ (inner variance q⋆ − q₁).  q₁ = q₀ gives the RS free entropy for
any x.  Saddle point: q̂₁ = −2α/(1 − x) ∂_{q₁}G_E, q̂₀ = −2α/x ∂_{q₀}G_E, r̂ = α ∂_r G_E, q̂⋆ = α ∂_{q⋆}G_E (autograd
through the quadrature) and, with ⟨·⟩ the single site at field b and E_W the average over z₁ with weight ∝ Z^x Dz₁,

    q⋆ = E₀E_W⟨m²⟩,  r = E₀E_W⟨m⟩,  q₁ = E₀E_W⟨m⟩²,  q₀ = E₀(E_W⟨m⟩)²,  p = E₀E_W⟨sgn m⟩,

and x from ∂Φ/∂x = 0 (explicit derivative at the saddle point).  The Parisi parameter x is the weight of the
inter-block peak of the overlap distribution: P(q) = x δ(q − q₀) + (1 − x) δ(q − q₁).

Quadrature: the inner z₁ integrals carry the tilt Z^x (or e^{xψ₁}), which moves their mass away from z₁ = 0.
Site: d/dz₁[−z₁²/2 + x ln Z] = −z₁ + x√Δ̂⟨m⟩ with |⟨m⟩| ≤ 1, so every maximum lies in |z₁| ≤ x√Δ̂ and beyond it the
integrand falls at least like a unit Gaussian: the domain is |z₁| ≤ x√Δ̂ + 12, with node clusters at z₁ = 0,
±x√Δ̂ (where the humps of a bimodal tilt sit) and at the sign change of b.  Energy: ψ₁ is concave (Φ_N^β is
log-concave and a Gaussian smoothing keeps it so), so −z₁²/2 + xψ₁ is concave with curvature ≤ −1: its maximum z⋆
is found by safeguarded Newton and the domain is z⋆ ± 12, with clusters at z⋆ and at the bend of ψ₁.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.optimize
import torch

from mean_field_theory.quadrature import (DTYPE, GAUSS_TAIL, LOG_SQRT_2PI, gaussian_sinh_nodes, n_nodes,
                                         resolution, sinh_cluster_nodes)
from mean_field_theory.channels import VariationalChannel, outer_rule
from mean_field_theory.rs_solver import eps_g_of, single_thread
from mean_field_theory.site_measures import FlatMeasure

N_Z0 = 81  # nodes of the outer Gaussian integrals (doubling both changes the map by ~1e-9 relative at β = 20)
N_Z1 = 61  # nodes of the inner (tilted) Gaussian integrals
MIN_GAP = 1e-12  # q₁ − q₀ (and q̂₁ − q̂₀) below this: the inner integral is trivial (the RS limit)


@dataclasses.dataclass
class RSB1Solution:
    alpha: float
    x: float  # Parisi parameter: weight of the q₀ peak of P(q)
    q0: float
    q1: float
    r: float
    q_star: float
    q0_hat: float
    q1_hat: float
    r_hat: float
    q_star_hat: float
    p1: float  # E⟨sgn m⟩: teacher overlap of the clipped student
    eps_g: float
    free_entropy: float
    dphi_dx: float  # ∂Φ/∂x at the saddle point (0 when x is determined by its own condition)
    replicon: float  # α E[(ψ₁'')²] E[(⟨m²⟩ − ⟨m⟩²)²] inside a block (the 1RSB solution's own stability: < 1)
    converged: bool
    iterations: int
    residual: float

    def as_row(self) -> dict:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------- energy term
def _psi_slopes(channel, omega: torch.Tensor, q1: torch.Tensor, q_star: torch.Tensor):
    """ψ₁(ω), ψ₁'(ω), ψ₁''(ω) by autograd through the quadrature of ψ₁ (no graph kept)."""
    omega = omega.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        psi = channel.log_partition(omega, q1.detach(), q_star.detach())
        slope, = torch.autograd.grad(psi.sum(), omega, create_graph=True)
        curvature, = torch.autograd.grad(slope.sum(), omega)
    return psi.detach(), slope.detach(), curvature.detach()


def tilted_peak(channel, omega0, gap, q1, q_star, x: float, max_steps: int = 60):
    """Maximum z⋆ of f(z) = −z²/2 + x ψ₁(ω₀ + s z), s = √(q₁ − q₀), and σ = (−f''(z⋆))^{−1/2} ≤ 1, batched over ω₀.

    ψ₁ is increasing and concave, so f' = −z + x s ψ₁' is decreasing and its root lies in [0, x s ψ₁'(ω₀)]:
    Newton steps that leave the bracket are replaced by bisection."""
    low = torch.zeros_like(omega0)
    high = x * gap * _psi_slopes(channel, omega0, q1, q_star)[1]
    z = 0.5 * (low + high)
    for _ in range(max_steps):
        _, slope, curvature = _psi_slopes(channel, omega0 + gap * z, q1, q_star)
        derivative, second = -z + x * gap * slope, -1.0 + x * gap**2 * curvature
        low, high = torch.where(derivative > 0, z, low), torch.where(derivative > 0, high, z)
        newton = z - derivative / second
        inside = (newton > low) & (newton < high)
        new = torch.where(inside, newton, 0.5 * (low + high))
        done = bool(torch.all(torch.abs(new - z) <= 1e-12 * (1.0 + torch.abs(z))))
        z = new
        if done:
            break
    _, _, curvature = _psi_slopes(channel, omega0 + gap * z, q1, q_star)
    return z, torch.rsqrt(1.0 - x * gap**2 * curvature)


def energy_term(channel, q0, q1, r, q_star, x) -> torch.Tensor:
    """G_E of the 1RSB ansatz (module docstring); differentiable in the tensors q₀, q₁, r, q⋆, x (the nodes are
    fixed: the exact derivative of the quadrature)."""
    z0, log_w0 = outer_rule(channel, q0, r, q_star)
    omega0 = torch.sqrt(q0) * z0
    gap = torch.sqrt(torch.clamp(q1 - q0, min=0.0))
    if float(gap.detach()) < math.sqrt(MIN_GAP):
        return torch.sum(torch.exp(log_w0) * channel.log_partition(omega0, q1, q_star))
    with torch.no_grad():
        s, xs = float(gap.detach()), float(x.detach())
        peak, width = tilted_peak(channel, omega0.detach(), s, q1.detach(), q_star.detach(), xs)
        bend = (math.sqrt(1.0 - float(q_star)) * channel.wall_t - omega0.detach()) / s
        bend_width = torch.full_like(bend, channel.layer_width(float(q1), float(q_star)) / s)
        tail = GAUSS_TAIL * resolution().domain
        z1, log_w1 = sinh_cluster_nodes(peak - tail, peak + tail, ((peak, width), (bend, bend_width)),
                                        n_nodes(N_Z1))
        log_w1 = log_w1 - 0.5 * z1**2 - LOG_SQRT_2PI
    psi = channel.log_partition(omega0.unsqueeze(-1) + gap * z1, q1, q_star)
    inner = torch.logsumexp(log_w1 + x * psi, dim=-1) / x
    return torch.sum(torch.exp(log_w0) * inner)


def energy_gradient(channel, q0: float, q1: float, r: float, q_star: float, x: float):
    """(G_E, ∂G_E/∂q₀, ∂G_E/∂q₁, ∂G_E/∂r, ∂G_E/∂q⋆, ∂G_E/∂x)."""
    params = [torch.tensor(float(value), dtype=DTYPE, requires_grad=True) for value in (q0, q1, r, q_star, x)]
    value = energy_term(channel, *params)
    grads = torch.autograd.grad(value, params, allow_unused=True)
    return float(value.detach()), *(0.0 if grad is None else float(grad) for grad in grads)


def channel_curvature_sq(channel, q0: float, q1: float, r: float, q_star: float, x: float) -> float:
    """E₀ E_W[(ψ₁'')²] with E_W the tilted inner average (weight ∝ e^{xψ₁} Dz₁): the channel factor of the
    replicon inside a block."""
    q0, q1, r, q_star = (torch.tensor(float(value), dtype=DTYPE) for value in (q0, q1, r, q_star))
    z0, log_w0 = outer_rule(channel, q0, r, q_star)
    omega0 = torch.sqrt(q0) * z0
    gap = float(torch.sqrt(torch.clamp(q1 - q0, min=0.0)))
    if gap < math.sqrt(MIN_GAP):
        return float(torch.sum(torch.exp(log_w0) * _psi_slopes(channel, omega0, q1, q_star)[2] ** 2))
    peak, width = tilted_peak(channel, omega0, gap, q1, q_star, x)
    bend = (math.sqrt(1.0 - float(q_star)) * channel.wall_t - omega0) / gap
    bend_width = torch.full_like(bend, channel.layer_width(float(q1), float(q_star)) / gap)
    tail = GAUSS_TAIL * resolution().domain
    z1, log_w1 = sinh_cluster_nodes(peak - tail, peak + tail, ((peak, width), (bend, bend_width)), n_nodes(N_Z1))
    psi, _, curvature = _psi_slopes(channel, omega0.unsqueeze(-1) + gap * z1, q1, q_star)
    tilt = log_w1 - 0.5 * z1**2 + x * psi
    weights = torch.softmax(tilt, dim=-1)
    return float(torch.exp(log_w0) @ (weights * curvature**2).sum(-1))


# ----------------------------------------------------------------------------- single site
@dataclasses.dataclass
class SiteAverages1RSB:
    log_z: float  # G_S
    d_log_z_dx: float  # ∂G_S/∂x at fixed conjugates
    r: float
    q0: float
    q1: float
    q_star: float
    sign: float
    variance_sq: float  # E₀E_W[(⟨m²⟩ − ⟨m⟩²)²], the site factor of the replicon inside a block


def site_averages(measure, q0_hat: float, q1_hat: float, r_hat: float, q_star_hat: float,
                  x: float) -> SiteAverages1RSB:
    """The site averages of the module docstring (closed forms: no autograd needed on this side)."""
    a = q_star_hat - q1_hat / 2.0
    root0 = math.sqrt(max(q0_hat, 0.0))
    spread = math.sqrt(max(q1_hat - q0_hat, 0.0))
    center = -r_hat / root0 if root0 > 0 else 0.0
    z0, log_w0 = gaussian_sinh_nodes((center,), (0.5 * min(1.0, 1.0 / root0) if root0 > 0 else 0.5,), N_Z0)
    b0 = root0 * z0 + r_hat
    if spread < math.sqrt(MIN_GAP):  # RS limit: no inner integral
        log_z, mean, second, sign = (value.unsqueeze(-1) for value in measure.site(a, b0))
        log_w1 = torch.zeros_like(log_z)
    else:
        reach, tail = x * spread, GAUSS_TAIL * resolution().domain
        ones = torch.ones_like(b0)
        layers = ((0.0 * ones, ones), (reach * ones, ones), (-reach * ones, ones),
                  (-b0 / spread, 0.5 * min(1.0, 1.0 / spread) * ones))
        z1, log_w1 = sinh_cluster_nodes(-(reach + tail) * ones, (reach + tail) * ones, layers, n_nodes(N_Z1))
        log_w1 = log_w1 - 0.5 * z1**2 - LOG_SQRT_2PI
        log_z, mean, second, sign = measure.site(a, b0.unsqueeze(-1) + spread * z1)
    tilt = log_w1 + x * log_z
    inner = torch.logsumexp(tilt, dim=-1, keepdim=True)
    weights = torch.exp(tilt - inner)
    w0 = torch.exp(log_w0)

    def tilted(values):
        return (weights * values).sum(-1)

    block_mean = tilted(mean)
    return SiteAverages1RSB(
        log_z=float(w0 @ inner.squeeze(-1)) / x,
        d_log_z_dx=float(w0 @ (-inner.squeeze(-1) / x**2 + tilted(log_z) / x)),
        r=float(w0 @ block_mean), q0=float(w0 @ block_mean**2), q1=float(w0 @ tilted(mean**2)),
        q_star=float(w0 @ tilted(second)), sign=float(w0 @ tilted(sign)),
        variance_sq=float(w0 @ tilted((second - mean**2) ** 2)))


# ----------------------------------------------------------------------------- the saddle point at fixed x
class RSB1Problem:
    """The saddle-point map (q₀, q₁, r, q⋆) → T at fixed (α, β, κ₁, x)."""

    def __init__(self, alpha: float, beta: float, x: float, kappa: float = 0.0):
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        if not 0.0 < x < 1.0:
            raise ValueError(f"the Parisi parameter x must lie in (0, 1), got {x}")
        self.alpha, self.x = float(alpha), float(x)
        self.channel, self.measure = VariationalChannel(beta), FlatMeasure(kappa)
        self.evaluations = 0

    def step(self, q0: float, q1: float, r: float, q_star: float):
        self.evaluations += 1
        alpha, x = self.alpha, self.x
        g_e, d_q0, d_q1, d_r, d_q_star, d_x = energy_gradient(self.channel, q0, q1, r, q_star, x)
        q1_hat = max(-2.0 * alpha * d_q1 / (1.0 - x), 0.0)
        q0_hat = min(max(-2.0 * alpha * d_q0 / x, 0.0), q1_hat)
        conjugates = (q0_hat, q1_hat, alpha * d_r, alpha * d_q_star)
        site = site_averages(self.measure, *conjugates, x)
        return (site.q0, site.q1, site.r, site.q_star), conjugates, site, (g_e, d_x)

    def solution(self, params, image, converged: bool, residual: float) -> RSB1Solution:
        q0, q1, r, q_star = params
        _, (q0_hat, q1_hat, r_hat, q_star_hat), site, (g_e, d_x) = image
        x, alpha = self.x, self.alpha
        free_entropy = (-q_star_hat * q_star + 0.5 * (1.0 - x) * q1_hat * q1 + 0.5 * x * q0_hat * q0 - r_hat * r
                        + site.log_z + alpha * g_e)
        dphi_dx = 0.5 * (q0_hat * q0 - q1_hat * q1) + site.d_log_z_dx + alpha * d_x
        replicon = alpha * channel_curvature_sq(self.channel, q0, q1, r, q_star, x) * site.variance_sq
        p1 = min(max(site.sign, -1.0), 1.0)
        return RSB1Solution(alpha, x, q0, q1, r, q_star, q0_hat, q1_hat, r_hat, q_star_hat, p1, eps_g_of(p1),
                            free_entropy, dphi_dx, replicon, converged, self.evaluations, residual)


def _to_coords(q0, q1, r, q_star):
    return np.array([math.log(q_star / (1 - q_star)), math.log(q1 / (q_star - q1)),
                     math.log((q0 - r * r) / (q1 - q0)), math.atanh(r / math.sqrt(q1))])


def _to_params(y):
    q_star = 1.0 / (1.0 + math.exp(-y[0]))
    q1 = q_star / (1.0 + math.exp(-y[1]))
    r = math.sqrt(q1) * math.tanh(y[3])  # r² < q₀ < q₁ is kept by the next line
    q0 = r * r + (q1 - r * r) / (1.0 + math.exp(-y[2]))
    return q0, q1, r, q_star


def solve_fixed_x(alpha: float, beta: float, x: float, init, kappa: float = 0.0, tol: float = 1e-9,
                  damping: float = 0.5, max_evaluations: int = 400) -> RSB1Solution:
    """The 1RSB saddle point at fixed x from `init` = (q₀, q₁, r, q⋆): damped iteration until the step is
    below 10⁻³, then Newton (scipy's hybrid method) in coordinates that keep r² < q₀ < q₁ < q⋆ < 1."""
    problem = RSB1Problem(alpha, beta, x, kappa)
    with single_thread():
        params = tuple(float(v) for v in init)
        for _ in range(60):
            image = problem.step(*params)
            step = np.array(image[0]) - np.array(params)
            if np.max(np.abs(step)) < 1e-3:
                break
            params = tuple(np.array(params) + damping * step)
            params = (max(params[0], params[2] ** 2 + 1e-9), max(params[1], params[0] + 1e-9), params[2],
                      min(max(params[3], params[1] + 1e-9), 1 - 1e-9))

        def residual(y):
            if problem.evaluations >= max_evaluations:
                raise _Budget
            try:
                point = _to_params(y)
            except (OverflowError, ValueError):
                return np.full(4, 1e3)
            new = problem.step(*point)[0]
            if not np.all(np.isfinite(new)):
                return np.full(4, 1e3)
            return np.array(new) - np.array(point)

        try:
            result = scipy.optimize.root(residual, _to_coords(*params), method="hybr", tol=1e-12)
            params = _to_params(result.x)
        except _Budget:
            pass
        image = problem.step(*params)
        error = float(np.max(np.abs(np.array(image[0]) - np.array(params))))
        return problem.solution(params, image, error < tol, error)


class _Budget(Exception):
    pass


# ----------------------------------------------------------------------------- x from its stationarity condition
def rs_start(rs, gap: float = 0.05) -> tuple[float, float, float, float]:
    """A start near the RS solution `rs` with the blocks split: q₀ below and q₁ above the RS q."""
    q1 = rs.q + 0.3 * (rs.q_star - rs.q)
    q0 = max(rs.q - gap, rs.r**2 + 0.5 * (rs.q - rs.r**2))
    return q0, q1, rs.r, rs.q_star


def solve_1rsb(alpha: float, beta: float, init, kappa: float = 0.0, x_start: float = 0.5, x_tol: float = 1e-4,
               tol: float = 1e-9, collapsed: float = 1e-6) -> RSB1Solution:
    """The 1RSB saddle point with x from ∂Φ/∂x = 0: the fixed-x solutions are followed in x (each started from
    the previous one) and the root of ∂Φ/∂x is bracketed, then found by Brent's method to `x_tol`.

    If the blocks merge (q₁ − q₀ < `collapsed`) at some x, the iteration from `init` has reached a replica-symmetric
    solution (the RS one where RS is stable; another branch's where it is not): that solution is returned at once,
    with x = NaN — there is no 1RSB solution to follow from this start."""
    cache: dict[float, RSB1Solution] = {}
    last = [tuple(init)]

    def derivative(x: float) -> float:
        solution = solve_fixed_x(alpha, beta, x, last[0], kappa, tol)
        cache[x] = solution
        if solution.q1 - solution.q0 <= collapsed:
            raise _Merged(solution)
        last[0] = (solution.q0, solution.q1, solution.r, solution.q_star)
        return solution.dphi_dx

    try:
        x_low = x_high = x_start
        value = derivative(x_start)
        step = 0.15 if value < 0 else -0.15  # Φ is smallest at the root: ∂Φ/∂x < 0 below it
        while True:
            x_next = min(max(x_high + step, 0.02), 0.98)
            if x_next == x_high:
                return dataclasses.replace(cache[x_high], converged=False)  # no root inside [0.02, 0.98]
            next_value = derivative(x_next)
            if (next_value > 0) != (value > 0):
                x_low, x_high = x_high, x_next
                break
            x_high, value = x_next, next_value
        root = scipy.optimize.brentq(derivative, min(x_low, x_high), max(x_low, x_high), xtol=x_tol)
    except _Merged as merged:
        return dataclasses.replace(merged.solution, x=math.nan)
    return cache.get(root) or solve_fixed_x(alpha, beta, root, last[0], kappa, tol)


class _Merged(Exception):
    def __init__(self, solution: RSB1Solution):
        super().__init__("the blocks merged")
        self.solution = solution
