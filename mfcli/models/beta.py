"""NMF with beta-divergences (Kullback-Leibler, Itakura-Saito, general beta) by multiplicative updates.

Objective (Fevotte & Idier, "Algorithms for nonnegative matrix factorization with the
beta-divergence", Neural Computation 23(9), 2011):

    min_{W >= 0, H >= 0}  D_beta(X | W H) = sum_ij d_beta(x_ij | (WH)_ij),

beta = 1 the generalized Kullback-Leibler divergence (Lee & Seung 2001), beta = 0 Itakura-Saito
(Fevotte, Bertin & Durrieu, Neural Computation 21(3), 2009). The majorization-minimization
updates

    H <- H * [ W^T ((WH)^(beta-2) * X) / W^T (WH)^(beta-1) ]^gamma
    W <- W * [ ((WH)^(beta-2) * X) H^T / (WH)^(beta-1) H^T ]^gamma,

with gamma = 1/(2 - beta) for beta < 1, 1 for 1 <= beta <= 2 and 1/(beta - 1) for beta > 2,
never increase the divergence. Guard against zeros: WH is clipped at a tiny positive value
where it divides (entries with x = 0 contribute nothing to the numerators), and factors are
kept above the same value so no entry gets stuck at zero.

The updates need X elementwise against WH, which Gram matrices cannot give, so X is streamed in
blocks of columns (:func:`mfcli.models.matrix.column_blocks`): each iteration is two passes,
one for H (which also measures the divergence and the Frobenius error of the current
factors) and one for W. The divergence is :func:`mfcli.metrics.beta_divergence`. NumPy only.
"""

from __future__ import annotations

import numpy as np

from mfcli.errors import ParameterError
from mfcli.metrics import BETA_EPSILON, beta_divergence, relative_error_from_residual
from mfcli.models.base import begin_run, single_layer_result
from mfcli.models.init import initialize
from mfcli.models.linalg import gram_solve
from mfcli.models.matrix import DataMatrix, column_blocks
from mfcli.models.registry import NAMED_LOSSES
from mfcli.models.stopping import Monitor


def loss_name(beta: float) -> str:
    return {value: name for name, value in NAMED_LOSSES.items()}.get(float(beta), f"beta={beta:g}")


def positive_start(data: DataMatrix, W: np.ndarray) -> np.ndarray:
    """H from least squares, clipped to a small positive value (MU cannot leave zero)."""
    WtX = np.asarray(data.WtX(W), dtype=np.float64)
    W64 = np.asarray(W, dtype=np.float64)
    H = gram_solve(W64.T @ W64, WtX)
    positive = H[H > 0]
    small = 1e-3 * float(positive.mean()) if positive.size else 1e-6
    return np.maximum(H, small).astype(data.dtype)


def mm_exponent(beta: float) -> float:
    """gamma(beta) of Fevotte & Idier (2011), making the multiplicative updates monotone."""
    if beta < 1:
        return 1.0 / (2.0 - beta)
    if beta > 2:
        return 1.0 / (beta - 1.0)
    return 1.0


def _ratio_terms(X_block: np.ndarray, WH: np.ndarray, beta: float):
    """((WH)^(beta-2) * X, (WH)^(beta-1)), with (WH)^(beta-1) = None when it is all ones."""
    if beta == 1:
        return X_block / WH, None
    if beta == 0:
        inverse = 1.0 / WH
        return X_block * inverse * inverse, inverse
    return X_block * WH ** (beta - 2), WH ** (beta - 1)


def _beta_loop(data: DataMatrix, W: np.ndarray, H: np.ndarray, beta: float, monitor: Monitor):
    dtype = np.dtype(data.dtype)
    tiny = dtype.type(BETA_EPSILON)
    gamma = mm_exponent(beta)
    x_sq = data.sq_norm()
    W = np.maximum(W, tiny).astype(dtype)
    H = np.maximum(H, tiny).astype(dtype)
    monitor.restart_clock()
    while True:
        H_next = np.empty_like(H)
        divergence, residual = 0.0, 0.0
        for start, stop, block in column_blocks(data):
            H_block = H[:, start:stop]
            WH = W @ H_block
            divergence += beta_divergence(block, WH, beta)
            residual += float(np.sum((block - WH) ** 2, dtype=np.float64))
            np.maximum(WH, tiny, out=WH)
            numerator_terms, denominator_terms = _ratio_terms(block, WH, beta)
            numerator = W.T @ numerator_terms
            if denominator_terms is None:
                denominator = np.broadcast_to(W.sum(axis=0)[:, None], numerator.shape)
            else:
                denominator = W.T @ denominator_terms
            factor = numerator / np.maximum(denominator, tiny)
            if gamma != 1.0:
                factor **= gamma
            H_next[:, start:stop] = np.maximum(H_block * factor, tiny)
        error = relative_error_from_residual(x_sq, residual)
        if monitor(error, objective=divergence):
            return W, H, error, divergence
        H = H_next
        numerator = np.zeros(W.shape, dtype=np.float64)
        denominator = np.zeros(W.shape, dtype=np.float64)
        for start, stop, block in column_blocks(data):
            H_block = H[:, start:stop]
            WH = np.maximum(W @ H_block, tiny)
            numerator_terms, denominator_terms = _ratio_terms(block, WH, beta)
            numerator += numerator_terms @ H_block.T
            if denominator_terms is None:
                denominator += H_block.sum(axis=1, dtype=np.float64)[None, :]
            else:
                denominator += denominator_terms @ H_block.T
        factor = numerator / np.maximum(denominator, BETA_EPSILON)
        if gamma != 1.0:
            factor **= gamma
        W = np.maximum(W * factor.astype(dtype), tiny)


def beta_coefficients(W: np.ndarray, X, beta: float, *, max_iter: int = 500, tol: float = 1e-6) -> np.ndarray:
    """H = argmin_{H >= 0} D_beta(X | W H) for a fixed W (m x r): the H updates of the module
    docstring, from the least-squares start clipped positive, until the divergence decreases by
    less than ``tol`` relative over an iteration (each a majorization-minimization step: it never
    increases) or ``max_iter``. The coefficients of new data for a fitted beta-divergence NMF.
    Returns X's float dtype."""
    from mfcli.models.matrix import as_data_matrix
    data = as_data_matrix(X)
    dtype = np.dtype(data.dtype)
    tiny = dtype.type(BETA_EPSILON)
    gamma = mm_exponent(float(beta))
    W = np.maximum(np.asarray(W, dtype=dtype), tiny)
    H = positive_start(data, W)
    column_sums = W.sum(axis=0)[:, None]
    previous = np.inf
    for _ in range(max_iter):
        divergence = 0.0
        for start, stop, block in column_blocks(data):
            H_block = H[:, start:stop]
            WH = W @ H_block
            divergence += beta_divergence(block, WH, beta)
            np.maximum(WH, tiny, out=WH)
            numerator_terms, denominator_terms = _ratio_terms(block, WH, beta)
            denominator = column_sums if denominator_terms is None else W.T @ denominator_terms
            factor = (W.T @ numerator_terms) / np.maximum(denominator, tiny)
            if gamma != 1.0:
                factor **= gamma
            H[:, start:stop] = np.maximum(H_block * factor, tiny)
        if previous - divergence <= tol * abs(previous):
            break
        previous = divergence
    return H


def beta_nmf(X, rank: int, *, beta: float = 1.0, init: str = "nndsvda", W=None, H=None, max_iter: int = 500,
             tol: float = 1e-4, target_error: float | None = None, max_time: float | None = None, seed: int = 0,
             callback=None, dtype=None):
    """NMF minimizing the beta-divergence D_beta(X | WH) by MU (see module docstring).

    ``beta``: 1 = Kullback-Leibler, 0 = Itakura-Saito, any real. ``tol`` applies to the
    divergence (history ``objective``); ``relative_error`` is the Frobenius one, as everywhere.
    """
    beta = float(beta)
    if not np.isfinite(beta):
        raise ParameterError(f"beta must be a finite number, got {beta}")
    name = loss_name(beta)
    hint = (f"with beta={beta:g} the powers (WH)^(beta-1) and (WH)^(beta-2) overflow at this data's scale; "
            "use a beta closer to [0, 2] (fro 2, kl 1, is 0) or rescale the data")
    data, rank, stopping, monitor = begin_run(X, rank, f"NMF with the {name} loss", dtype=dtype, max_iter=max_iter,
                                              tol=tol, target_error=target_error, max_time=max_time,
                                              callback=callback, stage=f"nmf ({name})", hint=hint)
    W0, H0 = initialize(data, rank, init, seed=seed, W=W, H=H)
    if H0 is None:
            H0 = positive_start(data, W0)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # NaN/Inf stop the run with one error
        W_, H_, error, divergence = _beta_loop(data, W0, H0, beta, monitor)
    params = {"rank": rank, "loss": name, "beta": beta, "solver": "mu", "init": init if W is None else "given",
              "seed": seed, **stopping.as_dict()}
    result = single_layer_result("nmf", W_, H_, monitor, params, error)
    result.summary["divergence"] = divergence
    result.layers[0].attrs["divergence"] = divergence
    return result
