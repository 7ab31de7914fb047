"""Orthogonal NMF (ONMF) with restarts, and approximately orthogonal NMF (AONMF).

ONMF (Ding, Li, Peng & Park, KDD 2006; algorithm of Pompili, Gillis, Absil & Glineur, "Two
algorithms for orthogonal nonnegative matrix factorization with application to clustering",
Neurocomputing 141, 2014):

    min_{W >= 0, H >= 0, H H^T diagonal} ||X - W H||_F^2 ,

so every column of H has at most one nonzero: column j of X is assigned to one cluster k with a
weight. With unit columns w_k the loss is sum_j ||x_j||^2 - (w_{k(j)}^T x_j)^2, a weighted
spherical k-means. The alternating scheme of Pompili et al. (their EM-like algorithm):

1. assign each column to the basis vector with the largest cosine, weight = w_k^T x_j >= 0
   (the optimal H for this W);
2. set each w_k to the leading singular vector of its cluster X_k (the best rank-one fit;
   nonnegative by Perron-Frobenius). We take one power step per iteration,
   w_k <- X_k X_k^T w_k / ||.||, which for all k at once is X H^T with the H of step 1: the two
   steps together are the two products W^T X and X H^T (:func:`mfcli.models.matrix.project_update`,
   a single pass on a streaming engine), never a full SVD of a cluster. The Rayleigh quotient of
   a PSD matrix never decreases along a power step, so the loss never increases.

An emptied cluster is re-seeded with the worst-fitted column. ONMF has poor local optima, so
:func:`onmf` runs several starts (SPA, k-means++-style D^2 seeding, random) and keeps the best;
on large data the starts are screened on a random subsample and only the best is run on all
columns.

AONMF (Li, Zhang, Pan & Park, "Approximately orthogonal nonnegative matrix factorization",
SIAM SDM 2010; survey section 3.2.1):

    min_{W >= 0, ||w_k|| = 1, H >= 0} 1/2 ||X - W H||_F^2 + lambda sum_{j<k} <h_j, h_k> ,

by HALS (:mod:`mfcli.models.hals`) with the penalty folded into the Gram matrix of the H
update and exact unit-norm column updates of W. NumPy only.
"""

from __future__ import annotations

import time

import numpy as np

from mfcli.errors import ParameterError
from mfcli.metrics import relative_error_from_residual
from mfcli.models.base import begin_run, single_layer_result
from mfcli.models.hals import ALPHA, EPSILON, UnitColumnsScheme, alternating_loop, inner_sweeps
from mfcli.models.init import initialize, kmeanspp_init, spa_init
from mfcli.models.linalg import argmax_of_columns
from mfcli.models.matrix import DataMatrix, InMemoryMatrix, project_update
from mfcli.models.registry import check_number
from mfcli.models.stopping import TOL_WINDOW, Monitor, Stopping
from mfcli.models.threads import single_threaded_small_products

ONMF_STARTS = ("restarts", "spa", "kmeans++", "random")


def normalize_columns(W: np.ndarray) -> np.ndarray:
    """Columns scaled to unit l2 norm (zero columns left at zero)."""
    norms = np.linalg.norm(W, axis=0)
    return (W / np.where(norms > 0, norms, 1.0)).astype(W.dtype, copy=False)


def _reseed_empty(W: np.ndarray, empty: np.ndarray, data: DataMatrix, residual: np.ndarray) -> np.ndarray:
    """Give each empty cluster the worst-fitted column not yet used as a seed."""
    order = np.argsort(-residual, kind="stable")
    picks = order[: empty.size]
    columns = np.asarray(data.columns(picks), dtype=W.dtype)
    W = W.copy()
    for slot, k in enumerate(empty):
        W[:, k] = columns[:, slot]
    return normalize_columns(W)


def _onmf_loop(data: DataMatrix, W: np.ndarray, monitor: Monitor):
    """Alternate assignment and one power step per cluster; returns (W, assignments, weights, error).

    W (m x r, unit columns) is the basis that produced the returned assignment.
    """
    m, n = data.shape
    r = W.shape[1]
    dtype = np.dtype(data.dtype)
    x_sq = data.sq_norm()
    col_sq = np.asarray(data.col_sq_norms(), dtype=np.float64)
    assignments = np.zeros(n, dtype=np.int64)
    weights = np.zeros(n, dtype=dtype)
    W = normalize_columns(np.asarray(W, dtype=dtype))

    def assign(B: np.ndarray, cols: slice) -> np.ndarray:
        best = argmax_of_columns(B)
        width = B.shape[1]
        h = np.maximum(np.take_along_axis(B, best[None, :], axis=0)[0], 0)
        assignments[cols] = best
        weights[cols] = h
        H_block = np.zeros((r, width), dtype=dtype)
        H_block[best, np.arange(width)] = h
        return H_block

    monitor.restart_clock()
    while True:
        XHt = np.asarray(project_update(data, W, assign), dtype=np.float64)
        w64 = weights.astype(np.float64)
        fitted = float(np.einsum("j,j->", w64, w64))
        error = relative_error_from_residual(x_sq, x_sq - fitted)
        if monitor(error, objective=0.5 * max(x_sq - fitted, 0.0)):
            return W, assignments.copy(), weights.copy(), error
        norms = np.linalg.norm(XHt, axis=0)
        empty = np.flatnonzero(norms <= 0)
        W_next = (XHt / np.where(norms > 0, norms, 1.0)).astype(dtype)
        if empty.size:
            W_next[:, empty] = W[:, empty]
            W_next = _reseed_empty(W_next, empty, data, col_sq - w64 * w64)
        W = W_next


def hard_factors(W_unit: np.ndarray, assignments: np.ndarray, weights: np.ndarray, rank: int):
    """(W, H) of an ONMF in the display scaling: each column of W multiplied by the mean weight of
    its cluster, so the weights in H average 1 per cluster and w_k is a typical member."""
    n = assignments.size
    dtype = W_unit.dtype
    sums = np.bincount(assignments, weights=weights.astype(np.float64), minlength=rank)
    counts = np.bincount(assignments, minlength=rank)
    scale = np.where((counts > 0) & (sums > 0), sums / np.maximum(counts, 1), 1.0)
    W = (W_unit * scale).astype(dtype)
    H = np.zeros((rank, n), dtype=dtype)
    H[assignments, np.arange(n)] = (weights / scale[assignments]).astype(dtype)
    return W, H


def _start(kind: str, data: DataMatrix, rank: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "spa":
        W = spa_init(data, rank)
    elif kind == "kmeans++":
        W = kmeanspp_init(data, rank, rng)
    elif kind == "random":
        W = rng.random((data.shape[0], rank))
    else:
        raise ParameterError(f"unknown ONMF start '{kind}'; choose one of {', '.join(ONMF_STARTS)}")
    return normalize_columns(np.asarray(W, dtype=data.dtype))


def start_kind(index: int) -> str:
    """The kind of start number ``index`` (0-based): SPA first, then alternately k-means++-style
    and random starts."""
    return "spa" if index == 0 else ("kmeans++" if index % 2 else "random")


# Relative difference of two starts' errors below which they count as the same fit: starts that
# reach one clustering (often with its clusters in another order) end with errors that differ in
# the last bits, and which one won depended on how the engine had rounded the data.
TIE = 1e-9


def start_kinds(restarts: int) -> list[str]:
    return [start_kind(index) for index in range(max(1, restarts))]


def best_of_starts(data: DataMatrix, rank: int, *, restarts: int, stopping: Stopping, seed,
                   screen_size: int = 5000, callback=None, deadline: float | None = None):
    """Run ONMF from ``restarts`` starts (on a subsample of ``screen_size`` columns when n is
    larger) and return (best unit W, list of (kind, relative error) per start, screened: bool).

    ``deadline`` (a ``time.perf_counter()`` value): no start begins after it and each start's
    ``max_time`` is the time left, so a run with a time limit never waits on its restarts (the
    first start always runs). Start i draws from the seed's i-th child (SeedSequence spawn key
    (i,)), made when it is needed, so any number of restarts costs nothing up front.
    """
    n = data.shape[1]
    entropy = np.random.SeedSequence(seed).entropy

    def child(index: int) -> np.random.SeedSequence:  # == SeedSequence(seed).spawn(...)[index]
        return np.random.SeedSequence(entropy, spawn_key=(index,))

    screened = n > screen_size
    target = data
    if screened:
        sample = np.sort(np.random.default_rng(child(restarts)).choice(n, screen_size, replace=False))
        target = InMemoryMatrix(np.asarray(data.columns(sample), dtype=data.dtype))
    best_W, best_error, report = None, np.inf, []
    for index in range(restarts):
        if index > 0 and deadline is not None and time.perf_counter() >= deadline:
            break
        kind = start_kind(index)
        start_stopping = stopping
        if deadline is not None:
            start_stopping = Stopping(max_iter=stopping.max_iter, tol=stopping.tol,
                                      max_time=max(deadline - time.perf_counter(), 1e-6))
        W0 = _start(kind, target, rank, np.random.default_rng(child(index)))
        monitor = Monitor(start_stopping, callback, stage=f"onmf start {index + 1}/{restarts} ({kind})")
        W, _, _, error = _onmf_loop(target, W0, monitor)
        report.append((kind, error))
        if error < best_error * (1.0 - TIE):  # starts that end equal to rounding: the first is kept
            best_W, best_error = W, error
    return best_W, report, screened


@single_threaded_small_products
def onmf(X, rank: int, *, init: str = "restarts", W=None, H=None, restarts: int = 10, screen_size: int = 5000,
         screen_tol: float = 1e-4, max_iter: int = 200, tol: float = 1e-6, target_error: float | None = None,
         max_time: float | None = None, seed: int = 0, callback=None, dtype=None, window: int = TOL_WINDOW):
    """Orthogonal NMF X ~= W H, H >= 0 with one nonzero per column (a hard clustering).

    ``init``: ``restarts`` (default: the best of ``restarts`` starts, SPA, k-means++-style and
    random, screened on ``screen_size`` columns for larger data, each start run until its
    relative decrease is below ``screen_tol``), or a single start ``spa`` | ``kmeans++`` |
    ``random``; a given ``W`` starts from it (``H`` is ignored: ONMF derives it).
    Returns a Result whose layer has ``assignments`` (cluster of each column), and
    ``assignment_weights``; W's columns are typical members (weights average 1 per cluster).
    ``window``: accepted iterations the tol rule averages over (:class:`~mfcli.models.stopping.Stopping`).
    """
    restarts = check_number("restarts", restarts, low=1, integer=True)
    screen_size = check_number("screen_size", screen_size, low=1, integer=True)
    screen_tol = check_number("screen_tol", screen_tol, low=0)
    # the monitor is created first: its clock times the restarts too
    data, rank, stopping, monitor = begin_run(X, rank, "onmf", dtype=dtype, max_iter=max_iter, tol=tol,
                                              target_error=target_error, max_time=max_time, callback=callback,
                                              window=window)
    report: list = []
    screened = False
    if W is not None:
        W0, _ = initialize(data, rank, W=W)
        W0 = normalize_columns(W0)
        start = "given"
    elif init == "restarts":
        if data.shape[1] > screen_size or restarts > 1:
            screen_stop = Stopping(max_iter=max_iter, tol=max(stopping.tol, screen_tol))  # ranking needs less
            deadline = None if max_time is None else monitor.started + stopping.max_time
            W0, report, screened = best_of_starts(data, rank, restarts=restarts, stopping=screen_stop, seed=seed,
                                                  screen_size=screen_size, callback=callback, deadline=deadline)
        else:
            W0 = _start("spa", data, rank, np.random.default_rng(seed))
        start = "restarts"
    else:
        W0 = _start(init, data, rank, np.random.default_rng(seed))
        start = init
    W_unit, assignments, weights, error = _onmf_loop(data, W0, monitor)
    W_out, H_out = hard_factors(W_unit, assignments, weights, rank)
    params = {"rank": rank, "init": start, "restarts": restarts, "screen_size": screen_size, "seed": seed,
              **stopping.as_dict()}
    result = single_layer_result("onmf", W_out, H_out, monitor, params, error, assignments=assignments,
                                 assignment_weights=weights.astype(np.float64),
                                 attrs={"screened": screened})
    if report:
        result.layers[0].arrays["start_errors"] = np.array([e for _, e in report])
        result.layers[0].attrs["starts"] = [k for k, _ in report]
    return result


def assign_columns(W: np.ndarray, X) -> tuple[np.ndarray, np.ndarray]:
    """Cluster and weight of new columns for a fitted ONMF basis (largest cosine)."""
    from mfcli.models.matrix import as_data_matrix

    data = as_data_matrix(X)
    norms = np.linalg.norm(W, axis=0)
    W_unit = W / np.where(norms > 0, norms, 1.0)
    B = np.asarray(data.WtX(W_unit.astype(data.dtype)), dtype=np.float64)
    best = np.argmax(B, axis=0)
    weights = np.maximum(B[best, np.arange(B.shape[1])], 0) / np.where(norms[best] > 0, norms[best], 1.0)
    return best, weights


class AONMFScheme(UnitColumnsScheme):
    """HALS for AONMF: Gram of the H step G = W^T W + lambda (11^T - I); unit columns of W."""

    def __init__(self, dtype, penalty: float, max_h_sweeps: int, max_w_sweeps: int, eps: float = EPSILON):
        super().__init__(dtype, max_h_sweeps, max_w_sweeps, eps)
        self.penalty_weight = float(penalty)

    def h_gram(self, AtA: np.ndarray) -> np.ndarray:
        r = AtA.shape[0]
        return np.asarray(AtA, dtype=np.float64) + self.penalty_weight * (np.ones((r, r)) - np.eye(r))

    def penalty(self, W, H, HHt) -> float:
        HHt = np.asarray(HHt, dtype=np.float64)
        return self.penalty_weight * 0.5 * float(HHt.sum() - np.trace(HHt))


def aonmf(X, rank: int, *, penalty: float = 1.0, init: str = "spa", W=None, H=None, max_iter: int = 500,
          tol: float = 1e-5, target_error: float | None = None, max_time: float | None = None, seed: int = 0,
          callback=None, dtype=None, accelerate: bool = True, alpha: float = ALPHA, eps: float = EPSILON):
    """Approximately orthogonal NMF (see module docstring); ``penalty`` is lambda.

    Columns of W have unit l2 norm. The layer's ``assignments`` are the largest coefficient of
    each column and ``assignment_weights`` its share of the column's total.
    """
    penalty = check_number("penalty", penalty, low=0)
    data, rank, stopping, monitor = begin_run(X, rank, "aonmf", dtype=dtype, max_iter=max_iter, tol=tol,
                                              target_error=target_error, max_time=max_time, callback=callback)
    W0, H0 = AONMFScheme.unit_start(*initialize(data, rank, init, seed=seed, W=W, H=H), data.dtype)
    h_sweeps, w_sweeps = inner_sweeps(*data.shape, rank, alpha, accelerate)
    scheme = AONMFScheme(data.dtype, penalty, h_sweeps, w_sweeps, eps)
    W_, H_, error = alternating_loop(data, W0, H0, scheme, monitor)
    assignments, shares = soft_assignments(H_)
    params = {"rank": rank, "penalty": penalty, "init": init if W is None else "given", "seed": seed,
              **stopping.as_dict()}
    return single_layer_result("aonmf", W_, H_, monitor, params, error, assignments=assignments,
                               assignment_weights=shares)


def soft_assignments(H: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest coefficient of each column and its share of the column sum."""
    best = np.argmax(H, axis=0)
    totals = H.sum(axis=0, dtype=np.float64)
    top = H[best, np.arange(H.shape[1])].astype(np.float64)
    return best.astype(np.int64), np.where(totals > 0, top / np.where(totals > 0, totals, 1.0), 0.0)
