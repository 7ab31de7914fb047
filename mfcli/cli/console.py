"""The stderr console: logs, progress bars and tables. stdout carries data only.

The console turns plain (no colour, no live progress) when stderr is not a terminal or the
``CI`` environment variable is set (MultiQC's ``log_and_rich``). ``-q`` silences it, ``-v``
adds detail.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

_state = {"verbosity": 0}
_console = None
_stdout_console = None


def set_verbosity(level: int) -> None:
    _state["verbosity"] = level


def get_console():
    """The rich Console on stderr (created on first use, so ``--help`` does not import rich)."""
    global _console
    if _console is None or _console.file is not sys.stderr:
        from rich.console import Console

        plain = bool(os.environ.get("CI")) or not sys.stderr.isatty()
        _console = Console(stderr=True, no_color=plain, force_terminal=False if plain else None,
                           highlight=False, soft_wrap=plain, width=120 if plain else None)
    return _console


def info(message: str) -> None:
    """A log line on stderr (hidden with -q)."""
    if _state["verbosity"] >= 0:
        get_console().print(message, markup=False)


def detail(message: str) -> None:
    """A log line shown only with -v."""
    if _state["verbosity"] >= 1:
        get_console().print(message, markup=False)


def warn(message: str) -> None:
    """A warning on stderr (shown even with -q)."""
    get_console().print(f"Warning: {message}", markup=False)


def quiet() -> bool:
    """Whether -q silences the logs and tables (a command can then skip building them)."""
    return _state["verbosity"] < 0


def print_table(table) -> None:
    if _state["verbosity"] >= 0:
        get_console().print(table)


def get_stdout_console():
    """A rich Console on stdout for the listing commands (`info`, `samples`), plain (no colour,
    wide lines) when stdout is not a terminal, so `| grep` and `> file` see whole rows."""
    global _stdout_console
    if _stdout_console is None or _stdout_console.file is not sys.stdout:
        from rich.console import Console

        plain = bool(os.environ.get("CI")) or not sys.stdout.isatty()
        _stdout_console = Console(file=sys.stdout, no_color=plain, force_terminal=False if plain else None,
                                  highlight=False, soft_wrap=plain, width=200 if plain else None)
    return _stdout_console


def listing(item) -> None:
    """A table or a line that is the command's output (`mfcli info`, `mfcli samples`): on stdout,
    shown even with -q (which silences logs, not results)."""
    console = get_stdout_console()
    if isinstance(item, str):
        console.print(item, markup=False)
    else:
        console.print(item)


def emit_json(document: Any) -> None:
    """Print one JSON document on stdout (NumPy values made plain, NaN/Inf as null)."""
    from mfcli.io.result import to_json
    from mfcli.io.write import write_stdout

    plain = _finite_or_null(json.loads(to_json(document)))
    write_stdout(json.dumps(plain, indent=2, allow_nan=False) + "\n")


def echo(text: str) -> None:
    """A line of the command's data on stdout (a failure to write it is one error line)."""
    from mfcli.io.write import write_stdout

    write_stdout(text + "\n")


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_null(v) for v in value]
    return value


class Progress:
    """A rich progress bar on stderr showing iteration and relative error; a no-op when quiet
    or when stderr is not a terminal. Use as a context manager and call it as the core's
    ``callback(iteration, relative_error, **info)``.
    """

    def __init__(self, description: str, total: int | None):
        self.description = description
        self.total = total
        self._progress = None
        self._task = None

    def __enter__(self):
        if _state["verbosity"] < 0:  # quiet: no bar, and rich is not even imported
            return self
        console = get_console()
        if console.is_terminal and not os.environ.get("CI"):
            from rich.progress import BarColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

            self._progress = RichProgress(
                TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                TextColumn("rel. error {task.fields[error]}"), TimeElapsedColumn(),
                console=console, transient=True,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.description, total=self.total, error="-")
        return self

    def __call__(self, iteration: int, relative_error: float | None = None, **info: Any) -> None:
        if self._progress is not None:
            error = f"{relative_error:.6f}" if relative_error is not None else "-"
            description = info.get("stage", self.description)
            self._progress.update(self._task, completed=iteration, error=error, description=description,
                                  total=info.get("total", self.total))

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)


class ConsoleReporter:
    """The :class:`mfcli.api.Reporter` of the CLI: the API's notes and progress on this console."""

    def info(self, message: str) -> None:
        info(message)

    def detail(self, message: str) -> None:
        detail(message)

    def warn(self, message: str) -> None:
        warn(message)

    def progress(self, description: str, total: int | None) -> Progress:
        return Progress(description, total)

    def on_client(self, client) -> None:
        """Close a dask.distributed client when the command ends."""
        import click

        context = click.get_current_context(silent=True)
        if context is not None:
            context.call_on_close(client.close)


REPORTER = ConsoleReporter()
