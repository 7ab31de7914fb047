"""Entropic descent archetypal analysis (EDAA) with its ensemble and model selection.

Zouaoui, Muhawenayo, Rasti, Chanussot & Mairal, "Entropic descent archetypal analysis for
blind hyperspectral unmixing", IEEE TIP 32, 2023. Archetypal analysis of the pixels Y
(bands x pixels, each pixel scaled to unit l2 norm):

    min_{A, B} f(A, B) = 1/2 ||Y - Y B A||_F^2
    s.t. the columns of A (r x n, abundances) and of B (n x r, archetype weights) lie on the
    unit simplex,

so the endmembers E = Y B are convex combinations of pixels and need no pure pixel. Both
blocks are updated by entropic (exponentiated-gradient, mirror) descent, the mirror map of
the simplex: a step is P <- P * exp(-eta grad f) / (column sums), which stays on the simplex
(entries remain positive and every column sums to one) without any projection.

- Alternation as in the paper: ``inner`` steps on A, then ``inner`` steps on B, per
  iteration; ``max_iter`` iterations (the paper's T = 100, K1 = K2 = 20).
- Step sizes as in the authors' code: eta_A = c / sigma_max(Y B_0)^2 with a random factor
  c = 2^u, u uniform in {-3, ..., 3}, drawn per run; eta_B = eta_A sqrt(r / n).
- Safeguard (ours): a step that would increase f is rejected and the block's step halved,
  so f never increases (the paper's steps are usually accepted as they are).
- Starts as in the authors' code: B = softmax of 0.1 U(0, 1) noise per column (close to
  uniform: every endmember starts near the mean pixel), A uniform.

Ensemble and model selection, as in the paper and the authors' code: ``runs`` runs (the paper
uses 50; 20 by default here, measured enough below) from different random starts and step factors; among the runs whose l1 reconstruction error sum |Y - E A| is within 5% of the
smallest, the one whose endmembers are the least correlated (smallest largest off-diagonal
Pearson correlation between two endmembers) is kept. Neither needs a ground truth: a good
fit with distinct endmembers.

Speed (ours): the objective depends on Y only through products with Y, so the runs work on
the projection of the normalized pixels onto their ``subspace`` leading principal directions
(the discarded part is the pixels' noise, whatever the endmembers; 0 keeps every band); with
more than ``screen_size`` pixels the runs are made on one random sample of that many pixels
(the same for every run, so their fits compare), the archetypes then being combinations of the
sample's pixels. The runs are iterated together as one stack (one matrix product per step for
all of them), in batches that bound the memory, with BLAS on one thread (small products). The
endmembers are rebuilt from the full bands, and the abundances of all pixels are solved
exactly with the endmembers fixed (FCLS: the A-step's exact solution).

Measured by ``benchmarks/bench_unmixing.py`` (mean spectral angle): Samson 1.2 and Moffett 2.0
degrees (16 and 6 of the 20 runs within 5% of the best fit); on the six-material Urban
stand-in several runs with small steps stay near the mean pixel after 100 iterations and the
kept run can miss a rare material (metal roofs, under 2% of the pixels): 4.6 degrees.

Output in the data's units, as :mod:`mfcli.models.minvol` does: each endmember's brightness is
restored so that the abundances of the original pixels sum to one in the least-squares sense;
W = X A_w (``arrays['A']``, n x r, nonnegative weights: every endmember is a nonnegative
combination of pixels) and H is the exact FCLS of the original pixels. NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfcli.errors import ParameterError
from mfcli.metrics import relative_error_from_grams
from mfcli.models.base import single_layer_result
from mfcli.models.minvol import pixel_scales, restore_brightness
from mfcli.models.nnls import fcls
from mfcli.models.stopping import Monitor, Stopping
from mfcli.validation import as_float_matrix, check_rank, require_finite

DEFAULT_RUNS = 20
DEFAULT_INNER = 20
DEFAULT_SUBSPACE = 20
DEFAULT_SCREEN_SIZE = 10000
FIT_TOLERANCE = 0.05  # runs within 5% of the best l1 fit compete on correlation (the paper's)
STEP_EXPONENTS = np.arange(-3, 4)  # the random step factor 2^u of the authors' code
BATCH_ENTRIES = 4_000_000  # runs are iterated together, up to this many entries in A (memory ~ 10x that in bytes x 8)


def entropic_step(P: np.ndarray, gradient: np.ndarray, step, axis: int) -> np.ndarray:
    """One mirror-descent step on the simplex along ``axis``: P exp(-step gradient), normalized.

    Slices along ``axis`` sum to one before and after; zero entries stay zero (so a support
    restriction is kept). ``step`` is a number or an array broadcasting against P (one step per
    run of a stack). The exponent is shifted by its maximum, which the normalization cancels,
    so exp never overflows.
    """
    Z = gradient * (-np.asarray(step))
    Z -= Z.max(axis=axis, keepdims=True)
    np.exp(Z, out=Z)
    Z *= P
    Z /= Z.sum(axis=axis, keepdims=True)
    return Z


def _inner(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """<U_s, V_s> for every run s of two stacks (R x a x b) -> (R,)."""
    return np.einsum("sij,sij->s", U, V)


@dataclass
class EntropicRuns:
    """A stack of R runs of entropic AA on the same projected data Z (k x N):
    ``Bt`` (R x r x N, rows on the simplex: B^T), ``A`` (R x r x N, columns on the simplex),
    ``E`` = Z B (R x k x r), the objectives, the two steps of every run, and which runs are
    still going (``active``). ``segments`` (one run, r + 1 offsets): row q of B^T lives on the
    columns ``segments[q]:segments[q + 1]`` of Z only, every column in one row's (the mirror
    steps keep zeros at zero, so the B-steps are taken on those entries alone)."""

    Bt: np.ndarray
    A: np.ndarray
    E: np.ndarray
    objective: np.ndarray
    step_a: np.ndarray
    step_b: np.ndarray
    active: np.ndarray
    rejected: np.ndarray
    segments: np.ndarray | None = None


def _times_stack(Z: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Z P_s^T for every run s: Z (k x N) and a stack P (R x r x N) -> R x k x r, one matrix product."""
    R, r, N = P.shape
    return (Z @ P.reshape(R * r, N).T).reshape(Z.shape[0], R, r).transpose(1, 0, 2)


def _stack_times(Q: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Q_s Z for every run s: a stack Q (R x r x k) and Z (k x N) -> R x r x N, one matrix product."""
    R, r, k = Q.shape
    return (Q.reshape(R * r, k) @ Z).reshape(R, r, Z.shape[1])


def _objective(Z: np.ndarray, x_sq: float, E: np.ndarray, A: np.ndarray) -> np.ndarray:
    """f = ||Z||^2/2 - <Z A^T, E> + <E^T E, A A^T>/2 for every run."""
    ZAt = _times_stack(Z, A)
    return 0.5 * x_sq - _inner(ZAt, E) + 0.5 * _inner(E.transpose(0, 2, 1) @ E, A @ A.transpose(0, 2, 1))


def start_runs(Z: np.ndarray, Bt: np.ndarray, A: np.ndarray, step_factors, segments=None) -> EntropicRuns:
    """The stacked state from B^T and A (R x r x N each) with the authors' steps (module
    docstring): eta_A = factor / sigma_max(Z B)^2, eta_B = eta_A sqrt(r / N). ``segments``: see
    :class:`EntropicRuns` (one run; B^T zero outside them)."""
    R, r, N = A.shape
    if segments is not None:
        segments = np.asarray(segments, dtype=np.int64)
        if R != 1 or segments.shape != (r + 1,) or segments[0] != 0 or segments[-1] != N \
                or np.any(np.diff(segments) < 1):
            raise ParameterError("segments: r + 1 increasing offsets from 0 to N, for one run")
    E = _times_stack(Z, Bt)
    sigma_sq = np.array([float(np.linalg.norm(E[s], 2)) ** 2 for s in range(R)])
    step_a = np.asarray(step_factors, dtype=np.float64) / np.maximum(sigma_sq, np.finfo(np.float64).tiny)
    step_b = step_a * np.sqrt(r / N)
    x_sq = float(np.vdot(Z, Z))
    return EntropicRuns(Bt=Bt, A=A, E=E, objective=_objective(Z, x_sq, E, A), step_a=step_a, step_b=step_b,
                        active=np.ones(R, dtype=bool), rejected=np.zeros(R, dtype=np.int64), segments=segments)


def _accept(accept: np.ndarray, pairs) -> None:
    """Keep the new values of the accepted runs: ``pairs`` of (current array, new array)."""
    for current, new in pairs:
        current[accept] = new[accept]


def entropic_iteration(Z: np.ndarray, x_sq: float, runs: EntropicRuns, inner_a: int, inner_b: int) -> None:
    """``inner_a`` entropic steps on A, then ``inner_b`` on B, for every active run (in place).

    A step that would raise a run's f(A, B) = 1/2 ||Z - Z B A||^2 is not taken and that run's
    step for the block is halved, so no run's objective ever increases. f comes from small
    Gram matrices: f = ||Z||^2/2 - <E^T Z, A> + <E^T E A, A>/2 = ||Z||^2/2 - <Z A^T, E> + <E^T E, A A^T>/2.
    """
    live = runs.active
    E = runs.E
    Et = E.transpose(0, 2, 1)
    cross = _stack_times(np.ascontiguousarray(Et), Z)
    gram = Et @ E
    gram_a = gram @ runs.A
    objective = 0.5 * x_sq - _inner(cross, runs.A) + 0.5 * _inner(gram_a, runs.A)
    for _ in range(inner_a):
        A = entropic_step(runs.A, gram_a - cross, runs.step_a[:, None, None], axis=1)
        gram_a_new = gram @ A
        value = 0.5 * x_sq - _inner(cross, A) + 0.5 * _inner(gram_a_new, A)
        accept = live & (value <= objective)
        worse = live & ~accept
        runs.step_a[worse] *= 0.5
        runs.rejected[worse] += 1
        if accept.all():
            runs.A, gram_a, objective = A, gram_a_new, value
        else:
            _accept(accept, ((runs.A, A), (gram_a, gram_a_new), (objective, value)))
    At = runs.A.transpose(0, 2, 1)
    ZAt = _times_stack(Z, runs.A)
    AAt = runs.A @ At
    objective = 0.5 * x_sq - _inner(ZAt, E) + 0.5 * _inner(Et @ E, AAt)
    if runs.segments is not None:
        _support_b_steps(Z, x_sq, runs, inner_b, ZAt[0], AAt[0], float(objective[0]))
        return
    for _ in range(inner_b):
        residual_t = np.ascontiguousarray((ZAt - E @ AAt).transpose(0, 2, 1))
        gradient = _stack_times(residual_t, Z)
        gradient *= -1.0  # d f / d B^T = -(Z A^T - E A A^T)^T Z
        Bt = entropic_step(runs.Bt, gradient, runs.step_b[:, None, None], axis=2)
        E_new = _times_stack(Z, Bt)
        value = 0.5 * x_sq - _inner(ZAt, E_new) + 0.5 * _inner(E_new.transpose(0, 2, 1) @ E_new, AAt)
        accept = live & (value <= objective)
        worse = live & ~accept
        runs.step_b[worse] *= 0.5
        runs.rejected[worse] += 1
        if accept.all():
            runs.Bt, E, objective = Bt, E_new, value
        else:
            _accept(accept, ((runs.Bt, Bt), (E, E_new), (objective, value)))
    runs.E = E
    runs.objective = np.where(live, objective, runs.objective)


def _support_b_steps(Z: np.ndarray, x_sq: float, runs: EntropicRuns, steps: int, ZAt: np.ndarray,
                     AAt: np.ndarray, objective: float) -> None:
    """The B-steps of :func:`entropic_iteration` for one run whose B^T is zero outside
    ``runs.segments``: on the N entries of the supports instead of all r x N, the same mirror
    step (each row's entries scaled by exp(-eta gradient) and normalized over its segment), the
    same acceptance rule. On the refinement's runs (r = 7, N = 4400, k = 20) 2.1 ms of steps
    took 0.7 ms this way (timed outside benchmarks/)."""
    segments = runs.segments
    starts, counts = segments[:-1], np.diff(segments)
    parts = [slice(start, stop) for start, stop in zip(segments[:-1], segments[1:])]
    row = runs.Bt[0]
    b = np.concatenate([row[q, part] for q, part in enumerate(parts)])  # B^T on its supports
    E = runs.E[0]
    step = runs.step_b[:1]
    exponent = np.empty_like(b)
    for _ in range(steps):
        residual = ZAt - E @ AAt  # k x r: d f / d B^T at (q, j) is -residual[:, q] . z_j
        for q, part in enumerate(parts):
            np.dot(residual[:, q], Z[:, part], out=exponent[part])
        exponent *= step[0]  # -eta times the gradient
        exponent -= np.repeat(np.maximum.reduceat(exponent, starts), counts)  # shifted: exp never overflows
        np.exp(exponent, out=exponent)
        exponent *= b
        exponent /= np.repeat(np.add.reduceat(exponent, starts), counts)
        E_new = np.column_stack([Z[:, part] @ exponent[part] for part in parts])
        value = 0.5 * x_sq - float(np.vdot(ZAt, E_new)) + 0.5 * float(np.vdot(E_new.T @ E_new, AAt))
        if runs.active[0] and value <= objective:
            b, exponent = exponent, b
            E, objective = E_new, value
        elif runs.active[0]:
            step[0] *= 0.5
            runs.rejected[0] += 1
    runs.step_b[0] = step[0]
    for q, part in enumerate(parts):
        row[q, part] = b[part]
    runs.E = E[None]
    if runs.active[0]:
        runs.objective[0] = objective


def entropic_loop(Z: np.ndarray, runs: EntropicRuns, monitors: list[Monitor], inner_a: int = DEFAULT_INNER,
                  inner_b: int = DEFAULT_INNER) -> EntropicRuns:
    """Iterate :func:`entropic_iteration` until every run's monitor has stopped it. After each
    iteration, each active run's monitor sees its relative error sqrt(2 f / ||Z||^2) and its
    objective f (an accepted iterate: rejected steps are never reported)."""
    from threadpoolctl import threadpool_limits

    x_sq = float(np.vdot(Z, Z))
    for monitor in monitors:
        monitor.restart_clock()
    # many small products (k x N with k ~ 20): one BLAS thread spares the threads' start and
    # synchronisation on every call, and their spinning when other processes hold the cores
    with threadpool_limits(limits=1, user_api="blas"):
        while runs.active.any():
            entropic_iteration(Z, x_sq, runs, inner_a, inner_b)
            errors = np.sqrt(np.maximum(2.0 * runs.objective, 0.0) / max(x_sq, np.finfo(np.float64).tiny))
            for s in np.flatnonzero(runs.active):
                if monitors[s](float(errors[s]), objective=float(runs.objective[s])):
                    runs.active[s] = False
    return runs


def principal_basis(Y: np.ndarray, dimension: int) -> np.ndarray | None:
    """The ``dimension`` leading left singular vectors of Y (m x k), or None when that is every band."""
    m = Y.shape[0]
    if dimension <= 0 or dimension >= m:
        return None
    values, vectors = np.linalg.eigh(Y @ Y.T)
    return vectors[:, np.argsort(values)[::-1][:dimension]]


def max_correlation(E: np.ndarray) -> float:
    """The largest Pearson correlation between two different columns of E (the paper's criterion)."""
    r = E.shape[1]
    if r < 2:
        return 0.0
    R = np.corrcoef(np.asarray(E, dtype=np.float64).T)
    R = np.where(np.isfinite(R), R, 1.0)
    return float((R - 2.0 * np.eye(r)).max())


def select_run(fits: np.ndarray, correlations: np.ndarray, tolerance: float = FIT_TOLERANCE) -> int:
    """The paper's model selection: among runs with (fit - min fit) / fit < tolerance, the one of
    smallest endmember correlation (ties: the better fit)."""
    fits = np.asarray(fits, dtype=np.float64)
    correlations = np.asarray(correlations, dtype=np.float64)
    best = float(np.min(fits))
    close = np.flatnonzero(np.abs(fits - best) <= tolerance * np.abs(fits))
    order = np.lexsort((fits[close], correlations[close]))
    return int(close[order[0]])


def edaa(X, rank: int, *, runs: int = DEFAULT_RUNS, inner: int = DEFAULT_INNER, subspace: int = DEFAULT_SUBSPACE,
         screen_size: int = DEFAULT_SCREEN_SIZE, normalize: str = "l2", max_iter: int = 100, tol: float = 1e-5,
         target_error: float | None = None, max_time: float | None = None, seed: int = 0, callback=None,
         dtype=None, init=None, W=None, H=None):
    """EDAA X ~= W H (see the module docstring): ``runs`` random starts, the paper's selection.

    ``inner``: entropic steps per block per iteration; ``max_iter``/``tol``/``target_error``:
    stopping of every run (on the run's own objective); ``max_time``: for the whole ensemble;
    ``subspace``: principal directions the runs work in (0: all bands); ``screen_size``: above
    this many pixels the runs use one random sample of this size (0: never);
    ``normalize``: l2 (the paper's), l1 or none. ``init``/``W``/``H`` are not supported
    (the starts are the method's own).

    Result layer: W (m x r endmembers, original units), H (FCLS abundances, columns summing to
    one), ``arrays``: ``A`` (n x r, W = X A), ``run_fit`` (l1 fit of every run), ``run_correlation``,
    ``run_step_factor``; ``attrs``: ``selected_run`` (0-based), ``selection_correlation``,
    ``runs_within_tolerance``, ``screened``.
    """
    if W is not None or H is not None or init not in (None, "random", "auto"):
        raise ParameterError("edaa makes its own random starts (--param runs=N); it takes no --init, W or H")
    if runs < 1:
        raise ParameterError(f"runs must be at least 1, got {runs}")
    if inner < 1:
        raise ParameterError(f"inner must be at least 1, got {inner}")
    if subspace < 0 or screen_size < 0:
        raise ParameterError("subspace and screen_size must be >= 0 (0: off)")
    if normalize not in ("l1", "l2", "none"):
        raise ParameterError(f"unknown normalize '{normalize}'; use l2, l1 or none")
    overall = Monitor(Stopping(max_iter=runs, tol=0.0, max_time=max_time), None)
    X = as_float_matrix(np.asarray(X), dtype=dtype)
    require_finite(X)
    m, n = X.shape
    rank = check_rank(rank, (m, n))
    out_dtype = X.dtype
    X64 = np.asarray(X, dtype=np.float64)
    scales = pixel_scales(X64, normalize)
    Y = X64 / scales[None, :]
    stopping = Stopping(max_iter=max_iter, tol=tol, target_error=target_error, max_time=None)
    screened = bool(screen_size) and n > screen_size
    N = screen_size if screened else n
    seeds = np.random.SeedSequence(seed).spawn(runs)
    rngs = [np.random.default_rng(child) for child in seeds]
    pixels = np.sort(np.random.default_rng(seed).choice(n, N, replace=False)) if screened else np.arange(n)
    Y_fit = Y[:, pixels]
    basis = principal_basis(Y_fit, max(subspace, rank) if subspace else 0)
    Z = np.ascontiguousarray(Y_fit if basis is None else basis.T @ Y_fit)
    factors = np.array([float(2.0 ** rng.choice(STEP_EXPONENTS)) for rng in rngs])
    starts = [rng.random((rank, N)) for rng in rngs]
    batch = max(1, min(runs, BATCH_ENTRIES // max(rank * N, 1)))
    fits = np.full(runs, np.inf)
    correlations = np.ones(runs)
    monitors: list[Monitor] = []
    kept: dict[int, np.ndarray] = {}
    for first in range(0, runs, batch):
        members = list(range(first, min(first + batch, runs)))
        left = None if max_time is None else max_time - overall.elapsed
        if left is not None and left <= 0:
            break
        Bt = np.exp(0.1 * np.stack([starts[s] for s in members]))
        Bt /= Bt.sum(axis=2, keepdims=True)
        A = np.full((len(members), rank, N), 1.0 / rank)
        state = start_runs(Z, Bt, A, factors[members])
        batch_monitors = [Monitor(Stopping(max_iter=max_iter, tol=tol, target_error=target_error, max_time=left),
                                  callback if s == 0 else None, stage=f"edaa, {runs} runs")
                          for s in members]
        entropic_loop(Z, state, batch_monitors, inner, inner)
        monitors.extend(batch_monitors)
        for position, s in enumerate(members):
            E = Y_fit @ state.Bt[position].T
            fits[s] = float(np.abs(Y_fit - E @ state.A[position]).sum())
            correlations[s] = max_correlation(E)
            kept[s] = state.Bt[position]
        overall.iteration = len(monitors)
    made = len(monitors)
    chosen = select_run(fits[:made], correlations[:made])
    monitor = monitors[chosen]
    Bt_chosen = kept[chosen]
    # W = X diag(1/scales) B, then each column's brightness restored (minvol's rule)
    weights = np.zeros((n, rank))
    weights[pixels] = (Bt_chosen / scales[pixels][None, :]).T
    E = Y_fit @ Bt_chosen.T
    H_fit = fcls(E, Y)
    W_out = restore_brightness(E, H_fit, scales) if normalize != "none" else E
    brightness = np.linalg.norm(W_out, axis=0) / np.maximum(np.linalg.norm(E, axis=0), np.finfo(np.float64).tiny)
    weights *= brightness[None, :]
    WtX = W_out.T @ X64
    WtW = W_out.T @ W_out
    H_out = fcls(W_out, None, WtW=WtW, WtX=WtX)
    error = relative_error_from_grams(float(np.vdot(X64, X64)), float(np.vdot(WtX, H_out)), WtW, H_out @ H_out.T)
    params = {"rank": rank, "runs": runs, "inner": inner, "subspace": subspace, "screen_size": screen_size,
              "normalize": normalize, "seed": seed, **stopping.as_dict(), "max_time": max_time}
    fits, correlations, factors = fits[:made], correlations[:made], factors[:made]
    within = int(np.count_nonzero(np.abs(fits - fits.min()) <= FIT_TOLERANCE * np.abs(fits)))
    attrs = {"selected_run": chosen, "selection_correlation": float(correlations[chosen]),
             "runs_within_tolerance": within, "runs_made": made, "screened": screened,
             "normalize": normalize, "coefficients": "fcls"}
    result = single_layer_result("edaa", W_out.astype(out_dtype), H_out.astype(out_dtype), monitor, params, error,
                                 attrs=attrs)
    result.seconds = overall.elapsed
    layer = result.layers[0]
    layer.arrays["A"] = weights.astype(out_dtype)
    layer.arrays["run_fit"] = fits
    layer.arrays["run_correlation"] = correlations
    layer.arrays["run_step_factor"] = factors
    return result
