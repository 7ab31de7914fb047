"""Helpers shared by factorize, unmix and transform (not a command: the name starts with '_')."""

from __future__ import annotations

from typing import Any

import click

from mfcli.cli.options import FiniteFloatRange, stack_options

_OTHER_STOPPING_OPTIONS = [
    click.option("--tol", type=FiniteFloatRange(min=0), default=None,
                 help="Stop when the objective of the accepted iterates decreased by less than this per iteration, "
                      "on average over the last 10, relative to its value (or, once the fit is much better "
                      "than at the start, to a fifth of its first value, up to 20 times its value: see "
                      "docs/stopping.md). 0: never; default: the model's. Not applied with --target-error."),
    click.option("--target-error", type=FiniteFloatRange(0, 1, max_open=True), default=None,
                 help="Run until the relative error ||X-WH||_F/||X||_F is at most this (or --max-iter/--max-time)."),
    click.option("--max-time", type=FiniteFloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
                 help="Stop after this many seconds of the whole run, initialization included (checked after "
                      "each iteration and between restarts)."),
]


def stopping_options(max_iter_help: str = "Maximum number of iterations (default: the model's, 200 for most).",
                     min_iter: int = 1):
    """--max-iter, --tol, --target-error, --max-time (only what the user gives is passed on)."""
    return stack_options(click.option("--max-iter", type=click.IntRange(min=min_iter), default=None,
                                      help=max_iter_help), *_OTHER_STOPPING_OPTIONS)


def check_model(kind: str):
    """Callback of --model: the registry's name of a model of ``kind`` ("single" or "deep"); an
    unknown name is a usage error."""

    def check(ctx, param, value):
        from mfcli.errors import MfcliError
        from mfcli.models import registry

        try:
            return registry.get_model(value, kind).name
        except MfcliError as exc:
            raise click.BadParameter(str(exc)) from None

    return check


def read_matrix(spec: str, factor: str):
    """A matrix from a data file or the factor ``factor`` of a result file (:func:`mfcli.api.read_matrix`)."""
    from mfcli.api import read_matrix as read

    return read(spec, factor)


def as_working_dtype(matrix, dtype):
    """:func:`mfcli.api.as_working_dtype`."""
    from mfcli.api import as_working_dtype as convert

    return convert(matrix, dtype)


def finish_result(result, dataset, model: str, extra_params: dict[str, Any]):
    """Attach input metadata, provenance (this command line) and the command's parameters to a
    Result (:func:`mfcli.api.finish_result`)."""
    from mfcli.api import finish_result as finish
    from mfcli.cli.options import command_line

    return finish(result, dataset, model, extra_params, command_line())


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.3g} s" if seconds < 100 else f"{seconds / 60:.1f} min"
