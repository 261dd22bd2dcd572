"""A `Config` dataclass becomes a command line, and `run` is the entry point of every script.

Every field is a flag (``--alpha1 1.5``; tuples take several values, ``--alphas 0.5 1.0``; booleans are
``--flag/--no-flag``), the trailing ``# comment`` of each field is its ``--help`` text, ``--quick`` applies the
script's QUICK overrides before the explicit flags, and invalid values stop the script with one line and exit code 2
before anything is written; a `SolverError` ends it with exit code 3.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import re
import sys
import typing
from typing import Any, Callable, Sequence

from harness.errors import ConfigError, SolverError
from harness.provenance import git_commit


def _field_comments(cls: type) -> dict[str, str]:
    """Trailing '# comment' of each dataclass field, read from the class source (used as --help)."""
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for line in source.splitlines():
            match = re.match(r"\s*(\w+)\s*:[^#]*#\s*(.*)$", line)
            if match:
                comments[match.group(1)] = match.group(2).strip()
    return comments


def _scalar_parser(kind: type, name: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--{name} expects {kind.__name__}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"--{name} must be finite, got {text!r}")
        return value

    return parse


class OneLineErrors(argparse.ArgumentParser):
    """Usage errors print one line (the usage block only with --help) and exit with code 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see --help)\n")


def build_parser(config_cls: type, description: str | None = None) -> argparse.ArgumentParser:
    parser = OneLineErrors(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False, argument_default=argparse.SUPPRESS)
    hints = typing.get_type_hints(config_cls)
    comments = _field_comments(config_cls)
    for field in dataclasses.fields(config_cls):
        kind = hints[field.name]
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        help_text = comments.get(field.name, "") + f" (default: {default})"
        flag = f"--{field.name}"
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text)
        elif typing.get_origin(kind) is tuple:
            element = typing.get_args(kind)[0]
            parser.add_argument(flag, nargs="+", type=_scalar_parser(element, field.name),
                                metavar=element.__name__.upper(), help=help_text)
        else:
            parser.add_argument(flag, type=_scalar_parser(kind, field.name), metavar=kind.__name__.upper(),
                                help=help_text)
    return parser


def parse_config(config_cls: type, quick: dict | None = None, argv: Sequence[str] | None = None,
                 description: str | None = None):
    """Command line -> validated config. QUICK overrides come first, explicit flags win.

    Invalid input ends the program with a one-line message and exit code 2 (argparse convention)."""
    parser = build_parser(config_cls, description)
    explicit = vars(parser.parse_args(argv))
    if explicit.get("workers", 1) < 1:  # 0 is the default's "one per core", not something to ask for
        parser.error(f"--workers must be >= 1, got {explicit['workers']} (leave it out for one per core)")
    sweeps = any(field.name == "workers" for field in dataclasses.fields(config_cls))
    overrides = {**({"workers": 1} if sweeps else {}), **(quick or {})} if explicit.get("quick") else {}  # no pool
    overrides.update({key: tuple(value) if isinstance(value, list) else value for key, value in explicit.items()})
    try:
        cfg = dataclasses.replace(config_cls(), **overrides)
        cfg.validate()
    except ConfigError as error:
        parser.error(str(error))
    return cfg


def run(main: Callable[[Any], Any], config_cls: type, quick: dict | None = None,
        argv: Sequence[str] | None = None) -> None:
    """Entry point of every script: parse the flags, run main(cfg), turn known errors into clear messages."""
    cfg = parse_config(config_cls, quick, argv, description=sys.modules[main.__module__].__doc__)
    git_commit()  # the code this run starts with
    try:
        main(cfg)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except SolverError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(3) from None
