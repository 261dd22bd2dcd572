"""Folds located by pseudo-arclength continuation, checked with tools that do not use it: the Jacobian of the
saddle-point map (an eigenvalue crosses 1 at a fold) and plain Newton solves on either side of it."""
from __future__ import annotations

import math
import types

import numpy as np
import pytest

from mean_field_theory.branch_analysis import saturation_limit
from mean_field_theory.continuation import trace
from mean_field_theory.phase_diagram import Task1Family
from mean_field_theory.task1 import HIGH_INIT, LOW_INIT, solve_task1


def map_eigenvalues(family, solution) -> np.ndarray:
    """Eigenvalues of ∂T/∂y (the saddle-point map in solver coordinates) by central differences."""
    problem = family.problem_at(solution.alpha)
    y = problem.to_coords(solution.q, solution.r, solution.q_star)
    columns = []
    for index in range(len(y)):
        shift = np.zeros(len(y))
        shift[index] = 1e-5
        columns.append((problem.image_in_coords(y + shift)[0] - problem.image_in_coords(y - shift)[0]) / 2e-5)
    return np.linalg.eigvals(np.stack(columns, axis=1))


@pytest.fixture(scope="module")
def upper_fold():
    family = Task1Family(20.0)
    curve = trace(family, family.solve(1.8, LOW_INIT), 2.4)
    assert curve.reason == "fold" and len(curve.folds) == 1
    return family, curve.folds[0]


def test_the_poor_branch_ends_where_an_eigenvalue_of_the_map_reaches_one(upper_fold):
    family, fold = upper_fold
    assert fold.turns_back and fold.alpha == pytest.approx(1.9058, abs=2e-4)
    at_fold = np.min(np.abs(map_eigenvalues(family, fold.point.solution) - 1.0))
    before = np.min(np.abs(map_eigenvalues(family, family.solve(1.8, LOW_INIT)) - 1.0))
    assert at_fold < 0.02 < 0.1 < before


def test_newton_finds_the_poor_branch_just_below_the_fold_and_not_above(upper_fold):
    _, fold = upper_fold
    state = (fold.point.solution.q, fold.point.solution.r, fold.point.solution.q_star)
    below = solve_task1(fold.alpha - 2e-3, init=state)
    above = solve_task1(fold.alpha + 2e-3, init=state)
    assert below.converged and abs(below.r - state[1]) < 0.01  # still on the poor branch (r ≈ 0.81)
    # the poor branch is gone: Newton either creeps past its ghost without converging or lands on the good branch
    assert not (above.converged and abs(above.r - state[1]) < 0.05)


def test_the_good_branch_ends_at_the_lower_fold():
    family = Task1Family(20.0)
    curve = trace(family, family.solve(1.7, HIGH_INIT), 1.0, direction=-1)
    assert curve.reason == "fold" and not curve.folds[0].turns_back
    assert curve.folds[0].alpha == pytest.approx(1.4989, abs=2e-4)


def test_no_fold_below_the_critical_beta():
    family = Task1Family(12.0)
    curve = trace(family, family.solve(1.0, LOW_INIT), 2.4)
    assert curve.complete and not curve.folds and min(point.slope for point in curve.points) > 0.01


def test_saturation_limit_extrapolates_a_square_root_approach():
    """α = α_sat − c(1 − q⋆)^p with α_sat = 2.3675, c = 12, p = ½, sampled like a trace near its end."""
    gaps = np.geomspace(1e-5, 3e-8, 12)
    points = [types.SimpleNamespace(alpha=2.3675 - 12.0 * math.sqrt(gap),
                                    solution=types.SimpleNamespace(q_star=1.0 - gap)) for gap in gaps]
    limit, uncertainty = saturation_limit(points)
    assert limit == pytest.approx(2.3675, abs=1e-5) and uncertainty < 1e-4
