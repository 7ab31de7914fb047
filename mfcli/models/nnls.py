"""Exact nonnegative least squares for many right-hand sides at once, and FCLS.

NNLS: for every column x_j of X (m x n) and a small basis W (m x r),

    h_j = argmin_{h >= 0} ||x_j - W h||_2 ,   i.e.   H = argmin_{H >= 0} ||X - W H||_F .

Solved by block principal pivoting (Kim & Park, "Fast nonnegative matrix factorization: an
active-set-like method and comparisons", SIAM J. Sci. Comput. 33(6), 2011, Algorithm 2),
working only from C = W^T W (r x r) and B = W^T X (r x n). Each column keeps a passive set F
(entries allowed to be positive); with F fixed, h_F solves C_FF h_F = b_F and the dual is
y = C h - b. A column is optimal when h_F >= 0 and y_G >= 0 (G the complement of F, the KKT
conditions). Infeasible entries are exchanged between F and G all at once (full exchange),
falling back to Murty's single-entry rule when the number of infeasible entries stops
decreasing, which guarantees termination. Columns sharing a passive set are solved together
with one factorization of C_FF, so there is no Python loop per column: the cost per sweep is
one small solve per distinct passive set.

FCLS (fully constrained least squares): h >= 0 and 1^T h = 1 (Heinz & Chang, "Fully
constrained least squares linear spectral mixture analysis", IEEE TGRS 39(3), 2001), by the
augmented-row method: append the row delta * 1^T to W and delta to every column of X, i.e.
solve NNLS with C + delta^2 1 1^T and B + delta^2. A large delta enforces the sum-to-one
constraint. With the default ``delta=None`` the sum is made exact: the augmented problem
with a moderate delta gives starting passive sets, and the same pivoting is then run on the
equality-constrained KKT system [C_FF 1; 1^T 0][h_F; mu] = [b_F; 1], so columns sum to one
to rounding.

NumPy/SciPy only. X may be a NumPy array or a :class:`~mfcli.models.matrix.DataMatrix`
(only W^T X is needed, one pass over the data). The output has X's float dtype.
"""

from __future__ import annotations

import numpy as np

from mfcli.errors import DataError, ParameterError
from mfcli.models.hals import hals_rows
from mfcli.models.linalg import gram_solve
from mfcli.models.matrix import as_data_matrix

_EPS = np.finfo(np.float64).eps


def _float_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _sorted_by_pattern(passive_rows: np.ndarray):
    """The rows of ``passive_rows`` (one column's passive set each, p x r) sorted by passive set:
    (order, the start of each run of one set in it, a key for each run) with keys that identify
    a passive set in any call: its bits for r <= 62, else the bytes of its row."""
    p, r = passive_rows.shape
    if r <= 62:
        # bit k of a column's key: entry k is passive; keys of 8 or 16 bits sort by radix
        dtype = np.uint8 if r <= 8 else np.uint16 if r <= 16 else np.uint64
        keys = np.zeros(p, dtype=dtype)
        for k in range(r):
            keys |= passive_rows[:, k].astype(dtype) << dtype(k)
    else:
        _, keys = np.unique(passive_rows, axis=0, return_inverse=True)  # its row among this call's sets
        keys = np.ravel(keys)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(sorted_keys)) + 1)) if p else np.zeros(0, int)
    if r <= 62:
        return order, starts, sorted_keys[starts].tolist()
    return order, starts, [passive_rows[order[start]].tobytes() for start in starts]


def _spd_inverse(A: np.ndarray) -> np.ndarray:
    """A^{-1} for a small symmetric positive (semi)definite A; the least-squares (minimum-norm)
    solution operator if A is singular.

    A is small (k x k) and the right-hand sides many (k x thousands): LAPACK's triangular solves
    with many right-hand sides are far slower here than forming A^{-1} (from the Cholesky
    factor) and one matrix product, at the same accuracy order (cond(A) eps).
    """
    identity = np.eye(A.shape[0])
    try:
        factor = np.linalg.cholesky(A)  # A = L L^T
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(A, identity, rcond=None)[0]
    pivots = np.abs(np.diag(factor))
    if pivots.min() ** 2 < 1e-10 * pivots.max() ** 2:
        # Numerically singular (dependent columns of W): minimum-norm least squares, stably.
        return np.linalg.lstsq(A, identity, rcond=None)[0]
    inverse_factor = np.linalg.solve(factor, identity)  # L^-1; A^-1 = L^-T L^-1
    return inverse_factor.T @ inverse_factor


# The columns are handled in slabs of at most this many, so the temporaries are a few r x slab
# arrays, not r x n ones, and stay in the cache (slabs of 20000 columns took 1.2-1.3 times as long
# on Urban at rank 7, timed outside benchmarks/).
COLUMN_CHUNK = 8192


def _passive_operator(C, passive_set: np.ndarray, sum_to_one: bool) -> np.ndarray:
    """The matrix M of one passive set F that solves its passive-set system: NNLS, h = M b (M is
    r x r); with ``sum_to_one``, [h; mu] = M [b; 1] (M is (r + 1) x (r + 1)), mu the multiplier
    of the sum-to-one constraint. h is zero off F."""
    r = C.shape[0]
    idx = np.flatnonzero(passive_set)
    k = idx.size
    size = r + 1 if sum_to_one else r
    M = np.zeros((size, size))
    if k == 0:
        return M
    C_FF = C[np.ix_(idx, idx)]
    if not sum_to_one:
        M[np.ix_(idx, idx)] = _spd_inverse(C_FF)
        return M
    kkt = np.zeros((k + 1, k + 1))
    kkt[:k, :k] = C_FF
    kkt[:k, k] = 1.0
    kkt[k, :k] = 1.0
    try:
        inverse = np.linalg.solve(kkt, np.eye(k + 1))
    except np.linalg.LinAlgError:
        inverse = np.linalg.pinv(kkt)
    else:
        if np.linalg.norm(kkt, 1) * np.linalg.norm(inverse, 1) * _EPS > 1.0:
            inverse = np.linalg.pinv(kkt)  # ill-conditioned (as LAPACK's rcond < eps): the pseudo-inverse
    rows = np.append(idx, r)  # [h_F; mu] from [b_F; 1]
    M[np.ix_(rows, rows)] = inverse
    return M


def _solve_passive(C, BT, passive, todo, HT, muT, sum_to_one: bool, operators: dict) -> None:
    """For the columns ``todo`` (rows of the transposes BT, HT, passive: one column's r numbers
    each): h solves the passive-set system of the column's passive set F, zero off F (and
    ``muT``, the multiplier of the sum-to-one constraint, where it is imposed). The columns are
    taken sorted by passive set, a slab of them at a time (one gather and one scatter of rows
    per slab); each passive set's columns are a run of rows in it, solved by one product with
    the set's operator (:func:`_passive_operator`, cached in ``operators`` for the whole solve)."""
    r = C.shape[0]
    order, starts, keys = _sorted_by_pattern(np.take(passive, todo, axis=0))
    ordered = todo[order]
    ends = np.append(starts[1:], ordered.size)
    slab = COLUMN_CHUNK
    group = 0
    for slab_start in range(0, ordered.size, slab):
        slab_stop = min(slab_start + slab, ordered.size)
        rows = ordered[slab_start:slab_stop]
        b = np.take(BT, rows, axis=0)
        if sum_to_one:
            b = np.hstack([b, np.ones((rows.size, 1))])
        h = np.empty((rows.size, b.shape[1]))
        while group < starts.size and starts[group] < slab_stop:
            key = keys[group]
            if key not in operators:
                operators[key] = _passive_operator(C, passive[ordered[starts[group]]], sum_to_one).T
            segment = slice(max(starts[group], slab_start) - slab_start, min(ends[group], slab_stop) - slab_start)
            np.matmul(b[segment], operators[key], out=h[segment])
            if ends[group] > slab_stop:
                break  # the run goes on in the next slab
            group += 1
        if sum_to_one:
            muT[rows] = h[:, r]
            h = h[:, :r]
        HT[rows] = h


def _row_abs_max(A: np.ndarray) -> np.ndarray:
    """max_j |A_ij| for every row i of a p x r A (0 for none), column by column: NumPy reduces
    short contiguous rows one row at a time, several times slower."""
    out = np.zeros(A.shape[0])
    for k in range(A.shape[1]):
        np.maximum(out, np.abs(A[:, k]), out=out)
    return out


def _row_count(A: np.ndarray) -> np.ndarray:
    """The number of True entries in every row of a boolean p x r A, column by column."""
    out = np.zeros(A.shape[0], dtype=np.int32)
    for k in range(A.shape[1]):
        out += A[:, k]
    return out


def _infeasible(C, h, b, mu, passive, b_scale, scale_C: float) -> np.ndarray:
    """Entries of the columns (rows of h and b = their W^T x, p x r) violating the KKT
    conditions (h_F < 0 or y_G < 0, the dual y = C h - b (+ mu)) by more than a rounding
    tolerance relative to each column's scale (p x r)."""
    h_scale = _row_abs_max(h)
    tol = 1e3 * _EPS * (b_scale + scale_C * h_scale + (0.0 if mu is None else scale_C))
    infeasible = h < (-1e3 * _EPS * h_scale)[:, None]
    infeasible &= passive
    y = h @ C
    y -= b
    if mu is not None:
        y += mu[:, None]
    negative_dual = y < -tol[:, None]
    negative_dual &= ~passive
    infeasible |= negative_dual
    return infeasible


def _infeasible_columns(C, BT, HT, muT, passive, todo, b_scale, scale_C: float) -> np.ndarray:
    """:func:`_infeasible` for the columns ``todo`` (rows of the transposes), in slabs of
    :data:`COLUMN_CHUNK` columns: the dual is formed slab by slab, not kept between sweeps."""
    r = HT.shape[1]
    infeasible = np.empty((todo.size, r), dtype=bool)
    slab = COLUMN_CHUNK
    everything = todo.size == HT.shape[0]  # every column, in order: slices, not gathers
    for start in range(0, todo.size, slab):
        if everything:
            rows = slice(start, min(start + slab, todo.size))
            parts = HT[rows], BT[rows], None if muT is None else muT[rows], passive[rows], b_scale[rows]
        else:
            rows = todo[start:start + slab]
            parts = (np.take(HT, rows, axis=0), np.take(BT, rows, axis=0), None if muT is None else muT[rows],
                     np.take(passive, rows, axis=0), b_scale[rows])
        infeasible[start:start + parts[0].shape[0]] = _infeasible(C, *parts, scale_C)
    return infeasible


def _block_principal_pivoting(C, B, passive, max_iter: int, sum_to_one: bool = False,
                              operators: dict | None = None):
    """Kim & Park's BPP over all columns. Returns (H, passive, unconverged column indices).

    The work is on the transposes (n x r: each column's r numbers contiguous), so gathering and
    scattering the columns still to settle moves whole rows. ``operators``: the passive sets'
    operators of this C found so far (:func:`_passive_operator`), filled in as the solve goes."""
    r, n = B.shape
    BT = np.ascontiguousarray(B.T)  # no copy where B is column-major (see soft_abundances)
    passive = np.ascontiguousarray(passive.T)
    HT = np.zeros((n, r))
    muT = np.zeros(n) if sum_to_one else None
    operators = {} if operators is None else operators
    _solve_passive(C, BT, passive, np.arange(n), HT, muT, sum_to_one, operators)
    alpha = np.full(n, 3, dtype=np.int8)  # patience left: 3, 2, 1, 0
    beta = np.full(n, r + 1, dtype=np.int32)  # fewest infeasible entries so far
    scale_C = float(np.abs(C).max()) if C.size else 0.0
    b_scale = _row_abs_max(BT)
    todo = np.arange(n)
    for _ in range(max_iter):
        if todo.size == 0:
            break
        infeasible = _infeasible_columns(C, BT, HT, muT, passive, todo, b_scale, scale_C)
        n_infeasible = _row_count(infeasible)
        active = n_infeasible > 0
        todo, infeasible, n_infeasible = todo[active], infeasible[active], n_infeasible[active]
        if todo.size == 0:
            break
        improved = n_infeasible < beta[todo]
        beta[todo[improved]] = n_infeasible[improved]
        alpha[todo[improved]] = 3
        patience = ~improved & (alpha[todo] >= 1)
        alpha[todo[patience]] -= 1
        full = improved | patience
        full_rows = todo[full]
        passive[full_rows] = np.take(passive, full_rows, axis=0) ^ infeasible[full]
        backup = ~full
        if backup.any():
            # Murty's rule: exchange only the infeasible entry of largest index.
            last = r - 1 - np.argmax(infeasible[backup, ::-1], axis=1)
            backup_rows = todo[backup]
            passive[backup_rows, last] = ~passive[backup_rows, last]
        _solve_passive(C, BT, passive, todo, HT, muT, sum_to_one, operators)
    else:
        # Ran out of sweeps: report the columns still violating the KKT conditions.
        bad = _infeasible_columns(C, BT, HT, muT, passive, todo, b_scale, scale_C)
        todo = todo[_row_count(bad) > 0]
    HT[~passive] = 0.0
    np.maximum(HT, 0.0, out=HT)
    return HT.T, passive.T, todo  # views: r x n in column-major order


def _default_max_iter(r: int) -> int:
    return 10 * r + 100


def _check_basis(W: np.ndarray, m: int) -> np.ndarray:
    W = np.asarray(W)
    if W.ndim == 1:
        W = W[:, None]
    if W.ndim != 2:
        raise DataError(f"the endmember/basis matrix must be 2-D (m x r), got shape {W.shape}")
    if W.shape[0] != m:
        raise DataError(
            f"the basis has {W.shape[0]} rows but the data have {m} features (bands); "
            "the basis must be m x r with the same bands as the data"
        )
    if not np.all(np.isfinite(W)):
        raise DataError("the basis contains NaN or Inf values")
    return W


def _grams(W, X, WtW, WtX):
    """C = W^T W and B = W^T X in float64, and X's float dtype."""
    if WtX is not None:
        B = np.asarray(WtX)
        out_dtype = _float_dtype(B.dtype)
        if WtW is None:
            if W is None:
                raise ParameterError("give W or W^T W together with W^T X")
            W = np.asarray(W)
            WtW = W.T.astype(np.float64) @ W.astype(np.float64)
        return np.asarray(WtW, dtype=np.float64), np.asarray(B, dtype=np.float64), out_dtype
    data = as_data_matrix(X)
    m, _ = data.shape
    W = _check_basis(W, m)
    out_dtype = _float_dtype(data.dtype)
    B = np.asarray(data.WtX(W.astype(data.dtype, copy=False)), dtype=np.float64)
    W64 = W.astype(np.float64)
    C = W64.T @ W64 if WtW is None else np.asarray(WtW, dtype=np.float64)
    return C, B, out_dtype


def _polish_unconverged(C, B, H, cols, sum_to_one: bool) -> None:
    """Last resort for columns BPP did not settle in max_iter sweeps (rare, rank-deficient W):
    Lawson-Hanson NNLS from SciPy on the Cholesky/eigen square root of the Gram system."""
    if cols.size == 0:
        return
    from scipy.optimize import nnls as scipy_nnls

    evals, evecs = np.linalg.eigh(C)
    evals = np.maximum(evals, 0.0)
    root = (evecs * np.sqrt(evals)).T  # root^T root = C
    pinv = np.where(evals > evals.max() * 1e-14, 1.0 / np.sqrt(np.where(evals > 0, evals, 1.0)), 0.0)
    targets = (evecs * pinv).T @ B[:, cols]  # root^T target = b (in range)
    for k, j in enumerate(cols):
        H[:, j] = scipy_nnls(root, targets[:, k])[0]
    if sum_to_one:
        sums = H[:, cols].sum(axis=0)
        H[:, cols] /= np.where(sums > 0, sums, 1.0)


def nnls_from_grams(WtW: np.ndarray, WtX: np.ndarray, *, init: np.ndarray | None = None,
                    max_iter: int | None = None, operators: dict | None = None) -> np.ndarray:
    """min_{H >= 0} ||X - W H||_F given only C = W^T W (r x r) and B = W^T X (r x n).

    ``init``: an earlier H (r x n) whose positive entries seed the passive sets (warm start,
    e.g. inside alternating NMF). A float32 W^T X is used as it is: every value of it is exact
    in float64, and it enters only products and sums in float64 (half the memory).
    ``operators``: a dict shared by the calls for blocks of columns of one W^T W (the solution
    operator of each passive set is then formed once for all of them, not once per block; it
    must not be shared across different W^T W). Returns H in float64.
    """
    C = np.asarray(WtW, dtype=np.float64)
    B = np.asarray(WtX)
    if B.dtype != np.float32:
        B = B.astype(np.float64, copy=False)
    if B.ndim == 1:
        B = B[:, None]
    r = C.shape[0]
    passive = np.zeros(B.shape, dtype=bool) if init is None else np.asarray(init) > 0
    if passive.shape != B.shape:
        raise ParameterError(f"init has shape {passive.shape}, expected {B.shape}")
    H, _, left = _block_principal_pivoting(C, B, passive, max_iter or _default_max_iter(r),  # passive: a new array
                                           operators=operators)
    _polish_unconverged(C, B, H, left, sum_to_one=False)
    return H


def nnls(W: np.ndarray, X, *, init: np.ndarray | None = None, max_iter: int | None = None,
         WtW: np.ndarray | None = None, WtX: np.ndarray | None = None) -> np.ndarray:
    """Exact nonnegative least squares H = argmin_{H >= 0} ||X - W H||_F, all columns at once.

    Parameters
    ----------
    W : (m, r) basis (endmembers).
    X : (m, n) data (NumPy array or DataMatrix); float32 data give a float32 H.
    init : optional (r, n) earlier solution used as a warm start.
    max_iter : cap on pivoting sweeps (default 10 r + 100); columns not settled by then are
        finished by SciPy's Lawson-Hanson solver.
    WtW, WtX : precomputed W^T W and W^T X (then X is not read).

    Block principal pivoting (Kim & Park 2011); see the module docstring.
    """
    C, B, out_dtype = _grams(W, X, WtW, WtX)
    return nnls_from_grams(C, B, init=init, max_iter=max_iter).astype(out_dtype, copy=False)


# A delta above this times the largest endmember norm makes delta^2 11^T swamp W^T W beyond what
# float64 can hold beside it (delta^2 / ||w||^2 = 1e10 leaves about 6 of W^T W's 16 digits).
FCLS_DELTA_MAX_RATIO = 1e5


def default_fcls_delta(WtW: np.ndarray) -> float:
    """The delta of the first (passive-set finding) stage of exact FCLS: the largest endmember
    norm, so the sum-to-one row weighs like the data without worsening the conditioning."""
    diag = np.diag(np.asarray(WtW, dtype=np.float64))
    return float(np.sqrt(max(diag.max(initial=0.0), np.finfo(np.float64).tiny)))


def fcls(W: np.ndarray, X, *, delta: float | None = None, max_iter: int | None = None,
         WtW: np.ndarray | None = None, WtX: np.ndarray | None = None) -> np.ndarray:
    """Fully constrained least squares: min ||x_j - W h_j|| s.t. h_j >= 0, 1^T h_j = 1, for all j.

    Heinz & Chang (2001), augmented-row method:

        min_{H >= 0} || [X; delta 1^T] - [W; delta 1^T] H ||_F^2 .

    ``delta`` given: exactly that augmented NNLS problem (a finite delta is a soft
    sum-to-one constraint: the larger, the stricter). ``delta=None`` (default): the
    constraint is exact -- the augmented problem with delta = max_i ||w_i|| gives starting
    passive sets, then pivoting on the equality-constrained KKT system finishes the job, so
    each column sums to one to rounding.
    """
    C, B, out_dtype = _grams(W, X, WtW, WtX)
    if B.ndim == 1:
        B = B[:, None]
    r = C.shape[0]
    max_iter = max_iter or _default_max_iter(r)
    exact = delta is None
    if exact:
        delta = default_fcls_delta(C)
    delta = float(delta)
    if not np.isfinite(delta) or delta <= 0:
        raise ParameterError(f"FCLS delta must be a positive number, got {delta}")
    largest = max(FCLS_DELTA_MAX_RATIO * default_fcls_delta(C), np.finfo(np.float64).tiny)
    if not exact and delta > largest:
        raise ParameterError(f"FCLS delta {delta:g} is too large for these endmembers: the sum-to-one row would "
                             f"drown the data term in rounding; use a delta up to {largest:.3g} "
                             f"({FCLS_DELTA_MAX_RATIO:g} x the largest endmember norm), or none for the exact "
                             "constraint")
    d2 = delta * delta
    C_aug = C + d2
    B_aug = B + d2
    passive = np.zeros(B.shape, dtype=bool)
    H, passive, left = _block_principal_pivoting(C_aug, B_aug, passive, max_iter)
    _polish_unconverged(C_aug, B_aug, H, left, sum_to_one=False)
    if exact:
        passive = H > 0
        empty = ~passive.any(axis=0)
        if empty.any():
            passive[:, empty] = True
        H_exact, _, left = _block_principal_pivoting(C, B, passive, max_iter, sum_to_one=True)
        settled = np.ones(B.shape[1], dtype=bool)
        settled[left] = False
        # Columns where the exact pivoting did not settle keep the augmented solution, rescaled.
        H[:, settled] = H_exact[:, settled]
        if left.size:
            sums = H[:, left].sum(axis=0)
            H[:, left] /= np.where(sums > 0, sums, 1.0)
    return H.astype(out_dtype, copy=False)


COEFFICIENT_METHODS = ("nnls", "fcls", "lstsq", "assign")


def penalized_nnls(W: np.ndarray, X, *, l1: float = 0.0, orthogonality: float = 0.0) -> np.ndarray:
    """H = argmin_{H >= 0} 1/2 ||X - W H||_F^2 + l1 sum(H) + orthogonality sum_{j<k} <h_j, h_k>
    (h_j the rows of H): the coefficient step of sparse NMF (l1) and of AONMF (orthogonality),
    solved to the end for a fixed W. It separates over the columns of X, each a quadratic
    program with Gram G = W^T W + orthogonality (11^T - I) and linear term W^T x - l1. Where G
    is positive definite the program is convex and block principal pivoting solves it exactly;
    otherwise (a large orthogonality weight) HALS sweeps from the NNLS solution reach a
    coordinate-wise minimum, as the model's own updates do. Returns H in float64."""
    data = as_data_matrix(X)
    W = _check_basis(W, data.shape[0])
    C, B, _ = _grams(W, data, None, None)
    r = C.shape[0]
    G = C + float(orthogonality) * (np.ones((r, r)) - np.eye(r))
    B = B - float(l1)
    if np.linalg.eigvalsh(G)[0] > 1e-12 * max(float(np.trace(G)), np.finfo(np.float64).tiny):
        return nnls_from_grams(G, B)
    start = nnls_from_grams(C, B)
    return hals_rows(start, B, G, max_sweeps=1000, eps=1e-6, floor=0.0)


def solve_coefficients(W: np.ndarray, X, method: str = "nnls", *, l1: float = 0.0,
                       orthogonality: float = 0.0) -> np.ndarray:
    """Coefficients H (r x n) of the columns of X for a fixed basis W (m x r), all at once:

    - ``nnls``: argmin_{H >= 0} ||X - W H||_F (:func:`nnls`), with the penalties of sparse NMF
      (``l1``) and AONMF (``orthogonality``) where given (:func:`penalized_nnls`);
    - ``fcls``: the same with every column of H summing to one (:func:`fcls`, abundances);
    - ``lstsq``: unconstrained, (W^T W)^+ W^T X (signed bases such as the SVD's);
    - ``assign``: one nonzero per column, the column of W of largest cosine and its weight
      (:func:`~mfcli.models.onmf.assign_columns`, ONMF clusters).

    One pass over X (W^T X). Returns X's float dtype.
    """
    data = as_data_matrix(X)
    W = _check_basis(W, data.shape[0])
    if method == "nnls" and (l1 or orthogonality):
        H = penalized_nnls(W, data, l1=l1, orthogonality=orthogonality)
    elif method == "nnls":
        H = nnls(W, data)
    elif method == "fcls":
        H = fcls(W, data)
    elif method == "lstsq":

        W64 = W.astype(np.float64)
        H = gram_solve(W64.T @ W64, data.WtX(W.astype(data.dtype, copy=False)))
    elif method == "assign":
        from mfcli.models.onmf import assign_columns

        best, weights = assign_columns(W, data)
        H = np.zeros((W.shape[1], best.size))
        H[best, np.arange(best.size)] = weights
    else:
        raise ParameterError(f"unknown coefficient method '{method}'; use one of {', '.join(COEFFICIENT_METHODS)}")
    return np.asarray(H, dtype=_float_dtype(data.dtype))


def model_penalties(result, layer) -> dict[str, float]:
    """The penalties the coefficients of ``layer`` (of the single-layer ``result``) were solved
    with, for :func:`solve_coefficients` to solve new data the model's way: sparse NMF's
    absolute l1 weight, AONMF's orthogonality weight; none for the other models."""
    attrs = getattr(layer, "attrs", None) or {}
    if result.model == "sparse-nmf" and "l1_absolute" in attrs:
        return {"l1": float(attrs["l1_absolute"])}
    if result.model == "aonmf" and "penalty" in (result.params or {}):
        return {"orthogonality": float(result.params["penalty"])}
    return {}
