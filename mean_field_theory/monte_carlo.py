"""The original Monte-Carlo estimators of the saddle-point equations (docs/original_code.md), re-implemented for the
benchmarks that compare them with this repository's quadrature (float64, chunked to bound memory)."""
from __future__ import annotations

import math

import torch


def energy_gradient(q: float, r: float, q_star: float, beta: float, n_z: int, n_x: int, generator: torch.Generator,
                    chunk: int = 250) -> tuple[float, float, float]:
    """∂G_E/∂(q, r, q⋆) as the original code estimates it: ln of the sample mean of H^β over n_x Gaussian x per z
    sample, and the derivative formulas of docs/theory.md eq. 14 averaged over n_z Gaussian z."""
    s, e = math.sqrt(q - r * r), math.sqrt(1 - q_star)
    x = torch.randn(1, n_x, generator=generator, dtype=torch.float64)
    totals = torch.zeros(3, dtype=torch.float64)
    for start in range(0, n_z, chunk):
        z = torch.randn(min(chunk, n_z - start), 1, generator=generator, dtype=torch.float64)
        g = (math.sqrt(q) * z + math.sqrt(q_star - q) * x) / e
        log_h = torch.special.log_ndtr(-g)
        h_beta = torch.exp(beta * log_h)
        log_d = torch.log(h_beta.mean(1, keepdim=True) + 1e-300)
        ratio = -torch.exp(-0.5 * g**2 - 0.5 * math.log(2 * math.pi) - log_h)  # H'(g)/H(g)
        weight = beta * h_beta * ratio / torch.exp(log_d)
        a = r * z / s
        h_a, h_prime_a = torch.special.ndtr(-a), -torch.exp(-0.5 * a**2) / math.sqrt(2 * math.pi)
        totals += torch.stack([
            (2 * (h_prime_a * (-r * z / (2 * s**3)) * log_d
                  + h_a * (weight * (z / math.sqrt(q) - x / math.sqrt(q_star - q)) / (2 * e)).mean(1, keepdim=True))).sum(),
            (2 * h_prime_a * z * (1 / s + r**2 / s**3) * log_d).sum(),
            (2 * h_a * (weight * (g / (2 * e**2) + x / (2 * math.sqrt(q_star - q) * e))).mean(1, keepdim=True)).sum()])
    d_q, d_r, d_q_star = (totals / n_z).tolist()
    return d_q, d_r, d_q_star


def ising_entropy(m: torch.Tensor) -> torch.Tensor:
    """S(m) of the Ising distribution with mean m."""
    plus, minus = (1 + m) / 2, (1 - m) / 2
    return -(torch.xlogy(plus, plus) + torch.xlogy(minus, minus))


def task2_site_averages(task1_hats: tuple[float, float, float], kappa1: float, hats: tuple[float, float, float],
                        kappa2: float, r0: float, n_z: int, n_m1: int, n_x: int, n_m: int,
                        generator: torch.Generator, chunk: int = 10) -> tuple[float, float, float]:
    """(q₂, r₂, q₂⋆) single-site averages of task 2 (docs/theory.md eq. 21) as the original code samples them:
    z (n_z) and uniform m₁ (n_m1) for the task-1 reference P₁(m₁|z), Gaussian x (n_x) and uniform m (n_m) for the
    student, both B = ±1 with P(B) = (1 ± r₀)/2, the KL written out; weights normalised per row after subtracting
    the maximum (which the original omits). `hats` = (q̂₂, r̂₂, q̂₂⋆)."""
    q1_hat, r1_hat, q1_star_hat = task1_hats
    q_hat, r_hat, q_star_hat = hats
    m1 = 2 * torch.rand(n_m1, generator=generator, dtype=torch.float64) - 1
    z = torch.randn(n_z, 1, generator=generator, dtype=torch.float64)
    exponent = (q1_star_hat - q1_hat / 2) * m1**2 + (math.sqrt(q1_hat) * z + r1_hat) * m1 + kappa1 * ising_entropy(m1)
    reference = torch.softmax(exponent, dim=1).mean(0)  # E_z P₁(m₁|z) on the m₁ samples
    x = torch.randn(n_x, 1, generator=generator, dtype=torch.float64)
    m = 2 * torch.rand(n_m, generator=generator, dtype=torch.float64) - 1
    totals = torch.zeros(3, dtype=torch.float64)
    for sign, probability in ((1.0, (1 + r0) / 2), (-1.0, (1 - r0) / 2)):
        for start in range(0, n_m1, chunk):
            block = m1[start:start + chunk, None, None]
            kl = (1 + m) / 2 * torch.log((1 + m) / (1 + block)) + (1 - m) / 2 * torch.log((1 - m) / (1 - block))
            weights = torch.softmax((q_star_hat - q_hat / 2) * m**2 + (math.sqrt(q_hat) * x + sign * r_hat) * m
                                    - kappa2 * kl, dim=-1)  # (chunk, n_x, n_m)
            mean, second = (weights * m).sum(-1), (weights * m**2).sum(-1)
            per_m1 = torch.stack([(mean**2).mean(-1), sign * mean.mean(-1), second.mean(-1)])  # (3, chunk)
            totals += probability * (per_m1 * reference[start:start + chunk]).sum(-1)
    q2, r2, q2_star = totals.tolist()
    return q2, r2, q2_star
