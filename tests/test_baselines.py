"""Baselines (deep_networks/baselines.py), metrics (deep_networks/metrics.py) and the comparison script."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deep_networks import compare_methods, continual_config, training
from deep_networks.baselines import (BinaryLearner, BinaryMLP, FisherPenalty, MetaplasticAdam, binary_weights,
                                     empirical_fisher, sign_activation)
from deep_networks.metrics import accuracy_matrix, all_metrics
from deep_networks.training import train_sequence
from conftest import tiny_config, tiny_tasks
from harness.command_line import parse_config
from harness.devices import torch_generator

SIZES = (784, 24, 16, 10)


def test_metaplastic_adam_with_m_zero_is_torch_adam_with_l2_decay():
    """Laborieux's step lr·√(1−β2^t)/(1−β1^t)·m/(√v + ε) equals torch's Adam exactly when ε = 0."""
    generator = torch_generator(0)
    ours = torch.randn(30, 20, generator=generator, dtype=torch.float64, requires_grad=True)
    theirs = ours.detach().clone().requires_grad_(True)
    mine = MetaplasticAdam([ours], lr=0.01, eps=0.0, weight_decay=1e-3, meta=0.0)
    reference = torch.optim.Adam([theirs], lr=0.01, betas=(0.9, 0.999), eps=0.0, weight_decay=1e-3)
    for _ in range(5):
        grad = torch.randn(30, 20, generator=generator, dtype=torch.float64)
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        mine.step()
        reference.step()
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)


def test_metaplasticity_attenuates_only_updates_that_shrink_the_hidden_weight():
    """First step from a fresh state: the ratio of the metaplastic to the plain update is 1 − tanh²(m|W_h|) where
    the update moves W_h towards zero (sign(W_h)·g > 0) and exactly 1 where it moves it away."""
    generator = torch_generator(1)
    start = 2 * torch.randn(40, 30, generator=generator, dtype=torch.float64)
    grad = torch.randn(40, 30, generator=generator, dtype=torch.float64)
    steps = {}
    for meta in (0.0, 1.35):
        weight = start.clone().requires_grad_(True)
        weight.grad = grad.clone()
        MetaplasticAdam([weight], lr=0.005, meta=meta).step()
        steps[meta] = (weight.detach() - start)
    ratio = steps[1.35] / steps[0.0]
    shrinking = start.sign() * grad > 0
    torch.testing.assert_close(ratio[shrinking], 1 - torch.tanh(1.35 * start.abs()[shrinking]) ** 2)
    torch.testing.assert_close(ratio[~shrinking], torch.ones_like(ratio[~shrinking]))
    assert shrinking.any() and (~shrinking).any()


def test_metaplasticity_spares_batchnorm_parameters():
    weight, scale = torch.full((3, 2), 0.5, requires_grad=True), torch.full((2,), 0.5, requires_grad=True)
    weight.grad, scale.grad = torch.ones(3, 2), torch.ones(2)
    optimizer = MetaplasticAdam([{"params": [weight], "meta": 5.0}, {"params": [scale], "meta": 0.0}], lr=0.1)
    optimizer.step()
    assert torch.allclose(scale, torch.full((2,), 0.4))  # plain Adam: the first step is −lr·sign(g)
    assert float(weight[0, 0].detach()) > 0.49  # attenuated by 1 − tanh²(2.5) ≈ 0.027


def test_straight_through_estimators():
    z = torch.tensor([-2.0, -1.0, -0.3, 0.0, 0.4, 1.5], requires_grad=True)
    out = sign_activation(z)
    out.sum().backward()
    assert out.tolist() == [-1, -1, -1, 1, 1, 1]
    assert z.grad.tolist() == [0, 1, 1, 1, 1, 0]  # hardtanh STE: 1 where |z| <= 1
    hidden = torch.tensor([[-0.02, 0.03], [0.01, -0.04]], requires_grad=True)
    weights = binary_weights(hidden)
    (weights * torch.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    assert weights.tolist() == [[-1, 1], [1, -1]]
    assert hidden.grad.tolist() == [[1, 2], [3, 4]]  # the gradient at W_b goes to W_h unchanged


def test_binary_network_forward_matches_a_hand_written_pass():
    net = BinaryMLP(SIZES, torch_generator(2), torch.float64)
    x = torch.rand(50, 784, generator=torch_generator(3), dtype=torch.float64)
    with torch.no_grad():
        for scale, shift in net.norms:
            scale.uniform_(0.5, 1.5)
            shift.uniform_(-0.2, 0.2)
    hidden = x
    for layer, weight in enumerate(net.weights):
        z = hidden @ torch.where(weight >= 0, 1.0, -1.0).double()
        z = (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5) * net.norms[layer][0] + net.norms[layer][1]
        hidden = torch.where(z >= 0, 1.0, -1.0).double() if layer < 2 else z
    torch.testing.assert_close(net.forward(x), hidden.detach())
    assert all(w.abs().max() <= 0.05 for w in net.weights)  # U(−0.05, 0.05) initialisation


def test_empirical_fisher_of_the_binary_network_matches_the_outer_product_formula():
    """One image at a time (empirical_fisher) vs one batched backward with frozen BatchNorm statistics:
    per-image gradients of W are outer products a_n δ_nᵀ, so F = (A²)ᵀ(Δ²)/n."""
    learner = BinaryLearner(SIZES, torch_generator(4), torch.float64, "cpu", 0.005, 10, 0.0, 0.0)
    x = torch.rand(40, 784, generator=torch_generator(5), dtype=torch.float64)
    labels = torch.randint(0, 10, (40,), generator=torch_generator(6))
    fisher = learner.fisher(x, labels)

    statistics, inputs, outputs = [], [], []
    with torch.no_grad():
        learner.net.forward(x, record=statistics)
    hidden = x
    for layer, weight in enumerate(learner.net.weights):
        inputs.append(hidden)
        z = hidden @ binary_weights(weight)
        z.retain_grad()
        outputs.append(z)
        mean, variance = statistics[layer]
        scale, shift = learner.net.norms[layer]
        normed = (z - mean) * torch.rsqrt(variance + 1e-5) * scale + shift
        hidden = sign_activation(normed) if layer < 2 else normed
    F.cross_entropy(hidden, labels, reduction="sum").backward()
    for layer in range(3):
        expected = (inputs[layer].detach() ** 2).T @ (outputs[layer].grad ** 2) / len(x)
        torch.testing.assert_close(fisher[layer], expected)
    assert all(float(f.sum()) > 0 for f in fisher)


def test_ewc_penalty_gradient_is_the_gradient_of_the_quadratic_penalty():
    generator = torch_generator(7)
    param = torch.randn(6, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    penalty = FisherPenalty([param], weight=3.0)
    anchors, fishers = [], []
    for _ in range(2):
        fisher = torch.rand(6, 4, generator=generator, dtype=torch.float64)
        penalty.consolidate([fisher])
        anchors.append(param.detach().clone())
        fishers.append(fisher)
        with torch.no_grad():
            param.add_(torch.randn(6, 4, generator=generator, dtype=torch.float64))
    explicit = 0.5 * 3.0 * sum((f * (param - a) ** 2).sum() for f, a in zip(fishers, anchors))
    explicit.backward()
    torch.testing.assert_close(penalty.gradient()[0], param.grad)
    torch.testing.assert_close(penalty.gradient(scale=64)[0], 64 * param.grad)


def test_empirical_fisher_is_the_mean_squared_per_sample_gradient():
    """A linear model with squared loss: ∂ℓ_n/∂w = 2(w·x_n − y_n)x_n in closed form."""
    generator = torch_generator(8)
    w = torch.randn(5, generator=generator, dtype=torch.float64, requires_grad=True)
    x = torch.randn(30, 5, generator=generator, dtype=torch.float64)
    y = torch.randn(30, generator=generator, dtype=torch.float64)
    (fisher,) = empirical_fisher(lambda xi, yi: ((xi @ w - yi) ** 2).sum(), [w], x, y)
    per_sample = 2 * (x @ w.detach() - y)[:, None] * x
    torch.testing.assert_close(fisher, (per_sample ** 2).mean(0))


def test_task_batchnorm_is_restored_for_finished_tasks_and_the_optimizer_is_reset_per_task():
    learner = BinaryLearner(SIZES, torch_generator(9), torch.float32, "cpu", 0.005, 10, 1.35, 1e-7)
    x = torch.rand(200, 784, generator=torch_generator(10))
    labels = torch.randint(0, 10, (200,), generator=torch_generator(11))
    for start in range(0, 200, 10):
        learner.step(x[start:start + 10], labels[start:start + 10])
    learner.end_task(0, x, labels)
    before = learner.accuracy(x, labels, "shared_bn", 0)
    learner.begin_task(1)
    assert learner.optimizer.state == {}  # Adam state re-created at the start of a task
    with torch.no_grad():
        for scale, shift in learner.net.norms:
            scale.mul_(-1.0)  # a drastic change of the current BN parameters
    assert learner.accuracy(x, labels, "task_bn", 0) == before  # task 1 evaluated with its own BN
    assert learner.accuracy(x, labels, "shared_bn", 0) != before
    assert learner.accuracy(x, labels, "task_bn", 1) == learner.accuracy(x, labels, "shared_bn", 1)


def test_ewc_with_zero_weight_is_the_plain_bnn(tmp_path):
    cfg, tasks = tiny_config(bnn_batch_size=32, ewc_samples=20), tiny_tasks()
    plain, _ = train_sequence(cfg, tasks, "bnn", (0,), torch.device("cpu"), torch.float32, tmp_path / "a.pt")
    zero, _ = train_sequence(dataclasses.replace(cfg, ewc_lambda=0.0), tasks, "ewc", (0,), torch.device("cpu"),
                             torch.float32, tmp_path / "b.pt")
    strong, _ = train_sequence(cfg, tasks, "ewc", (0,), torch.device("cpu"), torch.float32, tmp_path / "c.pt")
    assert [(r["eval_mode"], r["accuracy"]) for r in plain] == [(r["eval_mode"], r["accuracy"]) for r in zero]
    assert [r["accuracy"] for r in strong] != [r["accuracy"] for r in plain]


@pytest.mark.parametrize("method", ["metaplastic", "ewc", "ewc_fields"])
def test_baselines_resume_after_interruption_gives_identical_results(tmp_path, monkeypatch, method):
    cfg, tasks = tiny_config(bnn_batch_size=32, ewc_samples=20), tiny_tasks()
    reference, _ = train_sequence(cfg, tasks, method, (0,), torch.device("cpu"), torch.float32, tmp_path / "ref.pt")
    original, saves = training._atomic_torch_save, {"count": 0}

    def interrupt_third_save(payload, path):  # dies after training epoch 3, before its checkpoint
        saves["count"] += 1
        if saves["count"] == 3:
            raise KeyboardInterrupt
        original(payload, path)

    monkeypatch.setattr(training, "_atomic_torch_save", interrupt_third_save)
    with pytest.raises(KeyboardInterrupt):
        train_sequence(cfg, tasks, method, (0,), torch.device("cpu"), torch.float32, tmp_path / "run.pt")
    monkeypatch.setattr(training, "_atomic_torch_save", original)
    resumed, _ = train_sequence(dataclasses.replace(cfg, resume=True), tasks, method, (0,), torch.device("cpu"),
                                torch.float32, tmp_path / "run.pt")
    assert resumed == reference
    assert {r["eval_mode"] for r in reference} == ({"noisy", "mean"} if method == "ewc_fields"
                                                   else {"shared_bn", "task_bn"})


def test_metrics_of_a_known_accuracy_matrix():
    matrix = np.array([[0.9, 0.1, 0.1],
                       [0.7, 0.8, 0.1],
                       [0.6, 0.85, 0.95]])
    metrics = all_metrics(matrix)
    assert metrics["acc"] == pytest.approx((0.6 + 0.85 + 0.95) / 3)
    assert metrics["bwt"] == pytest.approx(((0.6 - 0.9) + (0.85 - 0.8)) / 2)
    assert metrics["forgetting"] == pytest.approx(((0.9 - 0.6) + (0.8 - 0.85)) / 2)
    assert all_metrics(np.array([[0.7]])) == {"acc": 0.7, "bwt": 0.0, "forgetting": 0.0}


def test_accuracy_matrix_from_rows_and_missing_rows():
    rows = [{"epoch": e, "task_eval": t, "accuracy": 0.1 * e + 0.01 * t} for e in (1, 2, 3, 4) for t in (1, 2)]
    matrix = accuracy_matrix(rows, epochs_per_task=2, n_tasks=2)
    np.testing.assert_allclose(matrix, [[0.21, 0.22], [0.41, 0.42]])
    with pytest.raises(ValueError, match="incomplete"):
        accuracy_matrix(rows[:-1], epochs_per_task=2, n_tasks=2)


def test_verdicts_use_two_standard_errors():
    def entries(method, evaluation, mean, sd):
        return {"protocol": "p", "method": method, "evaluation": evaluation, "metric": "acc", "mean": mean,
                "sd": sd, "seeds": 3}

    table = [entries("vcl", "noisy", 0.87, 0.01), entries("metaplastic", "shared_bn", 0.55, 0.02),
             entries("metaplastic", "task_bn", 0.865, 0.02)]
    checks = {c["second"]: c["first_is"] for c in compare_methods.verdicts(table)["p"] if c["metric"] == "acc"}
    assert checks == {"metaplastic/shared_bn": "higher", "metaplastic/task_bn": "indistinguishable"}


@pytest.mark.parametrize("argv", [["--protocols", "cifar"], ["--ewc_lambda", "-1"], ["--meta", "-0.5"],
                                  ["--bnn_batch_size", "1"], ["--ewc_samples", "0"]])
def test_bad_comparison_settings_exit_with_code_2(argv):
    with pytest.raises(SystemExit) as stop:
        parse_config(compare_methods.Config, compare_methods.QUICK, argv)
    assert stop.value.code == 2


def test_methods_table_is_complete():
    assert set(compare_methods.ALL_METHODS) <= set(continual_config.METHODS)
    for protocol in compare_methods.PROTOCOLS.values():
        assert set(protocol.methods) <= set(continual_config.METHODS)
