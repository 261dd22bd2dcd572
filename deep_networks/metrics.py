"""Continual-learning metrics (names as in Avalanche), computed from the accuracy matrix.

R[i, j] = test accuracy on task j after training on tasks 1…i+1 (0-based i, j; measured at the end of the last
epoch of task i+1). For T tasks:

* average accuracy  ACC = (1/T) Σ_j R[T−1, j]                                    (Lopez-Paz & Ranzato 2017)
* backward transfer BWT = (1/(T−1)) Σ_{j<T−1} (R[T−1, j] − R[j, j])            (Lopez-Paz & Ranzato 2017)
* forgetting        F   = (1/(T−1)) Σ_{j<T−1} (max_{j ≤ i < T−1} R[i, j] − R[T−1, j])   (Chaudhry et al. 2018)

BWT < 0 means forgetting; F ≥ 0 compares with the best accuracy a task ever had, so F ≥ −BWT.

Across runs (the rows of continual.run_methods): the metrics of every method × seed × evaluation mode plus task 1's
final accuracy (`metric_rows`), their mean ± s.d. over seeds (`summary_table`), two entries compared at two standard
errors (`compare`), and the markdown table of the results (`markdown`).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from deep_networks.continual_config import primary_mode

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


# ----------------------------------------------------------------------------- tables over runs
def evaluations(method: str) -> tuple[str, ...]:
    """The evaluation modes a method's metrics are taken in: its primary one, and task-specific BatchNorm for the
    binarized baselines."""
    return (primary_mode(method), "task_bn") if primary_mode(method) == "shared_bn" else (primary_mode(method),)


def metric_rows(protocol: str, rows: list[dict], epochs_per_task: int, n_tasks: int) -> tuple[list[dict], dict]:
    """Per method × seed × evaluation: the metrics rows and the accuracy matrices."""
    out, matrices = [], {}
    for method in dict.fromkeys(row["method"] for row in rows):
        for evaluation in evaluations(method):
            per_seed = []
            for seed in sorted({row["seed"] for row in rows if row["method"] == method}):
                matrix = accuracy_matrix([row for row in rows if row["method"] == method and row["seed"] == seed
                                          and row["eval_mode"] == evaluation], epochs_per_task, n_tasks)
                per_seed.append(matrix)
                values = {**all_metrics(matrix), "task1_final": float(matrix[-1, 0])}
                out += [{"protocol": protocol, "method": method, "seed": seed, "evaluation": evaluation,
                         "metric": metric, "value": value} for metric, value in values.items()]
            matrices[f"{method}/{evaluation}"] = np.mean(per_seed, axis=0).round(4).tolist()
    return out, matrices


def summary_table(metrics: list[dict]) -> list[dict]:
    """Mean ± s.d. over seeds per protocol × method × evaluation × metric."""
    keys = dict.fromkeys((r["protocol"], r["method"], r["evaluation"], r["metric"]) for r in metrics)
    table = []
    for protocol, method, evaluation, metric in keys:
        values = np.array([r["value"] for r in metrics if (r["protocol"], r["method"], r["evaluation"], r["metric"])
                           == (protocol, method, evaluation, metric)])
        table.append({"protocol": protocol, "method": method, "evaluation": evaluation, "metric": metric,
                      "mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                      "seeds": len(values)})
    return table


def compare(table: list[dict], protocol: str, metric: str, first: tuple[str, str], second: tuple[str, str]) -> dict:
    """first vs second on one metric: difference of seed means and its verdict at two standard errors."""
    def entry(method, evaluation):
        return next((r for r in table if (r["protocol"], r["method"], r["evaluation"], r["metric"])
                     == (protocol, method, evaluation, metric)), None)

    a, b = entry(*first), entry(*second)
    if a is None or b is None:
        return {}
    difference = a["mean"] - b["mean"]
    error = np.sqrt(a["sd"] ** 2 / a["seeds"] + b["sd"] ** 2 / b["seeds"])
    verdict = "higher" if difference > 2 * error else "lower" if difference < -2 * error else "indistinguishable"
    if a["seeds"] < 2 or b["seeds"] < 2:
        verdict += " (one seed: no error bar)"
    return {"first": "/".join(first), "second": "/".join(second), "metric": metric, "difference": difference,
            "standard_error": float(error), "first_is": verdict}


def markdown(table: list[dict]) -> str:
    """The README table: one line per protocol × method × evaluation, ACC / BWT / forgetting / task 1 final."""
    lines = ["| protocol | method | evaluation | ACC | BWT | forgetting | task 1 final | seeds |",
             "|---|---|---|---|---|---|---|---|"]
    for protocol, method, evaluation in dict.fromkeys((r["protocol"], r["method"], r["evaluation"]) for r in table):
        cells = {r["metric"]: r for r in table if (r["protocol"], r["method"], r["evaluation"]) == (protocol, method,
                                                                                                    evaluation)}
        values = [f"{cells[m]['mean']:.3f} ± {cells[m]['sd']:.3f}" for m in (*METRICS, "task1_final")]
        lines.append(f"| {protocol} | {method} | {evaluation} | " + " | ".join(values)
                     + f" | {cells['acc']['seeds']} |")
    return "\n".join(lines) + "\n"
