"""The two ways a run ends early: bad input (exit 2) and a numerical procedure that failed (exit 3)."""
from __future__ import annotations


class ConfigError(ValueError):
    """Invalid user input (hyperparameter, flag, missing dataset...). Scripts exit with code 2."""


class SolverError(RuntimeError):
    """A numerical procedure failed (no convergence, divergence). Scripts exit with code 3."""


def require(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless condition holds (used in Config.validate)."""
    if not condition:
        raise ConfigError(message)
