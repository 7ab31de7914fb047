"""Nonsmooth NMF (nsNMF).

Objective (Pascual-Montano, Carazo, Kochi, Lehmann & Pascual-Marqui, "Nonsmooth nonnegative
matrix factorization (nsNMF)", IEEE TPAMI 28(3), 2006; survey section 3.2.3):

    min_{W >= 0, H >= 0} 1/2 ||X - W S H||_F^2,   S = (1 - theta) I + (theta / r) 1 1^T,

with 0 <= theta <= 1. S smooths whichever factor it multiplies, so the other one must become
sparse (nonsmooth) to fit the data. Solved by HALS on the two blocks (:mod:`mfcli.models.hals`):
the H update sees the basis A = W S; the W update sees X (SH)^T = (X H^T) S and the Gram
S (H H^T) S, so the pass over X is the same as plain NMF. The objective never increases. The
stored factors are W and H; the smoothing matrix is in ``arrays['S']``. NumPy only.
"""

from __future__ import annotations

import numpy as np

from mfcli.models.base import begin_run, single_layer_result
from mfcli.models.hals import ALPHA, EPSILON, Extrapolation, Scheme, alternating_loop, hals_rows, inner_sweeps
from mfcli.models.init import initialize
from mfcli.models.registry import check_number


def smoothing_matrix(rank: int, theta: float, dtype=np.float64) -> np.ndarray:
    """S = (1 - theta) I + (theta / r) 1 1^T."""
    return ((1.0 - theta) * np.eye(rank) + (theta / rank) * np.ones((rank, rank))).astype(dtype)


class NsNMFScheme(Scheme):
    balance = False  # W S H is not invariant to diagonal rescaling

    def __init__(self, dtype, S: np.ndarray, max_h_sweeps: int, max_w_sweeps: int, eps: float = EPSILON):
        super().__init__(dtype, max_h_sweeps, max_w_sweeps, eps)
        self.S = S.astype(dtype)

    def left(self, W):
        return W @ self.S

    def update_w(self, W, XHt, HHt):
        S = self.S
        cross = np.asarray(XHt) @ S
        gram = S @ np.asarray(HHt, dtype=S.dtype) @ S
        Wt = hals_rows(np.ascontiguousarray(W.T), cross.T, gram, self.max_w_sweeps, self.eps, floor=self.floor)
        return np.ascontiguousarray(Wt.T)


def nsnmf(X, rank: int, *, theta: float = 0.5, init: str = "nndsvda", W=None, H=None, max_iter: int = 500,
          tol: float = 1e-5, target_error: float | None = None, max_time: float | None = None, seed: int = 0,
          callback=None, dtype=None, accelerate: bool = True, extrapolate: bool = True, alpha: float = ALPHA,
          eps: float = EPSILON):
    """Nonsmooth NMF X ~= W S H (see module docstring); the relative error is that of W S H;
    ``extrapolate`` as in :func:`mfcli.models.nmf.nmf`."""
    theta = check_number("theta", theta, low=0, high=1)
    data, rank, stopping, monitor = begin_run(X, rank, "nsnmf", dtype=dtype, max_iter=max_iter, tol=tol,
                                              target_error=target_error, max_time=max_time, callback=callback)
    W0, H0 = initialize(data, rank, init, seed=seed, W=W, H=H)
    S = smoothing_matrix(rank, theta, data.dtype)
    h_sweeps, w_sweeps = inner_sweeps(*data.shape, rank, alpha, accelerate)
    W_, H_, error = alternating_loop(data, W0, H0, NsNMFScheme(data.dtype, S, h_sweeps, w_sweeps, eps), monitor,
                                     Extrapolation() if extrapolate else None)
    params = {"rank": rank, "theta": theta, "init": init if W is None else "given", "seed": seed,
              **stopping.as_dict()}
    result = single_layer_result("nsnmf", W_, H_, monitor, params, error, basis=(W_ @ S).astype(W_.dtype))
    result.layers[0].arrays["S"] = S
    return result
