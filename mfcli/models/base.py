"""What every solver shares: stopping rules, the iteration monitor, Result building, the
estimator base class, and input preparation.

A solver is written as a private loop that calls ``monitor(relative_error, objective=...)``
once per iteration; the :class:`Monitor` records the history (relative error, seconds per
iteration, objective), reports progress through ``callback(iteration, relative_error, **info)``
and says when to stop (:class:`Stopping`): a relative error at or below ``target_error``; else
too little progress of the accepted iterates (``tol``, measured over a window of them); else
``max_iter`` iterations or ``max_time`` seconds. A step the loop tried and threw away (a
rejected extrapolation, a restart) is reported with ``accepted=False``: it counts as an
iteration (it cost a pass over the data) but never as progress or as its absence. A NaN or Inf
relative error or objective stops the run with a :class:`~mfcli.errors.NumericalError`.
NumPy only.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mfcli.errors import ConvergenceWarning, DataError, NumericalError, ParameterError
from mfcli.metrics import relative_error_from_residual, residual_sq_from_grams
from mfcli.models.matrix import DataMatrix, as_data_matrix, is_sparse
from mfcli.result import Layer, Result
from mfcli.validation import check_rank, require_finite, require_nonnegative

Callback = Callable[..., None]

# The tol rule looks at the last TOL_WINDOW accepted iterations: one slow step (a plain step after
# an extrapolated run, a stall of the inner sweeps) does not stop a run that is still moving.
TOL_WINDOW = 10

DEFAULT_HINT = ("the data's scale is the likely cause (values near the limits of floating point: rescale the "
                "data), or a parameter that makes the updates overflow")


def _finite_number(value, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise ParameterError(f"{name} must be a finite number, got {value}")
    return value


@dataclass
class Stopping:
    """When an iterative solver stops.

    ``target_error``: stop once the relative error ||X - WH||_F / ||X||_F is at most this; when
    it is given, ``tol`` is not applied (the run goes on until the target, ``max_iter`` or
    ``max_time``).

    ``tol`` (0 disables): stop when the objective f of the accepted iterates decreased by less
    than ``tol`` per iteration, relative to its current value, on average over the last
    ``window`` accepted iterations:

        f_{k-w} - f_k <= w * tol * |f_k| .

    Rejected steps are not counted. As the decrease slows down near a minimum, a run stopped by
    ``tol`` gains at most about 50 tol (relative) in objective, 25 tol in relative error, from
    50 more iterations.

    ``max_iter``: iterations (passes), accepted or not. ``max_time``: seconds since the run
    began (initialization included), checked after each iteration. A run stopped by either
    before the rules above is not converged (a :class:`~mfcli.errors.ConvergenceWarning`).
    """

    max_iter: int = 200
    tol: float = 1e-4
    target_error: float | None = None
    max_time: float | None = None
    window: int = TOL_WINDOW

    def __post_init__(self) -> None:
        if isinstance(self.max_iter, bool) or int(self.max_iter) != self.max_iter or self.max_iter < 1:
            raise ParameterError(f"max_iter must be a positive integer, got {self.max_iter}")
        if self.tol is None:
            raise ParameterError("tol must be a number >= 0 (0 disables it), got None")
        self.tol = _finite_number(self.tol, "tol")
        if self.tol < 0:
            raise ParameterError(f"tol must be >= 0 (0 disables it), got {self.tol}")
        if self.target_error is not None:
            self.target_error = _finite_number(self.target_error, "target error")
            if not 0 <= self.target_error < 1:
                raise ParameterError(f"target error must be in [0, 1), got {self.target_error}")
        if self.max_time is not None:
            self.max_time = _finite_number(self.max_time, "max_time")
            if self.max_time <= 0:
                raise ParameterError(f"max_time must be positive (seconds), got {self.max_time}")
        if int(self.window) != self.window or self.window < 1:
            raise ParameterError(f"window must be a positive integer, got {self.window}")
        self.max_iter = int(self.max_iter)
        self.window = int(self.window)

    def as_dict(self) -> dict[str, Any]:
        return {"max_iter": self.max_iter, "tol": self.tol, "target_error": self.target_error,
                "max_time": self.max_time}


class Monitor:
    """History, progress and stopping for one iterative loop.

    Call ``monitor(relative_error, objective=None, accepted=True, **extra)`` after every
    iteration with the error and objective of the current (accepted) iterate; it returns True
    when the loop must stop, with ``converged`` and ``reason`` set (``target_error``, ``tol``,
    ``max_iter``, ``max_time``). ``objective`` (the value the solver decreases, e.g. a penalised
    loss or a beta-divergence) drives ``tol``; without it the relative error does. ``scale``:
    what the decrease is relative to, for objectives that are not a positive size (e.g. with a
    log-determinant term; default |objective|). ``accepted=False``: the loop tried a step and
    discarded it; it counts for ``max_iter`` and ``max_time`` but not for ``tol``. ``hint``: the
    likely cause named when a value is NaN/Inf.
    """

    def __init__(self, stopping: Stopping, callback: Callback | None = None, stage: str | None = None,
                 hint: str | None = None, exact_error: float = 0.0):
        self.stopping = stopping
        self.exact_error = exact_error  # a relative error this small is an exact fit: converged
        self.callback = callback
        self.stage = stage
        self.hint = hint or DEFAULT_HINT
        self.iteration = 0
        self.errors: list[float] = []
        self.seconds: list[float] = []
        self.objectives: list[float] = []
        self.rejected: list[bool] = []
        self.extra: dict[str, list[float]] = {}
        self.converged = False
        self.reason = "max_iter"
        self.progress: float | None = None  # the last measured relative decrease per accepted iteration
        self._accepted: list[float] = []    # the tol rule's values: objective (or error) of accepted iterates
        self._scales: list[float] = []      # and what their decrease is relative to (|value| unless given)
        self.started = time.perf_counter()
        self._last = self.started

    def restart_clock(self) -> None:
        """Start timing iterations now (after the initialization)."""
        self._last = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def time_left(self) -> float | None:
        """Seconds left before ``max_time`` (None without a time limit; may be negative)."""
        if self.stopping.max_time is None:
            return None
        return self.stopping.max_time - self.elapsed

    def out_of_time(self) -> bool:
        left = self.time_left()
        return left is not None and left <= 0

    def record_start(self, relative_error: float, objective: float | None = None) -> None:
        """Record the starting point (iteration 0, e.g. a layer-wise initialization) as the first
        accepted iterate, so the tol rule measures progress from it."""
        self._check_finite(relative_error, objective, 0)
        self.errors.append(float(relative_error))
        if objective is not None:
            self.objectives.append(float(objective))
        self._accepted.append(float(relative_error if objective is None else objective))
        self._scales.append(abs(self._accepted[-1]))

    def __call__(self, relative_error: float, objective: float | None = None, *, accepted: bool = True,
                 scale: float | None = None, **extra: float) -> bool:
        now = time.perf_counter()
        self.iteration += 1
        self._check_finite(relative_error, objective, self.iteration)
        self.seconds.append(now - self._last)
        self._last = now
        self.errors.append(float(relative_error))
        if objective is not None:
            self.objectives.append(float(objective))
        self.rejected.append(not accepted)
        if accepted:
            value = float(relative_error if objective is None else objective)
            self._accepted.append(value)
            self._scales.append(abs(value) if scale is None else float(scale))
        for key, value in extra.items():
            self.extra.setdefault(key, []).append(float(value))
        if self.callback is not None:
            info: dict[str, Any] = {"total": self.stopping.max_iter, "seconds": now - self.started}
            if self.stage:
                info["stage"] = self.stage
            if objective is not None:
                info["objective"] = float(objective)
            self.callback(self.iteration, float(relative_error), **info)
        return self._should_stop(now)

    def resume(self) -> bool:
        """Go on after a stop by ``tol`` (a loop that switches to a more precise way of measuring
        its progress): the tol window starts again from the current iterate. False (and the
        stop stands) when max_iter or max_time is reached."""
        if self.reason != "tol":
            return False
        if self.iteration >= self.stopping.max_iter or (
                self.stopping.max_time is not None and self.elapsed >= self.stopping.max_time):
            return False
        self._accepted, self._scales = self._accepted[-1:], self._scales[-1:]
        self.converged, self.reason, self.progress = False, "max_iter", None
        return True

    def _check_finite(self, relative_error, objective, iteration: int) -> None:
        values = [relative_error] if objective is None else [relative_error, objective]
        if all(math.isfinite(float(v)) for v in values):
            return
        what = "NaN" if any(math.isnan(float(v)) for v in values) else "Inf"
        where = f"{self.stage} " if self.stage else "the solver "
        raise NumericalError(f"{where}produced {what} at iteration {iteration}: {self.hint}")

    def _tol_met(self) -> bool:
        stop = self.stopping
        values = self._accepted
        if stop.tol <= 0 or len(values) <= stop.window:
            return False
        before, now = values[-1 - stop.window], values[-1]
        scale = self._scales[-1]
        if scale == 0.0:  # an exact fit: nothing left to decrease
            self.progress = 0.0
            return True
        self.progress = (before - now) / (stop.window * scale)
        return self.progress <= stop.tol

    def _should_stop(self, now: float) -> bool:
        stop = self.stopping
        if stop.target_error is not None and self.errors[-1] <= stop.target_error:
            self.converged, self.reason = True, "target_error"
            return True
        if stop.target_error is None and stop.tol > 0 and self.errors[-1] <= self.exact_error:
            self.converged, self.reason, self.progress = True, "tol", 0.0
            return True
        if stop.target_error is None and self._tol_met():
            self.converged, self.reason = True, "tol"
            return True
        if self.iteration >= stop.max_iter:
            self.converged, self.reason = False, "max_iter"
            return True
        if stop.max_time is not None and now - self.started >= stop.max_time:
            self.converged, self.reason = False, "max_time"
            return True
        return False

    def history(self) -> dict[str, np.ndarray]:
        out = {"relative_error": np.asarray(self.errors, dtype=np.float64),
               "seconds": np.asarray(self.seconds, dtype=np.float64)}
        if self.objectives:
            out["objective"] = np.asarray(self.objectives, dtype=np.float64)
        if any(self.rejected):
            out["rejected"] = np.asarray(self.rejected, dtype=np.float64)
        for key, values in self.extra.items():
            out[key] = np.asarray(values, dtype=np.float64)
        return out

    def stop_message(self, what: str | None = None) -> str | None:
        """One line saying why a run that did not converge stopped (None when it converged)."""
        if self.converged:
            return None
        what = what or self.stage or "the solver"
        limit = (f"max_iter ({self.stopping.max_iter} iterations)" if self.reason == "max_iter"
                 else f"max_time ({self.stopping.max_time:g} s)")
        error = f"relative error {self.errors[-1]:.6g}" if self.errors else "no iteration done"
        stop = self.stopping
        if stop.target_error is not None:
            rule = f"target error {stop.target_error:g} not reached"
        elif stop.tol > 0:
            rule = (f"still improving by {self.progress:.2g} per iteration (tol {stop.tol:g})"
                    if self.progress is not None else f"tol {stop.tol:g} not met")
        else:
            rule = "tol 0 (no convergence test)"
        return f"{what} stopped at {limit} before converging: {rule}; {error}. Raise max_iter/max_time to go on."


def warn_not_converged(monitor: Monitor, what: str | None = None) -> None:
    """A :class:`~mfcli.errors.ConvergenceWarning` when ``max_iter``/``max_time`` ended the run
    before its stopping rule was met (scikit-learn's convention); the CLI prints it as one line."""
    message = monitor.stop_message(what)
    if message is not None:
        warnings.warn(message, ConvergenceWarning, stacklevel=3)


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


def direct_relative_error(data: DataMatrix, W: np.ndarray, H: np.ndarray, x_sq_norm: float) -> float:
    """||X - WH||_F / ||X||_F from the residual itself, block of columns by block, in float64: one
    more pass over X, exact where the Gram formula is not (fits better than about 1e-6)."""
    from mfcli.models.matrix import column_blocks

    W64 = np.asarray(W, dtype=np.float64)
    total = 0.0
    for start, stop, block in column_blocks(data):
        residual = np.asarray(block, dtype=np.float64) - W64 @ np.asarray(H[:, start:stop], dtype=np.float64)
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


def gram_solve(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """G^+ B for a small symmetric positive semidefinite Gram matrix G (r x r) and a wide B (r x n):
    the least-squares coefficients of every column at once, in float64. One small
    pseudo-inverse and one matrix product (LAPACK's least squares with thousands of right-hand
    sides is far slower)."""
    G = np.asarray(gram, dtype=np.float64)
    return np.linalg.pinv(G, hermitian=True) @ np.asarray(rhs, dtype=np.float64)


def frobenius_residual_sq(x_sq_norm: float, W: np.ndarray, XHt: np.ndarray, HHt: np.ndarray,
                          WtW: np.ndarray | None = None) -> float:
    """||X - WH||_F^2 from ``X H^T`` (m x r) and the Gram matrices, in float64, without forming WH
    (``WtW`` = W^T W is computed from W when not given). Not clipped at 0."""
    W64 = np.asarray(W, dtype=np.float64)
    WtW = W64.T @ W64 if WtW is None else WtW
    cross = float(np.vdot(W64, np.asarray(XHt, dtype=np.float64)))
    return residual_sq_from_grams(x_sq_norm, cross, np.asarray(WtW, dtype=np.float64),
                                  np.asarray(HHt, dtype=np.float64))


def frobenius_relative_error(x_sq_norm: float, W: np.ndarray, XHt: np.ndarray, WtW: np.ndarray,
                             HHt: np.ndarray) -> float:
    """||X - WH||_F / ||X||_F from ``X H^T`` (m x r) and the two Gram matrices, in float64."""
    return relative_error_from_residual(x_sq_norm, frobenius_residual_sq(x_sq_norm, W, XHt, HHt, WtW))


class FactorizationEstimator:
    """Thin scikit-learn-style wrapper of a model's public function.

    Subclasses set ``_function`` (the public function, returning a Result). ``fit`` stores
    ``result_``, ``W_``, ``H_``, ``relative_error_``, ``n_iter_``, ``history_``;
    ``transform(X)`` solves the coefficients of new columns with ``W_`` fixed (exact batched
    nonnegative least squares unless the model says otherwise).
    """

    _function: Callable[..., Result]
    _transform = "nnls"
    _nonnegative = True  # the model needs X >= 0 (fit and transform refuse negative data)

    def __init__(self, rank: int, **params: Any):
        self.rank = rank
        self.params = params

    def fit(self, X, y=None, **fit_params: Any):
        result = type(self)._function(X, self.rank, **{**self.params, **fit_params})
        layer = result.layers[0]
        self.result_ = result
        self.W_ = layer.W
        self.H_ = layer.H
        self.relative_error_ = layer.relative_error
        self.n_iter_ = result.n_iter
        self.history_ = layer.history
        self._fitted_layer(layer)
        return self

    def _fitted_layer(self, layer: Layer) -> None:
        """Hook for model-specific fitted attributes."""

    def fit_transform(self, X, y=None, **fit_params: Any) -> np.ndarray:
        return self.fit(X, **fit_params).H_

    def _check_fitted(self) -> None:
        if not hasattr(self, "W_"):
            raise ParameterError(f"this {type(self).__name__} is not fitted yet; call fit first")

    def transform(self, X) -> np.ndarray:
        """Coefficients of the columns of X for the fitted data-space basis, solved the model's
        way (``_transform``: nnls, fcls, lstsq or assign; see :func:`~mfcli.models.nnls.solve_coefficients`)."""
        from mfcli.models.nnls import solve_coefficients

        self._check_fitted()
        X = prepare_data(X, type(self).__name__, nonnegative=self._nonnegative)  # finite (and >= 0): as fit
        return solve_coefficients(self.result_.layers[0].data_basis, X, self._transform)
