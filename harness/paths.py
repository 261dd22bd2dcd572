"""Where the repository, its committed figures and the datasets are."""
from __future__ import annotations

import os
from pathlib import Path

from harness.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent


FIGURES_DIR = REPO_ROOT / "figures"


QUICK_DIR = FIGURES_DIR / "quick"


DATA_ENV_VAR = "VCL_DATA_ROOT"


def data_root(explicit: str | None = None) -> Path:
    """Dataset folder: --data_root if given, else $VCL_DATA_ROOT, else <repo>/data (where torchvision may download).
    A folder named by the user must exist: nothing is created in it."""
    for source, value in (("--data_root", explicit), (f"${DATA_ENV_VAR}", os.environ.get(DATA_ENV_VAR))):
        if value:
            path = Path(value).expanduser()
            if not path.is_dir():
                raise ConfigError(f"{source} {path} is not an existing folder")
            return path
    return REPO_ROOT / "data"
