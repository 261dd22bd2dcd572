"""Physics of the Gaussian-field binary MLP (deep_networks/model.py) against independent computations."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from deep_networks.model import FieldLearner, accuracy, beta_schedule, field_moments, forward, init_fields, \
    kl_divergence
from harness.devices import torch_generator
from harness.errors import SolverError

SIZES = (50, 30, 20, 10)  # small stand-in for 784-512-512-10 (the formulas do not depend on the widths)


def closed_form_gradient(fields_t, x, labels, beta, noise):
    """The original hand-written backprop (output error, hidden errors, field gradients with the variance path) in numpy, column layout, float64."""
    weights = [field.detach().numpy().T for field in fields_t]  # (n_out, n_in) as in the original
    acts, means, variances, spreads, pres = [x.numpy().T], [], [], [], []
    for layer, theta in enumerate(weights):
        n_in = theta.shape[1]
        m = np.tanh(beta * theta)
        s = 1 - m ** 2
        a = acts[-1]
        v = np.sqrt(s @ (a * a) / n_in + 1e-30)
        z = m @ a / np.sqrt(n_in) + v * noise[layer].numpy().T
        means.append(m), variances.append(s), spreads.append(v), pres.append(z)
        acts.append(np.maximum(z, 0) if layer < len(weights) - 1 else z)
    logits = acts[-1]
    probs = np.exp(logits - logits.max(axis=0))
    probs /= probs.sum(axis=0)
    delta = probs - np.eye(10)[labels.numpy()].T  # output error of the original backprop
    grads = [None] * len(weights)
    for layer in reversed(range(len(weights))):
        n_in = weights[layer].shape[1]
        a, m, s, v, eps = acts[layer], means[layer], variances[layer], spreads[layer], noise[layer].numpy().T
        grads[layer] = beta * s * (delta @ a.T / np.sqrt(n_in) - ((eps * delta / v) @ (a * a).T) * m / n_in)  # field gradient of the original backprop (with the variance path)
        if layer > 0:  # hidden errors of the original backprop, drelu(z) = 1 for z > 0
            back = m.T @ delta / np.sqrt(n_in) + (s.T @ (eps * delta / v)) * a / n_in
            delta = back * (pres[layer - 1] > 0)
    return [grad.T for grad in grads]


def test_autograd_gradient_equals_closed_form_float64():
    generator = torch_generator(1)
    fields = init_fields(SIZES, generator, torch.float64)
    x = torch.rand(16, SIZES[0], generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 10, (16,), generator=generator)
    noise = [torch.randn(16, n, generator=generator, dtype=torch.float64) for n in SIZES[1:]]
    beta = 3.7
    learner = FieldLearner(fields, lr=0.01)
    learner.loss(x, labels, beta, noise=noise).backward()
    for field, expected in zip(fields, closed_form_gradient(fields, x, labels, beta, noise)):
        error = np.abs(field.grad.numpy() - expected).max() / np.abs(expected).max()
        assert error < 1e-10


def test_field_moments_are_stable_and_differentiate_like_tanh():
    field = torch.randn(200, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f: field_moments(f, 2.3), (field,))
    mean, variance = field_moments(field, 2.3)
    reference = torch.tanh(2.3 * field)
    torch.testing.assert_close(mean, reference, rtol=1e-14, atol=0)
    torch.testing.assert_close(variance, 1 - reference ** 2, rtol=1e-12, atol=1e-15)
    # float32 (docs/original_code.md A13): 1 − tanh² is exactly 0 at βθ = 12, sech² keeps its relative accuracy
    scaled = torch.tensor([3.0, 8.0, 12.0, 30.0])
    _, variance32 = field_moments(scaled.float(), 1.0)
    exact = 1 / torch.cosh(scaled.double()) ** 2
    assert torch.all((variance32.double() / exact - 1).abs() < 1e-5)
    assert float(1 - torch.tanh(torch.tensor(12.0)) ** 2) == 0.0


def test_kl_closed_form_matches_brute_force_and_its_gradient():
    generator = torch_generator(2)
    field = torch.randn(5, generator=generator, dtype=torch.float64, requires_grad=True)
    reference = torch.randn(5, generator=generator, dtype=torch.float64)
    beta = 1.9
    brute = 0.0
    for weights in itertools.product((-1.0, 1.0), repeat=5):  # KL over all 2^5 binary weight vectors
        w = torch.tensor(weights, dtype=torch.float64)
        log_q = (beta * field * w - torch.log(2 * torch.cosh(beta * field))).sum()
        log_p = (beta * reference * w - torch.log(2 * torch.cosh(beta * reference))).sum()
        brute += float((torch.exp(log_q) * (log_q - log_p)).detach())
    kl = kl_divergence(field, reference, beta)
    assert math.isclose(float(kl.detach()), brute, rel_tol=1e-12)
    kl.backward()
    expected = beta ** 2 * (1 - torch.tanh(beta * field.detach()) ** 2) * (field.detach() - reference)
    torch.testing.assert_close(field.grad, expected, rtol=1e-12, atol=0)


def test_gaussian_field_matches_sampled_binary_weights():
    """CLT (docs/theory.md eq. 26): z = N^{-1/2} Σ w a with w ~ q_θ has the mean and variance of the Gaussian field."""
    generator = torch_generator(3)
    n_in, n_out, samples = 784, 2, 10000
    field = torch.randn(n_in, n_out, generator=generator, dtype=torch.float64)
    a = torch.rand(1, n_in, generator=generator, dtype=torch.float64)
    beta = 3.3
    mean_w = torch.tanh(beta * field)
    weights = torch.where(torch.rand(samples, n_in, n_out, generator=generator, dtype=torch.float64)
                          < (1 + mean_w) / 2, 1.0, -1.0).double()
    sampled = torch.einsum("j,sjk->sk", a[0], weights) / math.sqrt(n_in)
    gaussian = forward([field], a.expand(samples, n_in), beta, "noisy", generator)
    standard_error = sampled.std(dim=0) / math.sqrt(samples)
    assert torch.all((sampled.mean(dim=0) - gaussian.mean(dim=0)).abs() < 5 * standard_error)
    assert torch.all((sampled.var(dim=0) / gaussian.var(dim=0) - 1).abs() < 0.05)
    binary = torch.cat([forward([field], a, beta, "binary", generator) for _ in range(2000)])
    assert torch.all((binary.mean(dim=0) - gaussian.mean(dim=0)).abs() < 5 * binary.std(dim=0) / math.sqrt(2000))


@pytest.mark.parametrize("epoch, expected", [(1, 1.781), (5, 4.621), (10, 7.163), (15, 8.617), (20, 9.354),
                                             (25, 9.705)])
def test_beta_schedule_permuted_mnist(epoch, expected):
    assert abs(beta_schedule(epoch, 25, slope=2.0) - expected) < 1e-3


@pytest.mark.parametrize("epoch, expected", [(1, 1.120), (2, 1.244), (40, 5.370), (41, 5.459), (80, 8.005)])
def test_beta_schedule_mnist_fashion(epoch, expected):
    assert abs(beta_schedule(epoch, 80, slope=1.0) - expected) < 1e-3


def test_adam_step_and_kl_buffer_equal_the_hand_written_rule():
    """Two steps of FieldLearner == autograd gradient + K, hand-written Adam (0.9, 0.99, 1e-8), K = β²σΔθ."""
    generator = torch_generator(4)
    fields = init_fields(SIZES, generator, torch.float64)
    theta = [field.detach().clone() for field in fields]
    x = torch.rand(8, SIZES[0], generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 10, (8,), generator=generator)
    lr, beta = 0.01, 2.5
    learner = FieldLearner(fields, lr)
    noise_state = torch_generator(5)
    kl_grad = [torch.zeros_like(t) for t in theta]
    first = [torch.zeros_like(t) for t in theta]
    second = [torch.zeros_like(t) for t in theta]
    for step in (1, 2):
        copies = [t.clone().requires_grad_(True) for t in theta]
        replay = torch_generator(0)
        replay.set_state(noise_state.get_state())
        FieldLearner(copies, lr, kl="none").loss(x, labels, beta, replay).backward()
        learner.step(x, labels, beta, noise_state)
        for k, copy in enumerate(copies):
            grad = copy.grad + kl_grad[k]
            first[k] = 0.9 * first[k] + 0.1 * grad
            second[k] = 0.99 * second[k] + 0.01 * grad ** 2
            new = theta[k] - lr * (first[k] / (1 - 0.9 ** step)) / ((second[k] / (1 - 0.99 ** step)).sqrt() + 1e-8)
            kl_grad[k] = beta ** 2 * (1 - torch.tanh(beta * new) ** 2) * (new - theta[k])
            theta[k] = new
        for field, buffer, t, k_expected in zip(fields, learner.kl_grad, theta, kl_grad):
            torch.testing.assert_close(field.detach(), t, rtol=1e-12, atol=1e-14)
            torch.testing.assert_close(buffer, k_expected, rtol=1e-9, atol=1e-15)
    assert any(float(buffer.abs().max()) > 0 for buffer in kl_grad)


def test_anchored_kl_pulls_towards_the_previous_task_and_no_kl_has_none():
    generator = torch_generator(6)
    fields = init_fields(SIZES, generator)
    x = torch.rand(8, SIZES[0], generator=generator)
    labels = torch.randint(0, 10, (8,), generator=generator)
    learner = FieldLearner(fields, 0.01, kl="task_start", kl_weight=0.5)
    learner.step(x, labels, 2.0, generator)
    assert all(float(buffer.abs().max()) == 0 for buffer in learner.kl_grad)  # first task: no prior
    learner.start_task()
    anchor = [field.detach().clone() for field in fields]
    for _ in range(3):
        learner.step(x, labels, 2.0, generator)
    for field, ref, buffer in zip(fields, anchor, learner.kl_grad):
        _, variance = field_moments(field.detach(), 2.0)
        torch.testing.assert_close(buffer, 0.5 * 4.0 * variance * (field.detach() - ref))
    plain = FieldLearner(init_fields(SIZES, torch_generator(7)), 0.01, kl="none")
    plain.step(x, labels, 2.0, generator)
    assert all(float(buffer.abs().max()) == 0 for buffer in plain.kl_grad)


def test_big_batch_evaluation_equals_batches_of_64():
    generator = torch_generator(8)
    fields = init_fields(SIZES, generator)
    x = torch.rand(1000, SIZES[0], generator=generator)
    labels = torch.randint(0, 10, (1000,), generator=generator)
    whole = accuracy(fields, x, labels, 2.0, "mean", generator)
    batched = accuracy(fields, x, labels, 2.0, "mean", generator, chunk=64)
    assert whole == batched and 0 < whole < 1


def test_non_finite_loss_stops_with_solver_error_naming_the_step():
    learner = FieldLearner(init_fields(SIZES, torch_generator(9)), 0.01)
    x = torch.full((4, SIZES[0]), float("nan"))
    with pytest.raises(SolverError, match="epoch 3, step 7"):
        learner.step(x, torch.zeros(4, dtype=torch.long), 2.0, torch_generator(0), where="epoch 3, step 7")


def test_a_seed_dimension_trains_each_network_as_if_alone():
    """Three seeds stacked on a leading dimension: the same initial fields as three separate inits, and the loss
    gradient, an Adam step and the accuracy of every slice equal those of that network alone (same data, same
    noise) — the closed-form gradient above checks the unbatched network, this reduces the batched one to it."""
    generators = [torch_generator(seed) for seed in (3, 4, 5)]
    stacked = init_fields(SIZES, generators, torch.float64)
    alone = [init_fields(SIZES, torch_generator(seed), torch.float64) for seed in (3, 4, 5)]
    for layer, field in enumerate(stacked):
        assert torch.equal(field.detach(), torch.stack([fields[layer].detach() for fields in alone]))
    data = torch_generator(11)
    x = torch.rand(3, 16, SIZES[0], generator=data, dtype=torch.float64)
    labels = torch.randint(0, 10, (3, 16), generator=data)
    noise = [torch.randn(3, 16, n, generator=data, dtype=torch.float64) for n in SIZES[1:]]
    batched = FieldLearner(stacked, lr=0.01)
    batched.loss(x, labels, 2.5, noise=noise).backward()
    gradients = [field.grad.clone() for field in stacked]
    batched.step(x, labels, 2.5, noise=noise)
    for index, fields in enumerate(alone):
        single = FieldLearner(fields, lr=0.01)
        single.loss(x[index], labels[index], 2.5, noise=[eps[index] for eps in noise]).backward()
        for mine, theirs in zip(gradients, fields):
            torch.testing.assert_close(mine[index], theirs.grad, rtol=1e-12, atol=1e-14)
    for index, fields in enumerate(alone):
        single = FieldLearner(fields, lr=0.01)
        single.step(x[index], labels[index], 2.5, noise=[eps[index] for eps in noise])
        for mine, theirs in zip(stacked, fields):
            torch.testing.assert_close(mine.detach()[index], theirs.detach(), rtol=1e-12, atol=1e-14)
    together = accuracy(stacked, x, labels, 2.5, "mean", None)
    assert together == [accuracy(fields, x[index], labels[index], 2.5, "mean", None)
                        for index, fields in enumerate(alone)]


def _train(dtype, compiled, kl, steps=3, extra=False):
    """A few steps of a small learner; with `extra`, a constant extra gradient (as EWC adds) in every step."""
    generator = torch_generator(21)
    fields = init_fields(SIZES, generator, dtype)
    learner = FieldLearner(fields, 0.05, kl=kl, kl_weight=0.7, compiled=compiled)
    x = torch.rand(2, 8, SIZES[0], generator=generator, dtype=dtype)
    labels = torch.randint(0, 10, (2, 8), generator=generator)
    penalty = [torch.full_like(field, 0.3).detach() for field in fields] if extra else None
    noise = torch_generator(22)
    for task in range(2):
        if task:
            learner.start_task()
        for _ in range(steps):
            learner.step(x[task], labels[task], 2.0 + task, noise, extra_grad=penalty)
    return learner


@pytest.mark.parametrize("dtype, kl, extra, rtol", [(torch.float32, "previous_step", False, 2e-6),
                                                     (torch.float64, "task_start", True, 1e-11)])
def test_the_compiled_field_step_equals_the_eager_one(dtype, kl, extra, rtol):
    """torch.compile of model.field_step (one fused loop per layer) against the same function run op by op: fields,
    moments, K and the Adam moments after six steps over a task boundary (float32: equal to rounding, which six
    steps of Adam amplify a little; float64: to 1e-11)."""
    eager, compiled = (_train(dtype, flag, kl, extra=extra) for flag in (False, True))
    assert compiled.compiled  # compilation worked (a C++ compiler is installed wherever the suite runs)
    pairs = [pair for name in ("fields", "kl_grad", "exp_avg", "exp_avg_sq")
             for pair in zip(getattr(compiled, name), getattr(eager, name))]
    pairs += [pair for mine, theirs in zip(compiled._moments[1], eager._moments[1]) for pair in zip(mine, theirs)]
    for mine, theirs in pairs:  # largest difference relative to the tensor's scale
        assert float((mine - theirs).detach().abs().max()) <= rtol * float(theirs.detach().abs().max())
    assert all(float(buffer.abs().max()) > 0 for buffer in compiled.kl_grad)


def test_a_failed_compilation_says_so_in_one_line_and_steps_eagerly(monkeypatch, capsys):
    """A compiler that fails (here: a stand-in for torch.compile's result that raises, as a missing C++ compiler
    does) costs one line on stderr, and the run goes on with the eager step — the same numbers."""
    from deep_networks import model

    def broken(*args):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(model, "_COMPILED", {"step": broken})
    fallen_back = _train(torch.float64, True, "previous_step")
    assert capsys.readouterr().err.strip().splitlines() == [
        "torch.compile unavailable (RuntimeError): the field step runs eagerly"]
    eager = _train(torch.float64, False, "previous_step")
    for mine, theirs in zip(fallen_back.fields, eager.fields):
        assert torch.equal(mine.detach(), theirs.detach())
