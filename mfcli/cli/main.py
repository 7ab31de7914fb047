"""The ``mfcli`` command group.

Commands are discovered from the modules of :mod:`mfcli.cli.commands` (one module per
command, each defining ``command``), so adding a command is adding a module. Errors of the
core (:class:`mfcli.errors.MfcliError`) become one line ``Error: ...`` and exit code 1; click
usage errors exit with 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys

if sys.argv and sys.argv[0].endswith(("mfcli", "mfcli/__main__.py")):
    # Running as the mfcli program: take SIGINT/SIGTERM before the imports below, so that a
    # signal at the very start is recorded and reported like any other by main().
    from mfcli import interrupts as _interrupts

    _interrupts.install(hold=True)

import contextlib
import errno
import importlib
import io
import os
import signal
import warnings

import click

from mfcli import __version__
from mfcli.cli import console

COMMANDS_PACKAGE = "mfcli.cli.commands"


def _command_modules() -> dict[str, str]:
    """Command name -> module name, from the files of mfcli/cli/commands (underscores -> dashes)."""
    package = importlib.import_module(COMMANDS_PACKAGE)
    names = {}
    for folder in package.__path__:  # the module files themselves (pkgutil costs 10 ms to import)
        for entry in sorted(os.listdir(folder)):
            stem, extension = os.path.splitext(entry)
            if extension == ".py" and not stem.startswith("_") and stem.isidentifier():
                names[stem.replace("_", "-")] = f"{COMMANDS_PACKAGE}.{stem}"
    return names


class MfcliGroup(click.Group):
    """A group that finds its commands lazily and turns mfcli errors into clean exits."""

    def list_commands(self, ctx):
        return sorted(set(_command_modules()) | set(self.commands))

    def get_command(self, ctx, name):
        module_name = _command_modules().get(name)
        if module_name is None:
            return super().get_command(ctx, name)  # commands added with add_command
        command = importlib.import_module(module_name).command
        if type(command) is click.Command:  # every command reads the stdin specs '-:csv', '-:npy'...
            from mfcli.cli.options import StdioSpecCommand

            command.__class__ = StdioSpecCommand
        return command

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """click's main, except that an interrupt at any moment (while the arguments are parsed,
        where click would say 'Aborted!', or after the command) is reported like any other: one
        line ``Error: interrupted`` and exit 128 + the signal; Python warnings are one line each;
        temporaries an interrupt left behind are removed at the end."""
        from mfcli import interrupts

        show_warning = warnings.showwarning
        warnings.showwarning = _show_warning
        if not standalone_mode:
            try:
                return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            finally:
                warnings.showwarning = show_warning
                _finish()
        try:
            try:
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            except click.ClickException as exc:
                exc.show()
                code = exc.exit_code
            except click.Abort:
                code = _interrupted() if interrupts.pending() is not None else _aborted()
            except BrokenPipeError:
                _silence_stdout()
                code = 1
        except KeyboardInterrupt:  # the first signal, arriving after the command (later ones are only recorded)
            code = _interrupted()
        finally:
            interrupts.settle()  # the exit status is set: a later signal changes nothing
            warnings.showwarning = show_warning
            _finish()
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx):
        from mfcli import interrupts
        from mfcli.errors import MfcliError

        debug = bool(ctx.params.get("debug")) or bool(os.environ.get("MFCLI_DEBUG"))
        try:
            with convergence_warnings_on_console():
                value = super().invoke(ctx)
            _flush_stdout()
            interrupts.check()  # a signal that a library swallowed still ends the run as interrupted
            return value
        except MfcliError as exc:
            if debug:
                raise
            raise _error(one_line(str(exc)), exc.exit_code) from None
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt as exc:
            signum = exc.signum if isinstance(exc, interrupts.Interrupted) else signal.SIGINT
            raise _error("interrupted", 128 + signum) from None
        except BrokenPipeError:
            # The reader of our stdout went away (e.g. `mfcli export ... | head`): point stdout at
            # /dev/null so that Python's final flush does not complain, and stop quietly.
            _silence_stdout()
            raise click.exceptions.Exit(1) from None
        except MemoryError:
            if debug:
                raise
            raise click.ClickException("out of memory; try --dtype float32 or a smaller input") from None
        except OSError as exc:
            if exc.filename is None and not debug and _stdout_failing():  # a print() to a full stdout
                from mfcli.io.write import stdout_error

                raise _error(str(stdout_error(exc)), 1) from None
            if debug or not environment_error(exc):
                raise _internal(exc, debug) from None
            raise click.ClickException(one_line(describe_os_error(exc))) from None
        except Exception as exc:  # a bug, not a user's mistake: still one line without --debug
            raise _internal(exc, debug) from None


def _interrupted() -> int:
    from mfcli import interrupts

    click.echo("Error: interrupted", err=True)
    return 128 + (interrupts.pending() or signal.SIGINT)


def _aborted() -> int:
    click.echo("Aborted!", err=True)
    return 1


def _error(message: str, exit_code: int) -> click.ClickException:
    error = click.ClickException(message)
    error.exit_code = exit_code
    return error


def _internal(exc: BaseException, debug: bool):
    if debug:
        return exc
    return click.ClickException(one_line(
        f"internal error {type(exc).__name__}: {exc} (run again with --debug for the traceback "
        "and please report it)"
    ))


# Errors of the system a user can cause or mend (a full disk, a read-only folder, a name too
# long...), as opposed to bugs: reported as one line, never as an internal error.
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG,
                      errno.EIO, errno.EMFILE, errno.ENFILE, errno.ENOENT, errno.ENOTDIR, errno.EISDIR,
                      errno.EEXIST, errno.EXDEV, errno.EFBIG, errno.ELOOP, errno.ETXTBSY, errno.ENXIO}


def environment_error(exc: OSError) -> bool:
    return exc.errno in ENVIRONMENT_ERRNOS


def describe_os_error(exc: OSError) -> str:
    """``cannot write 'x': No space left on device``-like text of an OSError."""
    reason = exc.strerror or str(exc)
    if exc.filename is not None:
        return f"'{exc.filename}': {reason}"
    return reason


def _flush_stdout() -> None:
    """Flush stdout now, so that a failure to write it (a full disk, /dev/full) is one line
    ``Error: cannot write to standard output: ...`` rather than a complaint at exit."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        from mfcli.io.write import stdout_error

        raise stdout_error(exc) from None


def _stdout_failing() -> bool:
    """Whether standard output cannot take what is buffered for it (it raises on flush)."""
    try:
        sys.stdout.flush()
    except OSError:
        return True
    except ValueError:  # closed
        return False
    return False


_warnings_shown: set[str] = set()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A Python warning (a library's RuntimeWarning included) as one line ``Warning: ...`` on
    stderr, once per message, without the source line Python would print."""
    text = one_line(str(message))
    if text not in _warnings_shown:
        _warnings_shown.add(text)
        console.warn(text)


def _finish() -> None:
    """At the end of every run: temporaries an interrupt left behind are removed."""
    atomic = sys.modules.get("mfcli.io.atomic")  # not imported: nothing was written
    if atomic is not None:
        atomic.remove_leftovers()


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
    from mfcli import interrupts

    # OpenBLAS's idle threads spin for 2^28 cycles (about 0.1 s) after each threaded product
    # before they sleep, on the cores the solvers' own threads and forked processes need: 2^16
    # (tens of microseconds) took 0.1 s (4%) off the default `mfcli unmix` of Urban, medians of
    # 10 randomized pairs (timed outside benchmarks/). Read when NumPy loads OpenBLAS, which
    # nothing has imported yet; a value the user set is kept.
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")

    interrupts.install()
    try:
        interrupts.release()  # a signal received while starting is raised here
        cli.main(args=argv, prog_name="mfcli")
    except interrupts.Interrupted as exc:  # before the command line was parsed
        click.echo("Error: interrupted", err=True)
        sys.exit(exc.exit_code)
    finally:
        interrupts.ignore_from_now()


if __name__ == "__main__":
    main()
