"""Rank (signal subspace dimension) estimation for hyperspectral data: HySime.

Bioucas-Dias & Nascimento, "Hyperspectral subspace identification", IEEE TGRS 46(8), 2008.

1. Noise, by multiple regression: each band is regressed on all the others; the residual is
   the noise estimate. All bands at once: with R = Y Y^T and R^{-1} its inverse, the residual
   of band i is (R^{-1} Y)_i / (R^{-1})_ii, one m x m inverse and one product.
2. Signal correlation R_x = (Y - N)(Y - N)^T / n and noise correlation R_n = N N^T / n; for
   each eigenvector e_i of R_x, projecting onto it changes the mean squared error by
   delta_i = -e_i^T R_y e_i + 2 e_i^T R_n e_i (signal power gained minus twice the noise
   power added). The estimate is the number of eigenvectors with delta_i < 0, i.e. the k
   minimizing the mean squared error of the projection onto k of them.

NumPy only. The returned dict also holds the curves a scree plot needs.
"""

from __future__ import annotations

import numpy as np

from mfcli.errors import DataError
from mfcli.validation import as_float_matrix, require_finite


def _regression_inverse(R: np.ndarray) -> np.ndarray:
    """(R + eps I)^-1 for R = Y Y^T, eps = 1e-10 tr(R) / m keeping it invertible."""
    m = R.shape[0]
    regularization = 1e-10 * np.trace(R) / m
    return np.linalg.inv(R + regularization * np.eye(m))


def estimate_noise(Y: np.ndarray) -> np.ndarray:
    """Noise of every band by regression on the other bands (m x n, float64)."""
    Y = np.asarray(Y, dtype=np.float64)
    R_inverse = _regression_inverse(Y @ Y.T)
    return (R_inverse @ Y) / np.diag(R_inverse)[:, None]


def correlations(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R_y, R_n, R_x) of :func:`hysime` from one pass over Y (m x n).

    With R = Y Y^T, P = R~^-1 D^-1 (R~ = R + eps I, D = diag(R~^-1)), the noise of
    :func:`estimate_noise` is N = P^T Y, so Y N^T = R P, N N^T = P^T R P and
    R_x = (Y - N)(Y - N)^T / n = (R - R P - (R P)^T + P^T R P) / n: only R is needed.
    """
    Y = np.asarray(Y, dtype=np.float64)
    n = Y.shape[1]
    R = Y @ Y.T
    R_inverse = _regression_inverse(R)
    P = R_inverse / np.diag(R_inverse)[None, :]
    YNt = R @ P
    NNt = P.T @ R @ P
    return R / n, NNt / n, (R - YNt - YNt.T + NNt) / n


def hysime(X, max_rank: int | None = None) -> dict:
    """HySime signal subspace estimate of X (bands x pixels).

    Returns ``rank`` and, for the scree plot, ``eigenvalues`` (of the signal correlation,
    decreasing), ``signal_power`` (e_i^T R_y e_i), ``noise_power`` (e_i^T R_n e_i), ``mse``
    (the mean squared error of projecting onto the first k eigenvectors, k = 0..m, up to a
    constant) and ``noise_std`` per band.
    """
    X = as_float_matrix(np.asarray(X))
    require_finite(X)
    m, n = X.shape
    if n < m + 1:
        raise DataError(f"HySime needs more pixels than bands (got {n} pixels, {m} bands)")
    Ry, Rn, Rx = correlations(X)
    eigenvalues, eigenvectors = np.linalg.eigh((Rx + Rx.T) / 2)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    signal_power = np.einsum("ij,ik,kj->j", eigenvectors, Ry, eigenvectors)
    noise_power = np.einsum("ij,ik,kj->j", eigenvectors, Rn, eigenvectors)
    delta = -signal_power + 2.0 * noise_power
    # Adding eigenvectors in order of increasing delta: the MSE falls while delta < 0.
    increasing = np.argsort(delta)
    rank = int(np.count_nonzero(delta < 0))
    if max_rank is not None:
        rank = min(rank, int(max_rank))
    mse = np.concatenate([[0.0], np.cumsum(delta[increasing])])
    return {
        "rank": max(rank, 1),
        "method": "hysime",
        "eigenvalues": eigenvalues,
        "signal_power": signal_power,
        "noise_power": noise_power,
        "delta": delta,
        "mse": mse,
        "noise_std": np.sqrt(np.maximum(np.diag(Rn), 0.0)),
    }
