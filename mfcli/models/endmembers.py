"""Endmember extraction by pure-pixel geometry: VCA and N-FINDR (SPA is in :mod:`mfcli.models.spa`).

All three assume the linear mixing model with pure pixels: X = E A with the columns of A on
the unit simplex, and for each material at least one pixel made of it alone. They return
the indices of the pixels chosen as endmembers; ``extract_endmembers`` gives the spectra.

- **VCA** (Nascimento & Bioucas-Dias, "Vertex component analysis: a fast algorithm to unmix
  hyperspectral data", IEEE TGRS 43(4), 2005): project the data onto a p-dimensional subspace
  (projective projection when the SNR is high, PCA plus a constant coordinate when it is low),
  then repeatedly project all pixels onto a random direction orthogonal to the endmembers
  found so far and take the extreme pixel.
- **N-FINDR** (Winter, "N-FINDR: an algorithm for fast autonomous spectral end-member
  determination in hyperspectral data", SPIE 3753, 1999): in the (p-1)-dimensional PCA
  subspace, find the p pixels spanning the simplex of largest volume
  |det [1 ... 1; e_1 ... e_p]| / (p-1)!, by replacing one vertex at a time with the pixel
  that most increases the volume until no replacement helps. The determinant is linear in
  the replaced column, so one sweep over all pixels is one matrix-vector product.

- **SNPA** (Gillis, "Successive nonnegative projection algorithm for robust nonnegative blind
  source separation", SIAM J. Imaging Sciences 7(2), 2014): SPA with the orthogonal projection
  replaced by the projection onto the convex hull of the columns picked so far; more robust to
  noise and outliers than SPA, and it never picks a column inside that hull.

NumPy only; every random choice takes a seed.
"""

from __future__ import annotations

import numpy as np

from mfcli.errors import DataError, ParameterError
from mfcli.models.spa import spa
from mfcli.validation import check_rank

METHODS = ("spa", "vca", "nfindr", "snpa")


def _check_data(X) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise DataError(f"endmember extraction needs a 2-D bands x pixels matrix, got shape {X.shape}")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    return X


def _second_moment(X: np.ndarray) -> np.ndarray:
    """X X^T / n in float64 (the one m x m product over all pixels)."""
    return np.asarray(X @ X.T, dtype=np.float64) / X.shape[1]


def _principal_subspace(X: np.ndarray, dim: int, centre: np.ndarray | None, moment: np.ndarray | None = None):
    """The ``dim`` leading left singular vectors of X (or of X - centre 1^T), from the m x m
    second moment (given, or computed)."""
    gram = _second_moment(X) if moment is None else moment
    if centre is not None:
        gram = gram - np.outer(centre, centre)
    evals, evecs = np.linalg.eigh((gram + gram.T) / 2)
    order = np.argsort(evals)[::-1][:dim]
    return evecs[:, order]


def _project(U: np.ndarray, X: np.ndarray, centre: np.ndarray | None) -> np.ndarray:
    """U^T (X - centre 1^T) in float64, without copying X (k x n)."""
    projected = np.asarray(U.T.astype(X.dtype) @ X, dtype=np.float64)
    if centre is not None:
        projected -= (U.T @ centre)[:, None]
    return projected


def estimate_snr_db(X: np.ndarray, rank: int, moment: np.ndarray | None = None,
                    mean: np.ndarray | None = None) -> float:
    """VCA's SNR estimate (dB) from the energy inside and outside the rank-p signal subspace
    (``moment`` = X X^T / n and ``mean`` = X 1 / n when already computed)."""
    X = _check_data(X)
    m, n = X.shape
    moment = _second_moment(X) if moment is None else moment
    mean = X.mean(axis=1, dtype=np.float64) if mean is None else mean
    U = _principal_subspace(X, rank, mean, moment)
    power_total = float(np.trace(moment))  # ||X||_F^2 / n
    projected = _project(U, X, mean)
    power_signal = float(np.einsum("ij,ij->", projected, projected, dtype=np.float64)) / n + float(mean @ mean)
    noise = power_total - power_signal
    signal = power_signal - rank / m * power_total
    if noise <= 0:
        return float("inf")
    return float(10.0 * np.log10(max(signal, 1e-300) / noise))


def vca(X, rank: int, seed: int = 0, snr_db: float | None = None) -> np.ndarray:
    """Indices of ``rank`` pixels chosen by VCA (Nascimento & Bioucas-Dias 2005).

    ``snr_db``: the data's SNR if known; by default estimated as in the paper. Above
    15 + 10 log10(p) dB the data are projected projectively (onto the rank-p subspace and
    divided by their inner product with the mean direction); below, onto the (p-1)-dimensional
    PCA subspace with a constant coordinate added.
    """
    X = _check_data(X)
    m, n = X.shape
    p = check_rank(rank, (m, n))
    rng = np.random.default_rng(seed)
    moment = _second_moment(X)
    if snr_db is None:
        mean = X.mean(axis=1, dtype=np.float64)
        snr = estimate_snr_db(X, p, moment, mean)
    else:
        mean, snr = None, float(snr_db)
    threshold = 15.0 + 10.0 * np.log10(p)
    if snr > threshold:
        U = _principal_subspace(X, p, None, moment)
        Xp = _project(U, X, None)
        u = Xp.mean(axis=1)
        denominators = u @ Xp
        tiny = np.abs(denominators) < 1e-12 * max(np.abs(denominators).max(), 1e-300)
        denominators[tiny] = 1e-12
        Y = Xp / denominators
    else:
        mean = X.mean(axis=1, dtype=np.float64) if mean is None else mean
        U = _principal_subspace(X, p - 1, mean, moment) if p > 1 else np.zeros((m, 0))
        Xp = _project(U, X, mean)
        c = float(np.sqrt((Xp**2).sum(axis=0).max())) if Xp.size else 1.0
        Y = np.vstack([Xp, np.full((1, n), c if c > 0 else 1.0)])
    A = np.zeros((p, p))
    A[-1, 0] = 1.0
    indices = np.zeros(p, dtype=np.int64)
    for i in range(p):
        w = rng.standard_normal(p)
        f = w - A @ (np.linalg.pinv(A) @ w)
        norm = np.linalg.norm(f)
        f = f / norm if norm > 0 else w / np.linalg.norm(w)
        v = f @ Y
        k = int(np.argmax(np.abs(v)))
        A[:, i] = Y[:, k]
        indices[i] = k
    return indices


def nfindr(X, rank: int, seed: int = 0, init: str = "spa", max_sweeps: int | None = None) -> np.ndarray:
    """Indices of ``rank`` pixels spanning a simplex of (locally) maximal volume (Winter 1999).

    ``init``: "spa" (start from SPA's pixels, deterministic) or "random" (seeded pixels).
    Each sweep tries every vertex; the search stops when a sweep improves nothing or after
    ``max_sweeps`` (default 5 p) sweeps.
    """
    X = _check_data(X)
    m, n = X.shape
    p = check_rank(rank, (m, n))
    if p == 1:
        return np.array([int(np.argmax(np.einsum("ij,ij->j", X, X)))], dtype=np.int64)
    mean = X.mean(axis=1, dtype=np.float64)
    U = _principal_subspace(X, p - 1, mean)
    Z = np.vstack([np.ones((1, n)), _project(U, X, mean)])  # p x n
    if init == "spa":
        indices = spa(X, p).astype(np.int64)
    elif init == "random":
        indices = np.random.default_rng(seed).choice(n, size=p, replace=False).astype(np.int64)
    else:
        raise ParameterError(f"unknown N-FINDR init '{init}'; use spa or random")
    simplex = Z[:, indices]
    volume = abs(np.linalg.det(simplex))
    for _ in range(max_sweeps or 5 * p):
        improved = False
        for i in range(p):
            # det(simplex with column i replaced by z) = cofactor_i . z, cofactor_i = det * inv[i].
            try:
                cofactor = np.linalg.det(simplex) * np.linalg.inv(simplex)[i]
            except np.linalg.LinAlgError:
                cofactor = _cofactor_row(simplex, i)
            volumes = np.abs(cofactor @ Z)
            j = int(np.argmax(volumes))
            if volumes[j] > volume * (1 + 1e-12) and j not in indices:
                indices[i] = j
                simplex[:, i] = Z[:, j]
                volume = float(volumes[j])
                improved = True
        if not improved:
            break
    return indices


def _cofactor_row(M: np.ndarray, i: int) -> np.ndarray:
    """Cofactors of column i of a singular square matrix (determinant expansion along it)."""
    p = M.shape[0]
    out = np.zeros(p)
    keep_cols = [c for c in range(p) if c != i]
    for r in range(p):
        keep_rows = [k for k in range(p) if k != r]
        out[r] = (-1) ** (r + i) * np.linalg.det(M[np.ix_(keep_rows, keep_cols)])
    return out


def snpa(X, rank: int) -> np.ndarray:
    """Indices of ``rank`` columns picked by SNPA (Gillis 2014): repeatedly the column of largest
    residual norm, the residual of every column being its distance to the convex hull of the
    columns picked so far (exact FCLS: h >= 0, 1^T h = 1; the data should lie near a simplex,
    e.g. pixels divided by their sums, as minvol fits them)."""
    from mfcli.models.nnls import fcls

    X = _check_data(X)
    m, n = X.shape
    p = check_rank(rank, (m, n))
    X64 = np.asarray(X, dtype=np.float64)
    col_sq = np.einsum("ij,ij->j", X64, X64)
    residual = col_sq.copy()
    picked: list[int] = []
    for _ in range(p):
        candidates = residual.copy()
        candidates[picked] = -np.inf
        j = int(np.argmax(candidates))
        picked.append(j)
        W = X64[:, picked]
        WtX = W.T @ X64
        WtW = W.T @ W
        H = fcls(W, None, WtW=WtW, WtX=WtX)
        residual = np.maximum(col_sq - 2.0 * np.einsum("ij,ij->j", H, WtX) + np.einsum("ij,ij->j", H, WtW @ H), 0.0)
    return np.asarray(picked, dtype=np.int64)


def endmember_indices(X, rank: int, method: str = "vca", seed: int = 0) -> np.ndarray:
    """Pixel indices of the endmembers found by ``method`` (spa, vca, nfindr or snpa)."""
    if method == "spa":
        return spa(_check_data(X), rank).astype(np.int64)
    if method == "snpa":
        return snpa(X, rank)
    if method == "vca":
        return vca(X, rank, seed=seed)
    if method == "nfindr":
        return nfindr(X, rank, seed=seed)
    raise ParameterError(f"unknown endmember method '{method}'; use one of {', '.join(METHODS)}")


def extract_endmembers(X, rank: int, method: str = "vca", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(E, indices): the endmember spectra E = X[:, indices] (m x rank) and their pixel indices."""
    X = _check_data(X)
    indices = endmember_indices(X, rank, method, seed)
    return np.array(X[:, indices]), indices
