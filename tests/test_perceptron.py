"""Physics of the field-space perceptron (single_layer/perceptron.py, single_layer/training.py) against independent
computations."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from field_space import sign
from harness.errors import ConfigError, SolverError
from single_layer.perceptron import (OptimizerSpec, FieldOptimizer, data_term, data_term_gradient,
                                     generalization_error, kl_divergence, kl_gradient, objective_gradient, overlap,
                                     perfect_test_accuracy, project_self_overlap, task_observer, empirical_test_error)
from single_layer.training import train_task, train_two_tasks
from teacher_student import n_patterns, sample_trials

DOUBLE = torch.float64


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Small batched products are much faster on one thread when the CPU is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_problem(n_trials=3, n=40, n_patterns_=25, seed=0):
    generator = torch.Generator().manual_seed(seed)
    fields = torch.randn(n_trials, n, generator=generator, dtype=DOUBLE) * 1.5
    inputs = torch.randint(0, 2, (n_trials, n_patterns_, n), generator=generator).to(DOUBLE) * 2 - 1
    labels = torch.randint(0, 2, (n_trials, n_patterns_), generator=generator).to(DOUBLE) * 2 - 1
    anchor = torch.randn(n_trials, n, generator=generator, dtype=DOUBLE)
    return fields, inputs, labels, anchor


@pytest.mark.parametrize("beta_h", [1.0, 0.7])
def test_hand_written_gradient_equals_autograd(beta_h):
    fields, inputs, labels, anchor = random_problem()
    fields[0, :5] = 8.0  # saturated synapses and strongly violated patterns exercise the log-space tails
    for weight in (0.0, 0.3):
        analytic = objective_gradient(fields, inputs, labels, anchor, weight, beta_h)
        automatic = objective_gradient(fields, inputs, labels, anchor, weight, beta_h, use_autograd=True)
        assert torch.allclose(analytic, automatic, rtol=1e-10, atol=1e-13)
    assert torch.allclose(data_term_gradient(fields, inputs, labels, beta_h),
                          objective_gradient(fields, inputs, labels, beta_h=beta_h, use_autograd=True), rtol=1e-10)


def test_int8_kernel_equals_the_float_paths():
    """The one-pass int8 kernel (numba) against the torch path: float64 fields to 1e-12; float32 fields as accurate as
    the float32 torch path (norm-wise, against float64) and within 3e-6 of it — on the whole set and on a minibatch
    slice read in place; saturated synapses and strongly violated patterns included."""
    fields, inputs, labels, _ = random_problem(n_trials=4, n=300, n_patterns_=200)
    fields[0, :5], fields[1] = 8.0, 3.0 * fields[1]
    int8 = inputs.to(torch.int8)
    for beta_h, batch in ((1.0, slice(None)), (0.7, slice(40, 97))):
        kernel = data_term_gradient(fields, int8, labels, beta_h, batch)
        double = data_term_gradient(fields, inputs, labels, beta_h, batch)
        assert kernel.dtype == DOUBLE and torch.allclose(kernel, double, rtol=1e-12, atol=1e-14)
        single = data_term_gradient(fields.float(), inputs.float(), labels.float(), beta_h, batch).double()
        from_single = data_term_gradient(fields.float(), int8, labels.float(), beta_h, batch)
        assert from_single.dtype == torch.float32
        error, reference_error = ((value.double() - double).norm() / double.norm() for value in (from_single, single))
        assert float(error) <= 1.5 * float(reference_error) + 1e-7
        assert float((from_single.double() - single).norm() / single.norm()) < 3e-6


@pytest.mark.parametrize("spec, epochs", [(OptimizerSpec("adam", 0.05, weight_decay=1e-3, batch_size=16), 10),
                                          (OptimizerSpec("momentum", 0.05, momentum=0.9, batch_size=13), 6),
                                          (OptimizerSpec("gd", 0.5, batch_size=50), 6)])
def test_fused_epochs_equal_the_step_by_step_path(spec, epochs):
    """The fused numba epoch (int8 inputs) against the torch steps one minibatch at a time: with a KL anchor, a last
    minibatch that is smaller, trials frozen by the early stop on the way; float64 to 1e-12, float32 within a few
    float32 roundings (2e-6 of the fields' scale)."""
    for dtype, tolerance in ((DOUBLE, 1e-12), (torch.float32, 2e-6)):
        fields, (task,) = sample_trials(4, 120, [4.0], seed=2, dtype=dtype)
        anchor = 0.3 * torch.randn(4, 120, generator=torch.Generator().manual_seed(1), dtype=dtype)
        runs = [train_task(fields, task, spec, epochs, observe=task_observer([task]), anchor=anchor, gamma=0.7,
                           early_stop="teacher", fused=fused) for fused in (True, False)]
        (fused_fields, fused_history), (plain_fields, plain_history) = runs
        assert fused_fields.dtype == dtype
        scale = float(plain_fields.abs().max())
        assert float((fused_fields - plain_fields).abs().max()) <= tolerance * scale
        assert np.array_equal(fused_history.stop_epoch, plain_history.stop_epoch)
        assert len(set(fused_history.stop_epoch)) > 1  # trials left the batch at different epochs


def test_erfcx_of_the_kernel_against_scipy():
    from scipy.special import erfcx
    from single_layer.data_kernel import _erfcx

    for x in np.concatenate([np.linspace(-20, 30, 501), [4.999999, 5.0, 5.000001, 1e3, 1e8]]):
        assert _erfcx(float(x)) == pytest.approx(float(erfcx(x)), rel=2e-14)


def test_data_term_is_minus_log_gaussian_tail():
    fields, inputs, labels, _ = random_problem(n_trials=1, n_patterns_=1)
    mean = torch.tanh(fields)
    margin = labels[0, 0] * (mean * inputs[0, 0]).sum() / (1 - mean**2).sum().sqrt()
    tail = 0.5 * math.erfc(-float(margin) / math.sqrt(2))  # H(−margin)
    assert float(data_term(fields, inputs, labels)[0]) == pytest.approx(-math.log(tail), rel=1e-12)


def test_kl_closed_form_equals_brute_force_and_gradient_is_beta2_sigma_dh():
    beta_h = 1.3
    fields, _, _, anchor = random_problem(n_trials=2, n=5)
    for trial in range(2):
        def log_q(w, field):  # ln q_h(w) of the product Ising distribution
            return float((beta_h * field * w - torch.log(2 * torch.cosh(beta_h * field))).sum())
        brute = 0.0
        for configuration in itertools.product((-1.0, 1.0), repeat=5):
            w = torch.tensor(configuration, dtype=DOUBLE)
            brute += math.exp(log_q(w, fields[trial])) * (log_q(w, fields[trial]) - log_q(w, anchor[trial]))
        assert float(kl_divergence(fields, anchor, beta_h)[trial]) == pytest.approx(brute, rel=1e-12)
    leaf = fields.clone().requires_grad_(True)
    automatic = torch.autograd.grad(kl_divergence(leaf, anchor, beta_h).sum(), leaf)[0]
    sigma = 1 - torch.tanh(beta_h * fields) ** 2
    assert torch.allclose(automatic, beta_h**2 * sigma * (fields - anchor), rtol=1e-12)
    assert torch.allclose(kl_gradient(fields, anchor, beta_h), automatic, rtol=1e-12)


def test_teacher_overlap_has_mean_r0_and_binomial_spread():
    n, n_trials, r0 = 2000, 200, 0.5
    _, (first, second) = sample_trials(n_trials, n, [0.01, 0.01], r0=r0, seed=3, dtype=DOUBLE)
    overlaps = (first.teacher * second.teacher).mean(-1).numpy()
    spread = math.sqrt((1 - r0**2) / n)
    assert abs(overlaps.mean() - r0) < 4 * spread / math.sqrt(n_trials)
    assert overlaps.std() == pytest.approx(spread, rel=0.2)
    assert set(np.unique(first.teacher.numpy())) == {-1.0, 1.0}
    assert abs(float(first.teacher.mean())) < 4 / math.sqrt(n * n_trials)


def test_labels_follow_teacher_with_sgn0_plus_one():
    _, (task,) = sample_trials(2, 10, [3.0], seed=1, dtype=DOUBLE)
    assert task.inputs.dtype == torch.int8  # ±1 exactly, a quarter of the bytes of float32
    fields = torch.einsum("tpn,tn->tp", task.inputs.to(DOUBLE), task.teacher)
    assert bool((fields == 0).any())  # N even: ties occur and must be labelled +1
    assert torch.equal(task.labels, torch.where(fields >= 0, 1.0, -1.0).to(DOUBLE))


def test_gaussian_approximation_matches_monte_carlo_over_binary_weights():
    """exp(−E) of one pattern = Pr_q[y w·x > 0] up to MC error (N odd: w·x ≠ 0, the threshold sits between lattice
    points, so the Gaussian approximation is accurate to O(1/N))."""
    n, samples = 1001, 20000
    generator = torch.Generator().manual_seed(5)
    fields = 0.08 * torch.randn(1, n, generator=generator, dtype=DOUBLE)
    inputs = torch.randint(0, 2, (1, 6, n), generator=generator).to(DOUBLE) * 2 - 1
    labels = torch.ones(1, 6, dtype=DOUBLE)
    probability_plus = (1 + torch.tanh(fields[0])) / 2
    weights = sign(probability_plus - torch.rand(samples, n, generator=generator, dtype=DOUBLE))
    monte_carlo = ((weights @ inputs[0].T) > 0).double().mean(0)
    for pattern in range(6):
        gaussian = math.exp(-float(data_term(fields, inputs[:, pattern:pattern + 1], labels[:, :1])[0]))
        error = math.sqrt(gaussian * (1 - gaussian) / samples)
        assert abs(gaussian - float(monte_carlo[pattern])) < 4 * error + 2 / n
    assert 0.05 < float(monte_carlo.min()) and float(monte_carlo.max()) < 0.95  # margins are informative


def test_generalization_error_from_overlap_matches_test_error():
    n, n_flips = 1001, 150
    _, (task,) = sample_trials(1, n, [0.01], n_test=40000, seed=2, dtype=DOUBLE)
    student = task.teacher.clone()
    student[0, :n_flips] *= -1
    p = overlap(student, task.teacher)
    assert float(p) == pytest.approx(1 - 2 * n_flips / n)
    predicted = float(generalization_error(p))
    binomial = math.sqrt(predicted * (1 - predicted) / 40000)
    assert abs(float(empirical_test_error(student, task)) - predicted) < 4 * binomial + 0.005
    assert generalization_error(np.array([1.0, 0.0, -1.0])) == pytest.approx([0.0, 0.5, 1.0])


def test_perfect_test_accuracy_only_for_the_teacher():
    _, (task,) = sample_trials(3, 1000, [0.01], n_test=10000, seed=4)
    student = task.teacher.clone()
    student[1, 7] *= -1  # one flipped weight already errs on ~1% of the patterns
    student[2, :100] *= -1  # too many flips: not evaluated, imperfect
    assert perfect_test_accuracy(student, task).tolist() == [True, False, False]
    assert (empirical_test_error(student, task) > 0).tolist() == [False, True, True]


def test_optimisers_match_hand_computation_and_torch():
    gradients = [torch.tensor([[0.5, -1.0]], dtype=DOUBLE), torch.tensor([[0.2, 0.3]], dtype=DOUBLE)]
    start = torch.tensor([[1.0, -2.0]], dtype=DOUBLE)
    momentum = FieldOptimizer(OptimizerSpec("momentum", lr=0.1, momentum=0.9), start)
    after_first = momentum.step(start, gradients[0])
    assert torch.allclose(after_first, torch.tensor([[0.95, -1.9]], dtype=DOUBLE))
    # v = 0.9·(0.05, −0.1) + 0.1·(0.2, 0.3) = (0.065, −0.06)
    assert torch.allclose(momentum.step(after_first, gradients[1]), torch.tensor([[0.885, -1.84]], dtype=DOUBLE))
    gd = FieldOptimizer(OptimizerSpec("gd", lr=0.1), start)
    assert torch.allclose(gd.step(start, gradients[0]), torch.tensor([[0.95, -1.9]], dtype=DOUBLE))
    # Adam, first step: m̂ = g, ŝ = g², so h ← h − lr(sign(g) + wd·h)
    adam = FieldOptimizer(OptimizerSpec("adam", lr=0.01, weight_decay=0.5), start)
    expected = start - 0.01 * (torch.tensor([[1.0, -1.0]], dtype=DOUBLE) + 0.5 * start)
    assert torch.allclose(adam.step(start, gradients[0]), expected, rtol=1e-12)
    # several steps against torch's own AdamW / SGD (independent implementations of the same rules)
    for spec, reference in [(OptimizerSpec("adam", lr=0.01, weight_decay=0.5),
                             lambda p: torch.optim.AdamW([p], lr=0.01, weight_decay=0.5, eps=1e-20)),
                            (OptimizerSpec("momentum", lr=0.1, momentum=0.95),
                             lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.95))]:
        ours, parameter = start.clone(), start.clone().requires_grad_(True)
        optimizer, theirs = FieldOptimizer(spec, ours), reference(parameter)
        for step in range(5):
            gradient = torch.sin(ours * (step + 1))
            ours = optimizer.step(ours, gradient)
            parameter.grad = gradient.clone()
            theirs.step()
        assert torch.allclose(ours, parameter.detach(), rtol=1e-12, atol=0)


def test_adam_weight_decay_is_decoupled():
    start = torch.tensor([[2.0, -4.0]], dtype=DOUBLE)
    adam = FieldOptimizer(OptimizerSpec("adam", lr=0.1, weight_decay=0.3), start)
    # zero gradient: the adaptive part vanishes (0/(0 + 1e-20)) and only h ← h − lr·wd·h remains
    assert torch.allclose(adam.step(start, torch.zeros_like(start)), start * (1 - 0.1 * 0.3), rtol=1e-14, atol=0)
    # eps = 1e-20: even a gradient of 1e-12 gives a full first step lr·sign(g) (eps = 1e-8 would shrink it 10⁴-fold)
    tiny = FieldOptimizer(OptimizerSpec("adam", lr=0.1), start)
    assert torch.allclose(tiny.step(start, torch.full_like(start, 1e-12)), start - 0.1, rtol=1e-6, atol=0)


def test_minibatches_in_fixed_order_with_kl_weight_gamma_bs_over_p():
    fields, (task,) = sample_trials(2, 30, [1.0], seed=6, dtype=DOUBLE)  # P = 30, bs = 8 → 8, 8, 8, 6
    anchor, gamma = 0.5 * fields.flip(-1), 0.7
    trained, _ = train_task(fields, task, OptimizerSpec("gd", lr=0.05, batch_size=8), 2,
                            observe=task_observer([task]), anchor=anchor, gamma=gamma)
    manual = fields.clone()
    for _ in range(2):
        for start in range(0, 30, 8):
            batch = slice(start, start + 8)
            gradient = objective_gradient(manual, task.inputs[:, batch], task.labels[:, batch], anchor,
                                          gamma * 8 / 30, use_autograd=True)
            manual = manual - 0.05 * gradient
    assert torch.allclose(trained, manual, rtol=1e-10)


def run_trials(n_trials, seed):
    fields, (task,) = sample_trials(n_trials, 60, [2.0], n_test=500, seed=seed, dtype=DOUBLE)
    return train_task(fields, task, OptimizerSpec("adam", lr=0.05, weight_decay=0.01, batch_size=16), 60,
                      observe=task_observer([task]), early_stop="test_accuracy", record_every=5)


def test_batched_trials_equal_trials_run_one_at_a_time():
    fields, history = run_trials(3, seed=10)
    assert len(set(history.stop_epoch.tolist())) > 1  # trials stop at different epochs (batch compaction used)
    for trial in range(3):
        alone, alone_history = run_trials(1, seed=10 + trial)
        assert torch.allclose(fields[trial], alone[0], rtol=1e-12, atol=1e-14)
        assert alone_history.stop_epoch[0] == history.stop_epoch[trial]
        recorded = min(len(alone_history.epochs), len(history.epochs))
        assert np.allclose(alone_history.values["eps_g1"][:recorded, 0], history.values["eps_g1"][:recorded, trial])


def test_same_seed_identical_other_seed_different():
    first, first_history = run_trials(2, seed=3)
    second, second_history = run_trials(2, seed=3)
    assert torch.equal(first, second) and np.array_equal(first_history.values["p1"], second_history.values["p1"])
    assert not torch.equal(first, run_trials(2, seed=4)[0])


def test_early_stops_freeze_trials_and_task_switch_continues_epochs():
    fields, tasks = sample_trials(2, 40, [3.0, 0.5], r0=0.0, seed=7, dtype=DOUBLE)
    spec = OptimizerSpec("adam", lr=0.05, batch_size=20)
    final, history = train_two_tasks(fields, tasks, [spec, spec], [200, 5], early_stops=("teacher", None))
    assert np.all(np.diff(history.epochs) == 1) and history.epochs[0] == 0
    switch = len(history.epochs) - 6  # last record of task 1; five task-2 epochs follow
    assert history.epochs[switch] == history.stop_epoch.max() - 5 < 200  # task 1 ended when both trials stopped
    assert np.allclose(history.values["p1"][switch], 1.0)  # both trials learned teacher 1 exactly
    assert set(history.values) == {"q_star", "p1", "eps_g1", "r1", "p2", "eps_g2", "r2"}
    assert not torch.equal(final, fields)


def test_self_overlap_projection_hits_target_despite_clamping():
    generator = torch.Generator().manual_seed(0)
    fields = torch.randn(3, 500, generator=generator, dtype=DOUBLE) * 3
    targets = torch.tensor([0.3, 0.9, 0.99], dtype=DOUBLE)
    projected = project_self_overlap(fields, targets)
    assert torch.allclose((torch.tanh(projected) ** 2).mean(-1), targets, atol=1e-9)
    assert torch.equal(sign(projected), sign(fields))  # the projection never flips a weight
    once = (torch.tanh(fields) * (targets / (torch.tanh(fields) ** 2).mean(-1)).unsqueeze(-1)).clamp(-1, 1)
    assert not torch.allclose((once**2).mean(-1), targets, atol=1e-3)  # the original (docs/original_code.md B9) misses the target


def test_constraint_hook_keeps_self_overlap_on_schedule():
    fields, (task,) = sample_trials(2, 50, [1.0], seed=8, dtype=DOUBLE)
    schedule = {1: 0.4, 2: 0.5, 3: 0.6}  # q⋆ target per epoch, as in the "SGD slow" curve of Fig. 2d
    _, history = train_task(fields, task, OptimizerSpec("momentum", lr=0.01, batch_size=10), 3,
                            observe=task_observer([task]),
                            constrain=lambda h, epoch: project_self_overlap(h, schedule[epoch]))
    assert np.allclose(history.values["q_star"][1:], [[0.4] * 2, [0.5] * 2, [0.6] * 2], atol=1e-9)


@pytest.mark.parametrize("make", [
    lambda: n_patterns(0.0, 100), lambda: n_patterns(-1.0, 100), lambda: n_patterns(1.0, 0),
    lambda: n_patterns(0.001, 100), lambda: sample_trials(1, 10, [1.0], r0=1.5),
    lambda: sample_trials(0, 10, [1.0]), lambda: OptimizerSpec("adam", lr=0.0),
    lambda: OptimizerSpec("rmsprop", lr=0.1), lambda: OptimizerSpec("momentum", lr=0.1, momentum=1.0),
    lambda: OptimizerSpec("adam", lr=0.1, batch_size=0),
    lambda: train_task(torch.zeros(1, 10), sample_trials(1, 10, [1.0])[1][0], OptimizerSpec("gd", lr=0.1), 1,
                       observe=lambda h: {}, beta_h=0.0),
    lambda: project_self_overlap(torch.zeros(1, 10), 1.0),
])
def test_bad_inputs_raise_config_error(make):
    with pytest.raises(ConfigError):
        make()


def test_divergence_raises_solver_error_naming_the_epoch():
    fields, (task,) = sample_trials(1, 10, [1.0], seed=0)
    anchor = torch.full_like(fields, float("nan"))
    with pytest.raises(SolverError, match="epoch 1"):
        train_task(fields, task, OptimizerSpec("gd", lr=0.1), 3, observe=task_observer([task]), anchor=anchor)


def test_convergence_time_of_fig2c_is_the_first_settled_window():
    from single_layer.fig2c_convergence_time import convergence_time

    steps, window = 500, 100
    generator = np.random.default_rng(0)
    noisy = 0.3 + 0.01 * generator.standard_normal((steps, 2))
    noisy[250:, 0] = 0.1  # sample 0 settles after step 250: the first quiet window ends at step 350
    times = convergence_time(noisy, window, threshold=5e-4)
    assert times.tolist() == [350, steps - 1]


def test_projection_works_on_float32_fields():
    """The training runs in float32, where 1 − 1e-8 rounds to 1: the projection must still hit the target."""
    fields = torch.randn(3, 500, generator=torch.Generator().manual_seed(0)) * 4.0
    projected = project_self_overlap(fields, 0.95)
    assert projected.dtype == torch.float32 and bool(torch.isfinite(projected).all())
    assert torch.allclose((torch.tanh(projected.double()) ** 2).mean(-1), torch.full((3,), 0.95, dtype=torch.float64),
                          atol=1e-6)
    assert bool((torch.sign(projected) == torch.sign(fields)).all())
