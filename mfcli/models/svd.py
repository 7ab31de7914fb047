"""Truncated SVD through the data-matrix interface: the unconstrained reference factorization.

min_{rank(WH) <= r} ||X - WH||_F^2 is solved by the leading singular triplets (Eckart & Young,
"The approximation of one matrix by another of lower rank", Psychometrika 1936): W = U_r S_r,
H = V_r^T. They are computed by block subspace iteration with Rayleigh-Ritz (Halko, Martinsson &
Tropp, "Finding structure with randomness", SIAM Review 53(2), 2011, Algorithms 4.4/5.1):
Q <- orth(X X^T Q) with k = r + oversampling columns. Each iteration is the two products Q^T X and
X (Q^T X)^T (:func:`mfcli.models.matrix.project_update`, one pass on a streaming engine), so it
runs on every engine; in memory, a matrix of few rows has X X^T formed once and the iteration run
on it (:data:`GRAM_MAX_ROWS`). NumPy only.
"""

from __future__ import annotations

import numpy as np

from mfcli.metrics import relative_error_from_residual
from mfcli.models.base import begin_run, single_layer_result
from mfcli.models.matrix import DataMatrix, project_update
from mfcli.models.registry import check_number
from mfcli.models.stopping import Monitor, Stopping
from mfcli.models.threads import single_threaded_small_products


RITZ_BLOCK = 65536  # columns of B converted to float64 at a time


def _ritz(Q: np.ndarray, B: np.ndarray, rank: int):
    """Left singular vectors and values of X ~= Q B from the small k x n matrix B = Q^T X (via the
    k x k Gram matrix): (U, s, Ub) with U = Q Ub; :func:`_right_vectors` gives Vt.

    Worked in float64 block of columns by block, so no float64 copy of the whole k x n B is
    made (with millions of columns it would outweigh the solver's own factors)."""
    k, n = B.shape
    gram = np.zeros((k, k))
    for start in range(0, n, RITZ_BLOCK):
        block = np.asarray(B[:, start:start + RITZ_BLOCK], dtype=np.float64)
        gram += block @ block.T
    evals, evecs = np.linalg.eigh(gram)
    order = np.argsort(evals)[::-1][:rank]
    s = np.sqrt(np.maximum(evals[order], 0.0))
    Ub = evecs[:, order]
    U = np.asarray(Q, dtype=np.float64) @ Ub
    return U, s, Ub


def _right_vectors(B: np.ndarray, Ub: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Vt = diag(1/s) Ub^T B (r x n, float64), block of columns by block."""
    n = B.shape[1]
    safe = np.where(s > 0, s, 1.0)
    Vt = np.empty((Ub.shape[1], n))
    for start in range(0, n, RITZ_BLOCK):
        columns = slice(start, start + RITZ_BLOCK)
        np.matmul(Ub.T, np.asarray(B[:, columns], dtype=np.float64), out=Vt[:, columns])
        Vt[:, columns] /= safe[:, None]
    return Vt


@single_threaded_small_products
def subspace_svd(data: DataMatrix, rank: int, *, oversample: int = 10, stopping: Stopping | None = None,
                 seed=0, monitor: Monitor | None = None):
    """Leading ``rank`` singular triplets (U m x r, s, Vt r x n, float64) of the data.

    Stops when the relative error sqrt(1 - sum s_i^2 / ||X||^2) of the rank-r truncation
    changes by less than ``stopping.tol`` (relative), or after ``stopping.max_iter`` passes.
    """
    m, n = data.shape
    stopping = stopping or Stopping(max_iter=30, tol=1e-10)
    monitor = monitor or Monitor(stopping)
    k = min(rank + oversample, m, n)
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((m, k)))
    Q = Q.astype(data.dtype)
    x_sq = data.sq_norm()
    B = np.empty((k, n), dtype=data.dtype)

    def keep(block: np.ndarray, cols: slice) -> np.ndarray:
        B[:, cols] = block
        return block

    monitor.restart_clock()
    if _gram_pays(data, k, stopping.max_iter):
        return _subspace_svd_from_gram(data, Q, rank, x_sq, monitor)
    while True:
        Y = np.asarray(project_update(data, Q, keep), dtype=np.float64)  # X X^T Q, B = Q^T X
        U, s, Ub = _ritz(Q, B, rank)
        captured = float(np.sum(s * s))
        error = relative_error_from_residual(x_sq, x_sq - captured)
        if monitor(error, objective=error):
            return U, s, _right_vectors(B, Ub, s), error
        Q, _ = np.linalg.qr(Y)
        Q = Q.astype(data.dtype)


# In memory, X X^T (m x m) is formed once instead of one pass per iteration where m is at most
# this and the Gram matrix costs fewer multiply-adds than the passes (m^2 n / 2 against 2 m k n
# each): Urban's 162 x 94249 at rank 7 (k = 17, 4 iterations, nndsvd's SVD) 37 ms for X X^T
# against 164 ms for the four passes, in float64.
GRAM_MAX_ROWS = 2048


def _gram_pays(data: DataMatrix, k: int, iterations: int) -> bool:
    m = data.shape[0]
    return (getattr(data, "engine", None) == "memory" and isinstance(getattr(data, "X", None), np.ndarray)
            and m <= GRAM_MAX_ROWS and m < 4 * k * iterations)


def _subspace_svd_from_gram(data: DataMatrix, Q: np.ndarray, rank: int, x_sq: float, monitor: Monitor):
    """The iteration of :func:`subspace_svd` on G = X X^T: Q <- orth(G Q), the Ritz values and
    vectors from Q^T G Q (= B B^T with B = Q^T X), B formed once at the end for Vt. The same
    iterates as the passes over X, up to rounding."""
    from mfcli.models.threads import pass_threads_for

    X = data.X
    with pass_threads_for(X.shape[0] * X.size // 2):
        G = np.asarray(X @ X.T, dtype=np.float64)
    Q = np.asarray(Q, dtype=np.float64)
    while True:
        GQ = G @ Q
        evals, evecs = np.linalg.eigh(Q.T @ GQ)
        order = np.argsort(evals)[::-1][:rank]
        s = np.sqrt(np.maximum(evals[order], 0.0))
        Ub = evecs[:, order]
        captured = float(np.sum(s * s))
        error = relative_error_from_residual(x_sq, x_sq - captured)
        if monitor(error, objective=error):
            B = data.WtX(Q.astype(data.dtype))  # Q^T X, k x n
            return Q @ Ub, s, _right_vectors(B, Ub, s), error
        Q, _ = np.linalg.qr(GQ)
        Q = Q.astype(data.dtype).astype(np.float64)  # rounded to X's type, as the passes do


def svd(X, rank: int, *, max_iter: int = 100, tol: float = 1e-10, target_error: float | None = None,
        max_time: float | None = None, oversample: int = 10, seed: int = 0, callback=None, dtype=None):
    """Truncated SVD as a factorization: W = U_r S_r (m x r), H = V_r^T (r x n), both signed.

    Objective: min ||X - WH||_F^2 over rank-r products (no sign constraints); the reference
    every constrained model is compared with. See the module docstring for the algorithm.
    Returns a :class:`~mfcli.result.Result`; the layer also keeps ``singular_values``.
    """
    oversample = check_number("oversample", oversample, low=0, integer=True)
    data, rank, stopping, monitor = begin_run(X, rank, "svd", nonnegative=False, dtype=dtype, max_iter=max_iter,
                                              tol=tol, target_error=target_error, max_time=max_time,
                                              callback=callback)
    U, s, Vt, error = subspace_svd(data, rank, oversample=oversample, stopping=stopping, seed=seed,
                                   monitor=monitor)
    dtype = np.dtype(data.dtype)
    W = (U * s).astype(dtype)
    H = Vt.astype(dtype)
    params = {"rank": rank, "oversample": oversample, "seed": seed, **stopping.as_dict()}
    result = single_layer_result("svd", W, H, monitor, params, error)
    result.layers[0].arrays["singular_values"] = s
    return result
