"""How solvers touch the data matrix X (m x n, features x samples).

NMF, ONMF and deep ONMF need X only through a handful of products:

- ``WtX(W)``  = W^T X            (r x n; one pass over X)
- ``XHt(H)``  = X H^T            (m x r; one pass over X)
- ``sq_norm()`` = ||X||_F^2, ``col_sq_norms()`` = ||x_j||^2 for every column
- ``columns(idx)`` = X[:, idx]   (a few columns: initializations, restarts on a subsample)

Solvers are written once against this interface. :class:`InMemoryMatrix` wraps a NumPy array;
out-of-core engines (a chunked HDF5 dataset streamed block by block, a Dask array) implement
the same methods, so every algorithm runs unchanged on every engine. The dtype of X is the
working dtype: products come back in it, never silently upcast.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class DataMatrix(Protocol):
    """The operations a solver may perform on X."""

    shape: tuple[int, int]
    dtype: np.dtype

    def WtX(self, W: np.ndarray) -> np.ndarray: ...

    def XHt(self, H: np.ndarray) -> np.ndarray: ...

    def sq_norm(self) -> float: ...

    def col_sq_norms(self) -> np.ndarray: ...

    def columns(self, idx: np.ndarray) -> np.ndarray: ...


class InMemoryMatrix:
    """X held in memory as a NumPy array (C-contiguous, float32 or float64)."""

    engine = "memory"

    def __init__(self, X: np.ndarray):
        X = np.asarray(X)
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        self.X = np.ascontiguousarray(X)
        self.shape = self.X.shape
        self.dtype = self.X.dtype
        self._sq_norm: float | None = None
        self._col_sq_norms: np.ndarray | None = None

    def WtX(self, W: np.ndarray) -> np.ndarray:
        return W.T.astype(self.dtype, copy=False) @ self.X

    def XHt(self, H: np.ndarray) -> np.ndarray:
        return self.X @ H.T.astype(self.dtype, copy=False)

    def sq_norm(self) -> float:
        if self._sq_norm is None:
            flat = self.X.ravel()
            self._sq_norm = float(np.dot(flat, flat))
        return self._sq_norm

    def col_sq_norms(self) -> np.ndarray:
        if self._col_sq_norms is None:
            self._col_sq_norms = np.einsum("ij,ij->j", self.X, self.X)
        return self._col_sq_norms

    def columns(self, idx: np.ndarray) -> np.ndarray:
        return self.X[:, idx]

    def to_array(self) -> np.ndarray:
        return self.X


def as_data_matrix(X) -> DataMatrix:
    """Wrap X for the solvers: NumPy arrays in memory; objects already implementing
    :class:`DataMatrix` (streamed HDF5, Dask) are returned as they are."""
    if isinstance(X, np.ndarray):
        return InMemoryMatrix(X)
    if isinstance(X, DataMatrix):
        return X
    return InMemoryMatrix(np.asarray(X))
