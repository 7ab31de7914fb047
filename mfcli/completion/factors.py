"""The fitted state shared by every factor model of ratings, and the weighted row solve.

A :class:`FactorModel` predicts

    r_hat_ij = mu + b_i + c_j + <u_i, v_j>,

(global mean ``mu``, user bias ``b_i``, item bias ``c_j``, user factors ``u_i``, item factors
``v_j``), clipped to the training ratings' range for explicit ratings. Users or items unseen in
training have zero bias and zero factors, so they are predicted by the baseline
(``mu + c_j`` or ``mu + b_i`` or ``mu``).

:func:`solve_rows` is the weighted least-squares step that ALS and WALS alternate and that
fold-in of new users uses (both through :class:`HalfStep`): for each row ``i`` with observed columns ``O_i``, features ``f_j``
(item factors, with a column of ones for the bias), targets ``t_ij`` and weights ``w_ij``, it
solves

    min_x  sum_{j in O_i} w_ij (t_ij - <x, f_j>)^2 + w0 sum_{j not in O_i} <x_F, f_j,F>^2
           + x^T diag(lambda_i) x

where ``x_F`` is the factor part of ``x`` (the bias is not pulled towards 0 on unobserved
entries). The unobserved sum is never formed: with G = sum_j f_j,F f_j,F^T (all columns, computed
once per sweep) the normal equations are

    (sum_{j in O_i} w_ij f_j f_j^T + w0 P(G - sum_{j in O_i} f_j f_j^T) + diag(lambda_i)) x
        = sum_{j in O_i} w_ij t_ij f_j,

so each row costs O(|O_i| k^2 + k^3) instead of O(n k^2) (Hu, Koren & Volinsky, "Collaborative
filtering for implicit feedback datasets", ICDM 2008, section 4; the Google course page on
weighted matrix factorization, ../shared/seeds/000).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mfcli.completion.data import IdMap, Pattern, sorted_unique


# Pairs per block of :func:`pair_dots`: two 4096 x k float64 gathers (1 MB at k = 32) stay in the
# cache, where one gather of all the pairs (50K x 32: 13 MB) costs more in memory traffic and page
# faults than in arithmetic (50K random pairs of a 943 x 1682 rank-32 model: 5 ms instead of 22 ms,
# timed outside benchmarks/).
PAIR_BLOCK = 4096


def pair_dots(U: np.ndarray, V: np.ndarray, users: np.ndarray, items: np.ndarray, block: int = PAIR_BLOCK
              ) -> np.ndarray:
    """<u_i, v_j> for every index pair, ``block`` pairs at a time."""
    out = np.empty(len(users))
    for start in range(0, len(users), block):
        stop = start + block
        out[start:stop] = np.einsum("ij,ij->i", U[users[start:stop]], V[items[start:stop]])
    return out


class RowPlan:
    """The rows of a CSR pattern grouped for batched products, made once per pattern and weights.

    Rows are grouped by their number of entries rounded up to one of 4 lengths per octave into
    blocks of at most ``max_cells`` padded entries (:func:`_row_blocks`), so that per-row Gram
    matrices or matrix-vector products become a few batched products (no Python loop over rows)
    while padding adds at most a third to the work. Each block keeps its rows, the column of each padded entry (padding:
    ``n_cols``, a zero row of the padded features) and the entries' weights minus ``w0`` (padding:
    0) in float32. :meth:`run` applies a function to every block on a few threads (NumPy releases
    the GIL in its products; each block writes only its own rows, so the result does not depend on
    the number of threads).
    """

    def __init__(self, matrix, weights: np.ndarray | None = None, w0: float = 0.0, max_cells: int = 1 << 18,
                 merge_cells: int = 0):
        indptr, indices = matrix.indptr, matrix.indices
        self.n_rows, self.n_cols = matrix.shape
        n = len(indices)
        # unit weights and no w0: every excess is 1 and the padding's features are 0, so the
        # products need no weighting
        self.unit = weights is None and not w0
        cols = np.append(indices, self.n_cols).astype(np.int64)
        excess = np.append(np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64), 0.0) - w0
        excess[-1] = 0.0
        excess = excess.astype(np.float32)
        self.blocks = [(rows, cols[positions], excess[positions], positions)
                       for rows, positions in _row_blocks(indptr, max_cells, merge_cells=merge_cells)]

    def padded(self, features: np.ndarray) -> np.ndarray:
        """The features in float32 with a zero row appended (where padding points)."""
        out = np.zeros((features.shape[0] + 1, features.shape[1]), dtype=np.float32)
        out[:-1] = features
        return out

    def run(self, work) -> None:
        """``work(rows, cols, excess, positions)`` on every block, on up to :func:`n_threads` threads."""
        _run_in_threads(work, self.blocks, min(n_threads(), len(self.blocks)))


class _Gatherer:
    """``table[cols]`` (rows x L x p) into a buffer kept per thread and reused block after block:
    a fresh array of a few MB per block costs more in page faults than the copy itself (about 4x
    the time of the gather on MovieLens 1M)."""

    def __init__(self, table: np.ndarray):
        import threading

        self.table = table
        self.local = threading.local()

    def __call__(self, cols: np.ndarray) -> np.ndarray:
        size = cols.size * self.table.shape[1]
        buffer = getattr(self.local, "buffer", None)
        if buffer is None or buffer.size < size:
            buffer = self.local.buffer = np.empty(size, dtype=self.table.dtype)
        out = buffer[:size].reshape(*cols.shape, self.table.shape[1])
        return np.take(self.table, cols, axis=0, out=out, mode="clip")  # "raise" would buffer `out`


def solve_rows(matrix, targets: np.ndarray, features: np.ndarray, reg: np.ndarray,
               weights: np.ndarray | None = None, w0: float = 0.0, n_factors: int | None = None,
               return_rhs: bool = False, plan: RowPlan | None = None):
    """Weighted ridge solve of every row (see the module docstring).

    ``matrix``: n_rows x n_cols CSR pattern of the observed entries (a
    :class:`~mfcli.completion.data.Pattern` or a scipy.sparse CSR matrix); ``targets``/``weights``:
    values in the order of ``matrix.data`` (weights default to 1); ``features``: n_cols x p;
    ``reg``: n_rows x p diagonal regularization; ``n_factors``: how many leading feature columns
    the unobserved-entry weight ``w0`` applies to (default: all); ``plan``: the
    :class:`RowPlan` of ``matrix``, ``weights`` and ``w0`` when the caller keeps one. Returns
    n_rows x p (and the right-hand sides b_i = sum_O w_ij t_ij f_j with ``return_rhs``).
    """
    n_rows = matrix.shape[0]
    p = features.shape[1]
    n_factors = p if n_factors is None else n_factors
    weighted_targets = np.zeros(len(matrix.indices) + 1, dtype=np.float32)  # padding (the last): 0
    weighted_targets[:-1] = targets if weights is None else np.asarray(weights, dtype=np.float64) * targets
    reg = np.broadcast_to(np.asarray(reg, dtype=np.float64), (n_rows, p))
    rhs = np.zeros((n_rows, p))
    x = np.zeros((n_rows, p))
    all_gram = features[:, :n_factors].T @ features[:, :n_factors] if w0 else None
    plan = plan or RowPlan(matrix, weights, w0)
    # the features in float32 with a zero row (where padding points) and, with unit weights, a
    # last column that each block fills with its targets, so that one product per row gives its
    # Gram matrix and its right-hand side: [F t]^T [F t] = [[F^T F, F^T t], [t^T F, t^T t]]
    padded = np.zeros((features.shape[0] + 1, p + 1), dtype=np.float32)
    padded[:-1, :p] = features
    gather = _Gatherer(padded)

    # Per block of rows: one Gram product per row in float32 (half the memory traffic of float64),
    # sum_O (w_ij - w0) f_j f_j^T + w0 G over the factor block (the bias row and column beyond
    # n_factors take back the w0 sum_O f_j that the product subtracted), then the ridge and the
    # solves in float64, all while the block's features are in cache.
    def work(rows, cols, excess, positions):
        F = gather(cols)
        if plan.unit:
            F[:, :, p] = weighted_targets[positions]
            product = F.transpose(0, 2, 1) @ F
            gram, b = product[:, :p, :p].astype(np.float64), product[:, :p, p].astype(np.float64)
        else:
            F = F[:, :, :p]
            gram = (F.transpose(0, 2, 1) @ (F * excess[:, :, None])).astype(np.float64)
            b = np.matmul(weighted_targets[positions][:, None, :], F)[:, 0, :].astype(np.float64)
        if w0:
            gram[:, :n_factors, :n_factors] += w0 * all_gram
            if n_factors < p:
                sums = w0 * F.sum(axis=1, dtype=np.float64)
                gram[:, n_factors:, :] += sums[:, None, :]
                gram[:, :n_factors, n_factors:] += sums[:, :n_factors, None]
        # the ridge, and a tiny one for rows without any weight or regularization (else singular)
        gram.reshape(len(rows), p * p)[:, ::p + 1] += reg[rows] + 1e-10  # the diagonals, as a strided view
        rhs[rows] = b
        x[rows] = np.linalg.solve(gram, b[:, :, None])[:, :, 0]

    plan.run(work)
    return (x, rhs) if return_rhs else x


def _run_in_threads(work, tasks: list[tuple], threads: int) -> None:
    """``work(*task)`` for every task on ``threads`` threads (one: in this thread), BLAS on one
    thread, each thread with the caller's floating-point error settings (np.errstate is per thread).
    Inside :func:`~mfcli.models.threads.solver_threads` (a whole fit) one pool of threads serves
    every call (:func:`~mfcli.models.threads.pass_pool`) instead of a pool started per half-step."""
    from mfcli.models.threads import pass_pool, solver_threads

    settings = np.geterr()

    def run(task):
        with np.errstate(**settings):
            work(*task)

    with solver_threads():
        if threads <= 1:
            for task in tasks:
                run(task)
            return
        with pass_pool(threads) as pool:
            for future in [pool.submit(run, task) for task in tasks]:
                future.result()


# Conjugate-gradient blocks: at most this many padded entries (the block's features, 4 MB at
# k = 32, are read 9 times), and small length classes merged while that pads at most
# CG_MERGE_CELLS entries: a block costs about 80 NumPy calls (about 0.25 ms), as much as the 9
# matrix-vector passes over some 2000 entries.
CG_CELLS = 1 << 15
CG_MERGE_CELLS = 2048


def cg_solve_rows(matrix, targets: np.ndarray, weights: np.ndarray, features: np.ndarray,
                  reg: float, w0: float, x0: np.ndarray, steps: int = 3, plan: RowPlan | None = None,
                  row_reg: np.ndarray | None = None):
    """``steps`` conjugate-gradient iterations per row from ``x0`` on the normal equations of
    :func:`solve_rows`, for every row at once:

        (w0 G + sum_{j in O_i} (w_ij - w0) f_j f_j^T + lambda I + diag(row_reg_i)) x
            = sum_{j in O_i} w_ij t_ij f_j,

    G = F^T F; ``row_reg`` (n_rows x k, optional): a ridge per row and feature, e.g. explicit
    ALS's lambda n_i on the factors and its bias feature (a column of ones in F, w0 = 0). A
    product with the matrix costs O(|O_i| k + k^2) instead of the O(|O_i| k^2 + k^3)
    of forming and solving it (Takacs, Pilaszy & Tikk, "Applications of the conjugate gradient
    method for implicit feedback collaborative filtering", RecSys 2011; the ``implicit``
    package's ``use_cg``). Warm-started from the previous sweep's factors, a few steps per sweep
    reach the exact solve's quality (benchmarks/bench_implicit.py prints both). Rows without
    entries keep ``x0``. Works in float32, block by block of rows (:class:`RowPlan`, built for
    ``weights`` and ``w0``), gathering each block's features once for all the steps. Returns
    (x, q): n_rows x k (float64) and the per-row values q_i = 2 b_i.x_i - x_i^T A_i x_i (= b_i.x_i
    + x_i.r_i with the residual r_i = b_i - A_i x_i that the iterations maintain), so that the
    row's objective is sum_O w_ij t_ij^2 - q_i.
    """
    n_rows, k = matrix.shape[0], features.shape[1]
    plan = plan or RowPlan(matrix, weights, w0, max_cells=CG_CELLS, merge_cells=CG_MERGE_CELLS)
    features32 = np.asarray(features, dtype=np.float32)
    gram = w0 * (features32.T @ features32) + np.float32(reg) * np.eye(k, dtype=np.float32)
    diagonal = None if row_reg is None else np.asarray(np.broadcast_to(row_reg, (n_rows, k)), dtype=np.float32)
    gather = _Gatherer(plan.padded(features32))
    rhs_weights = np.zeros(len(targets) + 1, dtype=np.float32)  # padding (the last): 0
    rhs_weights[:-1] = np.asarray(weights, dtype=np.float64) * targets
    out = np.asarray(x0, dtype=np.float64).copy()
    fitted = np.zeros(n_rows)
    tiny = np.float32(1e-30)

    def work(rows, cols, excess, positions):
        F = gather(cols)                                          # rows x L x k

        ridge = None if diagonal is None else diagonal[rows]

        def times_a(v):
            d = np.matmul(F, v[:, :, None])[:, :, 0]              # <f_j, v> for the row's entries
            out = v @ gram + np.matmul((excess * d)[:, None, :], F)[:, 0, :]
            if ridge is not None:
                out += ridge * v
            return out

        x = out[rows].astype(np.float32)
        b = np.matmul(rhs_weights[positions][:, None, :], F)[:, 0, :]
        r = b - times_a(x)
        d = r.copy()
        rs = np.einsum("ij,ij->i", r, r)
        for _ in range(int(steps)):
            ad = times_a(d)
            curvature = np.einsum("ij,ij->i", d, ad)
            alpha = np.where(curvature > tiny, rs / np.maximum(curvature, tiny), 0).astype(np.float32)
            x += alpha[:, None] * d
            r -= alpha[:, None] * ad
            rs_new = np.einsum("ij,ij->i", r, r)
            beta = np.where(rs > tiny, rs_new / np.maximum(rs, tiny), 0).astype(np.float32)
            d = r + beta[:, None] * d
            rs = rs_new
        out[rows] = x
        fitted[rows] = np.einsum("ij,ij->i", x, b + r, dtype=np.float64)

    plan.run(work)
    return out, fitted


class HalfStep:
    """One half-step of ALS/WALS: the bias and factors of every row from its ratings, the other
    side's factors and biases fixed (training alternates it over users and items; fold-in of new
    users or items is one such step).

    ``rows``/``cols``/``values``: the ratings (row and column indices, ratings); ``solver``: the
    settings of :class:`FactorModel` (reg, reg_bias, reg_scaling, w0, biases, implicit, alpha);
    ``weights``: optional per-rating weights w_ij. The grouping by row, the regularization
    ``lambda_i`` (times the row's number of ratings with ``reg_scaling="count"``) and, for
    implicit feedback, the confidences ``1 + alpha r_ij`` with targets 1 are set up once; each
    :meth:`solve` is one sweep of :func:`solve_rows`.
    """

    def __init__(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int, n_cols: int,
                 rank: int, solver: dict[str, Any], weights: np.ndarray | None = None):
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        self.rank = int(rank)
        self.biases = bool(solver.get("biases", True))
        self.w0 = float(solver.get("w0", 0.0))
        if solver.get("implicit", False):
            confidence = 1.0 + float(solver.get("alpha", 1.0)) * values
            weights = confidence if weights is None else confidence * weights
            targets = np.ones(len(values))
        else:
            targets = values
        # by row, then column (as np.lexsort((cols, rows)), several times faster on one int64 key);
        # the ratings, their columns and weights are kept in that order (one gather here, not per sweep)
        order = np.argsort(rows * max(int(n_cols), 1) + cols, kind="stable")
        self.counts = np.bincount(rows, minlength=n_rows)
        self.empty = np.flatnonzero(self.counts == 0)
        indptr = np.concatenate([[0], np.cumsum(self.counts)])
        self.pattern = Pattern(indptr, cols[order], (n_rows, n_cols))
        self.targets = targets[order]
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)[order]
        self._target_energy = None  # sum_O w t^2 of fixed targets (no biases and mu = 0), computed once
        reg = float(solver.get("reg", 0.0))
        reg_bias = float(solver.get("reg_bias", reg))
        scale = self.counts.astype(np.float64) if solver.get("reg_scaling", "count") == "count" else np.ones(n_rows)
        lambdas = np.asarray([reg] * self.rank + ([reg_bias] if self.biases else []), dtype=np.float64)
        self.reg = lambdas[None, :] * scale[:, None]
        # Conjugate-gradient sweeps apply to a uniform ridge without biases (implicit feedback).
        self.cg_steps = int(solver.get("cg_steps", 0) or 0)
        self.uniform_reg = reg if not self.biases and solver.get("reg_scaling", "count") != "count" else None
        self._plan = None

    def solve(self, other_factors: np.ndarray, global_mean: float, other_bias: np.ndarray,
              start: np.ndarray | None = None, start_bias: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """(biases, factors) of every row: features ``[v_j, 1]`` (``v_j`` without biases), targets
        ``r_ij - mu - c_j``. Rows without ratings get zeros. With ``start`` (the current factors;
        ``start_bias``: the current biases) and ``cg_steps`` in the solver settings (not with both
        w0 and biases, whose bias row is not in the CG system), the solve is that many
        conjugate-gradient steps from ``start`` (:func:`cg_solve_rows`) instead of exact."""
        features = other_factors
        if self.biases:
            features = np.hstack([other_factors, np.ones((other_factors.shape[0], 1))])
        fixed_targets = not self.biases and not global_mean
        if fixed_targets:
            targets = self.targets  # read only below
        else:
            targets = self.targets - global_mean
            if self.biases:
                targets -= other_bias[self.pattern.indices]
        weights = self.weights
        cg = start is not None and self.cg_steps and not (self.w0 and self.biases)
        if cg and weights is None:
            weights = np.ones(len(targets))
        if self._plan is None or self._plan[0] != cg:  # made once, reused every epoch
            self._plan = (cg, RowPlan(self.pattern, weights, self.w0, max_cells=CG_CELLS if cg else 1 << 18,
                                      merge_cells=CG_MERGE_CELLS if cg else 0))
        if cg:
            if self.biases:
                start = np.hstack([start, (np.zeros(len(start)) if start_bias is None else start_bias)[:, None]])
            uniform = self.uniform_reg is not None
            x, fitted = cg_solve_rows(self.pattern, targets, weights, features, self.uniform_reg if uniform else 0.0,
                                      self.w0, start, self.cg_steps, plan=self._plan[1],
                                      row_reg=None if uniform else self.reg)
        else:
            x, rhs = solve_rows(self.pattern, targets, features, self.reg, self.weights, self.w0, self.rank,
                                return_rhs=True, plan=self._plan[1])
            fitted = np.einsum("ij,ij->i", x, rhs)
        x[self.empty] = 0.0
        fitted[self.empty] = 0.0
        # The rows' part of the objective at the new x: sum_rows (sum_O w t^2 - q_i) (see cg_solve_rows).
        energy = self._target_energy if fixed_targets else None
        if energy is None:
            energy = float(np.dot(targets, targets) if self.weights is None else np.dot(self.weights, targets * targets))
            if fixed_targets:
                self._target_energy = energy
        self.objective = energy - float(fitted.sum())
        bias = x[:, self.rank] if self.biases else np.zeros(len(x))
        return bias, x[:, :self.rank]

    def penalty(self, factors: np.ndarray, bias: np.ndarray) -> float:
        """The regularization term of these rows: sum_i lambda_i . [u_i, b_i]^2."""
        value = float(np.einsum("ij,ij->", self.reg[:, :self.rank], factors**2)) if self.rank else 0.0
        if self.biases:
            value += float(self.reg[:, self.rank] @ bias**2)
        return value


def n_threads() -> int:
    """Threads for the row blocks: the CPUs this process may use (at most 8), or MFCLI_THREADS."""
    import os

    setting = os.environ.get("MFCLI_THREADS")
    if setting and setting.isdigit() and int(setting) > 0:
        return int(setting)
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count() or 1
    return max(1, min(available, 8))


def _row_blocks(indptr: np.ndarray, max_cells: int = 1 << 18, max_rows: int = 4096, merge_cells: int = 0):
    """Rows grouped by their number of entries rounded up to the next of 4 lengths per octave
    (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40...), in blocks of at most
    ``max_cells`` padded entries and ``max_rows`` rows (which bounds the per-row k x k work arrays
    of a block: 4096 x 33 x 33 float64 is 36 MB): yields (rows, positions (rows x L) into the CSR
    arrays), where padding positions are ``len(indices)`` (one past the last entry).

    This turns the per-row Gram matrices into a few batched matrix products (no Python loop over
    rows) while padding adds at most a third to the work (a power of 2 could double it).
    ``merge_cells``: a length class joins the block of the shorter classes before it (padded to
    its length) when that adds at most this many padding entries, for work whose fixed cost per
    block (Python calls) outweighs the padding of a few small classes.
    """
    counts = np.diff(indptr)
    nonempty = np.flatnonzero(counts)
    if not nonempty.size:
        return
    n = counts[nonempty]
    step = np.maximum(1, 1 << np.maximum(np.floor(np.log2(n)).astype(np.int64) - 2, 0))
    padded_length = -(-n // step) * step
    groups: list[tuple[list[np.ndarray], int]] = []  # (rows of the merged classes, padded length)
    for length in sorted_unique(padded_length):
        rows_of_class, length = nonempty[padded_length == length], int(length)
        if groups:
            parts, current = groups[-1]
            held = sum(len(part) for part in parts)
            total = held + len(rows_of_class)
            if held * (length - current) <= merge_cells and total * length <= max_cells and total <= max_rows:
                groups[-1] = (parts + [rows_of_class], length)
                continue
        groups.append(([rows_of_class], length))
    for parts, length in groups:
        rows_of_group = np.concatenate(parts)
        per_block = max(1, min(max_cells // length, max_rows))
        offsets = np.arange(length)
        for start in range(0, len(rows_of_group), per_block):
            rows = rows_of_group[start:start + per_block]
            valid = offsets[None, :] < counts[rows][:, None]
            yield rows, np.where(valid, indptr[rows][:, None] + offsets[None, :], indptr[-1])


@dataclass
class FactorModel:
    """Biases and factors of a fitted model of a users x items ratings matrix.

    ``user_factors``: n_users x k (U); ``item_factors``: n_items x k (V); the interaction
    part of the prediction is ``U V^T``. ``solver``: what fold-in needs to solve a new user's
    row the way training did (reg, reg_bias, reg_scaling, w0, biases, implicit, alpha).
    ``rating_range``: (min, max) of the training ratings; predictions are clipped to it unless
    ``clip`` is false. ``convergence``: how training ended (converged, stop_reason, epochs, ...).
    """

    global_mean: float
    user_bias: np.ndarray
    item_bias: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    user_ids: IdMap
    item_ids: IdMap
    rating_range: tuple[float, float] | None = None
    clip: bool = True
    solver: dict[str, Any] = field(default_factory=dict)
    convergence: dict[str, Any] = field(default_factory=dict)

    @property
    def rank(self) -> int:
        return int(self.user_factors.shape[1])

    def scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predictions for index pairs; index -1 (unknown) contributes zero bias and factors."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        if users.size and users.min() >= 0 and items.min() >= 0:  # every pair known (training, most tests)
            out = pair_dots(self.user_factors, self.item_factors, users, items) if self.rank \
                else np.zeros(users.shape)
            out += self.global_mean
            if len(self.user_bias):
                out += self.user_bias[users]
            if len(self.item_bias):
                out += self.item_bias[items]
            return self._clip(out)
        known_u = users >= 0
        known_i = items >= 0
        u = np.where(known_u, users, 0)
        i = np.where(known_i, items, 0)
        out = np.full(users.shape, self.global_mean, dtype=np.float64)
        out += np.where(known_u, self.user_bias[u] if len(self.user_bias) else 0.0, 0.0)
        out += np.where(known_i, self.item_bias[i] if len(self.item_bias) else 0.0, 0.0)
        if self.rank:
            both = known_u & known_i
            out[both] += pair_dots(self.user_factors, self.item_factors, u[both], i[both])
        return self._clip(out)

    def _clip(self, values: np.ndarray) -> np.ndarray:
        if self.clip and self.rating_range is not None:
            return np.clip(values, *self.rating_range)
        return values

    def predict(self, user_ids, item_ids) -> np.ndarray:
        """Predictions for external ids (unknown ids are predicted by the baseline)."""
        return self.scores(self.user_ids.index(user_ids), self.item_ids.index(item_ids))

    def user_scores(self, user: int, user_bias: float | None = None, user_factors: np.ndarray | None = None,
                    clip: bool = True):
        """Scores of every item for user index ``user`` (or for a folded-in bias and factor vector);
        ``clip=False`` gives the ranking scores (not clipped to the rating range)."""
        b = self.user_bias[user] if user_bias is None else user_bias
        u = self.user_factors[user] if user_factors is None else user_factors
        scores = self.global_mean + b + self.item_bias + self.item_factors @ u
        return self._clip(scores) if clip else scores

    def ranking_scores(self, users: np.ndarray) -> np.ndarray:
        """len(users) x n_items scores mu + b_i + c_j + <u_i, v_j> of user indices ``users``, not
        clipped (clipping would tie the best items at the top of the rating scale)."""
        users = np.asarray(users, dtype=np.int64)
        # one product [u_i, 1, mu + b_i] . [v_j, c_j, 1] instead of a product and two more passes
        # over the len(users) x n_items scores
        left = np.empty((len(users), self.rank + 2))
        left[:, :self.rank] = self.user_factors[users]
        left[:, self.rank] = 1.0
        left[:, self.rank + 1] = self.global_mean + self.user_bias[users]
        right = np.empty((self.item_factors.shape[0], self.rank + 2))
        right[:, :self.rank] = self.item_factors
        right[:, self.rank] = self.item_bias
        right[:, self.rank + 1] = 1.0
        return left @ right.T

    def new_user_scores(self, items: np.ndarray, values: np.ndarray, clip: bool = True) -> np.ndarray:
        """Scores of every item for a new user given by ratings of known item indices (:meth:`fold_in`)."""
        bias, factors = self.fold_in(items, values)
        return self.user_scores(0, bias, factors, clip)

    def fold_in(self, items: np.ndarray, values: np.ndarray, weights: np.ndarray | None = None):
        """Bias and factors of a new user from ratings of known item indices, items fixed.

        This is one row of the training solve (the projection WALS uses for new rows).
        Returns ``(bias, factors)``.
        """
        items = np.asarray(items, dtype=np.int64)
        bias, factors = self.fold_in_rows(np.zeros(len(items), dtype=np.int64), items, values, 1, weights)
        return float(bias[0]), factors[0]

    def fold_in_rows(self, rows: np.ndarray, items: np.ndarray, values: np.ndarray, n_rows: int,
                     weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Biases (n_rows) and factors (n_rows x k) of ``n_rows`` new users at once, user ``rows[k]``
        having rated known item index ``items[k]`` with ``values[k]``; items fixed. Each row is
        solved as :meth:`fold_in` solves it alone; rows without ratings get zeros (the baseline)."""
        step = HalfStep(rows, items, values, n_rows, len(self.item_ids), self.rank, self.solver, weights)
        return step.solve(self.item_factors, self.global_mean, self.item_bias)
