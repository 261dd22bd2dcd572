"""Deterministic quadrature rules used by the replica solvers (float64, no Monte Carlo).

The integrands of the saddle-point equations are analytic but have narrow internal layers (the teacher
sigmoid of width √(q−r²)/r, the energy layer of width √(1−q⋆), the sign change of the single-site field
b = √q̂ z + r̂ of width 1/√q̂; THEORY.md §5.5).  A fixed Gauss–Hermite rule misses them at large α.  We use the
trapezoid rule after the substitution z = c + s·sinh(t): nodes are dense (spacing s·dt) at the layer c and
spread out geometrically in the Gaussian tails, and the trapezoid rule converges exponentially for analytic
integrands that vanish at both ends.  Single-site integrals over m ∈ [−1, 1] use m = tanh(u), which spreads
mass sitting within 1/|b| of m = ±1 over O(1) in u, with composite Gauss–Legendre panels in u
(`rs_solver.FlatMeasure`).
"""
from __future__ import annotations

import numpy as np
import torch

DTYPE = torch.float64
Z_LIMIT = 9.0  # Gaussian integrals are cut at |z| = 9 (tail mass 2e-19)
LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


def as_tensor(value) -> torch.Tensor:
    return torch.as_tensor(value, dtype=DTYPE)


def sinh_nodes(center: torch.Tensor, scale: torch.Tensor, n: int, limit: float = Z_LIMIT):
    """Trapezoid nodes on [−limit, limit] after z = center + scale·sinh(t), for a batch of (center, scale).

    Returns (nodes, log_weights) of shape center.shape + (n,), log_weights = log(dz/dt · Δt) with the
    trapezoid end-point halving.  No gradient flows through the grid (the rule, not the integrand)."""
    with torch.no_grad():
        # a layer outside [−limit, limit] leaves the integrand smooth on the scale of its distance
        scale = torch.maximum(scale, torch.abs(center) - limit).unsqueeze(-1)
        center = center.clamp(-limit, limit).unsqueeze(-1)
        t_low = torch.asinh((-limit - center) / scale)
        t_high = torch.asinh((limit - center) / scale)
        fraction = torch.linspace(0.0, 1.0, n, dtype=DTYPE)
        t = t_low + (t_high - t_low) * fraction
        nodes = center + scale * torch.sinh(t)
        step = (t_high - t_low) / (n - 1)
        end_factor = torch.ones(n, dtype=DTYPE)
        end_factor[0] = end_factor[-1] = 0.5
        log_weights = torch.log(step * scale * torch.cosh(t) * end_factor)
    return nodes, log_weights


def gaussian_sinh_nodes(center, scale, n: int):
    """Nodes and log weights for ∫Dz f(z) (standard normal measure) with a layer at `center` of width `scale`."""
    nodes, log_weights = sinh_nodes(as_tensor(center), as_tensor(scale), n)
    return nodes, log_weights - 0.5 * nodes**2 - LOG_SQRT_2PI


def gauss_legendre(low: float, high: float, n: int):
    """Gauss–Legendre nodes/weights on [low, high] (used where an integrand stops at an end point)."""
    nodes, weights = np.polynomial.legendre.leggauss(n)
    half = 0.5 * (high - low)
    return as_tensor(low + half * (nodes + 1.0)), as_tensor(half * weights)
