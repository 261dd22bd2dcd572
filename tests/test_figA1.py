"""Fig. A1 specifics not covered elsewhere: SGD points at their configured α (docs/original_code.md B12), panel d's own α₁ = 1.4
runs (B13), the r₀-major alignment of the paper's per-(r₀, α₂) tables, and the single-branch task-1 reference."""
from __future__ import annotations

import dataclasses

import pytest

from harness.points import PointStore
from mean_field_theory.task1 import task1_reference
from single_layer import figA1_uniform_prior as figA1
from single_layer import two_tasks

TINY = dict(n=24, trials=2, epochs_a=1, n_test=50, epochs1_bc=1, epochs2_bc=1, epochs1_d=1, epochs2_d=1, workers=1)


def tiny_config(**overrides) -> figA1.Config:
    cfg = dataclasses.replace(figA1.Config(), **{**TINY, **overrides})
    cfg.validate()
    return cfg


def test_panel_a_sgd_rows_sit_at_the_configured_alphas(tmp_path):
    """B12: the original drew the α = 2.4 result at α = 2.1; every configured α must appear exactly as given."""
    cfg = tiny_config(panels=("a",))
    rows, _ = figA1.run_sgd(cfg, PointStore(tmp_path, "a", {}), "cpu")
    assert [row["alpha"] for row in rows] == [alpha for alpha in cfg.sgd_alphas for _ in range(cfg.trials)]
    assert cfg.sgd_alphas[-1] == 2.4 and 2.1 not in {row["alpha"] for row in rows}


def test_two_task_tables_are_r0_major_and_panel_d_uses_its_own_alpha1(tmp_path, monkeypatch):
    used = []

    def recording_point(protocol, after_task1, task1_epochs, points, spec, device):
        used.extend((protocol.alpha1, r0, alpha2, spec.lr, spec.batch_size, spec.kind, protocol.stop2)
                    for alpha2, r0, _ in points)
        return real_point(protocol, after_task1, task1_epochs, points, spec, device)

    real_point = two_tasks.second_tasks
    monkeypatch.setattr(two_tasks, "second_tasks", recording_point)
    cfg = tiny_config(panels=("b", "c"))
    rows, _ = figA1.run_sgd(cfg, PointStore(tmp_path, "bc", {}), "cpu")
    n_alpha2 = len(cfg.alpha2s)
    # the original's tables (Fig. A1 b–c): r₀ = −½, α₂ = 2 -> lr 0.01, batch 16; r₀ = ½, α₂ = 0.5 -> 0.005, 64
    assert used[cfg.alpha2s.index(2.0)][1:5] == (-0.5, 2.0, 0.01, 16)
    assert used[2 * n_alpha2 + cfg.alpha2s.index(0.5)][1:5] == (0.5, 0.5, 0.005, 64)
    assert used[n_alpha2 + cfg.alpha2s.index(1.5)][1:5] == (0.0, 1.5, 0.01, 32)
    assert {row["r0"] for row in rows} == set(cfg.r0s) and {row["alpha"] for row in rows} == {2.0}
    assert all(kind == "adam" and stop == "teacher" for *_, kind, stop in used)
    used.clear()
    rows, _ = figA1.run_sgd(tiny_config(panels=("d",)), PointStore(tmp_path, "d", {}), "cpu")
    assert {row["alpha"] for row in rows} == {1.4} and {row["r0"] for row in rows} == {0.0}  # B13
    assert [row["alpha2"] for row in rows[::cfg.trials]] == list(cfg.alpha2s)
    assert [(lr, batch) for *_, lr, batch, _, _ in used] == list(zip(cfg.learning_rates_d, cfg.batch_sizes_d))
    assert all(alpha1 == 1.4 and kind == "momentum" for alpha1, *_, kind, _ in used)
    assert all(1 <= row["epochs_trained"] <= cfg.epochs2_d for row in rows)  # task-2 epochs, not cumulative


def test_invalid_table_lengths_are_rejected():
    with pytest.raises(Exception, match="r₀-major"):
        tiny_config(r0s=(0.0,))


def test_reference_is_one_converged_branch():
    """B2/N1: the κ₁ = 100 solution at α₁ = 2 of one branch (two coexist there), never an average."""
    thermodynamic, branch = task1_reference(2.0, beta=100.0, kappa=100.0)
    good, good_branch = task1_reference(2.0, beta=100.0, kappa=100.0, branch="good")
    assert thermodynamic.converged and good.converged
    # two branches coexist for 1.6 ≤ α ≤ 2.2; at α₁ = 2 the poor one (ε_g ≈ 0.13, what SGD reaches) dominates
    assert (branch, good_branch) == ("poor", "good")
    assert 0.1 < thermodynamic.eps_g < 0.16 and good.p1 > 0.999
    assert good.free_entropy < thermodynamic.free_entropy
