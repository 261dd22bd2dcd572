"""Several perceptron points as one tensor computation (a GPU's sweep mode): tasks of different P padded to a common
P with label-0 patterns train every trial exactly as its point alone would."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from harness.points import PointStore
from single_layer import two_tasks
from single_layer.perceptron import OptimizerSpec, data_term, data_term_gradient, task_observer
from single_layer.training import train_task
from teacher_student import sample_trials, stack_tasks

N, TRIALS = 60, 2


def point_tasks(alpha2: float, r0: float, seed: int = 0):
    return sample_trials(TRIALS, N, (1.0, alpha2), r0, n_test=50, seed=seed, dtype=torch.float64)


def test_padding_adds_nothing_to_the_gradient():
    """Stacked int8 (numba kernel) and float (torch) inputs against autograd of each task's own, unpadded objective."""
    (fields, tasks_a), (_, tasks_b) = point_tasks(0.5, 0.0), point_tasks(2.0, 0.5, seed=7)
    stacked = stack_tasks([tasks_a[1], tasks_b[1]])
    assert stacked.inputs.shape == (2 * TRIALS, 2 * N, N) and bool((stacked.labels[:TRIALS, N // 2:] == 0).all())
    both = fields.repeat(2, 1) * 0.7
    expected = []
    for task in (tasks_a[1], tasks_b[1]):
        leaf = (fields * 0.7).requires_grad_(True)
        expected.append(torch.autograd.grad(data_term(leaf, task.inputs, task.labels, 1.3).sum(), leaf)[0])
    expected = torch.cat(expected)
    for inputs in (stacked.inputs, stacked.inputs.double()):
        gradient = data_term_gradient(both, inputs, stacked.labels, 1.3)
        assert torch.allclose(gradient, expected, rtol=1e-10, atol=1e-12)


def test_a_stacked_batch_trains_every_trial_as_its_point_alone():
    points = [(0.5, 0.0), (2.0, 0.5), (1.2, -0.5)]
    fields, _ = point_tasks(1.0, 0.0)
    per_point = [point_tasks(alpha2, r0)[1] for alpha2, r0 in points]
    spec = OptimizerSpec("adam", 1e-2, weight_decay=1e-3)

    def train(first, second, start):
        return train_task(start, second, spec, 40, observe=task_observer([first, second]), anchor=start,
                          gamma=0.7, record_every=40)

    alone = [train(*tasks, fields) for tasks in per_point]
    together, history = train(stack_tasks([t[0] for t in per_point]), stack_tasks([t[1] for t in per_point]),
                              fields.repeat(len(points), 1))
    assert torch.allclose(together, torch.cat([f for f, _ in alone]), rtol=1e-9, atol=1e-12)
    assert torch.allclose(torch.as_tensor(history.final("q_star")),
                          torch.as_tensor([v for _, h in alone for v in h.final("q_star")]), rtol=1e-9)
    assert not torch.allclose(alone[0][0], alone[1][0])  # the points differ: the comparison can fail


def test_point_batches_group_by_protocol_and_optimiser_and_keep_minibatches_alone():
    protocol = two_tasks.Protocol(n=N, trials=TRIALS, seed=0, alpha1=1.0, spec1=OptimizerSpec("adam", 1e-3),
                                  epochs1=5, uniform_prior=False, stop1=None, gamma=1.0, epochs2=5, stop2=None)
    other = dataclasses.replace(protocol, gamma=0.1)
    fast, slow, minibatch = OptimizerSpec("adam", 1e-2), OptimizerSpec("adam", 1e-3), OptimizerSpec("adam", 1e-3,
                                                                                                   batch_size=8)
    points = [(f"p{k}", p, 0.0, 0.5 * (k + 1), s, {}) for k, (p, s) in enumerate(
        [(protocol, fast), (protocol, slow), (protocol, fast), (other, fast), (protocol, fast), (protocol, minibatch),
         (protocol, minibatch)])]
    batches = [[point[0] for point in batch] for batch in two_tasks.point_batches(points, 2)]
    assert batches == [["p0", "p2"], ["p4"], ["p1"], ["p3"], ["p5"], ["p6"]]


def test_run_sgd_points_stores_each_point_of_a_batch_under_its_key(tmp_path):
    """The same rows, point by point, whether the points run one by one or three at a time; p within one sign flip
    (the only float difference is the order of a sum)."""
    from harness.sweep import SweepConfig

    cfg = dataclasses.replace(SweepConfig(), workers=1)
    protocol = two_tasks.Protocol(n=N, trials=TRIALS, seed=0, alpha1=1.0, spec1=OptimizerSpec("adam", 1e-2),
                                  epochs1=30, uniform_prior=False, stop1=None, gamma=1.0, epochs2=30, stop2=None)
    spec = OptimizerSpec("adam", 1e-2)
    points = [(f"sgd {r0} {alpha2}", protocol, r0, alpha2, spec, {"gamma": 1.0})
              for r0, alpha2 in ((0.0, 0.5), (0.5, 2.0), (0.0, 1.5))]
    rows = {}
    for size in (1, 3):
        store = PointStore(tmp_path, f"size{size}", {})
        two_tasks.run_sgd_points(cfg, store, protocol, "task1", points, "cpu", points_per_batch=size)
        rows[size] = {point[0]: store.get(point[0]) for point in points}
    for key, alone in rows[1].items():
        together = rows[3][key]
        assert [(r["r0"], r["alpha2"], r["seed"]) for r in together] == [(r["r0"], r["alpha2"], r["seed"]) for r in alone]
        assert all(abs(a["p2"] - b["p2"]) <= 2.0 / N + 1e-12 for a, b in zip(alone, together))


def test_minibatched_points_are_not_trained_together():
    protocol = two_tasks.Protocol(n=N, trials=TRIALS, seed=0, alpha1=1.0, spec1=OptimizerSpec("adam", 1e-3),
                                  epochs1=5, uniform_prior=False, stop1=None, gamma=1.0, epochs2=5, stop2=None)
    with pytest.raises(Exception, match="full batch"):
        two_tasks.second_tasks(protocol, torch.zeros(TRIALS, N), 5, [(0.5, 0.0, {}), (1.0, 0.0, {})],
                               OptimizerSpec("adam", 1e-3, batch_size=8))
