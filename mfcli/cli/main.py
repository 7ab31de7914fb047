"""The ``mfcli`` command group.

Commands are discovered from the modules of :mod:`mfcli.cli.commands` (one module per
command, each defining ``command``), so adding a command is adding a module. Errors of the
core (:class:`mfcli.errors.MfcliError`) become one line ``Error: ...`` and exit code 1; click
usage errors exit with 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import pkgutil
import signal
import sys
import warnings

import click

from mfcli import __version__
from mfcli.cli import console

COMMANDS_PACKAGE = "mfcli.cli.commands"


def _command_modules() -> dict[str, str]:
    """Command name -> module name, from the files of mfcli/cli/commands (underscores -> dashes)."""
    package = importlib.import_module(COMMANDS_PACKAGE)
    names = {}
    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            names[module.name.replace("_", "-")] = f"{COMMANDS_PACKAGE}.{module.name}"
    return names


class MfcliGroup(click.Group):
    """A group that finds its commands lazily and turns mfcli errors into clean exits."""

    def list_commands(self, ctx):
        return sorted(set(_command_modules()) | set(self.commands))

    def get_command(self, ctx, name):
        module_name = _command_modules().get(name)
        if module_name is None:
            return super().get_command(ctx, name)  # commands added with add_command
        module = importlib.import_module(module_name)
        return module.command

    def invoke(self, ctx):
        from mfcli.errors import MfcliError

        debug = bool(ctx.params.get("debug")) or bool(os.environ.get("MFCLI_DEBUG"))
        try:
            with convergence_warnings_on_console():
                return super().invoke(ctx)
        except MfcliError as exc:
            if debug:
                raise
            error = click.ClickException(one_line(str(exc)))
            error.exit_code = exc.exit_code
            raise error from None
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            raise click.Abort() from None
        except BrokenPipeError:
            # The reader of our stdout went away (e.g. `mfcli export ... | head`): point stdout at
            # /dev/null so that Python's final flush does not complain, and stop quietly.
            _silence_stdout()
            raise click.exceptions.Exit(1) from None
        except MemoryError:
            if debug:
                raise
            raise click.ClickException("out of memory; try --dtype float32 or a smaller input") from None
        except Exception as exc:  # a bug, not a user's mistake: still one line without --debug
            if debug:
                raise
            raise click.ClickException(one_line(
                f"internal error {type(exc).__name__}: {exc} (run again with --debug for the traceback "
                "and please report it)"
            )) from None


@contextlib.contextmanager
def convergence_warnings_on_console():
    """The core's ConvergenceWarning (a run stopped by --max-iter/--max-time before converging)
    printed as one line ``Warning: ...`` on stderr; other warnings as Python
    shows them."""
    from mfcli.errors import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", ConvergenceWarning)
        original = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, ConvergenceWarning):
                console.warn(one_line(str(message)))
            else:
                original(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def one_line(message: str) -> str:
    """The message with every run of whitespace (newlines included) made one space."""
    return " ".join(message.split())


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass


def _exit_on_sigterm(signum, frame) -> None:
    # SystemExit unwinds like any exception, so atomic writers remove their temporary files.
    raise SystemExit(128 + signum)


@click.group(name="mfcli", cls=MfcliGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="mfcli")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on stderr but errors and warnings.")
@click.option("-v", "--verbose", count=True, help="More detail on stderr (repeatable).")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
def cli(quiet: bool, verbose: int, debug: bool) -> None:
    """mfcli: matrix factorization for the command line.

    NMF and its variants, deep orthogonal NMF hierarchies for hyperspectral unmixing, and
    matrix completion for ratings. Wherever a FILE is expected you may give FILE:VAR (a
    variable or HDF5 dataset), '-' (stdin, CSV or NPY) or sample:NAME (see `mfcli samples`).
    """
    console.set_verbosity(-1 if quiet else verbose)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    cli.main(args=argv, prog_name="mfcli")


if __name__ == "__main__":
    main()
