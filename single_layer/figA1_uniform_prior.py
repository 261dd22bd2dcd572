"""Appendix Fig. A1a–d — continual learning when task 1 is trained with a uniform prior (KL to h′ = 0).

(a) task 1 alone: teacher overlap p₁ and ε_g = arccos(p₁)/π vs α.  Theory: the task-1 RS saddle point of
    docs/theory.md eqs. 11–16 with the uniform-prior entropy κ₁S(m) in the single-site measure, β₁ = κ₁ = 100 (eq. 13;
    `mean_field_theory.task1.sweep_task1`, both branches, thermodynamic solid).  SGD: Adam with decoupled weight
    decay minimising E(h) + KL(q_h ‖ q_0) (eqs. 4–7), per-α batch / lr / wd of the original, ≤ 2000 epochs,
    stop at test accuracy 1 on 10 000 patterns; SGD points drawn at their own α (docs/original_code.md B12 absent).
(b) ε_g² and (c) ε_g¹ vs α₂ after task 2, r₀ ∈ {−½, 0, ½}, α₁ = 2.  Theory: Franz–Parisi potential (docs/theory.md §5,
    `mean_field_theory.franz_parisi.Task2Problem`) around ONE converged branch of the κ₁ = 100 task-1 solution
    (docs/original_code.md B2 absent), β₂ = 20, κ₂ = β₂γ = 20 for the saddle point AND the observables p₁⁽²⁾ = ⟪sgn m⟫,
    p₂ = ⟪B sgn m⟫ (B11 absent).  SGD: task 1 Adam (lr 5e-3, wd 5e-4, batch 32, KL to uniform, 1000 epochs),
    task 2 Adam (wd 1e-3, γ KL to the task-1 fields, ≤ 3000 epochs, stop when sgn h = w²) with the paper's lr
    and batch per (r₀, α₂); task 1 is trained once per trial and shared by every (r₀, α₂).
(d) SGD only, α₁ = 1.4 (its own task-1 runs, B13 absent), r₀ = 0: ε_g² and ε_g¹ vs α₂.  Task 1 heavy-ball
    SGD (lr 2e-4, μ 0.9, batch 64, no KL, ≤ 4500 epochs, stop at sgn h = w¹); task 2 μ 0.95, γ = 1 KL,
    ≤ 7500 epochs, stop at sgn h = w², the paper's batch and lr per α₂.
All SGD: N = 1000, 20 trials (mean ± std), ε_g^t = arccos(p_t)/π with p_t = mean(sgn(h)·w^t) (eq. 8).

Runtime (2-core CPU shared with 3–4 other jobs, 1 thread): theory ≈ 2 min (all panels); SGD with 4 trials ≈ 2 h
(a 15 min, b–c 85 min, d 24 min), with the paper's 20 trials about 5× that.
Interrupted runs resume from the finished points (one PointStore entry per theory sweep and SGD point); after a
--theory_only run or a --panels subset the points are kept (git-ignored .points.jsonl), so a later run reuses them
(e.g. the theory of a --theory_only run), and removed once a run of all panels with SGD has written its outputs.
Command:  python single_layer/figA1_uniform_prior.py [--theory_only] [--panels a b c d] [--trials 20]
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch
from tqdm import tqdm

from mean_field_theory.franz_parisi import Task2Problem
from mean_field_theory.quadrature import NUMERICS_VERSION
from mean_field_theory.rs_solver import RSSolution
from mean_field_theory.task1 import sweep_task1, task1_reference
from single_layer.perceptron import (OptimizerSpec, n_patterns, sample_trials, switch_task, task_observer,
                                     train_task)
from single_layer.comparison import comparison_criterion, compare, eps_g_resolution, tally
from vcl_common import (RUN_ONLY_FIELDS, BaseConfig, PointStore, SolverError, config_dict, kept_sgd_rows, plot_style,
                        print_written, provenance_of, read_csv, read_json, require, run, run_metadata, save_figure,
                        torch_setup, write_csv, write_json)

STEM = "figA1_uniform_prior"
COLUMNS = ["panel", "alpha", "alpha2", "r0", "source", "seed", "eps_g1", "eps_g2", "p1", "p2", "converged",
           "branch", "thermodynamic", "q", "r", "q_star", "T", "free_entropy", "epochs_trained"]
PAPER_ALPHA2S = tuple(0.5 * k for k in range(1, 10))  # α₂ = 0.5 … 4.5 (theory and SGD of panels b–d)
BOOKKEEPING = (*RUN_ONLY_FIELDS, "theory_only", "panels")  # fields that do not change any stored point
THEORY_FIELDS = ("beta1", "kappa1", "theory_alphas", "sgd_alphas", "alpha1", "reference_branch", "beta2", "gamma",
                 "r0s", "alpha2s", "tol")  # what the theory depends on (its resumable points are kept apart)
SHARED_FIELDS = ("sgd_alphas", "alpha1", "gamma", "r0s", "alpha2s")  # ... of which the SGD also depends on


# ---- hyperparameters
@dataclasses.dataclass
class Config(BaseConfig):
    panels: tuple[str, ...] = ("a", "b", "c", "d")  # panels to compute (b and c share one computation)
    beta1: float = 100.0  # inverse temperature of the task-1 theory (β₁)
    kappa1: float = 100.0  # weight of the uniform-prior entropy S(m) in the task-1 theory (κ₁ = β₁)
    theory_alphas: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 25))  # α of the panel-a theory
    sgd_alphas: tuple[float, ...] = tuple(round(0.2 * k, 1) for k in range(1, 13))  # α of the panel-a SGD points
    batch_sizes_a: tuple[int, ...] = (16, 32, 64, 64, 16, 16, 16, 32, 32, 32, 16, 16)  # Adam batch per SGD α
    learning_rates_a: tuple[float, ...] = (  # Adam learning rate per SGD α (panel a)
        0.005, 0.001, 0.005, 0.005, 0.005, 0.001, 0.0005, 0.005, 0.005, 0.005, 0.005, 0.001)
    weight_decays_a: tuple[float, ...] = (  # decoupled Adam weight decay per SGD α (panel a)
        0.0005, 0.0005, 0.005, 0.005, 0.005, 0.0005, 0.0005, 0.0005, 0.0005, 0.0005, 0.0005, 0.0005)
    epochs_a: int = 2000  # maximal epochs of the panel-a SGD (stop at test accuracy 1)
    n_test: int = 10000  # test patterns of the panel-a early stop
    alpha1: float = 2.0  # data density of task 1 in panels b–c (α₁)
    reference_branch: str = "thermodynamic"  # task-1 branch used as task-2 reference: thermodynamic | poor | good
    beta2: float = 20.0  # inverse temperature of task 2 (β₂); κ₂ = β₂γ
    gamma: float = 1.0  # weight of the task-2 KL term (γ)
    r0s: tuple[float, ...] = (-0.5, 0.0, 0.5)  # teacher–teacher overlaps of panels b–c (r₀)
    alpha2s: tuple[float, ...] = PAPER_ALPHA2S  # α₂ of the theory and of the SGD points of panels b–d
    lr1_bc: float = 5e-3  # Adam learning rate of task 1 (panels b–c)
    weight_decay1_bc: float = 5e-4  # Adam weight decay of task 1 (panels b–c)
    batch1_bc: int = 32  # minibatch size of task 1 (panels b–c)
    epochs1_bc: int = 1000  # epochs of task 1 (panels b–c), no early stop
    learning_rates_bc: tuple[float, ...] = (  # task-2 Adam lr per (r₀, α₂), r₀-major (rows r₀ = −½, 0, ½)
        0.005, 0.005, 0.001, 0.01, 0.005, 0.001, 0.01, 0.01, 0.001,
        0.001, 0.001, 0.01, 0.005, 0.01, 0.01, 0.005, 0.001, 0.001,
        0.005, 0.001, 0.005, 0.01, 0.01, 0.001, 0.001, 0.001, 0.001)
    batch_sizes_bc: tuple[int, ...] = (  # task-2 minibatch size per (r₀, α₂), r₀-major
        32, 16, 32, 16, 16, 16, 16, 16, 16,
        16, 16, 32, 16, 16, 16, 16, 16, 16,
        64, 16, 32, 16, 16, 16, 16, 16, 16)
    weight_decay2_bc: float = 1e-3  # Adam weight decay of task 2 (panels b–c)
    epochs2_bc: int = 3000  # maximal epochs of task 2 (panels b–c; stop when sgn h = w²)
    alpha1_d: float = 1.4  # data density of task 1 in panel d (α₁)
    r0_d: float = 0.0  # teacher–teacher overlap of panel d (r₀)
    lr1_d: float = 2e-4  # heavy-ball learning rate of task 1 (panel d)
    momentum1_d: float = 0.9  # heavy-ball momentum of task 1 (panel d)
    batch1_d: int = 64  # minibatch size of task 1 (panel d)
    epochs1_d: int = 4500  # maximal epochs of task 1 (panel d; stop when sgn h = w¹)
    momentum2_d: float = 0.95  # heavy-ball momentum of task 2 (panel d)
    learning_rates_d: tuple[float, ...] = (  # task-2 heavy-ball lr per α₂ (panel d)
        0.0005, 0.0005, 0.001, 0.005, 0.001, 0.001, 0.001, 0.0005, 0.0005)
    batch_sizes_d: tuple[int, ...] = (50, 100, 100, 50, 50, 50, 50, 100, 50)  # task-2 batch per α₂ (panel d)
    epochs2_d: int = 7500  # maximal epochs of task 2 (panel d; stop when sgn h = w²)
    n: int = 1000  # input dimension of the SGD runs (N)
    trials: int = 20  # independent SGD trials (seed + k)
    theory_only: bool = False  # skip the SGD simulations
    refresh_theory: bool = False  # recompute the theory, keep the SGD rows of the csv/json already in out_dir
    tol: float = 1e-10  # saddle-point tolerance (max |T(x) − x|)
    threads: int = 1  # torch CPU threads (1 avoids over-subscription on a shared CPU)

    def validate(self):
        super().validate()
        require(self.panels and set(self.panels) <= set("abcd"), f"--panels must be among a b c d, got {self.panels}")
        require(min(self.beta1, self.beta2, self.alpha1, self.alpha1_d) > 0, "--beta1/2, --alpha1(_d) must be > 0")
        require(self.kappa1 >= 0 and self.gamma >= 0, "--kappa1 and --gamma must be >= 0")
        require(self.reference_branch in ("thermodynamic", "poor", "good"),
                "--reference_branch: thermodynamic | poor | good")
        require(all(abs(r0) <= 1 for r0 in (*self.r0s, self.r0_d)), "--r0s and --r0_d must be in [-1, 1]")
        require(min(*self.theory_alphas, *self.sgd_alphas, *self.alpha2s) > 0, "every α and α₂ must be > 0")
        require(len({len(self.sgd_alphas), len(self.batch_sizes_a), len(self.learning_rates_a),
                     len(self.weight_decays_a)}) == 1, "--sgd_alphas and the *_a lists need equal lengths")
        require(len(self.learning_rates_bc) == len(self.batch_sizes_bc) == len(self.r0s) * len(self.alpha2s),
                "--learning_rates_bc and --batch_sizes_bc need len(r0s) × len(alpha2s) entries (r₀-major)")
        require(len(self.learning_rates_d) == len(self.batch_sizes_d) == len(self.alpha2s),
                "--learning_rates_d and --batch_sizes_d need one entry per α₂")
        require(min(self.n, self.trials, self.n_test, self.epochs_a, self.epochs1_bc, self.epochs2_bc,
                    self.epochs1_d, self.epochs2_d, self.batch1_bc, self.batch1_d, *self.batch_sizes_a,
                    *self.batch_sizes_bc, *self.batch_sizes_d) >= 1, "sizes, epochs and batch sizes must be >= 1")
        require(min(self.lr1_bc, self.lr1_d, *self.learning_rates_a, *self.learning_rates_bc,
                    *self.learning_rates_d) > 0, "learning rates must be > 0")
        require(min(self.weight_decay1_bc, self.weight_decay2_bc, *self.weight_decays_a) >= 0, "weight decays >= 0")
        require(0 <= self.momentum1_d < 1 and 0 <= self.momentum2_d < 1, "momenta must be in [0, 1)")
        require(all(n_patterns(a, self.n) >= 1 for a in (*self.sgd_alphas, *self.alpha2s, self.alpha1, self.alpha1_d)),
                "every α·N must give at least one pattern")
        require(self.tol > 0 and self.threads >= 1, "--tol must be > 0 and --threads >= 1")


QUICK = {"theory_alphas": (0.5, 2.0), "sgd_alphas": (0.6, 2.0), "batch_sizes_a": (16, 32),
         "learning_rates_a": (0.005, 0.005), "weight_decays_a": (0.005, 0.0005), "epochs_a": 20, "n_test": 500,
         "r0s": (0.5,), "alpha2s": (1.0,), "learning_rates_bc": (0.005,), "batch_sizes_bc": (16,),
         "epochs1_bc": 20, "epochs2_bc": 20, "learning_rates_d": (0.001,), "batch_sizes_d": (50,), "epochs1_d": 20,
         "epochs2_d": 20, "n": 100, "trials": 2, "tol": 1e-6}


def wants(cfg: Config, panel: str) -> bool:
    return any(p in cfg.panels for p in ("b", "c")) if panel == "bc" else panel in cfg.panels


# ----------------------------------------------------------------------------- theory
def theory_a(cfg: Config, store: PointStore) -> list[dict]:
    """Task 1 with the uniform prior, both branches, at the theory α and the SGD α (so every SGD point has one)."""
    if store.get("theory a") is None:
        alphas = sorted({round(a, 10) for a in (*cfg.theory_alphas, *cfg.sgd_alphas)})
        store.put("theory a", [{"panel": "a", "source": "theory", "seed": "", "eps_g1": row["eps_g"],
                                **{key: row[key] for key in ("alpha", "p1", "converged", "branch", "thermodynamic",
                                                             "q", "r", "q_star", "free_entropy")}}
                               for row in sweep_task1(alphas, beta=cfg.beta1, kappa=cfg.kappa1, tol=cfg.tol)])
    return store.get("theory a")


def reference_solution(cfg: Config, store: PointStore) -> tuple[RSSolution, str]:
    """ONE converged branch of the κ₁ = β₁ task-1 solution at α₁ (docs/original_code.md B2: not the κ₁ = 0 file), kept in the store."""
    if store.get("reference") is None:
        reference, branch = task1_reference(cfg.alpha1, cfg.beta1, cfg.kappa1, cfg.reference_branch, cfg.tol)
        if not reference.converged:
            raise SolverError(f"task-1 reference at alpha1={cfg.alpha1}, beta1={cfg.beta1} did not converge "
                              f"(residual {reference.residual:.1e})")
        store.put("reference", [{"branch": branch, **reference.as_row()}])
    row = dict(store.get("reference")[0])
    return RSSolution(**{name: row[name] for name in RSSolution.__dataclass_fields__}), row["branch"]


def theory_bc(cfg: Config, store: PointStore, reference) -> tuple[list[dict], dict]:
    """Franz–Parisi sweeps over α₂ per r₀ (κ₂ = β₂γ for the saddle point and the observables), plus the α₂ → 0
    limit of each r₀: the zero-conjugate average, i.e. the student spread by exp(−κ₂KL) around the reference."""
    rows, limits = [], {}
    for r0 in tqdm(cfg.r0s, desc="theory b-c (r0)"):
        problem = Task2Problem(reference, r0, cfg.gamma, cfg.beta2, cfg.kappa1, cfg.tol)
        at_zero = problem.measure.averages(0.0, 0.0, 0.0)
        limits[f"{r0:g}"] = {"p1": at_zero.extras["p1"], "p2": at_zero.sign,
                             "eps_g1": math.acos(min(1.0, at_zero.extras["p1"])) / math.pi,
                             "eps_g2": math.acos(max(-1.0, min(1.0, at_zero.sign))) / math.pi,
                             "eps_g2_expected_arccos_r0_p1": math.acos(r0 * reference.p1) / math.pi,
                             "eps_g1_large_alpha2_arccos_r0": math.acos(r0) / math.pi}
        key = f"theory bc r0={r0!r}"
        if store.get(key) is None:
            store.put(key, [{"panel": "bc", "alpha": cfg.alpha1, "alpha2": s["alpha"], "r0": r0, "source": "theory",
                             "seed": "", **{name: s[name] for name in ("eps_g1", "eps_g2", "p1", "p2", "converged",
                                                                        "branch", "thermodynamic", "q", "r", "q_star",
                                                                        "T", "free_entropy")}}
                            for s in problem.sweep(cfg.alpha2s)])
        rows += store.get(key)
    return rows, limits


# ----------------------------------------------------------------------------- SGD
def trial_rows(panel: str, cfg: Config, history, where: dict, with_task2: bool = True, offset: int = 0) -> list[dict]:
    """One row per trial: final overlaps and the epochs trained on the last task (its early stop, if any)."""
    keys = ("eps_g1", "p1", "eps_g2", "p2") if with_task2 else ("eps_g1", "p1")
    return [{"panel": panel, "source": "sgd", "seed": cfg.seed + trial, **where,
             **{key: history.final(key)[trial] for key in keys},
             "epochs_trained": int(history.stop_epoch[trial]) - offset} for trial in range(cfg.trials)]


def sgd_a(cfg: Config, store: PointStore, device) -> list[dict]:
    for index, alpha in enumerate(tqdm(cfg.sgd_alphas, desc="SGD a (alpha)")):
        key = f"sgd a alpha={alpha!r}"
        if store.get(key) is None:
            fields, (task,) = sample_trials(cfg.trials, cfg.n, [alpha], n_test=cfg.n_test, seed=cfg.seed, device=device)
            spec = OptimizerSpec("adam", cfg.learning_rates_a[index], weight_decay=cfg.weight_decays_a[index],
                                 batch_size=cfg.batch_sizes_a[index])
            _, history = train_task(fields, task, spec, cfg.epochs_a, observe=task_observer([task]),
                                    anchor=torch.zeros_like(fields), gamma=1.0, record_every=cfg.epochs_a,
                                    early_stop="test_accuracy")
            store.put(key, trial_rows("a", cfg, history, {"alpha": alpha}, with_task2=False))
    return [row for alpha in cfg.sgd_alphas for row in store.get(f"sgd a alpha={alpha!r}")]


def sgd_two_tasks(cfg: Config, store: PointStore, device, panel: str) -> list[dict]:
    """Panels b–c (α₁, every r₀, Adam, task 1 with the uniform prior) or d (α₁ = 1.4, r₀ = 0, heavy ball).
    Task 1 (teacher 1, data 1, initial fields: independent of r₀ and α₂) is trained once per trial batch."""
    if panel == "bc":
        alpha1, points = cfg.alpha1, [(r0, alpha2) for r0 in cfg.r0s for alpha2 in cfg.alpha2s]
        spec1 = OptimizerSpec("adam", cfg.lr1_bc, weight_decay=cfg.weight_decay1_bc, batch_size=cfg.batch1_bc)
        epochs1, epochs2, prior, stop1 = cfg.epochs1_bc, cfg.epochs2_bc, True, None
    else:
        alpha1, points = cfg.alpha1_d, [(cfg.r0_d, alpha2) for alpha2 in cfg.alpha2s]
        spec1 = OptimizerSpec("momentum", cfg.lr1_d, momentum=cfg.momentum1_d, batch_size=cfg.batch1_d)
        epochs1, epochs2, prior, stop1 = cfg.epochs1_d, cfg.epochs2_d, False, "teacher"
    after_task1 = history1 = None
    for index, (r0, alpha2) in enumerate(tqdm(points, desc=f"SGD {panel} (r0, alpha2)")):
        key = f"sgd {panel} r0={r0!r} alpha2={alpha2!r}"
        if store.get(key) is not None:
            continue
        fields, tasks = sample_trials(cfg.trials, cfg.n, (alpha1, alpha2), r0, seed=cfg.seed, device=device)
        observe = task_observer(tasks)
        if after_task1 is None:
            anchor = torch.zeros_like(fields) if prior else None
            after_task1, history1 = train_task(fields, tasks[0], spec1, epochs1, observe=observe, anchor=anchor,
                                               gamma=1.0, record_every=epochs1, early_stop=stop1)
            store.put(f"sgd {panel} task1", trial_rows(panel, cfg, history1, {"alpha": alpha1}, with_task2=False))
        if panel == "bc":
            spec2 = OptimizerSpec("adam", cfg.learning_rates_bc[index], weight_decay=cfg.weight_decay2_bc,
                                  batch_size=cfg.batch_sizes_bc[index])
        else:
            spec2 = OptimizerSpec("momentum", cfg.learning_rates_d[index], momentum=cfg.momentum2_d,
                                  batch_size=cfg.batch_sizes_d[index])
        _, history = switch_task(after_task1, history1, tasks[1], spec2, epochs2, observe=observe, gamma=cfg.gamma,
                                 record_every=epochs2, early_stop="teacher")
        store.put(key, trial_rows(panel, cfg, history, {"alpha": alpha1, "alpha2": alpha2, "r0": r0},
                                  offset=int(history1.epochs[-1])))
    return [row for r0, alpha2 in points for row in store.get(f"sgd {panel} r0={r0!r} alpha2={alpha2!r}")]


# ----------------------------------------------------------------------------- summaries
def sgd_after_task1(store: PointStore) -> dict:
    """ε_g¹ at the task switch of panels b–c and d (SGD mean ± std): the starting point of forgetting."""
    summary = {}
    for panel in ("bc", "d"):
        values = np.array([row["eps_g1"] for row in store.get(f"sgd {panel} task1") or []], dtype=float)
        if len(values):
            spread = values.std(ddof=1) if len(values) > 1 else 0.0
            summary[panel] = {"eps_g1_mean": values.mean(), "eps_g1_std": spread}
    return summary


def agreement(rows: list[dict], n: int) -> dict:
    """Thermodynamic theory against the SGD trials at every SGD point of panels a–c (single_layer.comparison)."""
    sgd = [r for r in rows if r["source"] == "sgd"]
    where = lambda r: (r["panel"], r["alpha"], r.get("alpha2", ""), r.get("r0", ""))
    theory = {where(r): r for r in rows if r["source"] == "theory" and r["thermodynamic"]}
    points = {"a_eps_g": [], "b_eps_g2": [], "c_eps_g1": []}
    for key in sorted({where(r) for r in sgd}, key=str):
        if key not in theory:
            continue
        samples = lambda name: [r[name] for r in sgd if where(r) == key]
        if key[0] == "a":
            points["a_eps_g"].append(compare(theory[key]["eps_g1"], samples("eps_g1"), eps_g_resolution(n), alpha=key[1]))
        else:
            for name, quantity in (("b_eps_g2", "eps_g2"), ("c_eps_g1", "eps_g1")):
                points[name].append(compare(theory[key][quantity], samples(quantity), eps_g_resolution(n),
                                            alpha2=key[2], r0=key[3]))
    summary = {name: tally(found) for name, found in points.items()}
    return {"criterion": comparison_criterion(), "summary": summary, "points": points}


def theory_checks(rows: list[dict], limits: dict) -> dict:
    """Qualitative checks (docs/theory.md §5 limits) on the thermodynamic theory rows."""
    checks = {}
    curve_a = sorted((r["alpha"], r["eps_g1"]) for r in rows if r["panel"] == "a" and r["source"] == "theory"
                     and r["thermodynamic"])
    if curve_a:
        checks["a_eps_g_nonincreasing"] = bool(all(b[1] <= a[1] + 1e-6 for a, b in zip(curve_a, curve_a[1:])))
        checks["a_eps_g_at_ends"] = {"alpha_min": curve_a[0], "alpha_max": curve_a[-1]}
    bc = [r for r in rows if r["panel"] == "bc" and r["source"] == "theory" and r["thermodynamic"]]
    by_alpha2 = {}
    for r in bc:
        by_alpha2.setdefault(r["alpha2"], {})[r["r0"]] = r
    ordered = lambda name, alpha2_min=0.0: bool(all(  # larger r₀, smaller error (1e-3: both ≈ 0 when learned)
        np.all(np.diff([point[r0][name] for r0 in sorted(point)]) < 1e-3)
        for alpha2, point in by_alpha2.items() if alpha2 >= alpha2_min and len(point) > 1))
    if bc:
        checks["b_eps_g2_nonincreasing_in_r0_at_every_alpha2"] = ordered("eps_g2")
        checks["c_eps_g1_nonincreasing_in_r0_for_alpha2_ge_1"] = ordered("eps_g1", 1.0)
        checks["bc_all_converged"] = bool(all(r["converged"] for r in bc))
        checks["bc_alpha2_to_0_limit"] = limits
        largest = max(by_alpha2)
        checks["bc_at_largest_alpha2"] = {f"{r0:g}": {"alpha2": largest, "eps_g1": row["eps_g1"],
                                                      "eps_g2": row["eps_g2"]}
                                          for r0, row in sorted(by_alpha2[largest].items())}
    return checks


# ----------------------------------------------------------------------------- plot
def plot(rows: list[dict]):
    import matplotlib.pyplot as plt

    plot_style()
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.5))
    select = lambda panel, source: [r for r in rows if r["panel"] == panel and r["source"] == source]

    def sgd_bars(axis, sgd, x_key, y_key, **style):
        xs = sorted({r[x_key] for r in sgd})
        values = [np.array([r[y_key] for r in sgd if r[x_key] == x], dtype=float) for x in xs]
        if xs:
            axis.errorbar(xs, [v.mean() for v in values], [v.std(ddof=1) if len(v) > 1 else 0.0 for v in values],
                          ls="--", lw=0.8, mfc="none", **style)

    axis = axes[0, 0]
    for key, colour, label in (("p1", "black", "p_1"), ("eps_g1", "dimgrey", r"\epsilon_g")):
        theory, legend = select("a", "theory"), [f"${label}$", f"${label}$ (metastable)"]
        for branches, style in ((("thermodynamic",), "o-"), (("poor", "good"), ":")):  # dotted: metastable parts
            for branch in branches:
                curve = sorted((r["alpha"], r[key]) for r in theory if r["branch"] == branch and not r["thermodynamic"]
                               or branch == "thermodynamic" and r["thermodynamic"])
                if curve:
                    axis.plot(*zip(*curve), style, color=colour, mfc="none", label=legend.pop(0) if legend else None)
        sgd_bars(axis, select("a", "sgd"), "alpha", key, color=colour, marker="s", label=rf"${label}^{{\rm SGD}}$")
    axis.set_xlabel(r"$\alpha$")
    axis.set_title(r"(a) task 1, uniform prior ($\beta=\kappa_1=100$)", fontsize=9)
    colours = {-0.5: ("red", "salmon", "o"), 0.0: ("blue", "royalblue", "s"), 0.5: ("black", "dimgrey", "^")}
    for axis, key, label in ((axes[0, 1], "eps_g2", "(b)"), (axes[1, 0], "eps_g1", "(c)")):
        for r0 in sorted({r["r0"] for r in select("bc", "theory") + select("bc", "sgd")}):
            dark, light, marker = colours.get(r0, ("green", "lightgreen", "d"))
            curve = sorted((r["alpha2"], r[key]) for r in select("bc", "theory")
                           if r["r0"] == r0 and r["thermodynamic"])
            if curve:
                axis.plot(*zip(*curve), "-", color=dark, marker=marker, mfc="none", label=f"theory $r_0={r0:g}$")
            sgd_bars(axis, [r for r in select("bc", "sgd") if r["r0"] == r0], "alpha2", key, color=light,
                     marker=marker, label=f"SGD $r_0={r0:g}$")
        axis.set_xlabel(r"$\alpha_2$")
        axis.set_ylabel(r"$\epsilon_g^{%s}$" % key[-1])
        axis.set_title(rf"{label} $\alpha_1=2$, $\gamma=1$", fontsize=9)
    axis = axes[1, 1]
    for key, colour, marker in (("eps_g2", "black", "o"), ("eps_g1", "dimgrey", "s")):
        sgd_bars(axis, select("d", "sgd"), "alpha2", key, color=colour, marker=marker,
                 label=r"$\epsilon_g^{%s}$ (SGD)" % key[-1])
    axis.set_xlabel(r"$\alpha_2$")
    axis.set_title(r"(d) SGD, $\alpha_1=1.4$, $r_0=0$", fontsize=9)
    for axis in axes.flat:
        if axis.has_data():
            axis.legend(fontsize=6)
        else:
            axis.text(0.5, 0.5, "not computed", ha="center", va="center", transform=axis.transAxes, color="grey")
    fig.tight_layout()
    return fig


def store_fields(cfg: Config) -> list[str]:
    """The settings the SGD points depend on."""
    return [key for key in config_dict(cfg) if key not in BOOKKEEPING and (key not in THEORY_FIELDS
                                                                           or key in SHARED_FIELDS)]


def main(cfg: Config) -> None:
    out_dir, started = cfg.output_dir, time.time()
    if not cfg.replot:
        device = torch_setup(cfg)
        settings = {key: value for key, value in config_dict(cfg).items() if key not in BOOKKEEPING}
        theory_store = PointStore(out_dir, f"{STEM}_theory", {"numerics": NUMERICS_VERSION,
                                                              **{key: settings[key] for key in THEORY_FIELDS}})
        store = PointStore(out_dir, STEM, {key: settings[key] for key in store_fields(cfg)})
        kept = kept_sgd_rows(cfg, STEM, [key for key in store_fields(cfg)]) if cfg.refresh_theory else None
        rows, limits, reference_info = [], {}, None
        if wants(cfg, "a"):
            print("theory (a): task 1 with uniform prior ...")
            rows += theory_a(cfg, theory_store)
        if wants(cfg, "bc"):
            reference, branch = reference_solution(cfg, theory_store)
            reference_info = {"branch": branch, "requested": cfg.reference_branch, **reference.as_row()}
            print(f"task-1 reference at alpha1={cfg.alpha1}: {branch} branch, eps_g = {reference.eps_g:.4f}")
            theory_rows, limits = theory_bc(cfg, theory_store, reference)
            rows += theory_rows
        extra = {"sgd_after_task1": sgd_after_task1(store)}
        if kept is not None:
            rows += kept[0]
            extra = {"sgd_after_task1": kept[1].get("sgd_after_task1"), "sgd_rows_from": provenance_of(kept[1])}
        elif not cfg.theory_only:
            if wants(cfg, "a"):
                rows += sgd_a(cfg, store, device)
            for panel in ("bc", "d"):
                if wants(cfg, panel):
                    rows += sgd_two_tasks(cfg, store, device, panel)
            extra = {"sgd_after_task1": sgd_after_task1(store)}
        comparison = agreement(rows, cfg.n)
        write_csv(out_dir / f"{STEM}.csv", rows, COLUMNS)
        write_json(out_dir / f"{STEM}.json", run_metadata(
            cfg, started, device, seeds=[cfg.seed + trial for trial in range(cfg.trials)],
            kappa2=cfg.beta2 * cfg.gamma, task1_reference=reference_info, **extra,
            theory_checks=theory_checks(rows, limits), agreement=comparison, summary=comparison["summary"],
            unconverged=[r for r in rows if r.get("converged") is False]))
        if set(cfg.panels) == set("abcd") and not cfg.theory_only:  # else keep the points for a later run
            theory_store.close()
            store.close()
        print("; ".join(f"{name}: {text}" for name, text in comparison["summary"].items()))
    read_json(out_dir / f"{STEM}.json")  # a replot needs the full outputs of a finished run
    figure = plot(read_csv(out_dir / f"{STEM}.csv"))
    print_written([out_dir / f"{STEM}.csv", out_dir / f"{STEM}.json", *save_figure(figure, out_dir, STEM)])


if __name__ == "__main__":
    run(main, Config, QUICK)
