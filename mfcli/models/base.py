"""What every solver does first and last: wrap and check the data (:func:`prepare_data`,
:func:`check_scale`), set up the stopping rules and the monitor (:func:`begin_run`), measure
the error directly where the Gram formula loses digits, and build the one-layer Result
(:func:`single_layer_result`). The stopping rules and the monitor are in
:mod:`mfcli.models.stopping`, the shared linear algebra in :mod:`mfcli.models.linalg`.
NumPy only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mfcli.errors import DataError, NumericalError, ParameterError
from mfcli.metrics import relative_error_from_residual
from mfcli.models.matrix import DataMatrix, as_data_matrix, column_blocks, is_sparse
from mfcli.models.stopping import DEFAULT_HINT, TOL_WINDOW, Monitor, Stopping, warn_not_converged
from mfcli.result import Layer, Result
from mfcli.validation import check_rank, require_finite, require_nonnegative


def prepare_data(X, model: str, nonnegative: bool = True, dtype=None) -> DataMatrix:
    """Wrap X for a solver. NumPy input is checked here (finite, nonnegative for nonnegative
    models) and converted to ``dtype`` if given; other engines are trusted to have been
    checked when they were opened. A scipy.sparse matrix is checked on its stored values and
    kept sparse (:class:`~mfcli.models.matrix.SparseMatrix`)."""
    if is_sparse(X):
        if X.ndim != 2 or min(X.shape) == 0:
            raise DataError(f"the data must be a non-empty 2-D matrix, got shape {X.shape}")
        if dtype is not None:
            X = X.astype(dtype, copy=False)
        require_finite(X.data)
        if nonnegative:
            require_nonnegative(X.data, model)
        return as_data_matrix(X)
    if isinstance(X, np.ndarray) or not isinstance(X, DataMatrix):
        X = np.asarray(X)
        if X.ndim != 2:
            raise DataError(f"the data must be a 2-D matrix, got shape {X.shape}")
        if X.size == 0:
            raise DataError(f"the data are empty (shape {X.shape})")
        if dtype is not None:
            X = X.astype(dtype, copy=False)
        require_finite(X)
        if nonnegative:
            require_nonnegative(X, model)
    elif dtype is not None and np.dtype(dtype) != np.dtype(X.dtype):
        raise ParameterError(f"this {type(X).__name__} engine works in {X.dtype}; open it with dtype={dtype}")
    return as_data_matrix(X)


def begin_run(X, rank: int, model: str, *, nonnegative: bool = True, dtype=None, max_iter: int = 200,
              tol: float = 1e-4, target_error: float | None = None, max_time: float | None = None, callback=None,
              stage: str | None = None, hint: str | None = None, window: int = TOL_WINDOW
              ) -> tuple[DataMatrix, int, Stopping, Monitor]:
    """What every single-layer model does first: set up the stopping rules and the monitor
    (whose clock starts now, so the run's time includes the initialization), wrap and check the
    data (:func:`prepare_data`, :func:`check_scale`), and check the rank. ``hint``: the likely
    cause named if the loop produces NaN/Inf."""
    stopping = Stopping(max_iter=max_iter, tol=tol, target_error=target_error, max_time=max_time, window=window)
    monitor = Monitor(stopping, callback, stage=stage or model, hint=hint)
    data = prepare_data(X, model, nonnegative=nonnegative, dtype=dtype)
    monitor.exact_error = exact_error_for(data.dtype)
    check_scale(data)
    rank = check_rank(rank, data.shape)
    return data, rank, stopping, monitor


def exact_error_for(dtype) -> float:
    """The relative error below which a fit counts as exact (converged, reason tol):
    1e-3 sqrt(eps), 1.5e-11 in float64 and 3.5e-7 in float32, where the data themselves are
    only known to about 1e-7."""
    return 1e-3 * float(np.sqrt(np.finfo(np.dtype(dtype) if np.dtype(dtype).kind == "f" else np.float64).eps))


# Below this relative error e the Gram-matrix formula (a difference of numbers of size ||X||^2)
# keeps only about -log10(eps / e^2) digits (8 at 1e-4, 4 at 1e-6); loops that can measure
# ||X - WH|| directly from then on do so.
DIRECT_ERROR_BELOW = 1e-4


# The residual of direct_relative_error is formed this many bytes at a time, in one buffer
# reused for every piece: two whole-block temporaries allocated and freed at each iteration cost
# a page fault per 4 KiB page each time (glibc returns them to the system): in a fresh process
# the direct error of a 300 x 500 fit took 2.3 ms that way, 0.45 ms with the buffer (a
# microbenchmark, not in benchmarks/).
RESIDUAL_PIECE_BYTES = 256 << 10


def direct_relative_error(data: DataMatrix, W: np.ndarray, H: np.ndarray, x_sq_norm: float) -> float:
    """||X - WH||_F / ||X||_F from the residual itself, block of columns by block, in float64: one
    more pass over X, exact where the Gram formula is not (fits better than about 1e-6)."""
    W64 = np.asarray(W, dtype=np.float64)
    m = W64.shape[0]
    width = max(1, RESIDUAL_PIECE_BYTES // (8 * max(1, m)))
    buffer = np.empty(m * min(width, max(1, data.shape[1])))
    total = 0.0
    for start, stop, block in column_blocks(data):
        for offset in range(0, stop - start, width):
            end = min(offset + width, stop - start)
            residual = buffer[:m * (end - offset)].reshape(m, end - offset)
            np.matmul(W64, np.asarray(H[:, start + offset:start + end], dtype=np.float64), out=residual)
            np.subtract(block[:, offset:end], residual, out=residual)
            total += float(np.einsum("ij,ij->", residual, residual))
    return relative_error_from_residual(x_sq_norm, total)


def check_scale(data: DataMatrix) -> float:
    """||X||_F^2, refused with a clear error when it is not a finite number: every relative error
    and most solvers' steps need it, so data whose squared norm overflows cannot be factorized
    as they are (rescale them; mfcli's readers do it for values near the limits)."""
    x_sq = float(data.sq_norm())
    if not math.isfinite(x_sq):
        raise DataError(f"the data's squared Frobenius norm overflows {np.dtype(data.dtype).name} (values too close "
                        "to the floating-point limits); divide the data by a constant (e.g. their largest value) "
                        "before factorizing")
    return x_sq


def single_layer_result(model: str, W: np.ndarray, H: np.ndarray, monitor: Monitor, params: dict[str, Any],
                        relative_error: float, **layer_fields: Any) -> Result:
    """A one-layer :class:`~mfcli.result.Result` from a finished loop; a
    :class:`~mfcli.errors.ConvergenceWarning` when max_iter/max_time stopped it first."""
    require_finite_factors(model, monitor.hint, W=W, H=H)
    attrs = dict(layer_fields.pop("attrs", {}) or {})
    attrs.setdefault("stop_reason", monitor.reason)
    attrs.setdefault("converged", monitor.converged)
    layer = Layer(W=W, H=H, relative_error=float(relative_error), history=monitor.history(), attrs=attrs,
                  **layer_fields)
    warn_not_converged(monitor, model)
    return Result(model=model, layers=[layer], params=dict(params),
                  summary={"relative_error": float(relative_error), "stop_reason": monitor.reason},
                  seconds=monitor.elapsed, converged=monitor.converged, n_iter=monitor.iteration)


def require_finite_factors(model: str, hint: str | None = None, **factors: np.ndarray) -> None:
    """A :class:`~mfcli.errors.NumericalError` when a factor holds NaN/Inf or is empty: no run
    returns a non-finite or empty answer."""
    for name, F in factors.items():
        F = np.asarray(F)
        if F.size == 0:
            raise NumericalError(f"{model} returned an empty {name} (shape {F.shape})")
        if not np.all(np.isfinite(F)):
            raise NumericalError(f"{model} produced NaN or Inf in {name}: {hint or DEFAULT_HINT}")
