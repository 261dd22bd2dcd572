"""The teacher–student data of docs/theory.md eqs. 1–2, shared by the SGD of the perceptron and the samplers of the
theory's Gibbs measure: teacher w¹ uniform on {±1}^N, later teachers w^t = w^{t−1}ξ with P(ξ = +1) = (1 + r₀)/2,
Rademacher inputs (stored as int8: ±1 exactly), labels y = sgn(w·x) with sgn(0) = +1.

Many independent trials are one batched draw: trial k draws its teacher, data and initial fields from its own
generator seeded with seed + k, so its numbers do not depend on how many trials are drawn together.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import torch

from field_space import sign
from harness.devices import torch_generator
from harness.errors import require


def n_patterns(alpha: float, n: int) -> int:
    """P = int(αN) as in the original code (a tiny tolerance keeps e.g. 0.58·100 at 58)."""
    require(alpha > 0, f"alpha must be > 0, got {alpha}")
    require(n >= 1, f"N must be >= 1, got {n}")
    count = int(alpha * n + 1e-9)
    require(count >= 1, f"alpha * N = {alpha} * {n} gives no training pattern")
    return count


@dataclasses.dataclass
class Task:
    """One task for a batch of trials: teacher, training set and (optionally) a test set."""

    teacher: torch.Tensor  # (T, N) ±1
    inputs: torch.Tensor  # (T, P, N) ±1, int8
    labels: torch.Tensor  # (T, P) ±1
    test_inputs: torch.Tensor | None = None  # (T, N, n_test) int8, transposed so a weight's column is contiguous
    test_fields: torch.Tensor | None = None  # (T, n_test) teacher preactivations w·x of the test patterns

    def select(self, trials: torch.Tensor) -> "Task":
        return Task(*(None if value is None else value[trials] for value in dataclasses.astuple(self)))


def stack_tasks(tasks: Sequence[Task]) -> Task:
    """Several tasks of the same N (e.g. the points of a sweep) as one batch of trials, in order, their training
    sets padded to the largest P with label-0 patterns: a pattern with y = 0 adds nothing to the data term's
    gradient (docs/theory.md eq. 7 weighs pattern μ by y^μ), so every trial trains on its own P patterns only —
    for full-batch training; a minibatch would mix padding into the batches.  Test sets must have equal sizes."""
    require(len({task.teacher.shape[1] for task in tasks}) == 1, "stacked tasks must share N")
    patterns = max(task.labels.shape[1] for task in tasks)
    pad = lambda tensor, dims: torch.nn.functional.pad(tensor, dims(patterns - tensor.shape[1]))
    stacked = Task(torch.cat([task.teacher for task in tasks]),
                   torch.cat([pad(task.inputs, lambda extra: (0, 0, 0, extra)) for task in tasks]),
                   torch.cat([pad(task.labels, lambda extra: (0, extra)) for task in tasks]))
    if all(task.test_inputs is not None for task in tasks):
        stacked.test_inputs = torch.cat([task.test_inputs for task in tasks])
        stacked.test_fields = torch.cat([task.test_fields for task in tasks])
    return stacked


def _rademacher(generator: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randint(0, 2, shape, generator=generator, dtype=torch.int8) * 2 - 1


def sample_trials(n_trials: int, n: int, alphas: Sequence[float], r0: float = 0.0, n_test: int = 0,
                  seed: int = 0, device="cpu", dtype=torch.float32) -> tuple[torch.Tensor, list[Task]]:
    """Initial fields h ~ N(0, 1) (T, N) and one Task per entry of `alphas`.  Teachers form a Markov chain: task
    t ≥ 2 has teacher w^{t−1}ξ_t, each ξ_t,i = ±1 with probability (1 ± r₀)/2, so teachers s and t overlap r₀^|t−s|.

    Trial k uses torch_generator(seed + k) for, in this order: w¹, the ξ_t, the initial fields, then every task's
    training and test inputs (so the teachers, the initial fields and task 1 do not depend on later tasks' sizes)."""
    require(n_trials >= 1, f"the number of trials must be >= 1, got {n_trials}")
    require(abs(r0) <= 1, f"|r0| must be <= 1, got {r0}")
    require(n_test >= 0, f"the number of test patterns must be >= 0, got {n_test}")
    counts = [n_patterns(alpha, n) for alpha in alphas]
    per_trial = []
    for trial in range(n_trials):
        generator = torch_generator(seed + trial)
        first_teacher = _rademacher(generator, (n,))
        flips = [torch.where(torch.rand(n, generator=generator, dtype=torch.float64) < (1 + r0) / 2, 1, -1)
                 for _ in counts[1:]]
        teachers = [first_teacher]
        for flip in flips:
            teachers.append(teachers[-1] * flip.to(torch.int8))
        initial = torch.randn(n, generator=generator, dtype=torch.float64)
        sets = []
        for teacher, count in zip(teachers, counts):
            train, test = _rademacher(generator, (count, n)), _rademacher(generator, (n_test, n))
            sets.append((train, test.T.contiguous(), test.double() @ teacher.double()))
        per_trial.append((teachers, sets, initial))
    tasks = []
    for index in range(len(counts)):
        teacher = torch.stack([trial[0][index] for trial in per_trial]).to(device, dtype)
        inputs = torch.stack([trial[1][index][0] for trial in per_trial]).to(device)  # int8: ±1 exactly, 1 byte each
        task = Task(teacher, inputs, sign(torch.einsum("tpn,tn->tp", inputs.to(dtype), teacher)))
        if n_test:
            task.test_inputs = torch.stack([trial[1][index][1] for trial in per_trial]).to(device)
            task.test_fields = torch.stack([trial[1][index][2] for trial in per_trial]).to(device, dtype)
        tasks.append(task)
    fields = torch.stack([trial[2] for trial in per_trial]).to(device, dtype)
    return fields, tasks
