"""The continual-learning methods and the settings every deep-network script shares (docs/theory.md §9).

* the method table: the field-space rule and its variants (`vcl`, `vcl_no_kl`, `vcl_anchored`, `vcl_fixed_beta`,
  `ewc_fields`: `FieldMethod`) and the binarized baselines of baselines.py (`metaplastic`, `bnn`, `ewc`:
  `BinaryMethod`), with what follows from a method alone: the evaluation reported for it (`primary_mode`) and
  whether its seeds train as one batched computation (`batches_seeds`);
* `ContinualConfig`, the config fields shared by the continual-learning scripts, and its `fingerprint` (the settings
  that determine a run's numbers).
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from deep_networks.model import EVAL_MODES
from harness.config import bounded, config_dict
from harness.errors import require
from harness.sweep import SweepConfig


@dataclasses.dataclass(frozen=True)
class FieldMethod:
    """A variant of the field-space rule: KL reference of model.FieldLearner, β annealed?, EWC on the fields?"""
    kl: str
    annealed: bool = True
    ewc: bool = False


@dataclasses.dataclass(frozen=True)
class BinaryMethod:
    """A binarized-network baseline (baselines.py): metaplastic Adam (m = --meta) or plain (m = 0), EWC?"""
    metaplastic: bool
    ewc: bool = False


METHODS = {"vcl": FieldMethod("previous_step"), "vcl_no_kl": FieldMethod("none"),
           "vcl_anchored": FieldMethod("task_start"), "vcl_fixed_beta": FieldMethod("previous_step", annealed=False),
           "ewc_fields": FieldMethod("none", ewc=True),
           "metaplastic": BinaryMethod(True), "bnn": BinaryMethod(False), "ewc": BinaryMethod(False, ewc=True)}


@dataclasses.dataclass
class ContinualConfig(SweepConfig):
    """Fields shared by the continual-learning scripts; each script overrides the paper defaults it changes."""

    methods: tuple[str, ...] = ("vcl",)  # any of vcl vcl_no_kl vcl_anchored vcl_fixed_beta ewc_fields metaplastic bnn ewc
    seeds: int = bounded(1, at_least=1)  # number of seeds (seed, seed+1, ...)
    epochs_per_task: int = bounded(5, at_least=1)  # epochs per task (E)
    n_train: int = bounded(32000, at_most=60000)  # training images per task (the first n_train in file order)
    batch_size: int = bounded(64, at_least=1)  # mini-batch size B (summed cross-entropy)
    lr: float = bounded(0.01, above=0, below=1)  # Adam learning rate (betas 0.9/0.99, eps 1e-8, never reset)
    beta_max: float = bounded(10.0, above=0)  # β schedule β_max·tanh(offset + slope·g/total_epochs)
    beta_offset: float = 0.1  # offset of the β schedule
    beta_slope: float = 2.0  # slope of the β schedule (2 permuted MNIST, 1 MNIST→Fashion)
    fixed_beta: float = bounded(  # β of vcl_fixed_beta (default: the schedule's first value, i.e. no annealing)
        1.781, above=0)
    anchor_weight: float = bounded(  # λ of vcl_anchored, KL weight per mini-batch (B/n_train: the ELBO weight)
        0.002, at_least=0)
    hidden: tuple[int, ...] = bounded((512, 512), at_least=1)  # hidden layer widths
    eval_images: int = bounded(  # random test images per evaluation (156·64 as the original)
        9984, at_least=1, at_most=10000)
    diagnostic_modes: tuple[str, ...] = ("mean", "binary")  # extra evaluation modes at the end of each task
    dtype: str = "float32"  # float32 | float64
    synthetic: bool = False  # synthetic data instead of MNIST (always on with --quick)
    data_root: str = ""  # folder with MNIST/raw and FashionMNIST/raw (default: $VCL_DATA_ROOT or data/)
    path_fields: ClassVar[tuple[str, ...]] = (*SweepConfig.path_fields, "data_root")
    resume: bool = False  # continue an interrupted run from its last finished epoch, reuse finished method×seed runs
    bnn_lr: float = (  # learning rate of the binarized baselines (metaplastic Adam, betas 0.9/0.999, reset per task)
        bounded(0.005, above=0, below=1))
    bnn_batch_size: int = bounded(100, at_least=2)  # mini-batch size of the binarized baselines (mean cross-entropy)
    bnn_weight_decay: float = bounded(1e-7, at_least=0)  # L2 decay of the binarized baselines
    meta: float = (  # metaplasticity strength m of `metaplastic` (Laborieux: 1.35 permuted MNIST, 1.5 MNIST→Fashion)
        bounded(1.35, at_least=0))
    ewc_lambda: float = bounded(  # EWC weight λ (`ewc`, `ewc_fields`), in units of the mean per-image loss
        5000.0, at_least=0)
    ewc_samples: int = (  # training images per task for the empirical Fisher (at most n_train; the baseline's: 5000)
        bounded(1000, at_least=1))
    batch_seeds: bool = True  # train the seeds of a field-rule method as one batched computation (a seed dimension)
    compile_step: bool = False  # fuse the field rule's per-weight step by torch.compile (no gain on CPUs: results §14)

    def validate(self) -> None:
        super().validate()
        unknown = sorted(set(self.methods) - set(METHODS))
        require(not unknown and len(self.methods) > 0, f"--methods must be among {sorted(METHODS)}, got {unknown}")
        require(self.n_train >= self.batch_size, f"--n_train must be >= batch_size, got {self.n_train}")
        require(set(self.diagnostic_modes) <= set(EVAL_MODES[1:]), "--diagnostic_modes must be among mean binary")
        require(self.dtype in ("float32", "float64"), f"--dtype must be float32 or float64, got {self.dtype}")
        require(self.n_train >= self.bnn_batch_size, f"--n_train must be >= bnn_batch_size, got {self.n_train}")


def fingerprint(cfg: ContinualConfig) -> dict:
    """The settings that determine a run's numbers (a checkpoint or stored run is reused only if they match)."""
    return {key: value for key, value in config_dict(cfg).items()
            if key not in (*cfg.run_only_fields, "resume", "methods", "seeds", "data_root", "protocols")}


def batches_seeds(method: str) -> bool:
    """Field-rule methods without EWC train their seeds as one batched computation (training.FieldRunner)."""
    spec = METHODS[method]
    return isinstance(spec, FieldMethod) and not spec.ewc


def primary_mode(method: str) -> str:
    """The evaluation reported for a method: the faithful noisy pass (field rule), shared BatchNorm (baselines)."""
    return "noisy" if isinstance(METHODS[method], FieldMethod) else "shared_bn"
