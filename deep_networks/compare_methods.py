"""Field-space rule vs baselines on the same task sequences, with standard continual-learning metrics.

Methods (deep_networks/continual_config.py METHODS): the field-space rule as released (`vcl`: KL to the fields one step
earlier), with the task-anchored KL (`vcl_anchored`: prior = fields at the end of the previous task, weight
--anchor_weight), without KL (`vcl_no_kl`), and with EWC on the fields instead of the KL (`ewc_fields`); the
metaplastic binarized network of Laborieux et al. 2021 (`metaplastic`, m = --meta), the same network with m = 0
(`bnn`), and EWC on its hidden weights (`ewc`, λ = --ewc_lambda). The baselines are evaluated with shared BatchNorm
(the strictly comparable single-head protocol) and with the BatchNorm parameters saved at the end of each task
(`task_bn`, their authors' protocol); the field rule has no task-specific parameters (noisy Gaussian pass).

Protocols (PROTOCOLS below; every method sees the same images, permutations and epochs):
  pmnist          permuted MNIST, 5 tasks × 5 epochs, 32 000 images per task (the paper's E1)
  mnist_fashion   MNIST → Fashion-MNIST, 10 + 10 epochs, 32 000 images each (E2 shortened from 40 + 40)
  pmnist_native   permuted MNIST, 5 tasks × 10 epochs on all 60 000 images (the baseline's longer training;
                  its native 4096-4096 network and 40 epochs per task are out of reach of a CPU)
  pmnist_10/_20   10 and 20 permuted tasks × 1 epoch (how each method scales with the number of tasks)
Field rule: Adam lr 0.01 (0.005 for MNIST → Fashion), batch 64, β schedule over the whole sequence.
Baselines: metaplastic Adam lr 0.005, batch 100, decay 1e-7, reset per task; m = 1.35 (1.5 for MNIST → Fashion).

Metrics (deep_networks/metrics.py) from the accuracy matrix R[i, j] (task j after training task i): ACC, BWT,
forgetting, and the final accuracy of task 1 (`task1_final`, the retention test of MNIST → Fashion), per seed.

Outputs: compare_methods.csv (protocol, method, seed, evaluation, metric, value), compare_methods_accuracy.csv
(the per-epoch rows of permuted_mnist.csv plus `protocol`), compare_methods.json (accuracy matrices, mean ± s.d.,
the verdicts), compare_methods.md (the table of docs/results.md §13), figures compare_methods.{png,pdf} (summary bars),
compare_methods_curves.{png,pdf}, compare_methods_matrices.{png,pdf}.
Runtime: the points (one method × seed run each; the seeds of a field-rule method train as one batched run) go to
the sweep executor (--workers, --dask); runtime: the README's figure table (the wall time its json records); the
longer protocols have no committed run.
Finished runs are kept (--resume continues them and an interrupted run from its last epoch); protocols keep separate
stores.

    python deep_networks/compare_methods.py --data_root DIR --protocols pmnist mnist_fashion
    python deep_networks/compare_methods.py --protocols pmnist_native pmnist_10 pmnist_20 \
        --out_dir figures/compare_methods_long
"""
from __future__ import annotations

import dataclasses

from deep_networks.continual import plot_curves, plot_matrices, run_methods, setup_torch
from deep_networks.continual_config import ContinualConfig
from deep_networks.image_tasks import cached_tasks, permuted_tasks, resolve_data
from deep_networks.metrics import compare, markdown, metric_rows, summary_table
from harness.command_line import run
from harness.config import bounded
from harness.devices import torch_generator
from harness.errors import require
from harness.figure import Computed, figure_main
from harness.plotting import plot_style

STEM = "compare_methods"
ALL_METHODS = ("vcl", "vcl_anchored", "vcl_no_kl", "ewc_fields", "metaplastic", "bnn", "ewc")
PERMUTED = {"lr": 0.01, "beta_slope": 2.0, "fixed_beta": 1.781, "meta": 1.35}
SEQUENTIAL = {"lr": 0.005, "beta_slope": 1.0, "fixed_beta": 1.120, "meta": 1.5}


@dataclasses.dataclass(frozen=True)
class Protocol:
    datasets: tuple[str, ...]  # ("mnist",): permuted tasks of MNIST; otherwise one task per dataset, in order
    n_tasks: int
    settings: dict  # ContinualConfig fields of this protocol (they override the command line)
    methods: tuple[str, ...] = ALL_METHODS


# ---- protocols
PROTOCOLS = {
    "pmnist": Protocol(("mnist",), 5, {**PERMUTED, "epochs_per_task": 5, "n_train": 32000}),
    "mnist_fashion": Protocol(("mnist", "fashion"), 2, {**SEQUENTIAL, "epochs_per_task": 10, "n_train": 32000}),
    "pmnist_native": Protocol(("mnist",), 5,
                              {**PERMUTED, "epochs_per_task": 10, "n_train": 60000, "eval_images": 5000},
                              ("metaplastic", "bnn", "vcl")),
    "pmnist_10": Protocol(("mnist",), 10, {**PERMUTED, "epochs_per_task": 1, "n_train": 32000, "eval_images": 2000},
                          ("vcl", "vcl_anchored", "metaplastic", "ewc")),
    "pmnist_20": Protocol(("mnist",), 20, {**PERMUTED, "epochs_per_task": 1, "n_train": 32000, "eval_images": 2000},
                          ("vcl", "vcl_anchored", "metaplastic", "ewc")),
}
QUICK_SETTINGS = {"epochs_per_task": 1, "n_train": 400, "eval_images": 100, "ewc_samples": 20}


# ---- hyperparameters (shared by every protocol unless the protocol sets them)
@dataclasses.dataclass
class Config(ContinualConfig):
    protocols: tuple[str, ...] = ("pmnist", "mnist_fashion")  # any of pmnist mnist_fashion pmnist_native pmnist_10 pmnist_20
    methods: tuple[str, ...] = ALL_METHODS  # methods to run (each protocol runs those of its list, in its order)
    seeds: int = bounded(  # seeds per method and protocol (seed, seed+1, ...); the task sequence is the same for all
        3, at_least=1)
    anchor_weight: float = bounded(  # λ of vcl_anchored (2e-3, the ELBO weight B/n_train, blocks later tasks)
        2e-4, at_least=0)
    diagnostic_modes: tuple[str, ...] = ()  # no extra evaluation modes of the field rule (see permuted_mnist.py)

    def validate(self) -> None:
        super().validate()
        unknown = sorted(set(self.protocols) - set(PROTOCOLS))
        require(not unknown and len(self.protocols) > 0, f"--protocols must be among {sorted(PROTOCOLS)}, got {unknown}")


QUICK = {"protocols": ("pmnist", "mnist_fashion"), "seeds": 2, "hidden": (32, 32)}


def protocol_config(cfg: Config, name: str) -> Config:
    protocol = PROTOCOLS[name]
    settings = {**protocol.settings, **(QUICK_SETTINGS if cfg.quick else {})}
    return dataclasses.replace(cfg, **settings, methods=tuple(m for m in protocol.methods if m in cfg.methods))


def protocol_tasks(cfg: Config, name: str, device, dtype):
    protocol = PROTOCOLS[name]
    data = resolve_data(cfg, protocol.datasets, dtype, device)
    if protocol.datasets == ("mnist",):  # the same permutations for every method and seed
        return permuted_tasks(data["mnist"], protocol.n_tasks, torch_generator(cfg.seed + 500))
    return [data[dataset] for dataset in protocol.datasets]


# ----------------------------------------------------------------------------- verdicts
def verdicts(table: list[dict]) -> dict:
    """The paper's claim (field rule > metaplasticity, on ACC), the anchored prior on the same question, task-1
    retention (MNIST → Fashion), and the baseline's own qualitative claim (m > 0 forgets less than m = 0)."""
    result = {}
    for protocol in dict.fromkeys(r["protocol"] for r in table):
        checks = []
        for rule in ("vcl", "vcl_anchored"):
            for evaluation in ("shared_bn", "task_bn"):
                for metric in ("acc", "task1_final"):
                    checks.append(compare(table, protocol, metric, (rule, "noisy"), ("metaplastic", evaluation)))
        for evaluation in ("shared_bn", "task_bn"):
            checks.append(compare(table, protocol, "forgetting", ("metaplastic", evaluation), ("bnn", evaluation)))
        result[protocol] = [check for check in checks if check]
    return result


# ----------------------------------------------------------------------------- figures
EVALUATION_LABELS = {"noisy": "noisy pass", "shared_bn": "shared BN", "task_bn": "task BN"}
SUMMARY_AXES = {"acc": "ACC\n(mean final accuracy)", "forgetting": "forgetting\n(mean drop from best)",
                "task1_final": "task 1\n(final accuracy)"}


def plot_summary(table: list[dict]):
    """Bars: mean ± s.d. over seeds of ACC, forgetting and task 1's final accuracy per method and evaluation mode
    (field rule: the noisy Gaussian pass; binarized baselines, metaplastic included: shared BN and task-specific BN)."""
    import matplotlib.pyplot as plt

    protocols = list(dict.fromkeys(r["protocol"] for r in table))
    shown = ("acc", "forgetting", "task1_final")
    fig, axes = plt.subplots(len(shown), len(protocols), figsize=(3.8 * len(protocols), 9.5), squeeze=False)
    for column, protocol in enumerate(protocols):
        for row, metric in enumerate(shown):
            ax = axes[row][column]
            entries = [r for r in table if r["protocol"] == protocol and r["metric"] == metric]
            labels = [f"{r['method']} ({EVALUATION_LABELS.get(r['evaluation'], r['evaluation'])})" for r in entries]
            for index, entry in enumerate(entries):
                ax.bar(index, entry["mean"], yerr=entry["sd"], color=f"C{ALL_METHODS.index(entry['method'])}",
                       hatch="//" if entry["evaluation"] == "task_bn" else None, alpha=0.85)
            ax.set_xticks(range(len(entries)), labels, rotation=60, ha="right", fontsize=7)
            ax.set_ylim(min(0.0, *(r["mean"] - r["sd"] - 0.02 for r in entries)), 1)
            ax.axhline(0, color="0.5", lw=0.6)
            ax.set_ylabel(SUMMARY_AXES.get(metric, metric), fontsize=8)
            ax.set_title(f"{protocol}: {metric}", fontsize=9)
    seeds = sorted({r["seeds"] for r in table})
    fig.suptitle(f"mean ± s.d. over {'/'.join(map(str, seeds))} seeds; field rule: noisy pass;\nbaselines "
                 "(metaplastic, bnn, ewc): shared BN (plain) and task-specific BN (hatched)", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def plot(cfg: Config, tables: dict, record: dict) -> dict:
    plot_style()
    return {STEM: plot_summary(record["table"]), f"{STEM}_curves": plot_curves(tables["accuracy"], ALL_METHODS),
            f"{STEM}_matrices": plot_matrices(record["accuracy_matrices"])}


def compute(cfg: Config) -> Computed:
    device, dtype = setup_torch(cfg)
    rows, metrics, matrices = [], [], {}
    for name in cfg.protocols:
        pcfg = protocol_config(cfg, name)
        if not pcfg.methods:
            continue
        print(f"protocol {name}: {', '.join(pcfg.methods)} × {cfg.seeds} seeds")
        protocol_rows = run_methods(pcfg, (protocol_tasks, (pcfg, name)), f"{STEM}_{name}", cfg.output_dir,
                                    snapshots=False)
        rows += [{"protocol": name, **row} for row in protocol_rows]
        n_tasks = len(cached_tasks((protocol_tasks, (pcfg, name)), device, dtype))
        protocol_metrics, matrices[name] = metric_rows(name, protocol_rows, pcfg.epochs_per_task, n_tasks)
        metrics += protocol_metrics
    require(len(metrics) > 0, f"no method of --methods {cfg.methods} belongs to --protocols {cfg.protocols}")
    table = summary_table(metrics)
    print(markdown(table))
    return Computed({"rows": metrics, "accuracy": rows}, dict(
        protocols={name: dataclasses.asdict(PROTOCOLS[name]) for name in cfg.protocols}, table=table,
        verdicts=verdicts(table), accuracy_matrices=matrices), device=device, texts={"md": markdown(table)})


def main(cfg: Config) -> None:
    figure_main(cfg, STEM, compute, plot, tables=("rows", "accuracy"))


if __name__ == "__main__":
    run(main, Config, QUICK)
