"""The primitives of a binary weight's field h: q(w) ∝ exp(βhw) on w = ±1, so ⟨w⟩ = tanh βh; the clipped
weight sgn h, and the KL divergence between two such distributions.  Shared by the single-layer perceptron
(single_layer/perceptron.py), the deep networks (deep_networks/model.py, deep_networks/baselines.py) and the Gibbs
sampler (mean_field_theory/gibbs_sampler.py).
"""
from __future__ import annotations

import math

import torch


def sign(values: torch.Tensor) -> torch.Tensor:
    """sgn with the paper's convention sgn(0) = +1, in the dtype of `values`."""
    return torch.where(values >= 0, 1.0, -1.0).to(values.dtype)


def log_cosh(values: torch.Tensor) -> torch.Tensor:
    """ln cosh without overflow."""
    return torch.logaddexp(values, -values) - math.log(2.0)


def ising_kl(fields: torch.Tensor, anchor: torch.Tensor, beta_h: float = 1.0) -> torch.Tensor:
    """KL(q_h ‖ q_h′) of every synapse: β(h − h′) tanh βh − ln cosh βh + ln cosh βh′ (docs/theory.md eq. 5; the KL
    of the single-layer perceptron and of the deep network)."""
    scaled, scaled_anchor = beta_h * fields, beta_h * anchor
    return (scaled - scaled_anchor) * torch.tanh(scaled) - log_cosh(scaled) + log_cosh(scaled_anchor)
