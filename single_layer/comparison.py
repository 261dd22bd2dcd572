"""Theory against SGD: the one agreement criterion of every theory-vs-SGD figure (Figs. 2b, 3, A1).

At one point (α, or (γ, r₀, α₂), ...) the SGD trials give n values of a quantity (ε_g, q⋆, ...); with mean μ,
standard deviation s (ddof = 1, the error bar of the figures) and standard error s/√n, the theory value t
* agrees within 2 s.e. if |t − μ| ≤ 2 s/√n: the SGD mean is compatible with t (a statistical test of the mean);
* agrees within 1 s.d. if |t − μ| ≤ s: t lies inside the spread of single runs (what the error bars show).
When every trial gave the same value (s = 0, e.g. all at ε_g = 0) the measurement resolves only one step of the
observable (`resolution`, e.g. a single flipped weight moves ε_g by arccos(1 − 2/N)/π ≈ 0.02 at N = 1000), and
both tests become |t − μ| ≤ resolution/2.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np


def eps_g_resolution(n: int) -> float:
    """The smallest nonzero ε_g of an N-weight binary student: one wrong sign, p = 1 − 2/N."""
    return math.acos(1.0 - 2.0 / n) / math.pi


def compare(theory: float, samples: Iterable[float], resolution: float = 0.0, **where) -> dict:
    """One point: theory value, SGD mean, s.d., s.e., n and both verdicts (see the module docstring)."""
    values = np.asarray(list(samples), dtype=float)
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    sd = float(values.std(ddof=1)) if n > 1 else math.nan
    se = sd / math.sqrt(n) if n > 1 else math.nan
    gap = abs(theory - mean)
    if n > 1 and sd == 0.0:
        within_se = within_sd = gap <= resolution / 2
    else:
        within_se, within_sd = (None, None) if n < 2 else (gap <= 2 * se, gap <= sd)
    return {**where, "theory": theory, "sgd_mean": mean, "sgd_sd": sd, "sgd_se": se, "n": n,
            "difference": theory - mean, "within_2_se": within_se, "within_1_sd": within_sd}


def comparison_criterion() -> str:
    return ("|theory − SGD mean| ≤ 2 s.e. (s.d./√n, ddof = 1) and ≤ 1 s.d.; if all trials agree, ≤ half the "
            "resolution of the observable")


def tally(points: list[dict]) -> str:
    """'k/n within 2 s.e., m/n within 1 s.d.' over the points that have a verdict."""
    judged = [point for point in points if point["within_2_se"] is not None]
    return (f"{sum(p['within_2_se'] for p in judged)}/{len(judged)} within 2 s.e., "
            f"{sum(p['within_1_sd'] for p in judged)}/{len(judged)} within 1 s.d.")
