"""Minimum-volume NMF with abundances on the unit simplex.

Objective (Leplat, Ang & Gillis, "Minimum-volume rank-deficient nonnegative matrix
factorizations", ICASSP 2019; Leplat, Gillis & Ang, "Blind audio source separation with
minimum-volume beta-divergence NMF", IEEE TSP 68, 2020):

    min_{W >= 0, H >= 0, 1^T H = 1^T}  1/2 ||X - W H||_F^2 + lambda/2 logdet(J W^T W J + delta I)

The data term pulls the endmembers (columns of W) towards the data; the volume term shrinks
the simplex they span so that it wraps the data cloud tightly even when no pixel is pure.

Two choices of this implementation, each an option:

- ``volume="affine"`` (default): J = I - 11^T/r centres the endmembers, so logdet measures the
  volume of the simplex conv(w_1..w_r) itself -- the quantity minimum-volume unmixing is about
  (Craig 1994; MVC-NMF, Miao & Qi 2007) and invariant to translating it. ``volume="origin"``
  (J = I) is the papers' logdet(W^T W + delta I), the volume of conv(0, w_1..w_r): it also
  shrinks dark endmembers towards 0, which on Samson collapses the water endmember.
- ``normalize="l1"`` (default): every pixel is divided by its sum before fitting. If
  x = E a with a on the simplex, x / 1^T x is a convex combination of the endmembers
  e_k / 1^T e_k, so the normalized data lie exactly on a simplex whatever the brightness of
  each pixel, and every pixel weighs the same in the fit (dark materials such as water are no
  longer drowned by bright ones). The endmembers' brightness is restored afterwards from the
  sum-to-one constraint on the original data (least squares on C^T u = 1 with C the
  coefficients of the original pixels, b_k = 1/u_k), and H is recomputed by exact FCLS.
  ``"l2"`` divides by the Euclidean norm (approximately a simplex); ``"none"`` fits X as given.

``lam`` and ``delta`` are scale-free: lambda = lam ||X'||_F^2 (X' the data as fitted) and
delta = delta_rel tr(J W0^T W0 J)/(r - 1) (the mean squared edge scale of the initial simplex).
(The papers set lambda relative to the initial fit and logdet instead.)

``lam="auto"`` (default) chooses lam by the data-fit/volume trade-off, without ground truth:
minvol along lam = 0.016, 0.004, 0.001, ... (each 4 times smaller, each run started from the
previous endmembers) while a smaller lam still reduces the squared relative error by a factor
1.25 or more; the last lam before the fit stops improving is kept. A fixed lam suits some
scenes and not others: 0.004 is the best of that path on Samson and Moffett (1.46 and 2.58
degrees mean spectral angle), but shrinks the Urban stand-in's six endmembers far too much
(8.9 degrees, metal roofs and dirt at 17), where the path stops at 6.25e-5 (0.35 degrees);
``benchmarks/bench_unmixing.py`` prints both.

Starts (``init="starts"``, default): minvol from SPA, SNPA and VCA's pixels (``starts``), every
run with the same lambda and delta (delta from the first start), the smallest objective kept:
a run that a start leaves in a poor local minimum (a material left far from its spectrum) has a
larger objective than one that found it.

NumPy/SciPy only; progress through ``callback(iteration, relative_error, **info)``.
"""

from __future__ import annotations

import time

import numpy as np

from mfcli.errors import DataError, ParameterError
from mfcli.metrics import relative_error_from_grams
from mfcli.models.base import single_layer_result
from mfcli.models.endmembers import endmember_indices
from mfcli.models.nnls import fcls, nnls_from_grams
from mfcli.models.registry import check_number, lam_value
from mfcli.models.stopping import Monitor, Stopping
from mfcli.validation import as_float_matrix, check_rank, require_finite, require_nonnegative

INITS = ("spa", "vca", "nfindr", "snpa")
VOLUMES = ("affine", "origin")
NORMALIZATIONS = ("l1", "l2", "none")
DEFAULT_LAM = 0.004
DEFAULT_DELTA = 0.5
DEFAULT_STARTS = "spa,snpa,vca"  # init="starts": minvol from each, the smallest objective kept
LAM_PATH = tuple(0.016 * 4.0 ** -k for k in range(7))  # lam="auto": 0.016 down to 3.9e-6
FIT_GAIN = 1.25  # lam="auto" stops once a 4 times smaller lam reduces the squared error by less
PATH_TOL = 1e-4
DEFAULT_SCREEN_SIZE = 10000


def _centering(rank: int, volume: str) -> np.ndarray:
    if volume == "affine" and rank > 1:
        return np.eye(rank) - np.full((rank, rank), 1.0 / rank)
    return np.eye(rank)


def simplex_logdet(W: np.ndarray, delta: float, volume: str = "affine") -> float:
    """logdet(J W^T W J + delta I), the volume term (J centres the columns when affine)."""
    W = np.asarray(W, dtype=np.float64)
    J = _centering(W.shape[1], volume)
    sign, value = np.linalg.slogdet(J @ (W.T @ W) @ J + delta * np.eye(W.shape[1]))
    return float(value) if sign > 0 else float("-inf")


def pixel_scales(X: np.ndarray, normalize: str) -> np.ndarray:
    """The number each pixel is divided by: its sum (l1), its norm (l2) or 1 (none)."""
    if normalize == "none":
        return np.ones(X.shape[1])
    scales = X.sum(axis=0, dtype=np.float64) if normalize == "l1" else \
        np.sqrt(np.einsum("ij,ij->j", X, X, dtype=np.float64))
    if np.any(scales <= 0):
        bad = int(np.count_nonzero(scales <= 0))
        raise DataError(f"{bad} pixels are all zero, so they cannot be normalized; remove them or use "
                        "--param normalize=none")
    return scales


def _minvol_loop(X: np.ndarray, x_sq_norm: float, W: np.ndarray, H: np.ndarray, lam: float, delta: float,
                 J: np.ndarray, monitor: Monitor):
    """MM step on W, exact FCLS on H, until the monitor stops (``x_sq_norm`` = ||X||_F^2).
    Returns (W, H, relative error)."""
    r = W.shape[1]
    identity = np.eye(r)
    WtW = W.T @ W
    monitor.restart_clock()
    while True:
        Q_inverse = J @ np.linalg.inv(J @ WtW @ J + delta * identity) @ J
        gram = H @ H.T + lam * (Q_inverse + Q_inverse.T) / 2
        XHt = X @ H.T
        W = nnls_from_grams(gram, XHt.T, init=W.T).T
        WtW = W.T @ W
        WtX = W.T @ X
        H = fcls(W, None, WtW=WtW, WtX=WtX)
        error = relative_error_from_grams(x_sq_norm, float(np.vdot(WtX, H)), WtW, H @ H.T)
        sign, logdet = np.linalg.slogdet(J @ WtW @ J + delta * identity)
        fit = 0.5 * error * error * x_sq_norm
        objective = fit + 0.5 * lam * float(logdet)
        # logdet may be of either sign: progress is measured against the size of both terms
        if monitor(error, objective=objective, scale=fit + 0.5 * lam * abs(float(logdet)), logdet=float(logdet)):
            return W, H, error


def restore_brightness(W: np.ndarray, H: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Endmembers in the original units: W diag(b) with 1/b the least-squares solution of
    C^T u = 1, C = H diag(scales) the coefficients of the original pixels."""
    C = H * scales[None, :]
    gram = C @ C.T
    u = np.linalg.lstsq(gram, C.sum(axis=1), rcond=None)[0]
    if np.any(u <= 0) or not np.all(np.isfinite(u)):
        u = nnls_from_grams(gram, C.sum(axis=1)[:, None])[:, 0]
    brightness = np.where(u > 0, 1.0 / np.where(u > 0, u, 1.0), 1.0)
    return W * brightness[None, :]


def _lam_by_fit(fitted, fitted_sq_norm, W0, delta_abs, J, stopping, callback):
    """lam by the data-fit/volume trade-off: minvol along LAM_PATH (largest first, each run
    started from the previous one's endmembers, to a looser tolerance: the path only measures
    the fit) while shrinking lam still improves the fit: the kept lam is the last one before the
    squared relative error falls by less than a factor FIT_GAIN. Returns (lam, [(lam, relative
    error) per run made])."""
    W, path = W0, []
    path_stopping = Stopping(max_iter=stopping.max_iter, tol=max(stopping.tol, PATH_TOL),
                             target_error=stopping.target_error, max_time=stopping.max_time)
    for position, value in enumerate(LAM_PATH):
        monitor = Monitor(path_stopping, callback, stage=f"minvol lam {value:g}")
        W_next, _, error = _minvol_loop(fitted, fitted_sq_norm, W, fcls(W, fitted), value * fitted_sq_norm,
                                        delta_abs, J, monitor)
        path.append((value, float(error)))
        if position and (path[-2][1] / max(error, 1e-300)) ** 2 < FIT_GAIN:
            return path[-2][0], path
        W = W_next
    return LAM_PATH[-1], path


def parse_starts(starts, init: str) -> list[str]:
    """The start methods of a run: ``init`` alone (spa, vca, nfindr, snpa), or with
    init="starts" the list ``starts`` (a list or a comma-separated text of those methods)."""
    if init != "starts":
        names = [init]
    elif isinstance(starts, str):
        names = [part.strip() for part in starts.split(",") if part.strip()]
    else:
        names = [str(part) for part in starts]
    unknown = [name for name in names if name not in INITS]
    if unknown or not names:
        raise ParameterError(f"unknown minvol start(s) {', '.join(unknown) or '(none)'}; use spa, vca, nfindr or snpa, "
                             "comma-separated")
    return list(dict.fromkeys(names))


def minvol(X, rank: int, *, init: str = "starts", W=None, H=None, max_iter: int = 500, tol: float = 1e-6,
           target_error: float | None = None, max_time: float | None = None, seed: int = 0, callback=None,
           dtype=None, lam: float | str = "auto", delta: float = DEFAULT_DELTA, volume: str = "affine",
           normalize: str = "l1", starts: str = DEFAULT_STARTS, screen_size: int = DEFAULT_SCREEN_SIZE):
    """Minimum-volume NMF X ~= W H, columns of H on the simplex (see the module docstring).

    ``init``: ``starts`` (default: every method of ``starts``, comma-separated among spa, vca,
    nfindr, snpa, each picking initial endmembers among the (normalized) pixels; minvol runs from
    every one and keeps the run of smallest objective: all share lambda and delta, delta set from
    the first start's simplex, so their objectives compare), or one method alone. A given ``W``
    is the only start (``H`` is then recomputed by FCLS). ``lam``: volume weight relative to
    ||X'||_F^2, or ``auto`` (default): chosen by the data-fit/volume trade-off along a path of
    decreasing values (:func:`_lam_by_fit`, from the first start); ``delta``: relative to the
    (first) initial simplex; ``volume``: affine | origin; ``normalize``: l1 | l2 | none.
    ``screen_size``: with more pixels than this, lam's path and the starts run on a random sample
    of this many pixels (plus the starts' pixels) and the winner is then run on all of them
    (0: never).

    Result layer: W (m x r endmembers, original units), H (FCLS abundances of the original
    pixels, columns summing to one); ``attrs``: lambda, delta (absolute), normalize, volume,
    ``start`` (the start kept) and ``starts``; ``arrays['start_objectives']`` (one per start).
    """
    started = time.perf_counter()
    if volume not in VOLUMES:
        raise ParameterError(f"unknown volume '{volume}'; use affine or origin")
    if normalize not in NORMALIZATIONS:
        raise ParameterError(f"unknown normalize '{normalize}'; use l1, l2 or none")
    lam = requested_lam = lam_value(lam)
    if lam != "auto":
        lam = check_number("lam", lam, low=0)
    delta = check_number("delta (> 0 keeps logdet finite)", delta, low=0, low_open=True)
    X = as_float_matrix(np.asarray(X), dtype=dtype)
    require_finite(X)
    require_nonnegative(X, "minvol")
    m, n = X.shape
    rank = check_rank(rank, (m, n))
    out_dtype = X.dtype
    scales = pixel_scales(X, normalize)
    fitted = np.asarray(X, dtype=np.float64) / scales[None, :]
    if W is None:
        if init not in (*INITS, "starts"):
            raise ParameterError(f"unknown initialization '{init}' for minvol; choose starts, spa, vca, nfindr or snpa")
        names = parse_starts(starts, init)
        initial = []
        for name in names:
            indices = endmember_indices(fitted, rank, name, seed)
            initial.append((name, fitted[:, indices], indices))
    else:
        W0 = np.array(W, dtype=np.float64)
        if W0.shape != (m, rank):
            raise ParameterError(f"initial W has shape {W0.shape}, expected {(m, rank)}")
        if normalize != "none":
            column_scale = W0.sum(axis=0) if normalize == "l1" else np.linalg.norm(W0, axis=0)
            W0 = W0 / np.where(column_scale > 0, column_scale, 1.0)
        names = ["given"]
        initial = [("given", W0, None)]
    J = _centering(rank, volume)
    reference = initial[0][1]
    edge_scale = float(np.trace(J @ (reference.T @ reference) @ J)) / max(rank - 1 if volume == "affine" else rank, 1)
    delta_abs = delta * max(edge_scale, np.finfo(np.float64).tiny)
    fitted_sq_norm = float(np.vdot(fitted, fitted))
    stopping = Stopping(max_iter=max_iter, tol=tol, target_error=target_error, max_time=max_time)
    # with many pixels, lam's path and the competition of the starts use a sample (the starts'
    # own pixels included); the winner is then run on every pixel from where it ended
    screened = len(initial) + (lam == "auto") > 1 and screen_size and n > screen_size
    if screened:
        rng = np.random.default_rng(seed)
        chosen = np.concatenate([rng.choice(n, screen_size, replace=False),
                                 *[indices for _, _, indices in initial if indices is not None]])
        sample = fitted[:, np.unique(chosen)]
    else:
        sample = fitted
    sample_sq_norm = float(np.vdot(sample, sample))
    path: list[tuple[float, float]] = []
    if lam == "auto":
        lam, path = _lam_by_fit(sample, sample_sq_norm, initial[0][1], delta_abs, J, stopping, callback)
    lam_abs = lam * fitted_sq_norm
    best = None
    objectives = []
    for position, (name, W0, indices) in enumerate(initial):
        stage = "minvol" if len(initial) == 1 else f"minvol start {position + 1}/{len(initial)} ({name})"
        monitor = Monitor(stopping, callback, stage=stage)
        W_fit, H_fit, _ = _minvol_loop(sample, sample_sq_norm, W0, fcls(W0, sample), lam * sample_sq_norm, delta_abs,
                                       J, monitor)
        objective = float(monitor.objectives[-1])
        objectives.append(objective)
        if best is None or objective < best[0]:
            best = (objective, name, W_fit, H_fit, monitor, indices)
    if screened:
        monitor = Monitor(stopping, callback, stage=f"minvol ({best[1]}, all pixels)")
        W_fit, H_fit, _ = _minvol_loop(fitted, fitted_sq_norm, best[2], fcls(best[2], fitted), lam_abs, delta_abs, J,
                                       monitor)
        best = (best[0], best[1], W_fit, H_fit, monitor, best[5])
    _, start, W_fit, H_fit, monitor, init_indices = best
    W_out = restore_brightness(W_fit, H_fit, scales) if normalize != "none" else W_fit
    X64 = np.asarray(X, dtype=np.float64)
    WtX = W_out.T @ X64
    WtW = W_out.T @ W_out
    H_out = fcls(W_out, None, WtW=WtW, WtX=WtX)
    error = relative_error_from_grams(float(np.vdot(X64, X64)), float(np.vdot(WtX, H_out)), WtW, H_out @ H_out.T)
    params = {"rank": rank, "init": init if W is None else "given", "starts": ",".join(names), "seed": seed,
              "lam": requested_lam, "delta": delta, "volume": volume, "normalize": normalize, "screen_size": screen_size,
              **stopping.as_dict()}
    attrs = {"lambda": lam_abs, "delta": delta_abs, "volume": volume, "normalize": normalize,
             "coefficients": "fcls", "start": start, "starts": list(names), "lam_chosen": float(lam),
             "screened": bool(screened)}
    result = single_layer_result("minvol", W_out.astype(out_dtype), H_out.astype(out_dtype), monitor, params,
                                 error, attrs=attrs)
    result.seconds = time.perf_counter() - started
    result.layers[0].arrays["start_objectives"] = np.asarray(objectives)
    if path:
        result.layers[0].arrays["lam_path"] = np.asarray(path)
    if init_indices is not None:
        result.layers[0].arrays["init_indices"] = np.asarray(init_indices, dtype=np.int64)
    return result
