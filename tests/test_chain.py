"""The chain of T tasks: the recursion on the reference law against a Monte Carlo of the sites that writes the
KL directly, the two-task theory of Fig. 3, the γ = 0 limit, and the script's bad input and early stop."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from conftest import run_in_process
from harness.outputs import read_csv
from harness.paths import REPO_ROOT
from mean_field_theory import chain
from mean_field_theory.franz_parisi import ReferenceMeasure, task1_law
from mean_field_theory.task1 import solve_task1

SCRIPT = REPO_ROOT / "single_layer" / "chain_of_tasks.py"
RNG = np.random.default_rng(7)
GRID = np.linspace(-1, 1, 4001)[1:-1]


def sample_sites(log_weight, n: int) -> np.ndarray:
    """One m per row of log_weight(rows) (a log density on GRID) by inverse CDF."""
    log_p = log_weight
    cdf = np.cumsum(np.exp(log_p - log_p.max(1, keepdims=True)), axis=1)
    cdf /= cdf[:, -1:]
    return GRID[np.minimum((cdf < RNG.uniform(size=(n, 1))).sum(1), len(GRID) - 1)]


def kl(m, reference):
    return (1 + m) / 2 * np.log((1 + m) / (1 + reference)) + (1 - m) / 2 * np.log((1 - m) / (1 - reference))


def test_third_task_teacher_overlaps_match_a_monte_carlo_of_the_sites():
    """Task 1 at α = 0.5, then two tasks at arbitrary conjugates (q̂, r̂, a) and κ: the teachers as signs drawn per
    site (w¹ = +1, w^t = w^{t−1}B_t), m₁, m₂ sampled from their site measures with −κ KL(m‖m′) written out, and
    p_{s,3} = E[w^s ⟨sgn m⟩₃].  The code instead carries the law of atanh(m′) and signed masses per teacher."""
    r0, n = 0.5, 20000
    (q2, r2, a2, k2), (q3, r3, a3, k3) = (3.0, 1.2, -0.5, 4.0), (2.0, 0.8, -1.0, 6.0)
    task1 = solve_task1(0.5)
    second = ReferenceMeasure(task1_law(task1), k2, r0)
    law, earlier = second.next_law(q2, r2, a2)
    ours = ReferenceMeasure(law, k3, r0, earlier).averages(q3, r3, a3)
    p_ours = [*ours.extras["p_teachers"], ours.sign]

    teachers = np.ones((3, n))
    for t in (1, 2):
        teachers[t] = teachers[t - 1] * np.where(RNG.uniform(size=n) < (1 + r0) / 2, 1.0, -1.0)
    z, x2, x3 = RNG.standard_normal((3, n))
    a1 = task1.q_star_hat - task1.q_hat / 2
    m1, m2, sign3 = np.empty(n), np.empty(n), np.empty(n)
    for i in range(0, n, 1500):
        block = slice(i, i + 1500)
        size = len(z[block])
        m1[block] = sample_sites(a1 * GRID**2 + (math.sqrt(task1.q_hat) * z[block, None] + task1.r_hat) * GRID, size)
        field2 = math.sqrt(q2) * x2[block, None] + teachers[1, block, None] * r2
        m2[block] = sample_sites(a2 * GRID**2 + field2 * GRID - k2 * kl(GRID, m1[block, None]), size)
        log_w = a3 * GRID**2 + (math.sqrt(q3) * x3[block, None] + teachers[2, block, None] * r3) * GRID \
            - k3 * kl(GRID, m2[block, None])
        w = np.exp(log_w - log_w.max(1, keepdims=True))
        sign3[block] = (w * np.sign(GRID)).sum(1) / w.sum(1)
    for s in range(3):
        samples = teachers[s] * sign3
        assert abs(p_ours[s] - samples.mean()) < 4 * samples.std() / math.sqrt(n) + 2e-3, s


def test_two_tasks_reproduce_the_committed_fig3_theory():
    """T = 2 at α = 2 is Fig. 3's task 2 at α₁ = α₂ = 2 (committed csv, computed with the two-task code before
    the chain existed: teacher-1 gauge and a sum over B)."""
    rows = [row for row in read_csv(REPO_ROOT / "figures" / "fig3_second_task.csv")
            if row["source"] == "theory" and row["alpha2"] == 2.0 and row["thermodynamic"]
            and (row["gamma"], row["r0"]) == (0.1, -0.5)]  # two branches there: the chain must pick the same
    assert len(rows) == 1
    for row in rows:
        second = next(task for task in chain.chain_of_tasks(2, 2.0, row["r0"], row["gamma"]).thermodynamic()
                      if task.task == 2)
        assert second.eps_g == pytest.approx((row["eps_g1"], row["eps_g2"]), abs=1e-8)
        assert (second.q, second.r, second.q_star) == pytest.approx((row["q2"], row["r2"], row["q2_star"]), abs=1e-8)


def test_without_kl_every_task_is_task_1_and_overlaps_decay_as_r0_powers():
    """γ = 0: each task is the task-1 problem with its own teacher, independent of the past, so
    p_{s,t} = r₀^{t−s} p_{t,t} (the teacher chain alone correlates the students)."""
    r0, alpha = 0.6, 1.0
    task1 = solve_task1(alpha)
    tasks = chain.chain_of_tasks(3, alpha, r0, 0.0, steps=1).thermodynamic()
    assert [task.task for task in tasks] == [1, 2, 3]
    for task in tasks:
        assert (task.q, task.r, task.q_star) == pytest.approx((task1.q, task1.r, task1.q_star), abs=1e-8)
        own = task.p[-1]
        assert own == pytest.approx(task1.p1, abs=1e-8)
        assert task.p == pytest.approx([r0 ** (task.task - s) * own for s in range(1, task.task + 1)], abs=1e-8)


@pytest.mark.parametrize("flags, message", [(["--n_tasks", "0"], "--n_tasks"), (["--r0", "1.5"], "--r0"),
                                            (["--gamma", "-1"], "--gamma"), (["--alpha", "0"], "--alpha")])
def test_bad_input_is_refused_before_anything_is_written(flags, message, tmp_path, capsys):
    assert run_in_process(SCRIPT, "--quick", "--theory_only", *flags, "--out_dir", str(tmp_path)) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0] and not any(tmp_path.iterdir())


def test_a_chain_that_stops_keeps_the_earlier_tasks_and_exits_3(tmp_path, capsys, monkeypatch):
    """The theory of task 2 does not converge: the rows of task 1 are written, the exit code is 3."""
    real = chain.chain_of_tasks

    def failing(n_tasks, *args, **kwargs):
        found = real(2, *args, **kwargs)
        for task in found.tasks:
            if task.task == 2:
                task.converged = False
        return chain.Chain(found.tasks, "task 2 did not converge")

    monkeypatch.setattr("single_layer.task_chain.chain_of_tasks", failing)
    assert run_in_process(SCRIPT, "--quick", "--theory_only", "--out_dir", str(tmp_path)) == 3
    assert "did not converge at task 2" in capsys.readouterr().err
    with open(tmp_path / "chain_of_tasks.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["task_trained"] for row in rows if row["converged"] == "True"} == {"1"}
