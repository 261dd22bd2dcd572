"""Fig. 3 script specifics: resuming from finished points (theory and SGD kept apart), the paper's learning-rate
tables, and bad input."""
from __future__ import annotations

import dataclasses

import pytest

from harness.command_line import parse_config
from harness.outputs import read_csv, read_json
from single_layer import fig3_second_task as fig3
from single_layer import two_tasks

TINY = dict(gammas=(1.0,), r0s=(0.5,), alpha2s=(0.5, 2.0), n=40, trials=2, steps1=20, steps2=20, workers=1)


def tiny_config(tmp_path, **overrides) -> fig3.Config:
    cfg = dataclasses.replace(fig3.Config(), out_dir=str(tmp_path), **{**TINY, **overrides})
    cfg.validate()
    return cfg


def test_interrupted_run_resumes_and_other_sgd_settings_keep_the_theory(tmp_path, monkeypatch):
    calls = {"theory": 0, "sgd": 0}
    real_theory, real_point = fig3.theory_curve, two_tasks.second_tasks

    def counting_theory(*args):
        calls["theory"] += 1
        return real_theory(*args)

    def crashing_point(*args, **kwargs):
        calls["sgd"] += 1
        if calls["sgd"] == 2:
            raise KeyboardInterrupt
        return real_point(*args, **kwargs)

    monkeypatch.setattr(fig3, "theory_curve", counting_theory)
    monkeypatch.setattr(two_tasks, "second_tasks", crashing_point)
    with pytest.raises(KeyboardInterrupt):
        fig3.main(tiny_config(tmp_path))
    assert calls == {"theory": 1, "sgd": 2}
    fig3.main(tiny_config(tmp_path))  # resumes: no theory, only the second SGD point
    assert calls == {"theory": 1, "sgd": 3}
    first = read_csv(tmp_path / "fig3_second_task.csv")
    assert {(r["source"], r["alpha2"]) for r in first} >= {("sgd", 0.5), ("sgd", 2.0), ("theory", 0.5)}
    fig3.main(tiny_config(tmp_path, steps2=30))  # other SGD settings: SGD again, the theory is kept
    assert calls == {"theory": 1, "sgd": 5}


def test_sgd_learning_rates_follow_the_paper_tables():
    cfg = fig3.Config()
    assert fig3.sgd_learning_rate(cfg, 1.0, -0.5, 0.5) == 0.005  # the original table: r₀ = −½ list, 2nd entry
    assert fig3.sgd_learning_rate(cfg, 1.0, 0.0, 7.0) == 0.001
    assert fig3.sgd_learning_rate(cfg, 0.1, 0.0, 0.1) == 0.1
    assert fig3.sgd_learning_rate(cfg, 1.0, 0.5, 0.25) == cfg.lr2_default  # not in the table


def test_sgd_selection_keeps_each_gammas_grid():
    cfg = dataclasses.replace(fig3.Config(), sgd_alpha2s=(0.01, 1.0, 7.0))
    assert fig3.sgd_points(cfg) == [(1.0, r0, a) for r0 in cfg.r0s for a in (1.0, 7.0)] + \
        [(0.1, r0, a) for r0 in cfg.r0s for a in (0.01, 1.0)]


@pytest.mark.parametrize("argv", [["--r0s", "1.5"], ["--gammas", "-1"], ["--alpha2s", "0"], ["--sgd_alpha2s", "3.3"],
                                  ["--trials", "0"], ["--reference_branch", "best"]])
def test_bad_input_exits_with_code_2(argv):
    with pytest.raises(SystemExit) as stop:
        parse_config(fig3.Config, fig3.QUICK, argv)
    assert stop.value.code == 2


def test_task1_state_is_recorded_and_filled_in_for_an_older_store(tmp_path, monkeypatch):
    """The json reports the SGD's task-1 state next to the theory's reference; a store of finished task-2 points
    without it (written before it was recorded) gets it without rerunning task 2."""
    fig3.main(tiny_config(tmp_path))
    meta = read_json(tmp_path / "fig3_second_task.json")
    state, reference = meta["sgd_after_task1"], meta["task1_reference"]
    assert 0 < state["q_star"]["mean"] < 1 and 0 <= state["eps_g1"]["mean"] <= 1 and state["q_star"]["sd"] >= 0
    assert reference["converged"] and 0 < reference["q_star"] < 1
    store = tmp_path / ".fig3_second_task_sgd.points.jsonl"
    store.write_text("".join(line + "\n" for line in store.read_text().splitlines()
                             if '"key": "sgd task1"' not in line))
    monkeypatch.setattr(two_tasks, "second_tasks", lambda *args, **kwargs: pytest.fail("task 2 was rerun"))
    fig3.main(tiny_config(tmp_path))
    assert read_json(tmp_path / "fig3_second_task.json")["sgd_after_task1"] == state
    assert sum('"key": "sgd task1"' in line for line in store.read_text().splitlines()) == 1


def test_the_theory_curve_jumps_where_the_free_entropies_cross():
    """Two branches with linear free entropies crossing at α₂ = 4.3: the curve jumps there, from one branch's
    (interpolated) value to the other's, and is continuous where only one branch exists."""
    from single_layer.two_tasks import thermodynamic_curve

    rows = [{"alpha2": a, "branch": "unique", "thermodynamic": True, "free_entropy": -a, "eps_g2": 0.5} for a in (2, 3)]
    for a in (4.0, 5.0):
        poor, good = -a, -a - 0.3 + (a - 4.0)  # poor − good = 0.3 − (a − 4): zero at a = 4.3
        rows += [{"alpha2": a, "branch": "poor", "thermodynamic": poor > good, "free_entropy": poor,
                  "eps_g2": 0.4 - 0.1 * (a - 4)},
                 {"alpha2": a, "branch": "good", "thermodynamic": good > poor, "free_entropy": good, "eps_g2": 0.0}]
    curve, jumps = thermodynamic_curve(rows, "eps_g2")
    assert len(jumps) == 1
    where, before, after = jumps[0]
    assert abs(where - 4.3) < 1e-12 and abs(before - 0.37) < 1e-12 and after == 0.0
    assert [x for x, _ in curve] == [2, 3, 4.0, where, where, 5.0]
