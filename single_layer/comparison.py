"""Theory against SGD: the one agreement criterion of every theory-vs-SGD figure (Figs. 2b, 3, A1).

At one point (α, or (γ, r₀, α₂), ...) the SGD trials give n values of a quantity (ε_g, q⋆, ...); with mean μ,
standard deviation s (ddof = 1, the error bar of the figures) and standard error s/√n, the theory value t
* agrees within 2 s.e. if |t − μ| ≤ 2 s/√n: the SGD mean is compatible with t (a statistical test of the mean);
* agrees within 1 s.d. if |t − μ| ≤ s: t lies inside the spread of single runs (what the error bars show).
When every trial gave the same value (s = 0, e.g. all at ε_g = 0) the measurement resolves only one step of the
observable (`resolution`, e.g. a single flipped weight moves ε_g by arccos(1 − 2/N)/π ≈ 0.02 at N = 1000), and
both tests become |t − μ| ≤ resolution/2; such a point is marked `trivial` and counted apart (an ε_g that every
trial drove to exactly 0 says little about the theory).

Points whose trials share their randomness are not independent tests: in Figs. 3 and A1 every (γ, r₀, α₂) of trial
k continues the same task-1 student and teacher. `joint_test` gives one verdict for such a set of points, from the
per-trial mean residuals, which are independent across trials.
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
            "difference": theory - mean, "within_2_se": within_se, "within_1_sd": within_sd,
            "trivial": bool(n > 1 and sd == 0.0)}


def comparison_criterion() -> str:
    return ("|theory − SGD mean| ≤ 2 s.e. (s.d./√n, ddof = 1) and ≤ 1 s.d.; if all trials agree, ≤ half the "
            "resolution of the observable")


def tally(points: list[dict]) -> str:
    """'k/n within 2 s.e., m/n within 1 s.d.' over the points that have a verdict, the trivial ones counted apart."""
    judged = [point for point in points if point["within_2_se"] is not None and not point.get("trivial")]
    trivial = [point for point in points if point.get("trivial")]
    text = (f"{sum(p['within_2_se'] for p in judged)}/{len(judged)} within 2 s.e., "
            f"{sum(p['within_1_sd'] for p in judged)}/{len(judged)} within 1 s.d.")
    if trivial:
        text += (f"; apart, {sum(p['within_2_se'] for p in trivial)}/{len(trivial)} points where every trial gave "
                 "the same value within half a resolution step")
    return text


def joint_test(residuals: dict[int, list[float]]) -> dict:
    """One verdict over a set of points whose trials share their randomness.

    `residuals[k]`: SGD value − theory at every point of the set, for trial k.  The per-trial means d_k are
    independent across trials (the points of one trial are not), so the set agrees with the theory when
    |mean d| ≤ 2 s.e. of d (s.d./√n over trials, ddof = 1).
    """
    means = np.array([np.mean(values) for values in residuals.values() if len(values)])
    n = len(means)
    mean = float(means.mean()) if n else math.nan
    se = float(means.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return {"trials": n, "points": max((len(v) for v in residuals.values()), default=0), "mean_residual": mean,
            "se": se, "within_2_se": bool(abs(mean) <= 2 * se) if n > 1 else None}
