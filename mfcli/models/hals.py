"""Hierarchical alternating least squares (HALS) and the loop shared by the Frobenius models.

HALS (Cichocki, Zdunek & Amari, "Hierarchical ALS algorithms for nonnegative matrix and 3D
tensor factorization", ICA 2007; Cichocki & Phan, IEICE Trans. 2009) minimizes
||Y - A F||_F^2 over F >= 0 one row f_k at a time, each row in closed form:

    f_k <- max(floor, f_k + (C_k - G_k F) / G_kk),     C = A^T Y,  G = A^T A.

Only C (r x p) and G (r x r) are needed, so once they are computed (the expensive pass over
the data) several sweeps over the rows cost little. That is the accelerated HALS of Gillis &
Glineur ("Accelerated multiplicative updates and hierarchical ALS algorithms for nonnegative
matrix factorization", Neural Computation 24(4), 2012): after each pass over X, up to
``1 + alpha * rho`` inner sweeps, where rho is the cost of the pass relative to one sweep,
stopping early once a sweep changes F by less than ``eps`` times what the first sweep changed.

The loop :func:`alternating_loop` runs every two-block Frobenius model (NMF by HALS, sparse NMF,
nsNMF, semi-NMF, AONMF) with the two products of X per iteration, ``A^T X`` and ``X H^T``,
through :func:`mfcli.models.matrix.project_update`: H is updated block of columns by block (the
problem in H separates over columns, so the eps rule is applied block by block and the small
arrays stay in cache), and a streaming engine reads X only once per iteration. The relative
error then comes from small matrices only: ||X||^2 - 2 <A, X H^T> + <A^T A, H H^T>. NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfcli.models.base import DIRECT_ERROR_BELOW, direct_relative_error
from mfcli.models.linalg import floor_for, frobenius_relative_error, gram_solve
from mfcli.models.matrix import DataMatrix, project_update
from mfcli.models.stopping import Monitor
from mfcli.models.threads import single_threaded_small_products

# Inner sweeps: at most 1 + ALPHA * rho (Gillis & Glineur 2012 use alpha = 0.5 in MATLAB). A
# NumPy sweep is a chain of small calls that runs below the speed of the BLAS pass, so the flop
# ratio rho overstates how many sweeps pay off: in the alpha sweep of benchmarks/bench_nmf.py
# (Urban-sized synthetic data) 0.25 reaches the target fastest of 0.1, 0.25, 0.5 and 1.
ALPHA = 0.25
EPSILON = 0.1  # stop the inner sweeps when a sweep changes less than EPSILON x the first one
MAX_W_SWEEPS = 50


def inner_sweeps(m: int, n: int, r: int, alpha: float = ALPHA, accelerate: bool = True) -> tuple[int, int]:
    """Inner sweep caps (for H, for W) from the cost ratios of Gillis & Glineur (2012):

    rho_H = 1 + (mn + mr) / (n(r + 1)),   rho_W = 1 + (mn + nr) / (m(r + 1)),

    the flops of one pass over X (plus the Gram matrix) over those of one sweep; (1, 1), plain
    HALS, without ``accelerate``.
    """
    if not accelerate:
        return 1, 1
    rho_h = 1.0 + (m * n + m * r) / (n * (r + 1.0))
    rho_w = 1.0 + (m * n + n * r) / (m * (r + 1.0))
    return int(1 + alpha * rho_h), min(MAX_W_SWEEPS, int(1 + alpha * rho_w))


def sweep_matrix(gram: np.ndarray, l1: float = 0.0, dtype=np.float64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(M, scale, shift)`` such that one HALS row update is ``f_k = max(floor, M_k @ F + D_k)``
    with ``D = scale C + shift`` (:func:`sweep_targets`): M = -(G - diag G) / G_kk (zero
    diagonal, r x r), scale = 1 / G_kk, shift = -l1 / G_kk.

    A row update is then one matrix-vector product over the r rows of F, one addition and one
    clipping; D is formed once per block, before the sweeps.
    """
    gram = np.asarray(gram, dtype=np.float64)
    r = gram.shape[0]
    diag = np.diag(gram).copy()
    diag = np.where(diag > 0, diag, 1.0)  # a zero row of A: its coefficient row stays at the floor
    M = -gram / diag[:, None]
    M[np.arange(r), np.arange(r)] = 0.0
    return M.astype(dtype), (1.0 / diag).astype(dtype), (-float(l1) / diag).astype(dtype)


def sweep_targets(C: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """D = diag(scale) C + shift (r x p, C-contiguous, in scale's dtype): the part of every row
    update of :func:`hals_sweeps` that does not depend on F."""
    D = np.multiply(C, scale[:, None], dtype=scale.dtype)
    if np.any(shift):
        D += shift[:, None]
    return D


def hals_sweeps(F: np.ndarray, D: np.ndarray, M: np.ndarray, max_sweeps: int, eps: float, floor: float) -> int:
    """Run up to ``max_sweeps`` HALS sweeps in place on F (r x p, C-contiguous): row after row,
    ``f_k <- max(floor, M_k @ F + D_k)`` (M, D from :func:`sweep_matrix`, :func:`sweep_targets`).

    Returns the number of sweeps done. Stops early when a sweep changes F by less than ``eps``
    times the change of the first sweep (``eps = 0`` never stops early).
    """
    buffer = np.empty(F.shape[1], dtype=F.dtype)
    # the floor as a whole row: np.maximum against a scalar took 3x the time of the same against an
    # array (4.8 against 1.7 us for 11782 float32, NumPy 2.4; timed outside benchmarks/)
    floor = np.full(F.shape[1], floor, dtype=F.dtype)
    rows = [(M[k], D[k], F[k]) for k in range(M.shape[0])]  # views made once: a row update is short
    dot, add, maximum = np.dot, np.add, np.maximum
    first = None
    previous = np.empty_like(F) if eps > 0 and max_sweeps > 1 else None
    for sweep in range(1, max_sweeps + 1):
        measure = previous is not None and sweep < max_sweeps  # the last sweep decides nothing
        if measure:
            np.copyto(previous, F)
        for m_k, d_k, f_k in rows:
            dot(m_k, F, out=buffer)
            add(buffer, d_k, out=buffer)
            maximum(buffer, floor, out=f_k)
        if measure:
            previous -= F
            # BLAS's dot: 5 us against einsum's 21 for a float32 7 x 11782 block (timed outside benchmarks/)
            change = float(np.vdot(previous, previous))
            if first is None:
                first = change
            elif change <= eps * eps * first:
                return sweep
    return max_sweeps


def hals_rows(F: np.ndarray, C: np.ndarray, gram: np.ndarray, max_sweeps: int, eps: float = EPSILON,
              l1: float = 0.0, floor: float | None = None, in_place: bool = False) -> np.ndarray:
    """HALS on all rows of F (r x p) for min ||Y - A F||^2 (+ l1 sum F), given C = A^T Y and
    gram = A^T A. Returns the updated F: a new array, or F itself with ``in_place`` (F then
    C-contiguous)."""
    floor = floor_for(F.dtype) if floor is None else floor
    M, scale, shift = sweep_matrix(gram, l1, F.dtype)
    out = F if in_place else np.array(F, order="C", copy=True)
    hals_sweeps(out, sweep_targets(C, scale, shift), M, max_sweeps, eps, floor)
    return out


def hals_block_update(H: np.ndarray, gram: np.ndarray, sweeps: int, eps: float, floor: float, l1: float = 0.0,
                      cross=None):
    """The per-block update for :func:`~mfcli.models.matrix.project_update` that runs up to
    ``sweeps`` HALS sweeps, in place on ``H[:, J]`` from its current value, for
    min ||X - A H||^2 (+ l1 sum H) given ``gram`` = A^T A and the block B = A^T X_J (or
    ``cross(B, J)`` where the right-hand side is more than A^T X_J). Returns the new block."""
    M, scale, shift = sweep_matrix(gram, l1, H.dtype)

    def update(B: np.ndarray, cols: slice) -> np.ndarray:
        block = np.ascontiguousarray(H[:, cols])
        hals_sweeps(block, sweep_targets(B if cross is None else cross(B, cols), scale, shift), M, sweeps, eps, floor)
        H[:, cols] = block
        return block

    return update


def unit_columns_update(W: np.ndarray, XHt: np.ndarray, HHt: np.ndarray, sweeps: int = 1) -> np.ndarray:
    """Exact block update of each column of W >= 0 with ||w_k||_2 = 1 for min ||X - WH||^2.

    With the other columns fixed the objective is const - 2 w_k^T v + ||w_k||^2 (HH^T)_kk,
    v = (XH^T)_k - sum_{j != k} w_j (HH^T)_jk, so on the nonnegative unit sphere the minimizer
    is w_k = [v]_+ / ||[v]_+|| (kept unchanged when [v]_+ = 0). Used by the models whose penalty
    is not scale-invariant (sparse NMF, AONMF), whose columns of W must be normalized.
    """
    W = np.array(W, copy=True)
    HHt = np.asarray(HHt, dtype=W.dtype)
    XHt = np.asarray(XHt, dtype=W.dtype)
    for _ in range(sweeps):
        for k in range(W.shape[1]):
            v = XHt[:, k] - W @ HHt[:, k] + W[:, k] * HHt[k, k]
            np.maximum(v, 0, out=v)
            norm = np.linalg.norm(v)
            if norm > 0:
                W[:, k] = v / norm
    return W


def balance(W: np.ndarray, H: np.ndarray, WtW: np.ndarray, HHt: np.ndarray):
    """Rescale so that ||w_k|| = ||h_k|| (same product WH), in place on H.

    Returns (W, d) with W rescaled: W <- W diag(d), H <- diag(1/d) H.
    """
    w_norms = np.sqrt(np.maximum(np.diag(WtW), 0))
    h_norms = np.sqrt(np.maximum(np.diag(HHt), 0))
    ok = (w_norms > 0) & (h_norms > 0)
    d = np.ones(W.shape[1])
    d[ok] = np.sqrt(h_norms[ok] / w_norms[ok])
    W = W * d.astype(W.dtype)
    H *= (1.0 / d).astype(H.dtype)[:, None]
    return W, d


def needs_float64_sums(relative_error: float, dtype, stopping) -> bool:
    """Whether float32 sums in X H^T could hide the progress the tol rule must see.

    The objective 1/2 ||X - WH||^2 = 1/2 e^2 ||X||^2 comes from terms of size ||X||^2 whose
    float32 rounding (about eps ||X||^2) is, relative to the objective, about 2 eps / e^2: 1e-4
    at a relative error e = 0.05. Past the point where that exceeds ``tol``, float32 sums can no
    longer tell progress from rounding (extrapolated steps get rejected at random and the tol
    rule fires on noise), so X H^T is summed in float64 from there on. Runs with a target error
    (or tol 0) keep float32 sums: they need no measure of progress."""
    if np.dtype(dtype) == np.float64 or stopping.tol <= 0 or stopping.target_error is not None:
        return False
    rounding = 2.0 * float(np.finfo(dtype).eps) / max(relative_error * relative_error, 1e-300)
    return rounding > stopping.tol


def gram_of_rows(F: np.ndarray, block: int = 65536) -> np.ndarray:
    """F F^T in float64 (F r x n, any float type), block of columns by block.

    The relative error comes from ||X||^2 - 2 <W, X H^T> + <W^T W, H H^T>, a difference of
    nearly equal numbers when the fit is good: float32 Gram matrices there make the error
    (hence every accept/reject and stopping decision) noisy at about 1e-4 relative, float64
    ones at about 1e-5 for the same float32 data, for r^2 n extra flops."""
    if F.dtype == np.float64:
        return F @ F.T
    out = np.zeros((F.shape[0], F.shape[0]))
    for start in range(0, F.shape[1], block):
        part = np.asarray(F[:, start:start + block], dtype=np.float64)
        out += part @ part.T
    return out


class BlockGrams:
    """A pass's update (see :func:`~mfcli.models.matrix.project_update`) that also forms each new
    block's H_J H_J^T in float64, on the thread that made H_J while it is in the cache: after the
    pass, :meth:`total` is H H^T (as :func:`gram_of_rows`, summed block by block in column order,
    so the same for any number of threads and on every engine). Formed after the pass on the
    calling thread instead, H H^T of a float32 rank-7 H of 94249 columns took 4 ms of every
    iteration, the pass threads idle (timed outside benchmarks/)."""

    def __init__(self, update):
        self.update = update
        self.parts: dict[int, np.ndarray] = {}

    def __call__(self, B: np.ndarray, columns: slice) -> np.ndarray:
        H_block = self.update(B, columns)
        part = np.asarray(H_block, dtype=np.float64)
        self.parts[columns.start] = part @ part.T
        return H_block

    def total(self) -> np.ndarray:
        starts = sorted(self.parts)
        out = self.parts[starts[0]].copy()
        for start in starts[1:]:
            out += self.parts[start]
        return out


def cross_and_gram(WtX: np.ndarray, C: np.ndarray, chunk: int = 16384) -> tuple[float, np.ndarray]:
    """<W^T X, C> and C C^T (r x n each, any float dtype) in float64, a chunk of columns at a time:
    no float64 copies of the r x n arrays (they would set unmix's peak memory)."""
    cross = 0.0
    for start in range(0, C.shape[1], chunk):
        cross += float(np.vdot(np.asarray(WtX[:, start:start + chunk], dtype=np.float64),
                               np.asarray(C[:, start:start + chunk], dtype=np.float64)))
    return cross, gram_of_rows(C, chunk)


@dataclass
class Extrapolation:
    """Safeguarded extrapolation of the HALS iterates (HER of Ang & Gillis, "Accelerating
    nonnegative matrix factorization algorithms using extrapolation", Neural Computation 31(2),
    2019): after each update, H^ = [H_new + beta (H_new - H_old)]_+ (likewise W^) is where the
    next update starts; beta grows by ``gamma`` (capped by beta_bar, which grows by ``gamma_bar``
    up to 1) while the error decreases, and shrinks by ``eta`` when it does not.

    Safeguard (ours): a step whose error is larger than the last accepted one is discarded, the
    iterate stays at the accepted point and the next step is a plain HALS step from it, which
    cannot increase the error. So the recorded error never increases, as with plain HALS.
    """

    beta: float = 0.5
    eta: float = 1.5
    gamma: float = 1.01
    gamma_bar: float = 1.005


class Scheme:
    """How one Frobenius model updates its two blocks; :func:`alternating_loop` does the rest.

    The model is X ~= A H with A = ``left(W)`` (W itself, or W S for nsNMF). Subclasses
    override the H step (``h_gram``, ``l1``: the HALS sweep matrix), ``update_w`` and ``penalty``.
    ``extrapolatable``: the model's W may be extrapolated (no norm constraint on W);
    ``nonnegative_w``: the extrapolated W is projected on W >= 0.
    """

    l1 = 0.0
    balance = True  # rescale W and H to equal norms (each iteration; at the end when extrapolating)
    extrapolatable = True
    nonnegative_w = True

    def __init__(self, dtype, max_h_sweeps: int = 1, max_w_sweeps: int = 1, eps: float = EPSILON):
        self.dtype = np.dtype(dtype)
        self.floor = floor_for(dtype)
        self.max_h_sweeps = max_h_sweeps
        self.max_w_sweeps = max_w_sweeps
        self.eps = eps

    def left(self, W: np.ndarray) -> np.ndarray:
        return W

    def h_gram(self, AtA: np.ndarray) -> np.ndarray:
        return AtA

    def h_update(self, AtA: np.ndarray, start: np.ndarray | None, out: np.ndarray, beta: float = 0.0,
                 previous: np.ndarray | None = None, plain_out: np.ndarray | None = None):
        """The per-block H update for :func:`project_update`.

        HALS sweeps on each block starting from ``start`` (None: from the clipped least-squares
        solution max(floor, (A^T A)^+ A^T X_J)); the result goes to ``out``. With ``beta > 0``
        the block is extrapolated, [H_new + beta (H_new - previous)]_+, into ``out`` and the plain
        update kept in ``plain_out``. Returns the function giving the block that enters X H^T.
        """
        M, scale, shift = sweep_matrix(self.h_gram(AtA), self.l1, self.dtype)
        AtA64 = np.asarray(AtA, dtype=np.float64)
        floor, sweeps, eps, dtype = self.floor, self.max_h_sweeps, self.eps, self.dtype

        def update(B: np.ndarray, cols: slice) -> np.ndarray:
            if start is None:
                F = gram_solve(AtA64, B)
                np.maximum(F, floor, out=F)
                F = F.astype(dtype)
            else:
                F = np.array(start[:, cols], dtype=dtype, order="C")
            hals_sweeps(F, sweep_targets(B, scale, shift), M, sweeps, eps, floor)
            if plain_out is not None:
                plain_out[:, cols] = F
            if beta > 0:
                block = out[:, cols]
                np.subtract(F, previous[:, cols], out=block)
                block *= dtype.type(beta)
                block += F
                np.maximum(block, floor, out=block)
                return block
            out[:, cols] = F
            return F

        return update

    def update_w(self, W: np.ndarray, XHt: np.ndarray, HHt: np.ndarray) -> np.ndarray:
        Wt = hals_rows(np.ascontiguousarray(W.T), XHt.T, HHt, self.max_w_sweeps, self.eps, floor=self.floor)
        return np.ascontiguousarray(Wt.T)

    def penalty(self, W: np.ndarray, H: np.ndarray, HHt: np.ndarray) -> float:
        return 0.0


class UnitColumnsScheme(Scheme):
    """Models whose penalty is not scale-invariant keep the columns of W on the unit sphere
    (sparse NMF, AONMF): exact unit-norm column updates of W, no rescaling, no extrapolation."""

    balance = False
    extrapolatable = False

    def update_w(self, W, XHt, HHt):
        return unit_columns_update(W, XHt, HHt, sweeps=min(self.max_w_sweeps, 10))

    @staticmethod
    def unit_start(W0: np.ndarray, H0: np.ndarray | None, dtype):
        """W's columns scaled to unit norm and H's rows inversely (the same product)."""
        norms = np.linalg.norm(W0, axis=0)
        norms = np.where(norms > 0, norms, 1.0)
        W = (W0 / norms).astype(dtype)
        H = None if H0 is None else (H0 * norms[:, None]).astype(dtype)
        return W, H


@single_threaded_small_products
def alternating_loop(data: DataMatrix, W: np.ndarray, H: np.ndarray | None, scheme: Scheme,
                     monitor: Monitor, extrapolation: Extrapolation | None = None
                     ) -> tuple[np.ndarray, np.ndarray, float]:
    """Alternate H and W updates of ``scheme`` until ``monitor`` stops; returns (W, H, error).

    Objective recorded: 1/2 ||X - A H||_F^2 + penalty(W, H) of the accepted iterate; it never
    increases (HALS block updates are exact; extrapolated steps that would increase it are
    discarded and reported to the monitor as rejected, so they never read as convergence). Each
    iteration reads X once (:func:`project_update`).
    """
    n = data.shape[1]
    r = W.shape[1]
    dtype = scheme.dtype
    x_sq = data.sq_norm()
    extrapolating = extrapolation is not None and scheme.extrapolatable
    W = np.asarray(W, dtype=dtype)
    H_acc = None if H is None else np.array(H, dtype=dtype, order="C", copy=True)  # accepted iterate
    H_cand = np.empty((r, n), dtype=dtype)
    H_plain = None  # last plain (not extrapolated) H, the base of the next extrapolation
    H_plain_new = np.empty((r, n), dtype=dtype) if extrapolating else None
    W_acc, W_start = W, W
    best = np.inf
    beta = extrapolation.beta if extrapolating else 0.0
    beta_bar, beta_last = 1.0, beta
    plain_step = True  # the first step (and the one after a rejected step) is not extrapolated
    # Float32 data: X H^T in float32 until its rounding could hide the progress tol asks for
    # (needs_float64_sums, or tol met), then summed in float64 (project_update's accurate).
    accurate = dtype == np.float64
    direct = False
    monitor.restart_clock()
    while True:
        step_beta = 0.0 if plain_step or H_plain is None else beta
        A = scheme.left(W_start)
        update = scheme.h_update(A.T @ A, H_acc, H_cand, step_beta, H_plain,
                                 H_plain_new if extrapolating else None)
        grams = BlockGrams(update)
        XHt = project_update(data, A, grams, accurate=accurate)
        HHt = grams.total()
        W_new = scheme.update_w(W_start, XHt, HHt)
        if scheme.balance and not extrapolating:
            W_new, d = balance(W_new, H_cand, W_new.T @ W_new, HHt)
            XHt = XHt / d.astype(XHt.dtype)
            HHt = HHt / np.outer(d, d)
        A = scheme.left(W_new)
        A64 = np.asarray(A, dtype=np.float64)
        error = frobenius_relative_error(x_sq, A64, XHt, A64.T @ A64, HHt)
        direct = direct or error < DIRECT_ERROR_BELOW  # a near-exact fit: measured from the residual itself
        if direct:
            error = direct_relative_error(data, A64, H_cand, x_sq)
        objective = 0.5 * error * error * x_sq + scheme.penalty(W_new, H_cand, HHt)
        if not extrapolating or step_beta == 0 or objective <= best:  # plain steps descend: always kept
            if extrapolating:
                H_plain, H_plain_new = H_plain_new, (H_plain if H_plain is not None else np.empty((r, n), dtype))
                if step_beta > 0:
                    W_start = W_new + dtype.type(step_beta) * (W_new - W_acc)
                    if scheme.nonnegative_w:
                        np.maximum(W_start, scheme.floor, out=W_start)
                    beta_last = beta
                    beta = min(beta_bar, extrapolation.gamma * beta)
                    beta_bar = min(1.0, extrapolation.gamma_bar * beta_bar)
                else:
                    W_start = W_new
                plain_step = False
            else:
                W_start = W_new
            H_acc, H_cand = H_cand, (H_acc if H_acc is not None else np.empty((r, n), dtype))
            W_acc, best, accepted_error = W_new, objective, error
            accepted = True
        else:  # discard the extrapolated step; a plain step from the accepted point follows
            beta_bar, beta = beta_last, beta / extrapolation.eta
            W_start, plain_step = W_acc, True
            accepted = False
        # a discarded step cost a pass over X (max_iter, max_time) but is no measure of progress (tol)
        stop = monitor(accepted_error, objective=best, accepted=accepted)
        if not accurate and ((stop and monitor.resume()) or (not stop and needs_float64_sums(accepted_error, dtype,
                                                                                              monitor.stopping))):
            accurate, stop = True, False
            W_start, plain_step = W_acc, True  # a plain step from the accepted point: measured afresh
        if stop:
            if extrapolating and scheme.balance:
                HHt_acc = H_acc @ H_acc.T
                W_acc, _ = balance(W_acc, H_acc, W_acc.T @ W_acc, HHt_acc)
            return W_acc, H_acc, accepted_error
