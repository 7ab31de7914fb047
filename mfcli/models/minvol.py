"""Minimum-volume NMF with abundances on the unit simplex.

Objective (Leplat, Ang & Gillis, "Minimum-volume rank-deficient nonnegative matrix
factorizations", ICASSP 2019; Leplat, Gillis & Ang, "Blind audio source separation with
minimum-volume beta-divergence NMF", IEEE TSP 68, 2020):

    min_{W >= 0, H >= 0, 1^T H = 1^T}  1/2 ||X - W H||_F^2 + lambda/2 logdet(J W^T W J + delta I)

The data term pulls the endmembers (columns of W) towards the data; the volume term shrinks
the simplex they span so that it wraps the data cloud tightly even when no pixel is pure.

Two choices of this implementation, each an option:

- ``volume="affine"`` (default): J = I - 11^T/r centres the endmembers, so logdet measures the
  volume of the simplex conv(w_1..w_r) itself -- the quantity minimum-volume unmixing is about
  (Craig 1994; MVC-NMF, Miao & Qi 2007) and invariant to translating it. ``volume="origin"``
  (J = I) is the papers' logdet(W^T W + delta I), the volume of conv(0, w_1..w_r): it also
  shrinks dark endmembers towards 0, which on Samson collapses the water endmember.
- ``normalize="l1"`` (default): every pixel is divided by its sum before fitting. If
  x = E a with a on the simplex, x / 1^T x is a convex combination of the endmembers
  e_k / 1^T e_k, so the normalized data lie exactly on a simplex whatever the brightness of
  each pixel, and every pixel weighs the same in the fit (dark materials such as water are no
  longer drowned by bright ones). The endmembers' brightness is restored afterwards from the
  sum-to-one constraint on the original data (least squares on C^T u = 1 with C the
  coefficients of the original pixels, b_k = 1/u_k), and H is recomputed by exact FCLS.
  ``"l2"`` divides by the Euclidean norm (approximately a simplex); ``"none"`` fits X as given.

``lam`` and ``delta`` are scale-free: lambda = lam ||X'||_F^2 (X' the data as fitted) and
delta = delta_rel tr(J W0^T W0 J)/(r - 1) (the mean squared edge scale of the initial simplex).
(The papers set lambda relative to the initial fit and logdet instead.)

Each iteration is one majorization-minimization step on W and one exact step on H, so the
objective never increases:

- W: logdet is concave, so logdet(Q) <= logdet(Q_k) + <Q_k^{-1}, Q - Q_k> with
  Q_k = J W_k^T W_k J + delta I. The majorizer 1/2 ||X - W H||^2 + lambda/2 tr(W J Q_k^{-1} J W^T)
  is minimized over W >= 0 exactly: one nonnegative least squares problem per row of W with
  Gram matrix H H^T + lambda J Q_k^{-1} J, by block principal pivoting (the papers take a few
  projected fast-gradient steps instead).
- H: exact fully constrained least squares (nonnegative, sum-to-one columns).

With the defaults (init spa, lam 0.004, delta 0.5) ``benchmarks/bench_unmixing.py`` measures
about 1.5 degrees mean spectral angle on Samson and 2.6 on Moffett; its delta sweep (0.3 to 1)
stays within 0.3 degree of that.
NumPy/SciPy only; progress through ``callback(iteration, relative_error, **info)``.
"""

from __future__ import annotations

import numpy as np

from mfcli.errors import DataError, ParameterError
from mfcli.metrics import relative_error_from_grams
from mfcli.models.base import FactorizationEstimator, Monitor, Stopping, single_layer_result
from mfcli.models.endmembers import endmember_indices
from mfcli.models.nnls import fcls, nnls_from_grams
from mfcli.models.registry import check_number
from mfcli.validation import as_float_matrix, check_rank, require_finite, require_nonnegative

INITS = ("spa", "vca", "nfindr")
VOLUMES = ("affine", "origin")
NORMALIZATIONS = ("l1", "l2", "none")
DEFAULT_LAM = 0.004
DEFAULT_DELTA = 0.5


def _centering(rank: int, volume: str) -> np.ndarray:
    if volume == "affine" and rank > 1:
        return np.eye(rank) - np.full((rank, rank), 1.0 / rank)
    return np.eye(rank)


def simplex_logdet(W: np.ndarray, delta: float, volume: str = "affine") -> float:
    """logdet(J W^T W J + delta I), the volume term (J centres the columns when affine)."""
    W = np.asarray(W, dtype=np.float64)
    J = _centering(W.shape[1], volume)
    sign, value = np.linalg.slogdet(J @ (W.T @ W) @ J + delta * np.eye(W.shape[1]))
    return float(value) if sign > 0 else float("-inf")


def pixel_scales(X: np.ndarray, normalize: str) -> np.ndarray:
    """The number each pixel is divided by: its sum (l1), its norm (l2) or 1 (none)."""
    if normalize == "none":
        return np.ones(X.shape[1])
    scales = X.sum(axis=0, dtype=np.float64) if normalize == "l1" else \
        np.sqrt(np.einsum("ij,ij->j", X, X, dtype=np.float64))
    if np.any(scales <= 0):
        bad = int(np.count_nonzero(scales <= 0))
        raise DataError(f"{bad} pixels are all zero, so they cannot be normalized; remove them or use "
                        "--param normalize=none")
    return scales


def _minvol_loop(X: np.ndarray, x_sq_norm: float, W: np.ndarray, H: np.ndarray, lam: float, delta: float,
                 J: np.ndarray, monitor: Monitor):
    """MM step on W, exact FCLS on H, until the monitor stops (``x_sq_norm`` = ||X||_F^2).
    Returns (W, H, relative error)."""
    r = W.shape[1]
    identity = np.eye(r)
    WtW = W.T @ W
    monitor.restart_clock()
    while True:
        Q_inverse = J @ np.linalg.inv(J @ WtW @ J + delta * identity) @ J
        gram = H @ H.T + lam * (Q_inverse + Q_inverse.T) / 2
        XHt = X @ H.T
        W = nnls_from_grams(gram, XHt.T, init=W.T).T
        WtW = W.T @ W
        WtX = W.T @ X
        H = fcls(W, None, WtW=WtW, WtX=WtX)
        error = relative_error_from_grams(x_sq_norm, float(np.vdot(WtX, H)), WtW, H @ H.T)
        sign, logdet = np.linalg.slogdet(J @ WtW @ J + delta * identity)
        fit = 0.5 * error * error * x_sq_norm
        objective = fit + 0.5 * lam * float(logdet)
        # logdet may be of either sign: progress is measured against the size of both terms
        if monitor(error, objective=objective, scale=fit + 0.5 * lam * abs(float(logdet)), logdet=float(logdet)):
            return W, H, error


def _restore_brightness(W: np.ndarray, H: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Endmembers in the original units: W diag(b) with 1/b the least-squares solution of
    C^T u = 1, C = H diag(scales) the coefficients of the original pixels."""
    C = H * scales[None, :]
    gram = C @ C.T
    u = np.linalg.lstsq(gram, C.sum(axis=1), rcond=None)[0]
    if np.any(u <= 0) or not np.all(np.isfinite(u)):
        u = nnls_from_grams(gram, C.sum(axis=1)[:, None])[:, 0]
    brightness = np.where(u > 0, 1.0 / np.where(u > 0, u, 1.0), 1.0)
    return W * brightness[None, :]


def minvol(X, rank: int, *, init: str = "spa", W=None, H=None, max_iter: int = 500, tol: float = 1e-6,
           target_error: float | None = None, max_time: float | None = None, seed: int = 0, callback=None,
           dtype=None, lam: float = DEFAULT_LAM, delta: float = DEFAULT_DELTA, volume: str = "affine",
           normalize: str = "l1"):
    """Minimum-volume NMF X ~= W H, columns of H on the simplex (see the module docstring).

    ``init``: spa | vca | nfindr picks the initial endmembers among the pixels (``W`` given:
    start from it; ``H`` is then recomputed by FCLS). ``lam``: volume weight relative to
    ||X'||_F^2; ``delta``: relative to the initial simplex; ``volume``: affine | origin;
    ``normalize``: l1 | l2 | none (pixel normalization before fitting).

    Result layer: W (m x r endmembers, original units), H (FCLS abundances of the original
    pixels, columns summing to one); ``attrs``: lambda, delta (absolute), normalize, volume.
    """
    if volume not in VOLUMES:
        raise ParameterError(f"unknown volume '{volume}'; use affine or origin")
    if normalize not in NORMALIZATIONS:
        raise ParameterError(f"unknown normalize '{normalize}'; use l1, l2 or none")
    lam = check_number("lam", lam, low=0)
    delta = check_number("delta (> 0 keeps logdet finite)", delta, low=0, low_open=True)
    X = as_float_matrix(np.asarray(X), dtype=dtype)
    require_finite(X)
    require_nonnegative(X, "minvol")
    m, n = X.shape
    rank = check_rank(rank, (m, n))
    out_dtype = X.dtype
    scales = pixel_scales(X, normalize)
    fitted = np.asarray(X, dtype=np.float64) / scales[None, :]
    init_indices = None
    if W is None:
        if init not in INITS:
            raise ParameterError(f"unknown initialization '{init}' for minvol; choose spa, vca or nfindr")
        init_indices = endmember_indices(fitted, rank, init, seed)
        W0 = fitted[:, init_indices]
    else:
        W0 = np.array(W, dtype=np.float64)
        if W0.shape != (m, rank):
            raise ParameterError(f"initial W has shape {W0.shape}, expected {(m, rank)}")
        if normalize != "none":
            column_scale = W0.sum(axis=0) if normalize == "l1" else np.linalg.norm(W0, axis=0)
            W0 = W0 / np.where(column_scale > 0, column_scale, 1.0)
    H0 = fcls(W0, fitted)
    J = _centering(rank, volume)
    edge_scale = float(np.trace(J @ (W0.T @ W0) @ J)) / max(rank - 1 if volume == "affine" else rank, 1)
    delta_abs = delta * max(edge_scale, np.finfo(np.float64).tiny)
    fitted_sq_norm = float(np.vdot(fitted, fitted))
    lam_abs = lam * fitted_sq_norm
    stopping = Stopping(max_iter=max_iter, tol=tol, target_error=target_error, max_time=max_time)
    monitor = Monitor(stopping, callback, stage="minvol")
    W_fit, H_fit, _ = _minvol_loop(fitted, fitted_sq_norm, W0, H0, lam_abs, delta_abs, J, monitor)
    W_out = _restore_brightness(W_fit, H_fit, scales) if normalize != "none" else W_fit
    X64 = np.asarray(X, dtype=np.float64)
    WtX = W_out.T @ X64
    WtW = W_out.T @ W_out
    H_out = fcls(W_out, None, WtW=WtW, WtX=WtX)
    error = relative_error_from_grams(float(np.vdot(X64, X64)), float(np.vdot(WtX, H_out)), WtW, H_out @ H_out.T)
    params = {"rank": rank, "init": init if W is None else "given", "seed": seed, "lam": lam, "delta": delta,
              "volume": volume, "normalize": normalize, **stopping.as_dict()}
    attrs = {"lambda": lam_abs, "delta": delta_abs, "volume": volume, "normalize": normalize,
             "coefficients": "fcls"}
    result = single_layer_result("minvol", W_out.astype(out_dtype), H_out.astype(out_dtype), monitor, params,
                                 error, attrs=attrs)
    if init_indices is not None:
        result.layers[0].arrays["init_indices"] = np.asarray(init_indices, dtype=np.int64)
    return result


class MinVolNMF(FactorizationEstimator):
    """Estimator for :func:`minvol`; ``transform`` is FCLS (abundances on the simplex)."""

    _function = staticmethod(minvol)
    _transform = "fcls"
