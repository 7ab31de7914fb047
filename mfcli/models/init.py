"""Initializations of (W, H) for the factorization models.

- ``random``: half-normal entries scaled to the data, sqrt(rms(X) / r) |N(0, 1)| (as scikit-learn).
- ``nndsvd`` / ``nndsvda`` / ``nndsvdar``: nonnegative double SVD (Boutsidis & Gallopoulos, "SVD
  based initialization: a head start for nonnegative matrix factorization", Pattern Recognition
  41(4), 2008): each singular pair (u_k, v_k) is replaced by the dominant of its positive or
  negative parts. Zeros are kept (nndsvd), filled with the data's mean (nndsvda) or with small
  random values (nndsvdar). The SVD comes from :func:`mfcli.models.svd.subspace_svd`.
- ``spa``: W = the columns of X picked by the successive projection algorithm
  (:mod:`mfcli.models.spa`); exact for separable data.
- ``kmeans++``: columns of X drawn one after the other with probability proportional to their
  residual ||x_j||^2 - max_k (w_k^T x_j)_+^2 (w_k the unit-normed picks so far): the D^2 seeding
  of k-means++ (Arthur & Vassilvitskii, SODA 2007) with the residual of ONMF as distance.
- user-given: W and/or H passed in (e.g. read from files).

Only W is needed to start the alternating solvers (they update H first); methods that give H
too return it. Every random choice uses the seed. NumPy only.
"""

from __future__ import annotations

import numpy as np

from mfcli.errors import DataError, ParameterError
from mfcli.models.matrix import DataMatrix
from mfcli.models.registry import COMMON_INITS as INIT_METHODS
from mfcli.models.stopping import Stopping
from mfcli.models.threads import single_threaded_small_products


def _rms(data: DataMatrix) -> float:
    m, n = data.shape
    return float(np.sqrt(data.sq_norm() / (m * n)))


def _mean(data: DataMatrix) -> float:
    """Mean entry of X (one pass: 1^T X)."""
    m, n = data.shape
    ones = np.ones((m, 1), dtype=data.dtype)
    return float(np.asarray(data.WtX(ones), dtype=np.float64).sum() / (m * n))


def random_init(data: DataMatrix, rank: int, rng: np.random.Generator):
    m, n = data.shape
    scale = np.sqrt(_rms(data) / rank)
    W = (scale * np.abs(rng.standard_normal((m, rank)))).astype(data.dtype)
    H = (scale * np.abs(rng.standard_normal((rank, n)))).astype(data.dtype)
    return W, H


def nndsvd_init(data: DataMatrix, rank: int, rng: np.random.Generator, fill: str = "zeros",
                svd_iter: int = 4):
    """NNDSVD of Boutsidis & Gallopoulos (2008); ``fill`` = zeros | mean | random."""
    from mfcli.models.svd import subspace_svd

    U, s, Vt, _ = subspace_svd(data, rank, stopping=Stopping(max_iter=svd_iter, tol=0.0),
                               seed=int(rng.integers(2**31)))
    m, n = data.shape
    W = np.zeros((m, rank))
    H = np.zeros((rank, n))
    for k in range(rank):
        u, v = U[:, k], Vt[k]
        if k == 0:  # Perron vector: one sign suffices
            sign = 1.0 if u.sum() + v.sum() >= 0 else -1.0
            W[:, 0] = np.sqrt(s[0]) * np.maximum(sign * u, 0)
            H[0] = np.sqrt(s[0]) * np.maximum(sign * v, 0)
            continue
        up, un = np.maximum(u, 0), np.maximum(-u, 0)
        vp, vn = np.maximum(v, 0), np.maximum(-v, 0)
        norms_p = np.linalg.norm(up) * np.linalg.norm(vp)
        norms_n = np.linalg.norm(un) * np.linalg.norm(vn)
        if norms_p >= norms_n:
            x, y, sigma = up, vp, norms_p
        else:
            x, y, sigma = un, vn, norms_n
        if sigma <= 0:
            continue
        factor = np.sqrt(s[k] * sigma)
        W[:, k] = factor * x / np.linalg.norm(x)
        H[k] = factor * y / np.linalg.norm(y)
    if fill == "mean":
        mean = _mean(data)
        W[W == 0] = mean
        H[H == 0] = mean
    elif fill == "random":
        mean = _mean(data)
        W[W == 0] = mean / 100 * rng.random(np.count_nonzero(W == 0))
        H[H == 0] = mean / 100 * rng.random(np.count_nonzero(H == 0))
    return W.astype(data.dtype), H.astype(data.dtype)


def spa_init(data: DataMatrix, rank: int):
    from mfcli.models.spa import spa

    return np.ascontiguousarray(data.columns(spa(data, rank)), dtype=data.dtype)


def kmeanspp_columns(data: DataMatrix, rank: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``rank`` columns chosen by D^2 sampling with the ONMF residual as distance."""
    col_sq = np.asarray(data.col_sq_norms(), dtype=np.float64)
    n = col_sq.size
    total = col_sq.sum()
    if total <= 0:
        raise DataError("the data are all zero; nothing to factorize")
    best_fit = np.zeros(n)
    picked: list[int] = []
    for _ in range(rank):
        residual = np.maximum(col_sq - best_fit, 0.0)
        residual[picked] = 0.0
        weight = residual.sum()
        if weight <= 0:
            choices = np.setdiff1d(np.arange(n), picked)
            j = int(rng.choice(choices))
        else:
            j = int(rng.choice(n, p=residual / weight))
        picked.append(j)
        x = np.asarray(data.columns(np.array([j])), dtype=np.float64)[:, 0]
        norm = np.linalg.norm(x)
        if norm > 0:
            proj = np.asarray(data.WtX((x / norm)[:, None].astype(data.dtype)), dtype=np.float64)[0]
            np.maximum(best_fit, np.maximum(proj, 0.0) ** 2, out=best_fit)
    return np.asarray(picked, dtype=np.int64)


def kmeanspp_init(data: DataMatrix, rank: int, rng: np.random.Generator) -> np.ndarray:
    return np.ascontiguousarray(data.columns(kmeanspp_columns(data, rank, rng)), dtype=data.dtype)


def check_given(W: np.ndarray | None, H: np.ndarray | None, shape: tuple[int, int], rank: int, dtype,
                nonnegative: bool = True):
    """Validate a user-given W (m x r) and/or H (r x n): the working ``dtype`` (no silent
    conversion), the shape, finite, nonnegative (with ``nonnegative``) and not all zero.
    Returns copies."""
    m, n = shape
    out = []
    for name, F, expected in (("W", W, (m, rank)), ("H", H, (rank, n))):
        if F is None:
            out.append(None)
            continue
        F = np.asarray(F)
        if F.dtype != dtype:  # as scikit-learn: no silent conversion of a start the user made
            raise DataError(f"the initial {name} is {F.dtype} but the data are worked in {dtype}; "
                            f"give {name} as {dtype} (e.g. {name}.astype('{dtype}'))")
        if F.ndim == 1 and name == "W" and rank == 1:
            F = F[:, None]
        if F.shape != expected:
            if F.ndim == 2 and F.shape == expected[::-1]:
                raise DataError(f"the initial {name} has shape {F.shape} but must be {expected[0]}x{expected[1]}; "
                                "it looks transposed (use --transpose when reading it)")
            raise DataError(f"the initial {name} has shape {F.shape} but must be {expected[0]}x{expected[1]} "
                            f"for rank {rank} and data of shape {m}x{n}")
        if not np.all(np.isfinite(F)):
            raise DataError(f"the initial {name} contains NaN or Inf values")
        if nonnegative and F.size and F.min() < 0:
            raise DataError(f"the initial {name} has negative values but the model needs {name} >= 0")
        if F.size and not np.any(F):
            raise DataError(f"the initial {name} is all zeros; the solvers cannot leave it (give a nonzero start)")
        out.append(np.array(F, dtype=dtype, order="C", copy=True))
    return out[0], out[1]


@single_threaded_small_products
def initialize(data: DataMatrix, rank: int, method: str = "nndsvda", seed=0, W=None, H=None,
               nonnegative: bool = True):
    """Initial (W, H) for a model of rank ``rank``; H may be None (solvers then start with H).

    A given ``W`` and/or ``H`` take precedence over ``method``; if only H is given, W is
    initialized by ``method`` and H kept.
    """
    dtype = np.dtype(data.dtype)
    W_given, H_given = check_given(W, H, data.shape, rank, dtype, nonnegative)
    if W_given is not None:
        return W_given, H_given
    rng = np.random.default_rng(seed)
    method = method.lower()
    if method == "random":
        W0, H0 = random_init(data, rank, rng)
    elif method in ("nndsvd", "nndsvda", "nndsvdar"):
        fill = {"nndsvd": "zeros", "nndsvda": "mean", "nndsvdar": "random"}[method]
        W0, H0 = nndsvd_init(data, rank, rng, fill)
    elif method == "spa":
        W0, H0 = spa_init(data, rank), None
    elif method in ("kmeans++", "kmeans"):
        W0, H0 = kmeanspp_init(data, rank, rng), None
    else:
        raise ParameterError(f"unknown initialization '{method}'; choose one of {', '.join(INIT_METHODS)}")
    return W0, (H_given if H_given is not None else H0)
