"""The image tasks of the deep networks: MNIST / Fashion-MNIST through torchvision (whole set loaded once as tensors,
pixels uint8/255, the first n_train images in file order), a synthetic stand-in for --quick runs, pixel-permuted
tasks, the data a config asks for (`resolve_data`), and the task sequences built once per process (`cached_tasks`).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from deep_networks.continual_config import ContinualConfig
from harness.devices import torch_generator
from harness.errors import ConfigError
from harness.paths import data_root

DATASETS = {"mnist": "MNIST", "fashion": "FashionMNIST"}


@dataclasses.dataclass
class ImageTask:
    """One classification task of the deep networks: a (permuted) image set, training and test split."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


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


_TASKS: dict = {}  # the task sequences this process has built, by source


def cached_tasks(source: tuple, device, dtype) -> list[ImageTask]:
    """`source` = (function, args): the task sequence function(*args, device, dtype), built once per process."""
    function, args = source
    key = (function.__module__, function.__qualname__, repr(args), str(device), str(dtype))
    if key not in _TASKS:
        _TASKS[key] = function(*args, device, dtype)
    return _TASKS[key]
