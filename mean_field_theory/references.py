"""The committed results that the figures of the sampled Gibbs measure are compared with: the poor one-step RSB
solutions at β = 20 (`figures/rsb_task1.csv`) and the SGD of Fig. 2b (β = 20 settings, N = 1000,
`figures/fig2b_theory_vs_sgd.csv`).  Each is empty where its file is absent."""
from __future__ import annotations

from harness.outputs import read_csv
from harness.paths import FIGURES_DIR


def sgd_rows() -> list[dict]:
    """The converged SGD trials of Fig. 2b, one row per (α, trial)."""
    path = FIGURES_DIR / "fig2b_theory_vs_sgd.csv"
    return [row for row in read_csv(path) if row["source"] == "sgd" and row.get("converged", True)] if path.exists() \
        else []


def rsb_rows() -> list[dict]:
    """The poor 1RSB solutions at β = 20 (rows with a Parisi parameter), with their mean replica overlap
    `q_mean` = x q₀ + (1 − x) q₁."""
    path = FIGURES_DIR / "rsb_task1.csv"
    return [{**row, "q_mean": row["x"] * row["q0"] + (1 - row["x"]) * row["q1"]} for row in read_csv(path)
            if row["source"] == "1rsb" and row["x"] != ""] if path.exists() else []
