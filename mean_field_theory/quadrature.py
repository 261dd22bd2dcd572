"""Deterministic quadrature rules of the replica solvers (float64, no Monte Carlo).

Every integral of the theory is one of three kinds, and each rule puts its nodes where that kind's mass is:

* **Gaussian averages** ∫Dz f(z) whose f grows at most like a polynomial (|f| ≤ A + B z²: the energy ψ and the
  single-site ln Z, or bounded moments).  The Gaussian weight holds the mass, so the domain is |z| ≤ `tail`
  with tail = 12: the neglected part is ≤ (A + B·tail²)·2φ(12)/12 ≈ 3·10⁻³³·(A + 144 B), far below float64 for
  any B the solvers meet.  Inside, f has narrow layers (the teacher sigmoid of width √(q−r²)/r, the sign change
  of the single-site field of width 1/√q̂; docs/theory.md §7), so the nodes follow a sinh map, z = c + s·sinh(t)
  near a layer c of width s, with a uniform trapezoid rule in t (`gaussian_sinh_nodes`): dense (spacing s·dt) at
  the layer, geometrically sparser in the tails.  The trapezoid rule converges exponentially for analytic
  integrands that vanish at both ends.  The rule has two clusters, the Gaussian bulk (width 1 at z = 0) and the layer: a layer far from the
  bulk (at z ≈ −12 when r̂/√q̂ is large) must not pull every node away from where the mass is.
* **Integrands that the Gaussian does not hold**, ∫Dx Φ^β(·) at very negative fields: Φ^β beats e^{−x²/2} and
  the mass sits far from x = 0.  `sinh_cluster_nodes` takes a domain and the layers chosen by the caller
  (`channels.VariationalChannel` puts them at the integrand's maximum and at the edge of the Φ^β wall).
* **Integrals over m ∈ [−1, 1]**: composite Gauss–Legendre in u = artanh(m) (`site_measures.FlatMeasure`).

`refined(nodes, domain)` multiplies every node count and every domain size at once; the convergence tests and
the refinement benchmark use it to check that neither the grid nor the domain limits the answer.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math

import numpy as np
import torch

NUMERICS_VERSION = 3  # bumped whenever the numbers can change (rules, branch search): older stored points are dropped
DTYPE = torch.float64
GAUSS_TAIL = 12.0  # Gaussian averages are cut at |z| = 12 (weight beyond: 3.6e-33, see the module docstring)
N_Z = 161  # nodes of the outer Gaussian integrals ∫Dz (sinh-mapped trapezoid: channels and single sites)
LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


@dataclasses.dataclass(frozen=True)
class Resolution:
    nodes: float = 1.0  # factor on every node count
    domain: float = 1.0  # factor on every domain size (tail cut-offs, u-range of the single-site grids)


_resolution = Resolution()


def resolution() -> Resolution:
    return _resolution


@contextlib.contextmanager
def refined(nodes: float = 2.0, domain: float = 1.5):
    """Within the block, every rule uses `nodes` times more nodes on a `domain` times larger domain.
    Objects that build their grid once (single-site measures) must be built inside the block."""
    global _resolution
    saved = _resolution
    _resolution = Resolution(saved.nodes * nodes, saved.domain * domain)
    try:
        yield
    finally:
        _resolution = saved


def n_nodes(n: int) -> int:
    """Node count `n` at the current resolution (kept odd, so a symmetric rule keeps its centre node)."""
    return 2 * int(round((n - 1) * _resolution.nodes / 2)) + 1


def as_tensor(value) -> torch.Tensor:
    return torch.as_tensor(value, dtype=DTYPE)


def _trapezoid(t_low, t_high, n: int):
    """Uniform trapezoid nodes on [t_low, t_high] (batched) and the log of their weights."""
    fraction = torch.linspace(0.0, 1.0, n, dtype=DTYPE)
    t = t_low + (t_high - t_low) * fraction
    end_factor = torch.ones(n, dtype=DTYPE)
    end_factor[0] = end_factor[-1] = 0.5
    return t, torch.log((t_high - t_low) / (n - 1) * end_factor)


def gaussian_sinh_nodes(centers, scales, n: int):
    """Nodes and log weights of ∫Dz f(z) (standard normal measure) on |z| ≤ GAUSS_TAIL, for an f with layers of
    widths `scales` at `centers` (sequences of floats, or of tensors for a batch of rules: shape
    center.shape + (n,)).  One more cluster covers the Gaussian bulk (width 1 at 0), where the mass is, so a layer
    far from it cannot pull the nodes away.  No gradient flows through the grid (the rule, not the integrand)."""
    n, limit = n_nodes(n), GAUSS_TAIL * _resolution.domain
    if all(isinstance(value, (int, float)) and math.isfinite(value) for value in (*centers, *scales)) \
            and min(scales) > 0:  # a single rule: cached (the solvers ask for similar ones often)
        layers = tuple(_snap(float(c), float(s)) for c, s in zip(centers, scales))
        return _cached_gaussian_rule(layers, n, limit)
    tensors = torch.broadcast_tensors(*(as_tensor(value) for value in (*centers, *scales)))
    return _gaussian_rule(tuple(zip(tensors[:len(centers)], tensors[len(centers):])), n, limit)


def _snap(center: float, scale: float) -> tuple[float, float]:
    """Layer position and width rounded to a lattice (width to 2^(k/8), position to a quarter of the width):
    the rule stays centred on the layer within an eighth of its width, and repeats, so it can be cached."""
    scale = 2.0 ** (round(8.0 * math.log2(scale)) / 8.0)
    return round(center / (0.25 * scale)) * 0.25 * scale, scale


@functools.lru_cache(maxsize=4096)
def _cached_gaussian_rule(layers: tuple, n: int, limit: float):
    return _gaussian_rule(tuple((as_tensor(c), as_tensor(s)) for c, s in layers), n, limit)


def _gaussian_rule(layers: tuple, n: int, limit: float):
    with torch.no_grad():
        ends = torch.full_like(layers[0][0], limit)
        layers = ((torch.zeros_like(ends), torch.ones_like(ends)), *layers)
        nodes, log_weights = sinh_cluster_nodes(-ends, ends, layers, n)
    return nodes, log_weights - 0.5 * nodes**2 - LOG_SQRT_2PI


def sinh_cluster_nodes(low, high, layers, n: int, table: int = 48, polish: int = 6):
    """Trapezoid nodes on [low, high] uniform in t(x) = Σ_k asinh((x − c_k)/s_k) for `layers` = ((c_k, s_k), ...)
    (tensors of one shape: a batch of rules).

    The node density dt/dx = Σ_k 1/√(s_k² + (x − c_k)²) adds one sinh map per layer: spacing ≈ s_k·dt at each
    layer, growing linearly with the distance from the nearest one, so one rule resolves layers of very
    different widths (a smooth maximum, a steep wall, the Gaussian bulk) wherever they are.  t(x) is analytic
    and increasing.  The nodes come from linear interpolation of x(t) on a table (the union of the single-layer
    sinh grids) and Newton steps on t(x) = t.  Returns (nodes, log(weights)) of shape low.shape + (n,) for
    ∫ f(x) dx; `n` is used as given (callers apply `n_nodes`)."""
    with torch.no_grad():
        low, high = low.unsqueeze(-1), high.unsqueeze(-1)
        layers = [(center.unsqueeze(-1), scale.unsqueeze(-1)) for center, scale in layers]

        def t_and_density(x):  # t(x) and dt/dx, sharing √(1 + u²) (asinh u = sgn u·ln(|u| + √(1 + u²)))
            t, density = 0.0, 0.0
            for center, scale in layers:
                u = (x - center) / scale
                root = torch.sqrt(1.0 + u * u)
                t = t + torch.copysign(torch.log(torch.abs(u) + root), u)
                density = density + 1.0 / (scale * root)
            return t, density

        fraction = torch.linspace(0.0, 1.0, table, dtype=DTYPE)
        grids = []
        for center, scale in layers:
            t_low, t_high = torch.asinh((low - center) / scale), torch.asinh((high - center) / scale)
            grids.append(center + scale * torch.sinh(t_low + (t_high - t_low) * fraction))
        x_table = torch.cat(grids, dim=-1).clamp(low, high).sort(dim=-1).values
        t_table = t_and_density(x_table)[0]
        t, log_step = _trapezoid(t_table[..., :1], t_table[..., -1:], n)
        right = torch.searchsorted(t_table.contiguous(), t.contiguous()).clamp(1, x_table.shape[-1] - 1)
        t_left, t_right = t_table.gather(-1, right - 1), t_table.gather(-1, right)
        x_left, x_right = x_table.gather(-1, right - 1), x_table.gather(-1, right)
        share = ((t - t_left) / (t_right - t_left).clamp_min(1e-300)).clamp(0.0, 1.0)
        x = x_left + share * (x_right - x_left)
        for _ in range(polish):  # Newton from a close start: quadratic convergence
            t_x, density = t_and_density(x)
            excess = t_x - t
            x = (x - excess / density).clamp(low, high)
            mismatch = float(torch.max(torch.abs(excess)))
            if mismatch < 1e-8:  # this step leaves an error ~ mismatch² ≪ 1e-12 of a node spacing
                break
            if bool((torch.abs(excess) <= 1e-13 * density * (1.0 + torch.abs(x))).all()):
                break  # at the resolution of x itself (a layer of width ≪ |x|·1e-8 makes t that steep)
        else:
            if mismatch < float("inf"):  # (NaN passes: the solver rejects non-finite evaluations)
                raise RuntimeError(f"sinh_cluster_nodes: node positions off by {mismatch:.1e} in t")
        return x, log_step - torch.log(t_and_density(x)[1])


def gauss_legendre(low: float, high: float, n: int):
    """Gauss–Legendre nodes/weights on [low, high] (used where an integrand stops at an end point)."""
    nodes, weights = np.polynomial.legendre.leggauss(n)
    half = 0.5 * (high - low)
    return as_tensor(low + half * (nodes + 1.0)), as_tensor(half * weights)
