"""The GPU path (skipped where torch sees no CUDA device; run by benchmarks/gpu_check.sh on a machine with one):
the perceptron's gradient and a batch of stacked points, the deep network's training step and a figure script with
--device cuda, each against the CPU."""
from __future__ import annotations

import pytest
import torch

from conftest import run_in_process
from deep_networks.model import forward, init_fields
from harness.devices import torch_generator
from harness.paths import REPO_ROOT
from single_layer import two_tasks
from single_layer.perceptron import OptimizerSpec, data_term_gradient
from teacher_student import sample_trials

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_perceptron_gradient_on_the_gpu_matches_the_cpu():
    fields, (task,) = sample_trials(3, 500, [2.0], seed=1, dtype=torch.float64)
    expected = data_term_gradient(fields, task.inputs.double(), task.labels, 1.0)
    on_gpu = data_term_gradient(fields.cuda(), task.inputs.cuda(), task.labels.cuda(), 1.0).cpu()
    assert torch.allclose(on_gpu, expected, rtol=1e-10, atol=1e-12)


def test_stacked_points_on_the_gpu_match_the_cpu():
    protocol = two_tasks.Protocol(n=200, trials=3, seed=0, alpha1=1.0, spec1=OptimizerSpec("adam", 1e-2),
                                  epochs1=50, uniform_prior=False, stop1=None, gamma=1.0, epochs2=200, stop2=None)
    after_task1, history = two_tasks.first_task(protocol, "cpu")
    points = [(0.5, 0.0, {}), (2.0, 0.5, {}), (3.5, -0.5, {})]
    spec = OptimizerSpec("adam", 1e-2)
    cpu = two_tasks.second_tasks(protocol, after_task1, 50, points, spec, "cpu")
    gpu = two_tasks.second_tasks(protocol, after_task1, 50, points, spec, "cuda")
    assert all(abs(a["p2"] - b["p2"]) <= 2 / 200 and abs(a["p1"] - b["p1"]) <= 2 / 200 for a, b in zip(cpu, gpu))


def test_deep_forward_and_gradient_on_the_gpu_match_the_cpu():
    sizes = (784, 64, 10)
    generator = torch.Generator().manual_seed(0)
    images, labels = torch.randn(32, 784, generator=generator), torch.randint(0, 10, (32,), generator=generator)
    results = {}
    for device in ("cpu", "cuda"):
        fields = [field.detach().to(device).requires_grad_(True) for field in init_fields(sizes, torch_generator(0))]
        logits = forward(fields, images.to(device), 2.0, mode="mean")
        loss = torch.nn.functional.cross_entropy(logits, labels.to(device))
        results[device] = [logits.detach().cpu(), *(g.cpu() for g in torch.autograd.grad(loss, fields))]
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(results["cpu"], results["cuda"]))


def test_a_figure_script_runs_on_the_gpu(tmp_path):
    assert run_in_process(REPO_ROOT / "single_layer" / "fig1a_learning_curves.py", "--quick", "--device", "cuda",
                          "--out_dir", str(tmp_path)) == 0
    assert '"device": "cuda' in (tmp_path / "fig1a_learning_curves.json").read_text()
