"""Exception types of mfcli.

The core raises these; the command line maps them to exit codes and prints the message as one
line ``Error: ...``. A message says what was wrong and how to fix it. This module imports
nothing from click so the core can use it.
"""

from __future__ import annotations


class MfcliError(Exception):
    """Base class of every error a user can cause. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class InputError(MfcliError):
    """A file cannot be found, opened, parsed, or does not hold what was asked for."""


class DataError(MfcliError):
    """The data are readable but unusable: empty, wrong shape, NaN/Inf, negative values..."""


class OutputError(MfcliError):
    """An output cannot be written, or exists and ``--force`` was not given."""


class ParameterError(MfcliError):
    """A parameter value is invalid for the model or the data (e.g. a rank larger than min(m, n))."""


class NumericalError(MfcliError):
    """A solver produced NaN or Inf (values near the floating-point limits, a step size or a
    parameter that makes the updates overflow); the message names the likely cause."""


class ConvergenceWarning(UserWarning):
    """A run ended at its iteration or time limit before its stopping rule was met (as
    scikit-learn's ConvergenceWarning); the result is usable but not converged."""


class MissingDependencyError(MfcliError):
    """An optional dependency (torch, dask) is needed and not installed."""

    def __init__(self, package: str, extra: str, purpose: str):
        super().__init__(
            f"{purpose} needs the optional package '{package}', which is not installed; "
            f"install it with: pip install 'mfcli[{extra}]'"
        )
        self.package = package
        self.extra = extra
