"""Training of one method and its seeds through a task sequence (docs/theory.md §9, docs/original_code.md).

`train_sequence`: task after task, epoch after epoch — mini-batch steps of the method's learner (`FieldRunner` or
baselines.BinaryLearner, built by `make_runner`), an evaluation of every task after every epoch, σ/K snapshots at
the start of every epoch (field methods: `snapshot`), a checkpoint after every epoch (`--resume` continues from it:
`load_checkpoint`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from deep_networks.baselines import BinaryLearner, FisherPenalty, empirical_fisher
from deep_networks.continual_config import METHODS, ContinualConfig, FieldMethod, fingerprint
from deep_networks.image_tasks import ImageTask
from deep_networks.model import FieldLearner, LAYER_SIZES, accuracy, beta_schedule, forward, init_fields, \
    moment_values
from harness.devices import torch_generator
from harness.errors import ConfigError

LOG_SIGMA_BINS = np.linspace(-40.0, 0.0, 81)  # histogram edges of log10 σ (and log10 |K|) in the snapshots
FIELD_BINS = np.linspace(-5.0, 5.0, 101)  # histogram edges of θ
CONSOLIDATED = 0.01  # σ below this counts as a consolidated synapse (the weight-uncertainty check of results.md)


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
                                    cfg.anchor_weight if method.kl == "task_start" else 1.0, cfg.compile_step)
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


def make_runner(cfg: ContinualConfig, method: str, seeds: tuple[int, ...], total_epochs: int, device, dtype):
    """The learner of one method and its seeds (several only where `batches_seeds`)."""
    spec = METHODS[method]
    if isinstance(spec, FieldMethod):
        return FieldRunner(cfg, spec, seeds, total_epochs, device, dtype)
    (seed,) = seeds
    return BinaryLearner((LAYER_SIZES[0], *cfg.hidden, LAYER_SIZES[-1]), torch_generator(seed, device), dtype, device,
                         cfg.bnn_lr, cfg.bnn_batch_size, cfg.meta if spec.metaplastic else 0.0, cfg.bnn_weight_decay,
                         cfg.ewc_lambda if spec.ewc else 0.0, cfg.ewc_samples)


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
