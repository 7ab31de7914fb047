"""Small dense linear algebra the solvers share: least squares from a Gram matrix, the
Frobenius residual ||X - WH||_F^2 from X H^T and Gram matrices (never forming WH), and the floor
HALS keeps factors above. NumPy only.
"""

from __future__ import annotations

import numpy as np

from mfcli.metrics import relative_error_from_residual, residual_sq_from_grams


def floor_for(dtype) -> float:
    """Smallest value HALS leaves in a factor: keeps every column/row nonzero (Cichocki)."""
    return 1e-16 if np.dtype(dtype) == np.float64 else 1e-12


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


def argmax_of_columns(scores: np.ndarray, allowed=None) -> np.ndarray:
    """np.argmax(scores, axis=0) for a few rows (r x n, r small, no NaN): the first row of the
    largest score in every column, found row by row on whole rows, r - 1 vectorized steps, instead
    of NumPy's reduction of n short columns (a 7 x 11782 block: 0.26 ms by NumPy). ``allowed``
    (r x n booleans, or a function of the row giving them): only those entries compete (a column
    with none gets row 0, as np.argmax of a column of -inf). Work arrays from
    :func:`~mfcli.models.threads.scratch`; the result is new."""
    from mfcli.models.threads import scratch

    r, n = scores.shape
    index = np.zeros(n, dtype=np.int64)
    best = scratch("argmax_best", (n,), scores.dtype)
    better = scratch("argmax_better", (n,), bool)
    if allowed is None:
        np.copyto(best, scores[0])
        first = 1
    else:
        best.fill(-np.inf)
        first = 0
        permitted = scratch("argmax_allowed", (n,), bool)
    for row in range(first, r):
        np.greater(scores[row], best, out=better)
        if allowed is not None:
            mask = allowed(row, permitted) if callable(allowed) else allowed[row]
            better &= mask
        np.copyto(best, scores[row], where=better)
        np.copyto(index, row, where=better)
    return index

