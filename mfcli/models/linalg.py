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


def argmax_of_columns(scores: np.ndarray) -> np.ndarray:
    """np.argmax(scores, axis=0) for a few rows (r x n, r small, no NaN): the first row of the
    largest score in every column, from whole-row steps without a branch on the data: the
    columns' maxima, then for each row whether the largest was found at or before it, counted.
    NumPy's reduction of n short columns, and masked copies (np.copyto with ``where``) of random
    masks, which mispredict a branch per element, took 0.65 and 1.15 ms for a 7 x 11782 block of
    deep ONMF against 0.12 ms this way (an Intel Xeon with AVX-512; timed outside benchmarks/).
    Work arrays from :func:`~mfcli.models.threads.scratch`; the result is new."""
    from mfcli.models.threads import scratch

    r, n = scores.shape
    if r <= 2:
        return np.zeros(n, dtype=np.int64) if r == 1 else np.greater(scores[1], scores[0]).astype(np.int64)
    best = scratch("argmax_best", (n,), scores.dtype)
    np.copyto(best, scores[0])
    for row in range(1, r):  # row by row: NumPy reduces the short columns of an F-ordered block one by one
        np.maximum(best, scores[row], out=best)
    equal = scratch("argmax_equal", (n,), bool)
    found = scratch("argmax_found", (n,), bool)
    found.fill(False)
    rows_found = np.zeros(n, dtype=np.int64)  # rows 0..r-2 at or after the first largest
    for row in range(r - 1):
        np.equal(scores[row], best, out=equal)
        found |= equal
        rows_found += found.view(np.uint8)
    np.subtract(r - 1, rows_found, out=rows_found)
    return rows_found

