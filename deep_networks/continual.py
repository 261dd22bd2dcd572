"""Continual-learning protocol shared by the deep-network scripts (docs/theory.md §9, docs/original_code.md).

* data: MNIST / Fashion-MNIST through torchvision (whole set loaded once as tensors, pixels uint8/255, the first
  n_train images in file order), pixel-permuted tasks, and a synthetic stand-in for --quick runs;
* the method table: the field-space rule and its variants (`vcl`, `vcl_no_kl`, `vcl_anchored`, `vcl_fixed_beta`,
  `ewc_fields`) and the binarized baselines of baselines.py (`metaplastic`, `bnn`, `ewc`);
* `train_sequence`: task after task, epoch after epoch — mini-batch steps of one method's learner (`FieldRunner`
  or baselines.BinaryLearner), an evaluation of every task after every epoch, σ/K snapshots at the start of every
  epoch (field methods), a checkpoint after every epoch (`--resume` continues from it);
* the shared config fields, the per-method summary, and the accuracy plot.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import torch
from typing import ClassVar
from tqdm import tqdm

import torch.nn.functional as F

from deep_networks.baselines import BinaryLearner, FisherPenalty, empirical_fisher
from deep_networks.model import EVAL_MODES, FieldLearner, LAYER_SIZES, accuracy, beta_schedule, forward, init_fields, \
    moment_values
from harness.config import config_dict
from harness.devices import resolve_device, torch_generator, torch_setup
from harness.errors import ConfigError, require
from harness.outputs import read_csv, read_json, save_figure, write_csv, write_json
from harness.paths import data_root
from harness.points import PointStore
from harness.provenance import run_metadata
from harness.sweep import SweepConfig, layout, run_points


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
DATASETS = {"mnist": "MNIST", "fashion": "FashionMNIST"}
LOG_SIGMA_BINS = np.linspace(-40.0, 0.0, 81)  # histogram edges of log10 σ (and log10 |K|) in the snapshots
FIELD_BINS = np.linspace(-5.0, 5.0, 101)  # histogram edges of θ
CONSOLIDATED = 0.01  # σ below this counts as a consolidated synapse (the weight-uncertainty check of results.md)


@dataclasses.dataclass
class ContinualConfig(SweepConfig):
    """Fields shared by the continual-learning scripts; each script overrides the paper defaults it changes."""

    methods: tuple[str, ...] = ("vcl",)  # any of vcl vcl_no_kl vcl_anchored vcl_fixed_beta ewc_fields metaplastic bnn ewc
    seeds: int = 1  # number of seeds (seed, seed+1, ...)
    epochs_per_task: int = 5  # epochs per task (E)
    n_train: int = 32000  # training images per task (the first n_train in file order)
    batch_size: int = 64  # mini-batch size B (summed cross-entropy)
    lr: float = 0.01  # Adam learning rate (betas 0.9/0.99, eps 1e-8, never reset)
    beta_max: float = 10.0  # β schedule β_max·tanh(offset + slope·g/total_epochs)
    beta_offset: float = 0.1  # offset of the β schedule
    beta_slope: float = 2.0  # slope of the β schedule (2 permuted MNIST, 1 MNIST→Fashion)
    fixed_beta: float = 1.781  # β of vcl_fixed_beta (default: the schedule's first value, i.e. no annealing)
    anchor_weight: float = 0.002  # λ of vcl_anchored, KL weight per mini-batch (B/n_train: the ELBO weight)
    hidden: tuple[int, ...] = (512, 512)  # hidden layer widths
    eval_images: int = 9984  # random test images per evaluation (156·64 as the original)
    diagnostic_modes: tuple[str, ...] = ("mean", "binary")  # extra evaluation modes at the end of each task
    dtype: str = "float32"  # float32 | float64
    synthetic: bool = False  # synthetic data instead of MNIST (always on with --quick)
    data_root: str = ""  # folder with MNIST/raw and FashionMNIST/raw (default: $VCL_DATA_ROOT or data/)
    path_fields: ClassVar[tuple[str, ...]] = (*SweepConfig.path_fields, "data_root")
    resume: bool = False  # continue an interrupted run from its last finished epoch, reuse finished method×seed runs
    bnn_lr: float = 0.005  # learning rate of the binarized baselines (metaplastic Adam, betas 0.9/0.999, reset per task)
    bnn_batch_size: int = 100  # mini-batch size of the binarized baselines (mean cross-entropy)
    bnn_weight_decay: float = 1e-7  # L2 decay of the binarized baselines
    meta: float = 1.35  # metaplasticity strength m of `metaplastic` (Laborieux: 1.35 permuted MNIST, 1.5 MNIST→Fashion)
    ewc_lambda: float = 5000.0  # EWC weight λ (`ewc`, `ewc_fields`), in units of the mean per-image loss
    ewc_samples: int = 1000  # training images per task for the empirical Fisher (at most n_train; the baseline's: 5000)
    batch_seeds: bool = True  # train the seeds of a field-rule method as one batched computation (a seed dimension)

    def validate(self) -> None:
        super().validate()
        unknown = sorted(set(self.methods) - set(METHODS))
        require(not unknown and len(self.methods) > 0, f"--methods must be among {sorted(METHODS)}, got {unknown}")
        require(self.seeds >= 1, f"--seeds must be >= 1, got {self.seeds}")
        require(self.epochs_per_task >= 1, f"--epochs_per_task must be >= 1, got {self.epochs_per_task}")
        require(self.batch_size >= 1, f"--batch_size must be >= 1, got {self.batch_size}")
        require(self.n_train >= self.batch_size, f"--n_train must be >= batch_size, got {self.n_train}")
        require(self.n_train <= 60000, f"--n_train must be <= 60000 (MNIST training set), got {self.n_train}")
        require(0 < self.lr < 1, f"--lr must be in (0, 1), got {self.lr}")
        require(self.beta_max > 0 and self.fixed_beta > 0, "--beta_max and --fixed_beta must be > 0")
        require(self.anchor_weight >= 0, f"--anchor_weight must be >= 0, got {self.anchor_weight}")
        require(all(width >= 1 for width in self.hidden), f"--hidden widths must be >= 1, got {self.hidden}")
        require(1 <= self.eval_images <= 10000, f"--eval_images must be in [1, 10000], got {self.eval_images}")
        require(set(self.diagnostic_modes) <= set(EVAL_MODES[1:]), "--diagnostic_modes must be among mean binary")
        require(self.dtype in ("float32", "float64"), f"--dtype must be float32 or float64, got {self.dtype}")
        require(0 < self.bnn_lr < 1 and self.bnn_batch_size >= 2, "--bnn_lr must be in (0, 1), --bnn_batch_size >= 2")
        require(self.n_train >= self.bnn_batch_size, f"--n_train must be >= bnn_batch_size, got {self.n_train}")
        require(self.bnn_weight_decay >= 0 and self.meta >= 0, "--bnn_weight_decay and --meta must be >= 0")
        require(self.ewc_lambda >= 0, f"--ewc_lambda must be >= 0, got {self.ewc_lambda}")
        require(self.ewc_samples >= 1, f"--ewc_samples must be >= 1, got {self.ewc_samples}")


@dataclasses.dataclass
class ImageTask:
    """One classification task of the deep networks: a (permuted) image set, training and test split."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


# ----------------------------------------------------------------------------- data
def load_dataset(name: str, root: Path, n_train: int, dtype, device) -> ImageTask:
    """MNIST or Fashion-MNIST as flat tensors in [0, 1]: the first n_train training images and the full test set."""
    from torchvision import datasets

    parts = {}
    for train in (True, False):
        raw = root / DATASETS[name] / "raw"
        try:
            dataset = getattr(datasets, DATASETS[name])(str(root), train=train, download=False)
        except RuntimeError as error:
            present = sorted(path.name for path in raw.glob("*-ubyte")) if raw.is_dir() else []
            if len(present) == 4:  # the files are there but do not read: do not download over them
                raise ConfigError(f"{raw} holds the four {DATASETS[name]} files but they do not read ({error}); "
                                  f"a file is truncated or corrupt: delete the folder's files to download them "
                                  f"again, or point --data_root at a good copy") from None
            try:
                dataset = getattr(datasets, DATASETS[name])(str(root), train=train, download=True)
            except Exception as error:  # no network, read-only folder, ...
                raise ConfigError(
                    f"{DATASETS[name]} not found under {root} and the download failed ({type(error).__name__}). "
                    f"Pass --data_root DIR or set VCL_DATA_ROOT=DIR to a folder containing MNIST/raw and "
                    f"FashionMNIST/raw (torchvision's layout).") from None
        images = dataset.data.reshape(len(dataset.data), -1)
        parts[train] = (images.to(device=device, dtype=dtype) / 255.0, dataset.targets.to(device))
    (x_train, y_train), (x_test, y_test) = parts[True], parts[False]
    return ImageTask(name, x_train[:n_train], y_train[:n_train], x_test, y_test)


def synthetic_dataset(n_train: int, n_test: int, generator: torch.Generator, dtype, device) -> ImageTask:
    """MNIST-shaped stand-in for smoke runs: 10 sparse class prototypes in [0, 1]^784 plus pixel noise."""
    prototypes = (torch.rand(10, 784, generator=generator) < 0.2) * torch.rand(10, 784, generator=generator)

    def draw(count):
        labels = torch.randint(0, 10, (count,), generator=generator)
        noise = 0.3 * torch.randn(count, 784, generator=generator)
        return (prototypes[labels] + noise).clamp_(0, 1).to(device=device, dtype=dtype), labels.to(device)

    return ImageTask("synthetic", *draw(n_train), *draw(n_test))


def permuted_tasks(base: ImageTask, n_tasks: int, generator: torch.Generator) -> list[ImageTask]:
    """One random pixel permutation per task — the first task too — shared by its training and test images."""
    tasks = []
    for index in range(n_tasks):
        permutation = torch.randperm(base.x_train.shape[1], generator=generator).to(base.x_train.device)
        tasks.append(ImageTask(f"permuted_{index + 1}", base.x_train[:, permutation], base.y_train,
                          base.x_test[:, permutation], base.y_test))
    return tasks


def resolve_data(cfg: ContinualConfig, names: tuple[str, ...], dtype, device) -> dict[str, ImageTask]:
    if cfg.synthetic or cfg.quick:
        generator = torch_generator(cfg.seed + 10_000)
        return {name: synthetic_dataset(cfg.n_train, max(cfg.eval_images, 500), generator, dtype, device)
                for name in names}
    root = data_root(cfg.data_root or None)
    return {name: load_dataset(name, root, cfg.n_train, dtype, device) for name in names}


# ----------------------------------------------------------------------------- training
def snapshot(fields, kl_grad, beta: float) -> dict[str, np.ndarray]:
    """Per-layer σ and K statistics (taken at the start of an epoch, σ with the new β, as the original records them)."""
    stats = {key: [] for key in ("sigma_hist", "sigma_zero", "kl_hist", "field_hist", "sigma_mean",
                                 "consolidated", "field_abs_mean", "kl_abs_mean")}
    for field, buffer in zip(fields, kl_grad):
        _, variance = moment_values(field, beta)
        variance = variance.double().cpu().numpy().ravel()
        kl_abs = buffer.abs().double().cpu().numpy().ravel()
        values = field.detach().double().cpu().numpy().ravel()
        with np.errstate(divide="ignore"):
            stats["sigma_hist"].append(np.histogram(np.log10(variance), LOG_SIGMA_BINS)[0])
            stats["kl_hist"].append(np.histogram(np.log10(kl_abs), LOG_SIGMA_BINS)[0])
        stats["sigma_zero"].append(np.count_nonzero(variance < 10 ** LOG_SIGMA_BINS[0]))
        stats["field_hist"].append(np.histogram(np.clip(values, FIELD_BINS[0], FIELD_BINS[-1]), FIELD_BINS)[0])
        stats["sigma_mean"].append(variance.mean())
        stats["consolidated"].append(np.mean(variance < CONSOLIDATED))
        stats["field_abs_mean"].append(np.abs(values).mean())
        stats["kl_abs_mean"].append(kl_abs.mean())
    return {key: np.asarray(value) for key, value in stats.items()}


def fingerprint(cfg: ContinualConfig) -> dict:
    """The settings that determine a run's numbers (a checkpoint or stored run is reused only if they match)."""
    return {key: value for key, value in config_dict(cfg).items()
            if key not in (*cfg.run_only_fields, "resume", "methods", "seeds", "data_root", "protocols")}


def _atomic_torch_save(payload, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


class FieldRunner:
    """A run of the field-space rule (model.FieldLearner) through a task sequence: β schedule, the variant's KL
    reference, optional EWC on the fields, σ/K snapshots. Same interface as baselines.BinaryLearner.

    Several seeds train as one batched computation (a leading seed dimension on the fields, `model.init_fields`):
    each seed starts from its own initial fields and sees its own data order and evaluation images; the noise of
    the Gaussian pass comes from one generator for all of them."""

    def __init__(self, cfg: ContinualConfig, method: FieldMethod, seeds: tuple[int, ...], total_epochs: int, device,
                 dtype):
        self.cfg, self.method, self.total_epochs = cfg, method, total_epochs
        self.batch_size, self.beta, self.seeds = cfg.batch_size, None, seeds
        if method.ewc and len(seeds) > 1:
            raise ValueError("EWC on the fields runs one seed at a time")
        generators = [torch_generator(seed, device) for seed in seeds]
        self.fields = init_fields((LAYER_SIZES[0], *cfg.hidden, LAYER_SIZES[-1]),
                                  generators if len(seeds) > 1 else generators[0], dtype, device)
        self.learner = FieldLearner(self.fields, cfg.lr, method.kl,
                                    cfg.anchor_weight if method.kl == "task_start" else 1.0)
        self.ewc = FisherPenalty(self.fields, cfg.ewc_lambda) if method.ewc else None
        self.fisher_noise = torch_generator(seeds[0] + 4000, device)

    def begin_epoch(self, epoch: int) -> None:
        self.beta = beta_schedule(epoch, self.total_epochs, self.cfg.beta_slope, self.cfg.beta_max,
                                  self.cfg.beta_offset) if self.method.annealed else self.cfg.fixed_beta

    def begin_task(self, index: int) -> None:
        if index > 0:
            self.learner.start_task()

    def end_task(self, index: int, x: torch.Tensor, labels: torch.Tensor, final: bool = False) -> None:
        if self.ewc is not None and not final:
            x, labels = x[:self.cfg.ewc_samples], labels[:self.cfg.ewc_samples]
            self.ewc.consolidate(empirical_fisher(
                lambda xi, yi: F.cross_entropy(forward(self.fields, xi, self.beta, "noisy", self.fisher_noise), yi),
                self.fields, x, labels))

    def step(self, x, labels, generator, where: str) -> float:
        # the data term is summed over the mini-batch, so the per-image EWC weight is scaled by its size
        extra = self.ewc.gradient(scale=len(x)) if self.ewc is not None else None
        return self.learner.step(x, labels, self.beta, generator, where, extra)

    def evaluation_modes(self, end_of_task: bool) -> tuple[str, ...]:
        return ("noisy", *self.cfg.diagnostic_modes) if end_of_task else ("noisy",)

    def accuracy(self, x, labels, mode: str, task_index: int, generator) -> float:
        return accuracy(self.fields, x, labels, self.beta, mode, generator)

    def snapshot(self) -> list[dict[str, np.ndarray]]:
        """σ/K statistics of every seed."""
        if len(self.seeds) == 1:
            return [snapshot(self.fields, self.learner.kl_grad, self.beta)]
        return [snapshot([field[index] for field in self.fields], [buffer[index] for buffer in self.learner.kl_grad],
                         self.beta) for index in range(len(self.seeds))]

    def state_dict(self) -> dict:
        return {"learner": self.learner.state_dict(), "fisher_noise": self.fisher_noise.get_state(),
                "ewc": self.ewc.state_dict() if self.ewc is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self.learner.load_state_dict(state["learner"])
        self.fisher_noise.set_state(state["fisher_noise"])
        if self.ewc is not None:
            self.ewc.load_state_dict(state["ewc"])


def batches_seeds(method: str) -> bool:
    """Field-rule methods without EWC train their seeds as one batched computation (`FieldRunner`)."""
    spec = METHODS[method]
    return isinstance(spec, FieldMethod) and not spec.ewc


def make_runner(cfg: ContinualConfig, method: str, seeds: tuple[int, ...], total_epochs: int, device, dtype):
    """The learner of one method and its seeds (several only where `batches_seeds`)."""
    spec = METHODS[method]
    if isinstance(spec, FieldMethod):
        return FieldRunner(cfg, spec, seeds, total_epochs, device, dtype)
    (seed,) = seeds
    return BinaryLearner((LAYER_SIZES[0], *cfg.hidden, LAYER_SIZES[-1]), torch_generator(seed, device), dtype, device,
                         cfg.bnn_lr, cfg.bnn_batch_size, cfg.meta if spec.metaplastic else 0.0, cfg.bnn_weight_decay,
                         cfg.ewc_lambda if spec.ewc else 0.0, cfg.ewc_samples)


def primary_mode(method: str) -> str:
    """The evaluation reported for a method: the faithful noisy pass (field rule), shared BatchNorm (baselines)."""
    return "noisy" if isinstance(METHODS[method], FieldMethod) else "shared_bn"


def load_checkpoint(path: Path, device) -> dict:
    """A checkpoint written by this script; an unreadable one stops --resume with one line naming the file."""
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except Exception as error:  # truncated, empty, not a checkpoint: torch raises many kinds
        raise ConfigError(f"--resume: checkpoint {path} is unreadable ({type(error).__name__}); delete it to restart "
                          f"that run from its first epoch, or run without --resume") from None
    if not isinstance(state, dict) or "fingerprint" not in state:
        raise ConfigError(f"--resume: {path} is not a checkpoint of this script; delete it or run without --resume")
    return state


def train_sequence(cfg: ContinualConfig, tasks: list[ImageTask], method: str, seeds: tuple[int, ...], device,
                   dtype, checkpoint: Path) -> tuple[list[dict], list[dict[str, np.ndarray]] | None]:
    """Learn the tasks in order with one method and its seeds (one batched computation where `batches_seeds`);
    return the accuracy rows and, per seed, the stacked snapshots (None for the binarized baselines)."""
    total_epochs = len(tasks) * cfg.epochs_per_task
    runner = make_runner(cfg, method, seeds, total_epochs, device, dtype)
    per_seed = {name: [torch_generator(seed + offset, device) for seed in seeds]
                for name, offset in (("shuffle", 1000), ("evaluation", 3000))}
    generators = {"noise": torch_generator(seeds[0] + 2000, device),
                  **{f"{name}{index}": gen for name, gens in per_seed.items() for index, gen in enumerate(gens)}}
    rows, snapshots, done = [], [], 0
    state = load_checkpoint(checkpoint, device) if cfg.resume and checkpoint.exists() else None
    if state is not None and state.get("fingerprint") != fingerprint(cfg):
        print(f"{checkpoint} was written with other settings: starting {method} seeds {list(seeds)} afresh")
        state = None
    if state is not None:
        runner.load_state_dict(state["runner"])
        for name, generator in generators.items():
            generator.set_state(state["generators"][name])
        rows, snapshots, done = state["rows"], state["snapshots"], state["epoch"]
    progress = tqdm(total=total_epochs, initial=done, desc=f"{method} seeds {list(seeds)}", unit="epoch", leave=False)
    steps = len(tasks[0].x_train) // runner.batch_size
    gather = (lambda data, index: data[index[0]]) if len(seeds) == 1 else (lambda data, index: data[index])
    for epoch in range(done + 1, total_epochs + 1):
        task_index = (epoch - 1) // cfg.epochs_per_task
        task = tasks[task_index]
        if (epoch - 1) % cfg.epochs_per_task == 0:
            runner.begin_task(task_index)
        runner.begin_epoch(epoch)
        shot = runner.snapshot()
        if shot is not None:
            snapshots.append(shot)
        order = torch.stack([torch.randperm(len(task.x_train), generator=gen, device=device)
                             for gen in per_seed["shuffle"]])  # (S, n_train): each seed's own data order
        for step in range(steps):
            batch = order[:, step * runner.batch_size:(step + 1) * runner.batch_size]
            runner.step(gather(task.x_train, batch), gather(task.y_train, batch), generators["noise"],
                        f"epoch {epoch}, step {step + 1}")
        end_of_task = epoch % cfg.epochs_per_task == 0
        if end_of_task:
            runner.end_task(task_index, task.x_train, task.y_train, final=task_index == len(tasks) - 1)
        for eval_index, eval_task in enumerate(tasks):
            keep = torch.stack([torch.randperm(len(eval_task.x_test), generator=gen, device=device)[:cfg.eval_images]
                                for gen in per_seed["evaluation"]])
            x_eval, y_eval = gather(eval_task.x_test, keep), gather(eval_task.y_test, keep)
            for mode in runner.evaluation_modes(end_of_task):
                found = runner.accuracy(x_eval, y_eval, mode, eval_index, per_seed["evaluation"][0])
                for seed, value in zip(seeds, found if len(seeds) > 1 else [found]):
                    rows.append({"method": method, "seed": seed, "epoch": epoch, "task_trained": task_index + 1,
                                 "task_eval": eval_index + 1, "task_name": eval_task.name, "eval_mode": mode,
                                 "beta": runner.beta, "accuracy": value})
        _atomic_torch_save({"runner": runner.state_dict(), "epoch": epoch, "rows": rows, "snapshots": snapshots,
                            "generators": {name: gen.get_state() for name, gen in generators.items()},
                            "fingerprint": fingerprint(cfg)}, checkpoint)
        progress.update(1)
    progress.close()
    final = runner.snapshot()
    if final is None:
        return rows, None
    snapshots.append(final)
    return rows, [{key: np.stack([shot[index][key] for shot in snapshots]) for key in snapshots[0][index]}
                  for index in range(len(seeds))]


_TASKS: dict = {}  # the task sequences this process has built, by source


def cached_tasks(source: tuple, device, dtype) -> list[ImageTask]:
    """`source` = (function, args): the task sequence function(*args, device, dtype), built once per process."""
    function, args = source
    key = (function.__module__, function.__qualname__, repr(args), str(device), str(dtype))
    if key not in _TASKS:
        _TASKS[key] = function(*args, device, dtype)
    return _TASKS[key]


def seed_label(seeds: tuple[int, ...]) -> str:
    """'seed3' for one seed, 'seeds0-2' for a batched group: names the point and its checkpoint."""
    return f"seed{seeds[0]}" if len(seeds) == 1 else f"seeds{seeds[0]}-{seeds[-1]}"


def method_run(cfg: ContinualConfig, source: tuple, method: str, seeds: tuple[int, ...], stem: str, out_dir: str,
               snapshots: bool) -> list[dict]:
    """One method with its seeds through the task sequence (a point of `run_methods`, in whatever process): its
    rows; the σ/K snapshots of a field method go to out_dir as one npz per seed."""
    device, dtype = resolve_device(cfg.device), getattr(torch, cfg.dtype)
    checkpoint = Path(out_dir) / "checkpoints" / f"{stem}_{method}_{seed_label(seeds)}.pt"
    rows, shots = train_sequence(cfg, cached_tasks(source, device, dtype), method, seeds, device, dtype, checkpoint)
    for seed, stacked in zip(seeds, shots if snapshots and shots is not None else []):
        path = Path(out_dir) / f"{stem}_snapshots_{method}_seed{seed}.npz"
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez_compressed(tmp, sigma_bins=LOG_SIGMA_BINS, field_bins=FIELD_BINS, **stacked)
        os.replace(tmp, path)
    checkpoint.unlink(missing_ok=True)
    return rows


def method_groups(cfg: ContinualConfig) -> list[tuple[str, tuple[int, ...]]]:
    """The runs of `run_methods`: (method, seeds), the seeds of a field-rule method as one batched group (unless
    --no-batch_seeds), every other method × seed apart."""
    seeds = tuple(range(cfg.seed, cfg.seed + cfg.seeds))
    groups = [(method, seeds) for method in cfg.methods if cfg.batch_seeds and len(seeds) > 1 and batches_seeds(method)]
    return groups + [(method, (seed,)) for seed in seeds for method in cfg.methods if (method, seeds) not in groups]


def run_methods(cfg: ContinualConfig, source: tuple, stem: str, out_dir: Path, snapshots: bool = True) -> list[dict]:
    """Every method × seed on the task sequence of `source` (see `cached_tasks`): the seeds of a field-rule method
    as one batched run (`batches_seeds`, unless --no-batch_seeds), every other method × seed apart; each run an
    independent point of the sweep executor (harness/sweep.py).  Finished runs are kept in a PointStore
    (out_dir/.<stem>.points.jsonl, kept after the run): with --resume they are reused, e.g. by a rerun with more
    methods; without --resume the store is cleared first."""
    store_path = out_dir / f".{stem}.points.jsonl"
    if not cfg.resume:
        store_path.unlink(missing_ok=True)
    cached_tasks(source, resolve_device(cfg.device), getattr(torch, cfg.dtype))  # data problems stop us here
    store = PointStore(out_dir, stem, fingerprint(cfg))
    points = [(f"{method}/{seed_label(group)}", method_run, (cfg, source, method, group, stem, str(out_dir), snapshots))
              for method, group in method_groups(cfg)]
    results = run_points(cfg, store, points, desc=stem)
    if (out_dir / "checkpoints").is_dir() and not any((out_dir / "checkpoints").iterdir()):
        (out_dir / "checkpoints").rmdir()
    rows = [row for key, _, _ in points for row in results[key]]
    return sorted(rows, key=lambda row: (list(cfg.methods).index(row["method"]), row["seed"]))


# ----------------------------------------------------------------------------- summary and plot
def summarize(rows: list[dict], epochs_per_task: int) -> dict:
    """Per method: own-task accuracy after its own training, final accuracies and their mean (primary_mode)."""
    noisy = [row for row in rows if row["eval_mode"] == primary_mode(row["method"])]
    summary = {}
    for method in dict.fromkeys(row["method"] for row in noisy):
        own, final, peak = {}, {}, {}
        last_epoch = max(row["epoch"] for row in noisy if row["method"] == method)
        for row in noisy:
            if row["method"] != method:
                continue
            task = row["task_eval"]
            if row["epoch"] == task * epochs_per_task:
                own.setdefault(task, []).append(row["accuracy"])
            if row["epoch"] == last_epoch:
                final.setdefault(task, []).append(row["accuracy"])
            if row["task_trained"] == task:
                peak.setdefault((task, row["seed"]), []).append(row["accuracy"])
        tasks = sorted(final)
        final_mean = [np.mean([final[task][k] for task in tasks]) for k in range(len(final[tasks[0]]))]
        summary[method] = {
            "own_task_after_training": [float(np.mean(own[task])) for task in tasks],
            "own_task_peak": [float(np.mean([max(v) for (t, _), v in peak.items() if t == task])) for task in tasks],
            "final": [float(np.mean(final[task])) for task in tasks],
            "final_mean": float(np.mean(final_mean)),
            "final_mean_sd_over_seeds": float(np.std(final_mean, ddof=1)) if len(final_mean) > 1 else 0.0,
            "seeds": len(final_mean)}
    return summary


def plot_accuracy(rows: list[dict], epochs_per_task: int, task_labels: list[str], extra_panels: int = 0):
    """One panel per method: accuracy (primary_mode) of every task vs epoch (mean ± s.d. over seeds);
    returns the figure and `extra_panels` empty axes to its right."""
    import matplotlib.pyplot as plt

    noisy = [row for row in rows if row["eval_mode"] == primary_mode(row["method"])]
    methods = list(dict.fromkeys(row["method"] for row in noisy))
    panels = len(methods) + extra_panels
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.4), sharey=True, squeeze=False)
    for ax, method in zip(axes[0], methods):
        for task, label in enumerate(task_labels, start=1):
            epochs = sorted({row["epoch"] for row in noisy if row["method"] == method})
            values = np.array([[row["accuracy"] for row in noisy if row["method"] == method
                                and row["task_eval"] == task and row["epoch"] == epoch] for epoch in epochs])
            mean = values.mean(axis=1)
            spread = values.std(axis=1, ddof=1) if values.shape[1] > 1 else np.zeros_like(mean)
            ax.plot(epochs, mean, label=label)
            ax.fill_between(epochs, mean - spread, mean + spread, alpha=0.2)
        for boundary in range(epochs_per_task, max(epochs), epochs_per_task):
            ax.axvline(boundary + 0.5, color="0.7", lw=0.8, ls="--")
        seeds = values.shape[1]
        ax.set(title=method + (f" (band: ± 1 s.d. over {seeds} seeds)" if seeds > 1 else ""), xlabel="epoch", ylim=(0, 1))
    axes[0][0].set_ylabel("test accuracy")
    axes[0][len(methods) - 1].legend(loc="lower left")
    fig.tight_layout()
    return fig, list(axes[0][len(methods):])


def write_outputs(cfg: ContinualConfig, stem: str, rows: list[dict], summary: dict, checks: dict, plot, started: float,
                  device, data_name: str) -> list[Path]:
    """Raw data first (csv, then json with the summary and the checks), then the figure drawn from them."""
    out_dir = cfg.output_dir
    paths = [write_csv(out_dir / f"{stem}.csv", rows)]
    meta = run_metadata(cfg, started, device, summary=summary, checks=checks,
                        torch_threads_per_run=layout(cfg, len(method_groups(cfg)))[1],
                        data="synthetic" if cfg.quick or cfg.synthetic else data_name)
    paths.append(write_json(out_dir / f"{stem}.json", meta))
    return paths + save_figure(plot(rows, meta), out_dir, stem)


def replot_outputs(cfg: ContinualConfig, stem: str, plot) -> list[Path]:
    """--replot: redraw the figure from the csv/json of a finished run."""
    out_dir = cfg.output_dir
    return save_figure(plot(read_csv(out_dir / f"{stem}.csv"), read_json(out_dir / f"{stem}.json")), out_dir, stem)


def setup_torch(cfg: ContinualConfig):
    """Device, dtype and thread count of a run (`harness.sweep.layout` sets the threads of each method × seed run)."""
    return torch_setup(cfg), getattr(torch, cfg.dtype)

