"""Numbers people rely on, computed one way, in one place.

Every error, angle or RMSE that mfcli prints or stores comes from a function of this module,
and each is tested against an independent computation (``tests/unmixing/test_metrics_unmixing.py``,
``tests/models/test_models_nmf.py``, ``tests/completion/test_completion_core.py``).
NumPy only (SciPy's Hungarian algorithm for matching endmembers).
"""

from __future__ import annotations

import numpy as np


def residual_sq_from_grams(x_sq_norm: float, cross: float, WtW: np.ndarray, HHt: np.ndarray) -> float:
    """||X - WH||_F^2 = ||X||^2 - 2 <W^T X, H> + <W^T W, H H^T> without forming WH, where
    ``cross`` = <W^T X, H> = trace(W^T X H^T). Not clipped: the difference can lose digits to
    cancellation when the fit is almost exact, and come out slightly negative."""
    return x_sq_norm - 2.0 * float(cross) + float(np.vdot(WtW, HHt))


def relative_error_from_residual(x_sq_norm: float, residual_sq: float) -> float:
    """||X - WH||_F / ||X||_F from ||X||_F^2 and ||X - WH||_F^2 (clipped at 0; 0 for X = 0)."""
    if x_sq_norm <= 0:
        return 0.0
    return float(np.sqrt(max(residual_sq, 0.0) / x_sq_norm))


def relative_error_from_grams(x_sq_norm: float, cross: float, WtW: np.ndarray, HHt: np.ndarray) -> float:
    """Relative Frobenius error ||X - WH||_F / ||X||_F without forming WH
    (:func:`residual_sq_from_grams`, clipped at 0)."""
    return relative_error_from_residual(x_sq_norm, residual_sq_from_grams(x_sq_norm, cross, WtW, HHt))


def relative_error(X: np.ndarray, W: np.ndarray, H: np.ndarray) -> float:
    """||X - WH||_F / ||X||_F for in-memory data (via Gram matrices, no m x n product)."""
    X = np.asarray(X)
    WtX = W.T @ X
    return relative_error_from_grams(float(np.vdot(X, X)), float(np.vdot(WtX, H)), W.T @ W, H @ H.T)


BETA_EPSILON = float(np.finfo(np.float32).eps)


def beta_divergence(X: np.ndarray, WH: np.ndarray, beta: float) -> float:
    """Beta-divergence D_beta(X | WH) summed over all entries (Fevotte & Idier, Neural Comput. 2011).

    beta = 2: 1/2 ||X - WH||_F^2; beta = 1: generalized Kullback-Leibler
    sum x log(x / y) - x + y; beta = 0: Itakura-Saito sum x / y - log(x / y) - 1; otherwise
    sum (x^b + (b - 1) y^b - b x y^(b-1)) / (b (b - 1)). Conventions of scikit-learn's
    ``_beta_divergence``: entries with x <= eps (float32 eps) are left out of the terms in x
    (0 log 0 = 0), and y is clipped to eps where it divides or is raised to a negative power.
    The sum is additive over blocks of columns, so streamed solvers call it block by block.
    """
    X = np.asarray(X, dtype=np.float64)
    WH = np.asarray(WH, dtype=np.float64)
    if beta == 2:
        return 0.5 * float(np.sum((X - WH) ** 2))
    keep = X > BETA_EPSILON
    x = X[keep]
    y = np.maximum(WH[keep], BETA_EPSILON)
    if beta == 1:
        return float(np.dot(x, np.log(x / y)) + WH.sum() - x.sum())
    if beta == 0:
        ratio = x / y
        return float(ratio.sum() - X.size - np.log(ratio).sum())
    total = (x**beta).sum() - beta * np.dot(x, y ** (beta - 1)) + (beta - 1) * (WH**beta).sum()
    return float(total / (beta * (beta - 1)))


# --- Unmixing: spectral angles, matching to ground truth, abundance errors ---------------------


def _as_columns(E: np.ndarray) -> np.ndarray:
    E = np.asarray(E, dtype=np.float64)
    return E[:, None] if E.ndim == 1 else E


def spectral_angle_matrix(E: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Spectral angle distance in degrees between every column of E (m x p) and of T (m x q).

    SAD(e, t) = arccos(e^T t / (||e|| ||t||)), computed as 2 atan2(||u - v||, ||u + v||) with
    u, v the unit vectors (Kahan's form: accurate for small angles too). Scale-free: SAD(a e, t)
    = SAD(e, t) for a > 0. A zero column has angle 90 degrees to everything.
    """
    E, T = _as_columns(E), _as_columns(T)
    if E.shape[0] != T.shape[0]:
        raise ValueError(f"spectra have {E.shape[0]} and {T.shape[0]} bands; they must match")
    norm_E = np.linalg.norm(E, axis=0)
    norm_T = np.linalg.norm(T, axis=0)
    U = E / np.where(norm_E > 0, norm_E, 1.0)
    V = T / np.where(norm_T > 0, norm_T, 1.0)
    # ||u - v||^2 = 2 - 2 u.v for unit vectors, but computed from the differences for accuracy.
    diff = np.sqrt(np.maximum(((U[:, :, None] - V[:, None, :]) ** 2).sum(axis=0), 0.0))
    summ = np.sqrt(np.maximum(((U[:, :, None] + V[:, None, :]) ** 2).sum(axis=0), 0.0))
    angles = np.degrees(2.0 * np.arctan2(diff, summ))
    angles[(norm_E == 0)[:, None] | (norm_T == 0)[None, :]] = 90.0
    return angles


def spectral_angles(E: np.ndarray, T: np.ndarray) -> np.ndarray:
    """SAD in degrees between corresponding columns of E and T (same shape)."""
    E, T = _as_columns(E), _as_columns(T)
    if E.shape != T.shape:
        raise ValueError(f"shapes {E.shape} and {T.shape} differ")
    return np.array([spectral_angle_matrix(E[:, [k]], T[:, [k]])[0, 0] for k in range(E.shape[1])])


def abundance_distance_matrix(A_est: np.ndarray, A_true: np.ndarray) -> np.ndarray:
    """RMSE between every row of A_est (p x n) and every row of A_true (q x n): (p x q)."""
    A_est = np.asarray(A_est, dtype=np.float64)
    A_true = np.asarray(A_true, dtype=np.float64)
    if A_est.shape[1] != A_true.shape[1]:
        raise ValueError(f"abundances cover {A_est.shape[1]} and {A_true.shape[1]} pixels; they must match")
    sq = (A_est**2).sum(axis=1)[:, None] + (A_true**2).sum(axis=1)[None, :] - 2.0 * A_est @ A_true.T
    return np.sqrt(np.maximum(sq, 0.0) / A_est.shape[1])


def match_by_cost(cost: np.ndarray) -> np.ndarray:
    """Hungarian assignment minimizing the total cost (rows = estimated, columns = true).

    Returns, for each true item (column) q, the estimated index (row) matched to it, or -1
    when there are fewer estimated than true items.
    """
    from scipy.optimize import linear_sum_assignment

    cost = np.asarray(cost, dtype=np.float64)
    rows, cols = linear_sum_assignment(cost)
    matched = np.full(cost.shape[1], -1, dtype=np.int64)
    matched[cols] = rows
    return matched


def match_endmembers(E_est: np.ndarray, E_true: np.ndarray) -> np.ndarray:
    """Estimated column matched to each true endmember, minimizing the total spectral angle."""
    return match_by_cost(spectral_angle_matrix(E_est, E_true))


def match_abundances(A_est: np.ndarray, A_true: np.ndarray) -> np.ndarray:
    """Estimated row matched to each true abundance map, minimizing the total RMSE."""
    return match_by_cost(abundance_distance_matrix(A_est, A_true))


def abundance_rmse(A_est: np.ndarray, A_true: np.ndarray) -> float:
    """aRMSE = sqrt(mean over materials and pixels of (a_est - a_true)^2); same shapes.
    The same number as :func:`rmse` over all entries."""
    return rmse(A_true, A_est)


def abundance_rmse_per_material(A_est: np.ndarray, A_true: np.ndarray) -> np.ndarray:
    """RMSE of each material's abundance map (rows of the same-shape arrays)."""
    A_est = np.asarray(A_est, dtype=np.float64)
    A_true = np.asarray(A_true, dtype=np.float64)
    if A_est.shape != A_true.shape:
        raise ValueError(f"shapes {A_est.shape} and {A_true.shape} differ")
    return np.sqrt(np.mean((A_est - A_true) ** 2, axis=1))


def signal_to_reconstruction_error(truth: np.ndarray, estimate: np.ndarray) -> float:
    """SRE in dB: 10 log10(||truth||_F^2 / ||truth - estimate||_F^2) (Iordache et al. 2011).

    +inf for an exact estimate.
    """
    truth = np.asarray(truth, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if truth.shape != estimate.shape:
        raise ValueError(f"shapes {truth.shape} and {estimate.shape} differ")
    error = float(np.sum((truth - estimate) ** 2))
    if error == 0:
        return float("inf")
    return float(10.0 * np.log10(float(np.sum(truth**2)) / error))


def _rating_errors(y_true, y_pred, name: str) -> np.ndarray:
    """y_true - y_pred in float64, for predicted ratings of the same shape."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{name}: shapes {y_true.shape} and {y_pred.shape} differ")
    return y_true - y_pred


def rmse(y_true, y_pred) -> float:
    """Root mean squared error sqrt(mean((y_true - y_pred)^2)) of predicted ratings (NaN for no entries)."""
    errors = _rating_errors(y_true, y_pred, "rmse")
    return float(np.sqrt(np.mean(errors**2))) if errors.size else float("nan")


def mae(y_true, y_pred) -> float:
    """Mean absolute error mean(|y_true - y_pred|) of predicted ratings (NaN for no entries)."""
    errors = _rating_errors(y_true, y_pred, "mae")
    return float(np.mean(np.abs(errors))) if errors.size else float("nan")


# --- Ranking: top-k lists of recommendations against held-out interactions --------------------


def ranking_metrics(recommended, relevant, k: int, n_items: int) -> dict[str, float]:
    """Precision, recall, nDCG, MAP at ``k`` and catalog coverage of top-k lists.

    ``recommended``: n_users x k item indices in rank order (-1 where a list is shorter);
    ``relevant``: the held-out items of the same users, as a CSR-like matrix (``indptr`` and
    ``indices`` of an n_users x n_items 0/1 matrix); ``n_items``: the size of the catalog the
    lists were drawn from. Users without any relevant item are left out of the means.

    For a user with relevant set R (|R| = m) and hits h_r = [item at rank r in R], r = 1..k:

    * precision@k = sum_r h_r / k;  recall@k = sum_r h_r / m;
    * nDCG@k = DCG / IDCG, DCG = sum_r h_r / log2(r + 1), IDCG = sum_{r=1}^{min(k, m)} 1 / log2(r + 1)
      (binary relevance; Jarvelin & Kekalainen, ACM TOIS 2002);
    * AP@k = (1 / min(k, m)) sum_r h_r P@r, with P@r the precision of the first r items; MAP@k is
      its mean over users;
    * coverage = |union of the lists| / n_items (catalog coverage).

    Returns {precision, recall, ndcg, map, coverage, n_users} (NaN means for no evaluated user).
    """
    recommended = np.asarray(recommended, dtype=np.int64)
    if recommended.ndim != 2 or recommended.shape[1] != k:
        raise ValueError(f"recommended must be n_users x k ({k}), not of shape {recommended.shape}")
    indptr = np.asarray(relevant.indptr, dtype=np.int64)
    indices = np.asarray(relevant.indices, dtype=np.int64)
    n_users = len(indptr) - 1
    if recommended.shape[0] != n_users:
        raise ValueError(f"{recommended.shape[0]} lists for {n_users} users")
    n_relevant = np.diff(indptr)
    # Hits by sorted (user, item) keys: a recommended pair is a hit when its key is a relevant key.
    width = max(int(n_items), 1)
    relevant_keys = np.sort(np.repeat(np.arange(n_users, dtype=np.int64), n_relevant) * width + indices)
    keys = np.arange(n_users, dtype=np.int64)[:, None] * width + recommended
    position = np.minimum(np.searchsorted(relevant_keys, keys), max(len(relevant_keys) - 1, 0))
    hits = (recommended >= 0) & (len(relevant_keys) > 0)
    if len(relevant_keys):
        hits &= relevant_keys[position] == keys
    evaluated = n_relevant > 0
    hits = hits[evaluated].astype(np.float64)
    m = n_relevant[evaluated].astype(np.float64)
    from mfcli.completion.data import sorted_unique  # np.unique's first call imports numpy.ma (25 ms)

    coverage = float(len(sorted_unique(recommended[recommended >= 0])) / n_items) if n_items else float("nan")
    if not evaluated.any():
        nan = float("nan")
        return {"precision": nan, "recall": nan, "ndcg": nan, "map": nan, "coverage": coverage, "n_users": 0}
    ranks = np.arange(1, k + 1, dtype=np.float64)
    discount = 1.0 / np.log2(ranks + 1.0)
    n_hits = hits.sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(m, k).astype(np.int64) - 1]
    average_precision = (hits * np.cumsum(hits, axis=1) / ranks).sum(axis=1) / np.minimum(m, k)
    return {
        "precision": float(np.mean(n_hits / k)),
        "recall": float(np.mean(n_hits / m)),
        "ndcg": float(np.mean(hits @ discount / ideal)),
        "map": float(np.mean(average_precision)),
        "coverage": coverage,
        "n_users": int(evaluated.sum()),
    }
