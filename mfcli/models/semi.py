"""Semi-NMF: W of any sign, H >= 0; the data may be signed.

Objective (Ding, Li & Jordan, "Convex and semi-nonnegative matrix factorizations", IEEE TPAMI
32(1), 2010; the building block of Trigeorgis et al.'s deep semi-NMF, survey section 3.1):

    min_{W, H >= 0}  1/2 ||X - W H||_F^2 .

Alternating exact minimization in W (least squares: W = X H^T (H H^T)^+) and HALS on H
(:mod:`mfcli.models.hals`; exact row-wise minimization, so the objective never increases).
(Ding et al. update H multiplicatively instead.) NumPy only.
"""

from __future__ import annotations

import numpy as np

from mfcli.models.base import begin_run, single_layer_result
from mfcli.models.hals import ALPHA, EPSILON, Extrapolation, Scheme, alternating_loop, inner_sweeps
from mfcli.models.init import initialize


def least_squares_basis(XHt: np.ndarray, HHt: np.ndarray, dtype) -> np.ndarray:
    """W = X H^T (H H^T)^+ (solved, not inverted)."""
    HHt64 = np.asarray(HHt, dtype=np.float64)
    return np.linalg.lstsq(HHt64, np.asarray(XHt, dtype=np.float64).T, rcond=None)[0].T.astype(dtype)


class SemiScheme(Scheme):
    nonnegative_w = False

    def __init__(self, dtype, max_h_sweeps: int, eps: float = EPSILON):
        super().__init__(dtype, max_h_sweeps, 1, eps)
        self.floor = 0.0

    def update_w(self, W, XHt, HHt):
        return least_squares_basis(XHt, HHt, self.dtype)


def semi_nmf(X, rank: int, *, init: str = "kmeans++", W=None, H=None, max_iter: int = 500, tol: float = 1e-5,
             target_error: float | None = None, max_time: float | None = None, seed: int = 0, callback=None,
             dtype=None, accelerate: bool = True, extrapolate: bool = True, alpha: float = ALPHA,
             eps: float = EPSILON):
    """Semi-NMF X ~= W H with H >= 0 only (see module docstring); ``extrapolate`` as in
    :func:`mfcli.models.nmf.nmf`."""
    data, rank, stopping, monitor = begin_run(X, rank, "semi-nmf", nonnegative=False, dtype=dtype,
                                              max_iter=max_iter, tol=tol, target_error=target_error,
                                              max_time=max_time, callback=callback)
    W0, H0 = initialize(data, rank, init, seed=seed, W=W, H=H, nonnegative=False)
    h_sweeps = inner_sweeps(*data.shape, rank, alpha, accelerate)[0]
    W_, H_, error = alternating_loop(data, W0, H0, SemiScheme(data.dtype, h_sweeps, eps), monitor,
                                     Extrapolation() if extrapolate else None)
    params = {"rank": rank, "init": init if W is None else "given", "seed": seed, **stopping.as_dict()}
    return single_layer_result("semi-nmf", W_, H_, monitor, params, error)
