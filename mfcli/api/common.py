"""What every workflow of :mod:`mfcli.api` shares: the reporter (where notes and progress go),
the names of the reading rules and stopping rules, and the checks of parameter names and values."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

# The reading rules of open_data (the CLI's data and engine options, by their option names).
READING_RULES = ("variable", "format", "layout", "order", "image_shape", "transpose", "dtype", "wavelengths",
                 "engine", "chunk_size", "scheduler", "device", "keep_nodata")
# Stopping rules of the iterative models (only those given are passed on: models keep their defaults).
STOPPING = ("max_iter", "tol", "target_error", "max_time")


class Reporter:
    """Where the API's notes and progress go. The default says nothing (warnings go through
    :mod:`warnings`); the CLI passes one that prints to its stderr console."""

    def info(self, message: str) -> None:
        """A line a user wants to see (what was read, what runs)."""

    def detail(self, message: str) -> None:
        """A line of detail (shown by the CLI with -v)."""

    def warn(self, message: str) -> None:
        warnings.warn(message, UserWarning, stacklevel=4)  # at the caller of the workflow

    def progress(self, description: str, total: int | None):
        """A context manager that is also the core's ``callback(iteration, relative_error, **info)``."""
        return _NoProgress()

    def on_client(self, client) -> None:
        """A dask.distributed client was opened for a scheduler (the CLI closes it when the
        command ends; here it closes when no longer referenced)."""


class _NoProgress:
    def __enter__(self):
        return self

    def __call__(self, iteration: int, relative_error: float | None = None, **info: Any) -> None:
        pass

    def __exit__(self, *exc) -> None:
        pass


SILENT = Reporter()


def refuse_unknown(given: dict[str, Any], valid: Sequence[str], what: str, reading_rules: bool = False) -> None:
    """A ParameterError naming the unknown parameters of ``given`` and listing the valid ones
    (and, with ``reading_rules``, the reading rules of a spec string)."""
    unknown = sorted(set(given) - set(valid) - (set(READING_RULES) if reading_rules else set()))
    if unknown:
        from mfcli.errors import ParameterError

        names = ", ".join(repr(name) for name in unknown)
        rules = f"; and for a spec string the reading rules {', '.join(READING_RULES)}" if reading_rules else ""
        raise ParameterError(f"{what} takes no parameter {names}; its parameters: {', '.join(sorted(set(valid)))}"
                             + rules)


def check_rank(rank) -> int:
    from mfcli.errors import ParameterError

    if isinstance(rank, bool) or not isinstance(rank, (int,)) and not (hasattr(rank, "__index__")):
        raise ParameterError(f"rank must be an integer >= 1, got {rank!r}")
    if int(rank) < 1:
        raise ParameterError(f"rank must be an integer >= 1, got {rank!r}")
    return int(rank)


def check_seed(seed) -> int:
    from mfcli.errors import ParameterError

    if isinstance(seed, bool) or not hasattr(seed, "__index__") or not 0 <= int(seed) <= 2 ** 63 - 1:
        raise ParameterError(f"seed must be an integer from 0 to 2^63 - 1, got {seed!r}")
    return int(seed)


def as_specs(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    return [os.fspath(v) for v in value]
