"""Nonnegative matrix factorization with the Frobenius loss: accelerated HALS and MU.

Objective (Lee & Seung, "Learning the parts of objects by non-negative matrix factorization",
Nature 401, 1999; Paatero & Tapper, Environmetrics 5, 1994):

    min_{W >= 0, H >= 0}  1/2 ||X - W H||_F^2 .

Solvers:

- ``hals`` (default): accelerated HALS (Gillis & Glineur, Neural Computation 24(4), 2012), see
  :mod:`mfcli.models.hals`: the two products with X once per iteration, several cheap inner sweeps on
  the r x r Gram matrices, column-by-column updates of Cichocki & Phan (2009), and safeguarded
  extrapolation of the iterates (Ang & Gillis, Neural Computation 31(2), 2019).
- ``mu``: the multiplicative updates of Lee & Seung ("Algorithms for non-negative matrix
  factorization", NIPS 2001), H <- H * (W^T X) / (W^T W H), W <- W * (X H^T) / (W H H^T),
  with denominators kept above a tiny positive value.

Other losses (``kl``, ``is``, ``beta=B``) are delegated to :func:`mfcli.models.beta.beta_nmf`.
Both solvers decrease the objective at every iteration. NumPy only.
"""

from __future__ import annotations

import numpy as np

from mfcli.errors import ParameterError
from mfcli.models.base import begin_run, single_layer_result
from mfcli.models.beta import beta_nmf, positive_start
from mfcli.models.hals import (ALPHA, EPSILON, Extrapolation, Scheme, alternating_loop, gram_of_rows, inner_sweeps,
                               needs_float64_sums)
from mfcli.models.init import initialize
from mfcli.models.linalg import frobenius_relative_error
from mfcli.models.matrix import DataMatrix, project_update
from mfcli.models.registry import NAMED_LOSSES, loss_key
from mfcli.models.stopping import Monitor
from mfcli.models.threads import single_threaded_small_products

SOLVERS = ("hals", "mu")

# Defaults chosen with benchmarks/bench_defaults.py (mfcli with no stopping flags against
# scikit-learn's default NMF on twelve varied matrices): tol 1e-5 over a window of 10 accepted
# iterations is the largest that reached scikit-learn's error on every one of them (1e-4 and
# 3e-5 stopped short on the slowly converging Samson scene). With the tol rule's share of the
# starting objective (mfcli.models.stopping.START_SHARE) the suite takes 0.57x scikit-learn's
# time summed (1.02x without it), every error at most scikit-learn's. The multiplicative updates
# converge far more slowly per iteration: 1e-4.
DEFAULT_TOL = 1e-5
MU_TOL = 1e-4
# Below this many entries an iteration costs microseconds, so the default HALS tol is 10x finer
# (SMALL_TOL): on bench_defaults' 60 x 40 matrix tol 1e-5 stopped after 21 iterations 1.3e-7
# (relative) above the minimum scikit-learn's default reaches, 1e-6 passes it after 25, in the
# same few ms (its "small" row). On the 44 matrices of fewer entries among 160 random ones of the
# kinds of bench_defaults --fuzz, run at each tol by a script outside benchmarks/, 1e-5 / 1e-6 /
# 1e-7 left 14 / 13 / 12 errors above scikit-learn's (other local minima), 7 / 9 / 14 runs at
# max_iter, in 2.9 / 3.8 / 4.4 s: 1e-7 buys little for many more unconverged runs.
SMALL_CELLS = 1 << 16
SMALL_TOL = 1e-6
DEFAULT_MAX_ITER = 500


def parse_loss(loss) -> float:
    """'fro' -> 2, 'kl' -> 1, 'is' -> 0, 'beta=B' or a number -> B."""
    if isinstance(loss, (int, float)):
        return float(loss)
    text = loss_key(loss)
    if text in NAMED_LOSSES:
        return NAMED_LOSSES[text]
    if text.startswith("beta="):
        text = text[5:]
    try:
        return float(text)
    except ValueError:
        raise ParameterError(f"unknown loss '{loss}'; use fro, kl, is or beta=B (e.g. beta=0.5)") from None


@single_threaded_small_products
def _mu_loop(data: DataMatrix, W: np.ndarray, H: np.ndarray | None, monitor: Monitor):
    """Lee-Seung multiplicative updates for the Frobenius loss (W^T X and X H^T once per iteration)."""
    dtype = np.dtype(data.dtype)
    tiny = np.finfo(dtype).tiny * 1e6
    x_sq = data.sq_norm()
    if H is None:
        H = positive_start(data, W)
    H = np.array(H, dtype=dtype, order="C", copy=True)
    np.maximum(H, tiny, out=H)
    W = np.maximum(W, tiny).astype(dtype)
    accurate = dtype == np.float64
    monitor.restart_clock()
    while True:
        WtW = W.T @ W

        def update(B: np.ndarray, cols: slice) -> np.ndarray:
            block = H[:, cols]
            denominator = WtW @ block
            np.maximum(denominator, tiny, out=denominator)
            block *= B / denominator
            return block

        XHt = project_update(data, W, update, accurate=accurate)
        HHt = gram_of_rows(H)
        denominator = W @ HHt
        np.maximum(denominator, tiny, out=denominator)
        W = (W * (XHt / denominator)).astype(dtype, copy=False)
        W64 = W.astype(np.float64)
        error = frobenius_relative_error(x_sq, W64, XHt, W64.T @ W64, HHt)
        stop = monitor(error, objective=0.5 * error * error * x_sq)
        if not accurate and ((stop and monitor.resume()) or (not stop and needs_float64_sums(error, dtype,
                                                                                              monitor.stopping))):
            accurate, stop = True, False  # float32 data: X H^T summed in float64 from now on (see hals)
        if stop:
            return W, H, error


def default_tol(X, beta: float = 2.0, solver: str = "hals") -> float:
    """tol of a run that gave none: 1e-5 for HALS on the Frobenius loss (1e-6 on matrices of fewer
    than 2^16 entries), 1e-4 for the multiplicative updates and the beta-divergences."""
    if beta != 2.0 or solver != "hals":
        return MU_TOL
    shape = X.shape if hasattr(X, "shape") else np.shape(X)
    small = len(shape) == 2 and shape[0] * shape[1] < SMALL_CELLS  # other shapes are refused by begin_run
    return SMALL_TOL if small else DEFAULT_TOL


def nmf(X, rank: int, *, loss="fro", solver: str = "hals", init: str = "nndsvda", W=None, H=None,
        max_iter: int | None = None, tol: float | None = None, target_error: float | None = None,
        max_time: float | None = None, seed: int = 0, callback=None, dtype=None, accelerate: bool = True,
        extrapolate: bool = True, alpha: float = ALPHA, eps: float = EPSILON):
    """NMF X ~= W H with W, H >= 0.

    Parameters
    ----------
    X : (m, n) nonnegative array or :class:`~mfcli.models.matrix.DataMatrix`.
    rank : r.
    loss : ``fro`` (Frobenius, default), ``kl``, ``is`` or ``beta=B`` (beta-divergences, by MU).
    solver : ``hals`` (accelerated HALS, default) or ``mu`` (multiplicative updates); Frobenius only.
    init : random | nndsvd | nndsvda | nndsvdar | spa | kmeans++ (see :mod:`mfcli.models.init`);
        ``W``/``H``: user-given initial factors (take precedence).
    max_iter, tol, target_error, max_time : stopping rules (:class:`~mfcli.models.stopping.Stopping`);
        default 500 iterations and tol 1e-5 (1e-6 below 2^16 entries; 1e-4 for ``mu`` and the
        beta-divergences: :func:`default_tol`).
    seed : seed of every random choice. callback : ``callback(iteration, relative_error, **info)``.
    dtype : float32 or float64 (default: X's own float type), kept throughout.
    accelerate, alpha, eps : inner sweeps of accelerated HALS (Gillis & Glineur 2012).
    extrapolate : safeguarded extrapolation of the iterates (Ang & Gillis 2019,
        :class:`~mfcli.models.hals.Extrapolation`); the error still never increases.

    Returns a :class:`~mfcli.result.Result` with one layer (W, H, history).
    """
    beta = parse_loss(loss)
    max_iter = DEFAULT_MAX_ITER if max_iter is None else max_iter
    if tol is None:
        tol = default_tol(X, beta, solver)
    if beta != 2.0:
        return beta_nmf(X, rank, beta=beta, init=init, W=W, H=H, max_iter=max_iter, tol=tol,
                        target_error=target_error, max_time=max_time, seed=seed, callback=callback, dtype=dtype)
    if solver not in SOLVERS:
        raise ParameterError(f"unknown NMF solver '{solver}'; choose one of {', '.join(SOLVERS)}")
    data, rank, stopping, monitor = begin_run(X, rank, "nmf", dtype=dtype, max_iter=max_iter, tol=tol,
                                              target_error=target_error, max_time=max_time, callback=callback,
                                              stage=f"nmf ({solver})")
    W0, H0 = initialize(data, rank, init, seed=seed, W=W, H=H)
    if solver == "mu":
        W_, H_, error = _mu_loop(data, W0, H0, monitor)
    else:
        h_sweeps, w_sweeps = inner_sweeps(*data.shape, rank, alpha, accelerate)
        scheme = Scheme(data.dtype, h_sweeps, w_sweeps, eps)  # plain NMF: the default HALS steps
        W_, H_, error = alternating_loop(data, W0, H0, scheme, monitor, Extrapolation() if extrapolate else None)
    params = {"rank": rank, "loss": "fro", "solver": solver, "init": init if W is None else "given",
              "seed": seed, "accelerate": accelerate, "extrapolate": extrapolate, "alpha": alpha, "eps": eps,
              **stopping.as_dict()}
    return single_layer_result("nmf", W_, H_, monitor, params, error)
