"""Single-site measures of the replica-symmetric free entropy: the entropic term G_S and its averages.

The entropic term of the RS free entropy (docs/theory.md eqs. 11, 13) is a single-site problem,

    G_S = ∫Dz ln ∫ dμ(m) exp[(q̂⋆ − q̂/2) m² + (√q̂ z + r̂) m],

whose Gaussian averages give the order parameters q = E_z⟨m⟩², r = E_z⟨m⟩, q⋆ = E_z⟨m²⟩ (eq. 15) and the sign
overlap p = E_z⟨sgn m⟩ (eq. 16).  Measures: `FlatMeasure(kappa)` (this paper: flat m ∈ [−1, 1] plus κ·S(m), the
uniform prior of the appendix), `IsingMeasure` (w = ±1, q⋆ ≡ 1), `SphericalMeasure` (w ∈ ℝ with Σw² = N, q̂⋆ a
Lagrange multiplier).  `site_averages` evaluates them at given conjugates (`SiteAverages`), and
`lagrange_multiplier` finds the q̂⋆ of a fixed self-overlap (eq. 17).  Everything is float64 and deterministic.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.optimize
import torch

from mean_field_theory.quadrature import N_Z, gauss_legendre, gaussian_sinh_nodes, resolution

EXP_FLOOR = -700.0  # smallest exponent passed to exp in the site integrals (see FlatMeasure.site)


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
