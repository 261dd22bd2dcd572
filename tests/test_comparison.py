"""The agreement criterion (single_layer/comparison.py) against simulated measurements whose truth is known."""
import numpy as np

from single_layer.comparison import compare, eps_g_resolution, joint_test, tally
from single_layer.two_tasks import joint_agreement


def test_a_point_where_every_trial_gave_the_same_value_is_counted_apart():
    rng = np.random.default_rng(0)
    points = [compare(0.3, 0.3 + 0.01 * rng.standard_normal(20)),  # an ordinary point that agrees
              compare(0.3, 0.5 + 0.01 * rng.standard_normal(20)),  # one that does not
              compare(0.004, [0.0] * 20, eps_g_resolution(1000))]  # all trials at ε_g = 0: trivial
    assert [p["trivial"] for p in points] == [False, False, True]
    assert tally(points).startswith("1/2 within 2 s.e., 1/2 within 1 s.d.; apart, 1/1 points")


def test_the_per_point_test_rejects_a_true_theory_about_five_percent_of_the_time():
    rng = np.random.default_rng(1)
    rejected = np.mean([not compare(0.0, rng.standard_normal(20))["within_2_se"] for _ in range(4000)])
    assert 0.03 < rejected < 0.09  # Student t with 19 d.o.f.: P(|t| > 2) = 0.060


def simulated_panel(rng, trials=20, points=12, shared=1.0, noise=0.3, bias=0.0):
    """SGD values at `points` points of `trials` trials: a per-trial offset shared by all the trial's points."""
    offsets = shared * rng.standard_normal(trials)
    return {k: list(bias + offsets[k] + noise * rng.standard_normal(points)) for k in range(trials)}


def test_the_joint_test_keeps_its_level_when_the_points_share_their_trials():
    rng = np.random.default_rng(2)
    panels = [simulated_panel(rng) for _ in range(2000)]
    joint_rejected = np.mean([not joint_test(panel)["within_2_se"] for panel in panels])
    assert 0.03 < joint_rejected < 0.09  # a valid 2 s.e. test of the mean residual
    # counting points as if they were independent: with a shared offset the points fail together, so the fraction
    # of panels in which at least a third of the points disagree is far above what independent tests would give
    failing = [np.mean([abs(np.mean(values)) > 2 * np.std(values, ddof=1) / np.sqrt(len(values))
                        for values in zip(*panel.values())]) for panel in panels]
    assert np.mean(np.array(failing) >= 1 / 3) > 0.02  # independent points: P(Bin(12, 0.06) ≥ 4) ≈ 0.003


def test_the_joint_test_detects_a_bias_shared_by_the_points():
    rng = np.random.default_rng(3)
    assert np.mean([joint_test(simulated_panel(rng, bias=1.0))["within_2_se"] for _ in range(200)]) < 0.05
    result = joint_test(simulated_panel(rng, bias=1.0))
    assert result["trials"] == 20 and result["points"] == 12


def test_joint_agreement_groups_the_residuals_by_trial():
    theory = [{"source": "theory", "thermodynamic": True, "r0": 0.0, "alpha2": a, "eps_g2": 0.1 * a}
              for a in (1.0, 2.0)]
    sgd = [{"source": "sgd", "seed": k, "r0": 0.0, "alpha2": a, "eps_g2": 0.1 * a + 0.01 * k}
           for k in range(4) for a in (1.0, 2.0)]
    result = joint_agreement(theory + sgd, ("r0", "alpha2"), "eps_g2")
    assert result["trials"] == 4 and result["points"] == 2
    assert np.isclose(result["mean_residual"], 0.015)
    assert np.isclose(result["se"], np.std([0.0, 0.01, 0.02, 0.03], ddof=1) / 2)
