"""Continual-learning metrics (names as in Avalanche), computed from the accuracy matrix.

R[i, j] = test accuracy on task j after training on tasks 1…i+1 (0-based i, j; measured at the end of the last
epoch of task i+1). For T tasks:

* average accuracy  ACC = (1/T) Σ_j R[T−1, j]                                    (Lopez-Paz & Ranzato 2017)
* backward transfer BWT = (1/(T−1)) Σ_{j<T−1} (R[T−1, j] − R[j, j])            (Lopez-Paz & Ranzato 2017)
* forgetting        F   = (1/(T−1)) Σ_{j<T−1} (max_{j ≤ i < T−1} R[i, j] − R[T−1, j])   (Chaudhry et al. 2018)

BWT < 0 means forgetting; F ≥ 0 compares with the best accuracy a task ever had, so F ≥ −BWT.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

METRICS = ("acc", "bwt", "forgetting")


def accuracy_matrix(rows: Iterable[dict], epochs_per_task: int, n_tasks: int) -> np.ndarray:
    """R from per-epoch rows of one method, seed and evaluation mode (keys epoch, task_eval, accuracy)."""
    matrix = np.full((n_tasks, n_tasks), np.nan)
    for row in rows:
        if row["epoch"] % epochs_per_task == 0:
            matrix[row["epoch"] // epochs_per_task - 1, row["task_eval"] - 1] = row["accuracy"]
    if np.isnan(matrix).any():
        missing = [(i + 1, j + 1) for i, j in zip(*np.nonzero(np.isnan(matrix)))]
        raise ValueError(f"accuracy matrix incomplete: no row for (after task, task) in {missing[:5]}")
    return matrix


def average_accuracy(matrix: np.ndarray) -> float:
    return float(matrix[-1].mean())


def backward_transfer(matrix: np.ndarray) -> float:
    tasks = len(matrix)
    if tasks < 2:
        return 0.0
    return float(np.mean([matrix[-1, j] - matrix[j, j] for j in range(tasks - 1)]))


def forgetting(matrix: np.ndarray) -> float:
    tasks = len(matrix)
    if tasks < 2:
        return 0.0
    return float(np.mean([matrix[j:tasks - 1, j].max() - matrix[-1, j] for j in range(tasks - 1)]))


def all_metrics(matrix: np.ndarray) -> dict[str, float]:
    return {"acc": average_accuracy(matrix), "bwt": backward_transfer(matrix), "forgetting": forgetting(matrix)}
