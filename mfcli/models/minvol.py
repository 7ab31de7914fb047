"""Minimum-volume NMF with abundances on the unit simplex.

    min_{W >= 0, H >= 0, 1^T H = 1^T}  1/2 ||X - W H||_F^2 + lambda/2 logdet(W^T W + delta I)

Leplat, Ang & Gillis, "Minimum-volume rank-deficient nonnegative matrix factorizations",
ICASSP 2019, and Leplat, Gillis & Ang, "Blind audio source separation with minimum-volume
beta-divergence NMF", IEEE TSP 68, 2020. The data term pulls the columns of W (the
endmembers) towards the data; the volume term shrinks the simplex they span, so it wraps the
data cloud tightly even when no pixel is pure -- the reason min-vol NMF is among the best
performers for blind unmixing.

As in the paper, ``lambda`` is given relative to the initial point:
lambda = lambda_rel * ||X - W0 H0||_F^2 / |logdet(W0^T W0 + delta I)|.

Each iteration is one majorization-minimization step on W and one exact step on H, so the
objective never increases:

- W: logdet is concave, so logdet(Q) <= logdet(Q_k) + <Q_k^{-1}, Q - Q_k> with
  Q_k = W_k^T W_k + delta I. Minimizing the resulting quadratic
  1/2 ||X - W H||^2 + lambda/2 tr(W Q_k^{-1} W^T) over W >= 0 is a nonnegative least
  squares problem per row of W, with Gram matrix H H^T + lambda Q_k^{-1} and right-hand side
  H X^T; it is solved exactly by block principal pivoting (:mod:`mfcli.models.nnls`).
  (The paper takes a few projected fast-gradient steps instead.)
- H: exact fully constrained least squares (nonnegative, sum-to-one columns).

NumPy/SciPy only; progress through ``callback(iteration, relative_error, **info)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from mfcli.errors import ParameterError
from mfcli.metrics import relative_error_from_grams
from mfcli.models.endmembers import endmember_indices
from mfcli.models.nnls import fcls, nnls_from_grams
from mfcli.validation import as_float_matrix, check_rank, require_finite, require_nonnegative

INITS = ("spa", "vca", "nfindr")


def _centering(r: int, affine: bool) -> np.ndarray:
    return np.eye(r) - np.full((r, r), 1.0 / r) if affine else np.eye(r)


def _logdet(WtW: np.ndarray, delta: float, J: np.ndarray | None = None) -> float:
    if J is not None:
        WtW = J @ WtW @ J
    sign, value = np.linalg.slogdet(WtW + delta * np.eye(WtW.shape[0]))
    return float(value) if sign > 0 else float("-inf")


def _minvol_loop(X: np.ndarray, W: np.ndarray, H: np.ndarray, lam: float, delta: float, max_iter: int,
                 tol: float, callback: Callable | None, J: np.ndarray):
    """Alternate the MM step on W and the exact FCLS step on H. Returns (W, H, history, converged)."""
    x_sq_norm = float(np.vdot(X, X))
    r = W.shape[1]
    identity = np.eye(r)
    history: dict[str, list[float]] = {"relative_error": [], "objective": [], "logdet": [], "seconds": []}
    start = time.perf_counter()
    previous = np.inf
    converged = False
    WtW = W.T @ W
    for iteration in range(1, max_iter + 1):
        # W step: rows of W solve NNLS with Gram H H^T + lambda (W_k^T W_k + delta I)^{-1}.
        HHt = H @ H.T
        Q_inverse = J @ np.linalg.inv(J @ WtW @ J + delta * identity) @ J
        gram = HHt + lam * (Q_inverse + Q_inverse.T) / 2
        XHt = X @ H.T.astype(X.dtype, copy=False)
        W = nnls_from_grams(gram, np.asarray(XHt, dtype=np.float64).T, init=W.T).T
        # H step: exact FCLS for the new W.
        WtW = W.T @ W
        WtX = np.asarray(W.T.astype(X.dtype) @ X, dtype=np.float64)
        H = fcls(W, None, WtW=WtW, WtX=WtX).astype(np.float64)
        cross = float(np.vdot(WtX, H))
        rel = relative_error_from_grams(x_sq_norm, cross, WtW, H @ H.T)
        logdet = _logdet(WtW, delta, J)
        objective = 0.5 * rel * rel * x_sq_norm + 0.5 * lam * logdet
        history["relative_error"].append(rel)
        history["objective"].append(objective)
        history["logdet"].append(logdet)
        history["seconds"].append(time.perf_counter() - start)
        if callback is not None:
            callback(iteration, rel, objective=objective, logdet=logdet, total=max_iter)
        if abs(previous - objective) <= tol * max(abs(objective), 1e-300):
            converged = True
            break
        previous = objective
    return W, H, {k: np.asarray(v) for k, v in history.items()}, converged


def minvol_nmf(X, rank: int, *, lambda_rel: float = 0.1, delta: float = 0.1, init: str = "spa",
               W0: np.ndarray | None = None, H0: np.ndarray | None = None, max_iter: int = 200,
               tol: float = 1e-7, seed: int = 0, callback: Callable | None = None, affine: bool = False, normalize: str = 'paper') -> dict:
    """Minimum-volume NMF (see the module docstring). Returns a dict with ``W`` (m x r),
    ``H`` (r x n, columns on the simplex), ``lambda`` (absolute), ``history``, ``n_iter``,
    ``converged``, ``init_indices`` (pixels of the initial endmembers, when extracted).

    ``init``: spa, vca or nfindr picks the initial endmembers among the pixels (unless ``W0``
    is given); H0 defaults to FCLS for W0. ``lambda_rel`` weighs the volume against the
    initial fit; ``delta`` keeps logdet finite for rank-deficient W (same units as W^T W).
    """
    X = as_float_matrix(X)
    require_finite(X)
    require_nonnegative(X, "minimum-volume NMF")
    m, n = X.shape
    rank = check_rank(rank, (m, n))
    if lambda_rel < 0:
        raise ParameterError(f"lambda must be >= 0, got {lambda_rel}")
    if delta <= 0:
        raise ParameterError(f"delta must be > 0 (it keeps logdet finite), got {delta}")
    init_indices = None
    if W0 is None:
        if init not in INITS:
            raise ParameterError(f"unknown minvol init '{init}'; use one of {', '.join(INITS)}")
        init_indices = endmember_indices(X, rank, init, seed)
        W0 = X[:, init_indices]
    W = np.array(W0, dtype=np.float64)
    if W.shape != (m, rank):
        raise ParameterError(f"initial W has shape {W.shape}, expected {(m, rank)}")
    H = fcls(W, X).astype(np.float64) if H0 is None else np.array(H0, dtype=np.float64)
    WtW = W.T @ W
    x_sq_norm = float(np.vdot(X, X))
    WtX = np.asarray(W.T.astype(X.dtype) @ X, dtype=np.float64)
    fit0 = relative_error_from_grams(x_sq_norm, float(np.vdot(WtX, H)), WtW, H @ H.T) ** 2 * x_sq_norm
    J = _centering(rank, affine)
    logdet0 = _logdet(WtW, delta, J)
    if normalize == "paper":
        lam = lambda_rel * max(fit0, 1e-6) / max(abs(logdet0), 1e-12) if np.isfinite(logdet0) else lambda_rel
    else:
        G = J @ WtW @ J
        scale = np.trace(G) / max(rank - 1 if affine else rank, 1)
        delta = delta * scale
        lam = lambda_rel * max(fit0, 1e-12 * x_sq_norm)
    W, H, history, converged = _minvol_loop(X, W, H, lam, delta, max_iter, tol, callback, J)
    return {"W": W.astype(X.dtype), "H": H.astype(X.dtype), "lambda": lam, "delta": delta, "history": history,
            "n_iter": len(history["objective"]), "converged": converged, "init_indices": init_indices}


class MinVolNMF:
    """Estimator wrapper of :func:`minvol_nmf` (fit / fit_transform / transform)."""

    def __init__(self, rank: int, lambda_rel: float = 0.1, delta: float = 0.1, init: str = "spa",
                 max_iter: int = 200, tol: float = 1e-7, seed: int = 0, callback: Callable | None = None):
        self.rank = rank
        self.lambda_rel = lambda_rel
        self.delta = delta
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed
        self.callback = callback

    def fit(self, X, y=None):
        out = minvol_nmf(X, self.rank, lambda_rel=self.lambda_rel, delta=self.delta, init=self.init,
                         max_iter=self.max_iter, tol=self.tol, seed=self.seed, callback=self.callback)
        self.components_ = out["W"]
        self.coefficients_ = out["H"]
        self.lambda_ = out["lambda"]
        self.history_ = out["history"]
        self.n_iter_ = out["n_iter"]
        self.converged_ = out["converged"]
        self.relative_error_ = float(out["history"]["relative_error"][-1])
        return self

    def fit_transform(self, X, y=None):
        return self.fit(X).coefficients_

    def transform(self, X):
        """Abundances of new data for the fitted endmembers (FCLS)."""
        return fcls(self.components_, as_float_matrix(X))
