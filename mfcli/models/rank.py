"""Rank estimation for hyperspectral data: HySime (an upper bound) and the simplex fit-gain count.

Bioucas-Dias & Nascimento, "Hyperspectral subspace identification", IEEE TGRS 46(8), 2008.

1. Noise, by multiple regression: each band is regressed on all the others; the residual is
   the noise estimate. All bands at once: with R = Y Y^T and R^{-1} its inverse, the residual
   of band i is (R^{-1} Y)_i / (R^{-1})_ii, one m x m inverse and one product.
2. Signal correlation R_x = (Y - N)(Y - N)^T / n and noise correlation R_n = N N^T / n; for
   each eigenvector e_i of R_x, projecting onto it changes the mean squared error by
   delta_i = -e_i^T R_y e_i + 2 e_i^T R_n e_i (signal power gained minus twice the noise
   power added). The estimate is the number of eigenvectors with delta_i < 0, i.e. the k
   minimizing the mean squared error of the projection onto k of them.

HySime counts the directions that carry more signal than noise; on real scenes the spectral
variability of each material, illumination and correlated noise add such directions, so it
over-counts materials (Samson: 73 for 3 materials, Moffett: 15 for 3) and is best read as an
upper bound. :func:`simplex_rank` counts materials instead, by the fit of a simplex:

3. Endmembers by SPA (Gillis & Vavasis 2014) on the pixels divided by their sums (so that they
   lie on a simplex whatever their brightness), in the order SPA picks them; for r = 1, 2, ...
   the residual e(r) = ||X' - E_r H_r||_F^2 of the exact FCLS abundances H_r of every pixel on
   the first r endmembers. The gain of the r-th endmember is e(r - 1) / e(r).
4. The estimate is the largest r (up to HySime's count, at most ``max_rank``) whose endmember
   at least halves the residual (gain >= 2): a new material explains at least half of what the
   others leave; a second pixel of a known material, an outlier or a variant of a spectrum
   explains a little (measured: gains of 1.0-1.8 after the last material on Samson, Moffett and
   the Urban stand-in, 3.0-5.4 for the last material; benchmarks/bench_unmixing.py prints them).

NumPy only. The returned dicts also hold the curves a scree plot needs.
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


GAIN_THRESHOLD = 2.0
SIMPLEX_SAMPLE = 20000


def simplex_rank(X, max_rank: int, *, threshold: float = GAIN_THRESHOLD, sample_size: int = SIMPLEX_SAMPLE,
                 seed: int = 0) -> dict:
    """The number of materials of X (bands x pixels) by the simplex fit gain (module docstring).

    ``max_rank``: the largest count considered (e.g. HySime's); ``threshold``: the gain an
    endmember must reach; above ``sample_size`` pixels, a seeded random sample of that many is
    used. Returns ``rank``, ``gains`` (gain of endmember r = 2..max_rank, index 0 for r = 2),
    ``residuals`` (e(r) / e(0) for r = 0..max_rank, e(0) = ||X'||^2), ``indices`` (SPA's pixels,
    in the sample's numbering when sampled), ``sampled``.
    """
    from mfcli.models.minvol import pixel_scales
    from mfcli.models.nnls import fcls
    from mfcli.models.spa import spa

    X = as_float_matrix(np.asarray(X))
    require_finite(X)
    m, n = X.shape
    if max_rank < 1:
        raise DataError(f"max_rank must be at least 1, got {max_rank}")
    sampled = n > sample_size
    if sampled:
        X = X[:, np.sort(np.random.default_rng(seed).choice(n, sample_size, replace=False))]
    X = np.asarray(X, dtype=np.float64)
    positive = X.sum(axis=0) > 0
    fitted = X[:, positive] / pixel_scales(X[:, positive], "l1")[None, :]
    top = int(min(max_rank, m, fitted.shape[1]))
    indices = spa(fitted, top)
    x_sq = float(np.vdot(fitted, fitted))
    residuals = [x_sq]
    for r in range(1, top + 1):
        E = fitted[:, indices[:r]]
        WtX = E.T @ fitted
        WtW = E.T @ E
        H = fcls(E, None, WtW=WtW, WtX=WtX)
        residual = x_sq - 2.0 * float(np.vdot(H, WtX)) + float(np.vdot(H, WtW @ H))
        residuals.append(max(residual, np.finfo(np.float64).tiny * x_sq))
    residuals = np.asarray(residuals)
    gains = residuals[1:-1] / residuals[2:]  # e(r - 1) / e(r) for r = 2..top
    strong = np.flatnonzero(gains >= threshold)
    rank = int(strong[-1]) + 2 if strong.size else 1
    return {"rank": rank, "method": "simplex", "gains": gains, "residuals": residuals / x_sq,
            "indices": indices, "sampled": sampled, "threshold": float(threshold)}


MAX_SIMPLEX_RANK = 15


def estimate_rank(X, method: str = "simplex", max_rank: int | None = None) -> dict:
    """The rank of X by ``method``: "hysime" (:func:`hysime`) or "simplex" (:func:`simplex_rank`
    up to HySime's count, itself at most ``max_rank`` or 15). The simplex result also holds
    HySime's (``hysime``: its dict, ``upper_bound``: its rank)."""
    bound = hysime(X, max_rank=max_rank)
    if method == "hysime":
        return bound
    if method != "simplex":
        from mfcli.errors import ParameterError

        raise ParameterError(f"unknown rank method '{method}'; use simplex or hysime")
    cap = min(bound["rank"], max_rank or MAX_SIMPLEX_RANK, MAX_SIMPLEX_RANK)
    estimate = simplex_rank(X, cap)
    estimate["upper_bound"] = bound["rank"]
    estimate["hysime"] = bound
    return estimate
