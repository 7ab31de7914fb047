"""Successive projection algorithm (SPA) for separable NMF.

Araujo et al. (2001); Gillis & Vavasis, "Fast and robust recursive algorithms for separable
nonnegative matrix factorization", IEEE TPAMI 2014. If X = W [I, H'] Pi with the columns of H
on the simplex (the pure pixels assumption), SPA recovers the columns of W among the columns of
X: repeatedly pick the column of largest residual norm, then project every column onto the
orthogonal complement of the picked one.

Written against :class:`~mfcli.models.matrix.DataMatrix`: each step is one pass ``q^T X`` over
the data, residual norms are ``||x_j||^2 - ||Q^T x_j||^2``, so SPA runs on every engine.
"""

from __future__ import annotations

import numpy as np

from mfcli.models.matrix import DataMatrix, as_data_matrix
from mfcli.validation import check_rank


def spa(X, rank: int) -> np.ndarray:
    """Indices of ``rank`` columns of X selected by SPA, in the order they were picked."""
    data: DataMatrix = as_data_matrix(X)
    m, n = data.shape
    check_rank(rank, (m, n))
    col_sq = np.asarray(data.col_sq_norms(), dtype=np.float64)
    residual = col_sq.copy()
    Q = np.zeros((m, 0), dtype=np.float64)
    picked: list[int] = []
    for _ in range(rank):
        candidates = residual.copy()
        candidates[picked] = -np.inf
        j = int(np.argmax(candidates))
        if not np.isfinite(candidates[j]) or candidates[j] <= 0:
            # Fewer than `rank` independent columns: take the largest remaining columns.
            order = np.argsort(-col_sq)
            j = int(next(i for i in order if i not in picked))
        picked.append(j)
        v = np.asarray(data.columns(np.array([j])), dtype=np.float64)[:, 0]
        for _ in range(2):  # Gram-Schmidt twice for orthogonality in floating point
            v = v - Q @ (Q.T @ v)
        norm = np.linalg.norm(v)
        if norm <= 0:
            continue
        q = (v / norm)[:, None]
        Q = np.hstack([Q, q])
        proj = np.asarray(data.WtX(q.astype(data.dtype)), dtype=np.float64)[0]
        residual = np.maximum(residual - proj**2, 0.0)
    return np.asarray(picked, dtype=np.int64)
