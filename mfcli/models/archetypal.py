"""Archetypal analysis (AA): basis vectors that are convex combinations of the data.

Objective (Cutler & Breiman, "Archetypal analysis", Technometrics 36(4), 1994; convex NMF of
Ding, Li & Jordan, IEEE TPAMI 32(1), 2010; survey section 3.2.4):

    min_{A, H} 1/2 ||X - X A H||_F^2   s.t.  A >= 0, 1^T A = 1^T (n x r),  H >= 0, 1^T H = 1^T (r x n),

so the archetypes W = X A lie in the convex hull of the data and every column is a convex
combination of archetypes. Solved by alternating projected gradient steps with step 1/L (L the
Lipschitz constant of the block's gradient), each followed by the Euclidean projection of every
column onto the unit simplex (Duchi, Shalev-Shwartz, Singer & Chandra, ICML 2008); with that step
every update decreases the objective (Moerup & Hansen, "Archetypal analysis for machine learning
and data mining", Neurocomputing 80, 2012, use the same blocks). Through the data interface:
W = X A is ``XHt(A^T)``, the gradient in A is X^T (W H H^T - X H^T), one ``WtX``; the H step
uses the fused pass. Started from SPA's columns (A = indicator columns), which are vertices of
the data's convex hull when the data are separable. NumPy only.
"""

from __future__ import annotations

import numpy as np

from mfcli.errors import ParameterError
from mfcli.models.base import begin_run, single_layer_result
from mfcli.models.init import kmeanspp_columns
from mfcli.models.linalg import frobenius_relative_error
from mfcli.models.matrix import DataMatrix, project_update
from mfcli.models.spa import spa
from mfcli.models.stopping import Monitor

H_STEPS = 5  # projected-gradient steps on H per pass over X


def project_columns_to_simplex(V: np.ndarray) -> np.ndarray:
    """Euclidean projection of every column of V onto {v >= 0, sum v = 1} (sort-based)."""
    V = np.asarray(V, dtype=np.float64)
    p = V.shape[0]
    U = -np.sort(-V, axis=0)
    cumulative = np.cumsum(U, axis=0) - 1.0
    index = np.arange(1, p + 1)[:, None]
    condition = U - cumulative / index > 0
    rho = p - 1 - np.argmax(condition[::-1], axis=0)
    theta = cumulative[rho, np.arange(V.shape[1])] / (rho + 1)
    return np.maximum(V - theta, 0.0)


def _spectral_norm_sq(data: DataMatrix, seed, iterations: int = 20) -> float:
    """||X||_2^2 by power iteration on X X^T (two passes per step)."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((data.shape[0], 1))
    v /= np.linalg.norm(v)
    value = 0.0
    for _ in range(iterations):
        u = np.asarray(data.XHt(np.asarray(data.WtX(v.astype(data.dtype)), dtype=data.dtype)), dtype=np.float64)
        value_new = float(np.linalg.norm(u))
        v = u / max(value_new, 1e-300)
        if abs(value_new - value) <= 1e-6 * value_new:
            value = value_new
            break
        value = value_new
    return value * 1.01  # a little above the estimate: the step must not exceed 1/L


def _aa_loop(data: DataMatrix, A: np.ndarray, H: np.ndarray, x_lipschitz: float, monitor: Monitor):
    dtype = np.dtype(data.dtype)
    x_sq = data.sq_norm()
    W = np.asarray(data.XHt(A.T.astype(dtype)), dtype=np.float64)
    monitor.restart_clock()
    while True:
        WtW = W.T @ W
        step_h = 1.0 / max(np.linalg.eigvalsh(WtW)[-1], 1e-300)
        W_dt = W.astype(dtype)

        def update(B: np.ndarray, cols: slice) -> np.ndarray:
            B64 = np.asarray(B, dtype=np.float64)
            block = H[:, cols]
            for _ in range(H_STEPS):
                block = project_columns_to_simplex(block - step_h * (WtW @ block - B64))
            H[:, cols] = block
            return block.astype(dtype)

        XHt = np.asarray(project_update(data, W_dt, update), dtype=np.float64)
        HHt = H @ H.T
        gradient = np.asarray(data.WtX((W @ HHt - XHt).astype(dtype)), dtype=np.float64).T  # n x r
        step_a = 1.0 / max(x_lipschitz * np.linalg.eigvalsh(HHt)[-1], 1e-300)
        A = project_columns_to_simplex(A - step_a * gradient)
        W = np.asarray(data.XHt(A.T.astype(dtype)), dtype=np.float64)
        error = frobenius_relative_error(x_sq, W, XHt, W.T @ W, HHt)
        if monitor(error, objective=0.5 * error * error * x_sq):
            return A, H, W, error


def archetypal(X, rank: int, *, init: str = "spa", W=None, H=None, max_iter: int = 500, tol: float = 1e-5,
               target_error: float | None = None, max_time: float | None = None, seed: int = 0, callback=None,
               dtype=None):
    """Archetypal analysis X ~= X A H (see module docstring).

    ``init``: spa | kmeans++ | random (random columns of X as the first archetypes). A given
    ``W`` is not supported (archetypes must be combinations of the data); ``H`` ignored.
    Result layer: W = X A (archetypes), H (column-stochastic), ``arrays['A']``.
    """
    data, rank, stopping, monitor = begin_run(X, rank, "aa", nonnegative=False, dtype=dtype, max_iter=max_iter,
                                              tol=tol, target_error=target_error, max_time=max_time,
                                              callback=callback)
    if W is not None:
        raise ParameterError("archetypal analysis starts from data columns (--init spa|kmeans++|random), "
                             "not from a given W")
    m, n = data.shape
    rng = np.random.default_rng(seed)
    if init == "spa":
        picked = spa(data, rank)
    elif init in ("kmeans++", "kmeans"):
        picked = kmeanspp_columns(data, rank, rng)
    elif init == "random":
        picked = rng.choice(n, rank, replace=False)
    else:
        raise ParameterError(f"unknown initialization '{init}' for aa; choose spa, kmeans++ or random")
    A = np.zeros((n, rank))
    A[picked, np.arange(rank)] = 1.0
    H0 = np.full((rank, n), 1.0 / rank)
    lipschitz = _spectral_norm_sq(data, seed)
    A_, H_, W_, error = _aa_loop(data, A, H0, lipschitz, monitor)
    dtype_ = np.dtype(data.dtype)
    params = {"rank": rank, "init": init, "seed": seed, **stopping.as_dict()}
    result = single_layer_result("aa", W_.astype(dtype_), H_.astype(dtype_), monitor, params, error)
    result.layers[0].arrays["A"] = A_.astype(dtype_)
    return result
