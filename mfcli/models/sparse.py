"""Sparse NMF: an l1 penalty on H, with the columns of W normalized.

Objective (Hoyer, "Non-negative sparse coding", IEEE NNSP 2002; the l1 form of Kim & Park,
Bioinformatics 23(12), 2007):

    min_{W >= 0, ||w_k||_2 = 1, H >= 0}  1/2 ||X - W H||_F^2 + lambda ||H||_1 .

Without the normalization the penalty could be driven to zero by scaling W up and H down
without changing WH (the survey's caution about scaling, section 3.2.2), so each column of W is
kept on the unit sphere. Solved by HALS (:mod:`mfcli.models.hals`): the H rows in closed form
with the l1 shift, f_k <- max(0, f_k + (C_k - G_k F - lambda) / G_kk), and exact unit-norm
column updates of W; the objective never increases. ``l1`` is given relative to the data:
lambda = l1 * ||X||_F / sqrt(n), a fraction of the root-mean-square column norm. NumPy only.
"""

from __future__ import annotations

import numpy as np

from mfcli.models.base import begin_run, single_layer_result
from mfcli.models.hals import ALPHA, EPSILON, UnitColumnsScheme, alternating_loop, inner_sweeps
from mfcli.models.init import initialize
from mfcli.models.registry import check_number


class SparseScheme(UnitColumnsScheme):
    def __init__(self, dtype, l1_weight: float, max_h_sweeps: int, max_w_sweeps: int, eps: float = EPSILON):
        super().__init__(dtype, max_h_sweeps, max_w_sweeps, eps)
        self.l1 = float(l1_weight)
        self.floor = 0.0  # exact zeros are the point of the penalty; unit W keeps G_kk = 1

    def penalty(self, W, H, HHt) -> float:
        return self.l1 * float(H.sum(dtype=np.float64))


def sparse_nmf(X, rank: int, *, l1: float = 0.1, init: str = "nndsvda", W=None, H=None, max_iter: int = 500,
               tol: float = 1e-5, target_error: float | None = None, max_time: float | None = None, seed: int = 0,
               callback=None, dtype=None, accelerate: bool = True, alpha: float = ALPHA, eps: float = EPSILON):
    """Sparse NMF (see module docstring). ``l1``: penalty relative to the rms column norm of X."""
    l1 = check_number("l1", l1, low=0)
    data, rank, stopping, monitor = begin_run(X, rank, "sparse-nmf", dtype=dtype, max_iter=max_iter, tol=tol,
                                              target_error=target_error, max_time=max_time, callback=callback)
    lam = l1 * float(np.sqrt(data.sq_norm() / data.shape[1]))
    W0, H0 = SparseScheme.unit_start(*initialize(data, rank, init, seed=seed, W=W, H=H), data.dtype)
    h_sweeps, w_sweeps = inner_sweeps(*data.shape, rank, alpha, accelerate)
    W_, H_, error = alternating_loop(data, W0, H0, SparseScheme(data.dtype, lam, h_sweeps, w_sweeps, eps), monitor)
    params = {"rank": rank, "l1": l1, "init": init if W is None else "given", "seed": seed, **stopping.as_dict()}
    result = single_layer_result("sparse-nmf", W_, H_, monitor, params, error)
    result.layers[0].attrs["sparsity"] = float(np.mean(H_ == 0))
    result.layers[0].attrs["l1_absolute"] = lam  # derived from l1 and the data: not a parameter to set
    return result
