"""What every solver shares: stopping rules, the iteration monitor, Result building, the
estimator base class, and input preparation.

A solver is written as a private loop that calls ``monitor(relative_error, objective=...)``
once per iteration; the :class:`Monitor` records the history (relative error, seconds per
iteration, objective), reports progress through ``callback(iteration, relative_error, **info)``
and says when to stop: ``max_iter`` iterations, a relative decrease of the objective below
``tol``, a relative error at or below ``target_error``, or ``max_time`` seconds.
NumPy only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mfcli.errors import DataError, ParameterError
from mfcli.metrics import relative_error_from_residual, residual_sq_from_grams
from mfcli.models.matrix import DataMatrix, as_data_matrix, is_sparse
from mfcli.result import Layer, Result
from mfcli.validation import check_rank, require_finite, require_nonnegative

Callback = Callable[..., None]


@dataclass
class Stopping:
    """When an iterative solver stops (whichever comes first).

    ``tol``: stop when the objective decreased by less than ``tol`` relative to its previous
    value over one iteration (0 disables). ``target_error``: stop once the relative error
    ||X - WH||_F / ||X||_F is at most this. ``max_time``: seconds, checked after each iteration.
    """

    max_iter: int = 200
    tol: float = 1e-4
    target_error: float | None = None
    max_time: float | None = None

    def __post_init__(self) -> None:
        if int(self.max_iter) != self.max_iter or self.max_iter < 1:
            raise ParameterError(f"max_iter must be a positive integer, got {self.max_iter}")
        if self.tol is None or self.tol < 0:
            raise ParameterError(f"tol must be >= 0, got {self.tol}")
        if self.target_error is not None and not 0 <= self.target_error < 1:
            raise ParameterError(f"target error must be in [0, 1), got {self.target_error}")
        if self.max_time is not None and self.max_time <= 0:
            raise ParameterError(f"max_time must be positive (seconds), got {self.max_time}")
        self.max_iter = int(self.max_iter)

    def as_dict(self) -> dict[str, Any]:
        return {"max_iter": self.max_iter, "tol": self.tol, "target_error": self.target_error,
                "max_time": self.max_time}


class Monitor:
    """History, progress and stopping for one iterative loop.

    Call ``monitor(relative_error, objective=None, **extra)`` after every iteration; it returns
    True when the loop must stop, with ``converged`` and ``reason`` set. ``objective`` (the
    value the solver decreases, e.g. a penalised loss or a beta-divergence) drives ``tol``;
    without it the relative error does.
    """

    def __init__(self, stopping: Stopping, callback: Callback | None = None, stage: str | None = None):
        self.stopping = stopping
        self.callback = callback
        self.stage = stage
        self.iteration = 0
        self.errors: list[float] = []
        self.seconds: list[float] = []
        self.objectives: list[float] = []
        self.extra: dict[str, list[float]] = {}
        self.converged = False
        self.reason = "max_iter"
        self.started = time.perf_counter()
        self._last = self.started

    def restart_clock(self) -> None:
        """Start timing iterations now (after the initialization)."""
        self._last = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def __call__(self, relative_error: float, objective: float | None = None, **extra: float) -> bool:
        now = time.perf_counter()
        self.iteration += 1
        self.seconds.append(now - self._last)
        self._last = now
        self.errors.append(float(relative_error))
        if objective is not None:
            self.objectives.append(float(objective))
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

    def _should_stop(self, now: float) -> bool:
        stop = self.stopping
        values = self.objectives if self.objectives else self.errors
        if stop.target_error is not None and self.errors[-1] <= stop.target_error:
            self.converged, self.reason = True, "target_error"
            return True
        if stop.tol > 0 and len(values) >= 2:
            previous, current = values[-2], values[-1]
            if previous == 0 or (previous - current) <= stop.tol * abs(previous):
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
        for key, values in self.extra.items():
            out[key] = np.asarray(values, dtype=np.float64)
        return out


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
              stage: str | None = None) -> tuple[DataMatrix, int, Stopping, Monitor]:
    """What every single-layer model does first: wrap and check the data (:func:`prepare_data`),
    check the rank, and set up the stopping rules and the monitor (whose clock starts now, so
    the run's time includes the initialization)."""
    data = prepare_data(X, model, nonnegative=nonnegative, dtype=dtype)
    rank = check_rank(rank, data.shape)
    stopping = Stopping(max_iter=max_iter, tol=tol, target_error=target_error, max_time=max_time)
    return data, rank, stopping, Monitor(stopping, callback, stage=stage or model)


def single_layer_result(model: str, W: np.ndarray, H: np.ndarray, monitor: Monitor, params: dict[str, Any],
                        relative_error: float, **layer_fields: Any) -> Result:
    """A one-layer :class:`~mfcli.result.Result` from a finished loop."""
    attrs = dict(layer_fields.pop("attrs", {}) or {})
    attrs.setdefault("stop_reason", monitor.reason)
    layer = Layer(W=W, H=H, relative_error=float(relative_error), history=monitor.history(), attrs=attrs,
                  **layer_fields)
    return Result(model=model, layers=[layer], params=dict(params),
                  summary={"relative_error": float(relative_error), "stop_reason": monitor.reason},
                  seconds=monitor.elapsed, converged=monitor.converged, n_iter=monitor.iteration)


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
        return solve_coefficients(self.result_.layers[0].data_basis, X, self._transform)
