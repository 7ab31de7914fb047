"""Matrix completion of ratings: bias baseline, ALS, SGD, WALS (explicit, frequency-weighted,
implicit feedback) and the zero-filled truncated SVD (NumPy/SciPy only).

All factor models predict ``r_hat_ij = mu + b_i + c_j + <u_i, v_j>`` (see
:class:`~mfcli.completion.factors.FactorModel`). Objectives, with Omega the observed (training)
ratings, n_i / m_j the number of ratings of user i / item j:

* ``baseline`` (Koren, "Factor in the neighbors", TKDD 2010, eq. 2):
  min sum_Omega (r_ij - mu - b_i - c_j)^2 + lambda (sum_i b_i^2 + sum_j c_j^2), by alternating
  exact updates b_i = sum_j (r_ij - mu - c_j) / (n_i + lambda).
* ``als`` and ``sgd``, MF on observed entries only (the course page, ../shared/seeds/000, with
  biases and L2 as in Koren, Bell & Volinsky, "Matrix factorization techniques for recommender
  systems", IEEE Computer 2009):
  min sum_Omega [(r_ij - mu - b_i - c_j - <u_i, v_j>)^2 + lambda (|u_i|^2 + |v_j|^2)
  + lambda_b (b_i^2 + c_j^2)], i.e. lambda n_i |u_i|^2 per user ("weighted-lambda
  regularization", Zhou et al., AAIM 2008). ALS alternates exact row solves; SGD takes
  minibatch steps.
* ``wals``, weighted MF (the course page): the ``als`` objective with weights w_ij on the
  observed entries plus w0 sum_{not Omega} <u_i, v_j>^2, which pulls the interaction of
  unobserved pairs towards 0 (towards the baseline for explicit ratings). Frequency weights:
  w_ij = (n_i m_j / (mean n * mean m))^(-p). Implicit feedback (Hu, Koren & Volinsky, ICDM
  2008; the ``implicit`` package's ALS): preferences p_ij = 1 on Omega and 0 elsewhere,
  confidences c_ij = 1 + alpha r_ij, min sum_all c_ij (p_ij - <u_i, v_j>)^2 + lambda(|U|^2 +
  |V|^2), no biases. Solved with the Gram-matrix identity of :func:`solve_rows`.
* ``bpr``: Bayesian personalized ranking of implicit feedback (:func:`fit_bpr`).
* ``svd``: the rank-k truncated SVD of the zero-filled ratings matrix, min ||A - U V^T||_F^2,
  the naive reference the course page warns about (missing ratings count as 0).

Stopping (:class:`_EpochMonitor`): ``epochs`` and ``max_time`` are limits; the rule is ``tol``.
The alternating solvers (baseline, ALS, WALS) decrease their objective at every epoch and stop
when it decreased by at most ``tol`` (relative) over the last epoch; SGD and BPR stop when their
objective has not improved on its best by more than ``tol`` for 3 epochs. A run ended by a limit
first is reported unconverged (``model.convergence``); a non-finite objective is an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mfcli.completion.data import Ratings, sorted_unique
from mfcli.completion.factors import FactorModel, HalfStep, pair_dots
from mfcli.errors import DataError, ParameterError
from mfcli.metrics import rmse
from mfcli.models.threads import solver_threads

Callback = Callable[..., Any]

# The library defaults (mfcli complete). benchmarks/bench_completion.py measures them on MovieLens
# 100K (80/20) and 1M (DMF masks) in its "(library defaults)" rows, beside its per-dataset settings;
# benchmarks/bench_implicit.py measures "wals-implicit" (wals with implicit=True) and "bpr".
# ``epochs`` is a limit: the runs stop by their rule (``tol``) first. Explicit ALS/WALS: tol 1e-3
# stops at the epoch where the test RMSE on both MovieLens sets is within 0.001 of its best (10 and
# 8 epochs); the objective decreases geometrically, so 50 more epochs lower it by about 4 tol more.
# ALS solves its rows by 3 conjugate-gradient steps from the current factors: the same epochs and
# test RMSE as exact solves on both sets (0.9124 and 0.8611) in 0.19 s instead of 0.26 s (100K)
# and 0.86 s instead of 1.01 s (1M), fit and test in process (bench_completion's "(defaults,
# exact solves)" rows); 2 steps gave 0.9123 and 0.8610 after one epoch more (outside benchmarks/).
# SGD minimizes the ALS objective (same reg): with lr 0.02 decaying by 0.97 per epoch it reaches a
# lower test RMSE than ALS on MovieLens 100K; tol 1e-3 (plateau of 3 epochs) stops it near its best.
DEFAULTS: dict[str, dict[str, Any]] = {
    "baseline": {"rank": 0, "reg": 10.0, "epochs": 100, "tol": 1e-4},
    "als": {"rank": 32, "reg": 0.1, "reg_bias": 0.1, "epochs": 50, "tol": 1e-3, "cg_steps": 3},
    "wals": {"rank": 32, "reg": 0.1, "reg_bias": 0.1, "w0": 0.001, "epochs": 50, "tol": 1e-3},
    "wals-implicit": {"rank": 32, "reg": 10.0, "alpha": 0.3, "epochs": 50, "tol": 1e-3, "cg_steps": 3},
    "sgd": {"rank": 32, "reg": 0.1, "reg_bias": 0.1, "epochs": 100, "lr": 0.02, "lr_decay": 0.97, "batch_size": 4096,
            "tol": 1e-3},
    "bpr": {"rank": 64, "reg": 0.01, "lr": 0.1, "batch_size": 4096, "epochs": 100, "tol": 1e-3},
    "svd": {"rank": 16},
}


def _check_train(train: Ratings, rank: int) -> None:
    if len(train) == 0:
        raise DataError("the training set is empty; give more ratings or a smaller test fraction")
    if rank < 0:
        raise ParameterError(f"--rank must be positive, not {rank}")


# |--frequency-power| at most this: the weights (n_i m_j / mean)^-p stay within float64 for any
# realistic count ratio (10^8 ^ 8 = 10^64).
FREQUENCY_POWER_MAX = 8.0


def frequency_weights(train: Ratings, power: float) -> np.ndarray:
    """w_ij = (n_i m_j / (mean n * mean m))^(-power): down-weights heavy users and popular items."""
    n = train.user_counts().astype(np.float64)
    m = train.item_counts().astype(np.float64)
    scale = n[train.users] * m[train.items] / (n[n > 0].mean() * m[m > 0].mean())
    return scale ** (-float(power))


# After a stop by tol, 50 more epochs lower the objective of an alternating loop by at most this
# many tol (relative): it decreases linearly, so the epochs after the stop still add up to a small
# multiple of the last decrease. Measured: at most 5 on MovieLens 100K and 1M (ALS, WALS, implicit
# WALS), 15 on the planted matrices of tests/completion/test_completion_stopping.py, which asserts this bound.
STOPPING_BOUND = 20

STOP_REASONS = {
    "tol": "the training objective decreased by less than --tol over the last epoch",
    "plateau": "the training objective did not improve on its best by --tol in the last epochs",
    "early_stopping": "the validation RMSE did not improve for --patience epochs",
    "max_iter": "--epochs ran out",
    "max_time": "--max-time ran out",
    "exact": "a direct computation (no iterations)",
}


class _EpochMonitor:
    """Per-epoch history, progress callback, stopping rule and the best state on a validation set.

    Stopping rules (whichever comes first):

    * ``rule="descent"`` (baseline, ALS, WALS: each half-step minimizes the objective exactly, so
      it never increases): stop when the objective f of the epoch decreased by at most ``tol``
      relative to the previous epoch's, ``0 <= (f_{t-1} - f_t) <= tol f_{t-1}``. An epoch that
      raises the objective is never convergence (it can only come from rounding or a fault).
    * ``rule="plateau"`` (SGD, BPR: stochastic steps, a noisy objective): stop when the objective
      has not improved on its best value by more than ``tol`` (relative) for ``window``
      consecutive epochs (scikit-learn's ``n_iter_no_change``); a worse epoch is no progress.
    * with a ``validation`` set and ``patience`` > 0: stop when its RMSE has not improved for
      ``patience`` epochs (the best epoch's model is kept in any case);
    * ``max_epochs`` epochs or ``max_time`` seconds: limits, which end the run unconverged.

    ``tol`` 0 disables the objective rule (a fixed number of epochs). A non-finite objective
    raises ParameterError naming ``cause`` (what to change).
    """

    TRAIN_SAMPLE = 50_000

    def __init__(self, train, validation, callback, patience: int = 0, tol: float = 0.0,
                 max_time: float | None = None, max_epochs: int | None = None, rule: str = "descent",
                 objective: Callable[[FactorModel], float] | None = None, window: int = 3, name: str = "",
                 cause: str = ""):
        self.validation, self.callback, self.patience = validation, callback, patience
        self.tol, self.max_time, self.max_epochs = float(tol), max_time, max_epochs
        self.rule, self.objective, self.window = rule, objective, int(window)
        self.name, self.cause = name, cause
        # The training RMSE of the history is measured on a fixed sample of the ratings (cheap).
        if len(train) > self.TRAIN_SAMPLE:
            train = train.subset(np.random.default_rng(0).choice(len(train), self.TRAIN_SAMPLE, replace=False))
        self.train = train
        self.history: dict[str, list[float]] = {"train_rmse": [], "validation_rmse": [], "seconds": [],
                                                "objective": []}
        self.best = None
        self.best_error = np.inf
        self.best_epoch = 0
        self.best_objective = np.inf
        self.since_best_objective = 0
        self.converged = False
        self.reason = "max_iter"
        self.epochs = 0
        self.start = time.perf_counter()

    def __call__(self, epoch: int, model: FactorModel) -> bool:
        """Record one epoch; True when training should stop (``converged`` and ``reason`` set)."""
        self.epochs = epoch
        objective = float(self.objective(model)) if self.objective is not None else float("nan")
        if self.objective is not None and not np.isfinite(objective):
            raise ParameterError(f"{self.name} diverged at epoch {epoch}: the training objective became "
                                 f"{objective}; {self.cause}")
        train_error = rmse(self.train.values, model.scores(self.train.users, self.train.items)) \
            if not model.solver.get("implicit") else float("nan")
        seconds = time.perf_counter() - self.start
        self.history["train_rmse"].append(train_error)
        self.history["seconds"].append(seconds)
        self.history["objective"].append(objective)
        stop = self._objective_rule(objective)
        if self.validation is not None and len(self.validation):
            error = rmse(self.validation.values, model.scores(self.validation.users, self.validation.items))
            if not np.isfinite(error):
                raise ParameterError(f"{self.name}: the validation RMSE became {error} at epoch {epoch}; {self.cause}")
            self.history["validation_rmse"].append(error)
            if error < self.best_error:
                self.best_error, self.best_epoch = error, epoch
                self.best = _copy(model)
            elif self.patience and epoch - self.best_epoch >= self.patience and not stop:
                stop, self.converged, self.reason = True, True, "early_stopping"
        if self.callback is not None:
            info = {"epoch": epoch, "seconds": seconds, "total": self.max_epochs}
            if self.history["validation_rmse"]:
                info["validation_rmse"] = self.history["validation_rmse"][-1]
            if self.objective is not None:
                info["objective"] = objective
            self.callback(epoch, train_error, **info)
        if stop:
            return True
        if self.max_epochs is not None and epoch >= self.max_epochs:
            self.converged, self.reason = False, "max_iter"
            return True
        if self.max_time is not None and seconds >= self.max_time:
            self.converged, self.reason = False, "max_time"
            return True
        return False

    def _objective_rule(self, objective: float) -> bool:
        if self.tol <= 0 or self.objective is None:
            return False
        values = self.history["objective"]
        if self.rule == "descent":
            if len(values) < 2:
                return False
            decrease = values[-2] - objective
            if 0 <= decrease <= self.tol * abs(values[-2]):
                self.converged, self.reason = True, "tol"
                return True
            return False
        # plateau: progress only when the best value improves by more than tol (relative)
        if objective < self.best_objective - self.tol * abs(self.best_objective):
            self.since_best_objective = 0
        else:
            self.since_best_objective += 1
        self.best_objective = min(self.best_objective, objective)
        if self.since_best_objective >= self.window:
            self.converged, self.reason = True, "plateau"
            return True
        return False

    def last_progress(self) -> float | None:
        """The relative decrease of the objective over the last epoch (None before two epochs)."""
        values = self.history["objective"]
        if len(values) < 2 or not values[-2]:
            return None
        return float((values[-2] - values[-1]) / abs(values[-2]))

    def finish(self, model: FactorModel) -> tuple[FactorModel, dict[str, np.ndarray]]:
        history = {k: np.asarray(v, dtype=np.float64) for k, v in self.history.items()
                   if v and not (k == "objective" and self.objective is None)}
        if self.best is not None:
            model = self.best
            model.solver["best_epoch"] = self.best_epoch
        model.convergence = {"converged": bool(self.converged), "stop_reason": self.reason,
                             "epochs": int(self.epochs), "tol": self.tol, "rule": self.rule,
                             "last_progress": self.last_progress()}
        return model, history


def factor_objective(train: Ratings, model: FactorModel, reg: float, reg_bias: float, w0: float = 0.0,
                     weights: np.ndarray | None = None) -> float:
    """The objective of ALS/WALS/SGD (module docstring) at ``model``, as the solvers minimize it:

    sum_Omega w_ij (t_ij - r_hat_ij)^2 + w0 sum_{not Omega} <u_i, v_j>^2 + penalty,

    with t_ij = r_ij and r_hat_ij = mu + b_i + c_j + <u_i, v_j> for explicit ratings, and for
    implicit feedback t_ij = 1, r_hat_ij = <u_i, v_j>, w_ij = (1 + alpha r_ij) times ``weights``.
    The penalty is lambda n_i |u_i|^2 + lambda_b n_i b_i^2 per user and likewise per item
    (``reg_scaling`` "count"), or lambda (|U|^2 + |V|^2) (+ lambda_b (|b|^2 + |c|^2) with biases).
    The unobserved sum is sum_all - sum_Omega, sum_all = <U^T U, V^T V>.
    """
    solver = model.solver
    U, V = model.user_factors, model.item_factors
    b, c = model.user_bias, model.item_bias
    dots = pair_dots(U, V, train.users, train.items) if model.rank else np.zeros(len(train))
    w = np.ones(len(train)) if weights is None else np.asarray(weights, dtype=np.float64)
    biases = bool(solver.get("biases", True))
    if solver.get("implicit"):
        w = w * (1.0 + float(solver.get("alpha", 1.0)) * train.values)
        residual = 1.0 - dots
    else:
        residual = train.values - model.global_mean - dots
        if biases:
            residual -= b[train.users] + c[train.items]
    value = float(w @ residual**2)
    if w0 and model.rank:
        value += w0 * float(np.vdot(U.T @ U, V.T @ V) - dots @ dots)
    if solver.get("reg_scaling", "count") == "count":
        n, m = train.user_counts(), train.item_counts()
        value += reg * float(n @ np.einsum("ij,ij->i", U, U) + m @ np.einsum("ij,ij->i", V, V))
        if biases:
            value += reg_bias * float(n @ b**2 + m @ c**2)
    else:
        value += reg * float(np.vdot(U, U) + np.vdot(V, V))
        if biases:
            value += reg_bias * float(b @ b + c @ c)
    return value


def _copy(model: FactorModel) -> FactorModel:
    return FactorModel(model.global_mean, model.user_bias.copy(), model.item_bias.copy(), model.user_factors.copy(),
                       model.item_factors.copy(), model.user_ids, model.item_ids, model.rating_range, model.clip,
                       dict(model.solver))


def _rating_range(train: Ratings) -> tuple[float, float]:
    return float(train.values.min()), float(train.values.max())


def _initial_factors(train: Ratings, rank: int, seed: int, init_scale: float):
    """(rng, U, V, b, c): small random factors N(0, init_scale^2) and zero biases."""
    rng = np.random.default_rng(seed)
    U = rng.normal(0.0, init_scale, (train.n_users, rank))
    V = rng.normal(0.0, init_scale, (train.n_items, rank))
    return rng, U, V, np.zeros(train.n_users), np.zeros(train.n_items)


def check_parameters(**ranges: tuple[float, float | None, float | None]) -> None:
    """Raise ParameterError unless each ``name=(value, low, high)`` is a finite number in [low, high]
    (None: unbounded on that side). The name is given as the command-line option (``reg`` -> --reg)."""
    for name, (value, low, high) in ranges.items():
        if value is None:
            continue
        option = "--" + name.replace("_", "-")
        bounds = f"[{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]"
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ParameterError(f"{option} must be a number in {bounds}, not {value!r}") from None
        if not np.isfinite(number) or (low is not None and number < low) or (high is not None and number > high):
            raise ParameterError(f"{option} must be a finite number in {bounds}, not {value}")


def _check_stopping(epochs: int, tol: float, max_time: float | None) -> None:
    if int(epochs) != epochs or epochs < 1:
        raise ParameterError(f"--epochs must be a positive integer, not {epochs}")
    check_parameters(tol=(tol, 0.0, None), max_time=(max_time, 0.0, None))
    if max_time is not None and max_time <= 0:
        raise ParameterError(f"--max-time must be positive (seconds), not {max_time}")


# ---------------------------------------------------------------- baseline

def _baseline_loop(train: Ratings, reg: float, epochs: int, monitor: _EpochMonitor) -> FactorModel:
    mu = float(train.values.mean())
    n_users, n_items = train.shape
    user_counts = train.user_counts()
    item_counts = train.item_counts()
    b = np.zeros(n_users)
    c = np.zeros(n_items)
    model = FactorModel(mu, b, c, np.zeros((n_users, 0)), np.zeros((n_items, 0)), train.user_ids, train.item_ids,
                        _rating_range(train), True,
                        {"reg": 0.0, "reg_bias": reg, "reg_scaling": "none", "biases": True, "w0": 0.0})
    for epoch in range(1, max(epochs, 1) + 1):
        residual = train.values - mu - c[train.items]
        b[:] = np.bincount(train.users, residual, n_users) / (user_counts + reg)
        residual = train.values - mu - b[train.users]
        c[:] = np.bincount(train.items, residual, n_items) / (item_counts + reg)
        if monitor(epoch, model):
            break
    return model


def fit_baseline(train: Ratings, reg: float = 10.0, epochs: int = 100, validation: Ratings | None = None,
                 callback: Callback | None = None, tol: float = 1e-4, max_time: float | None = None
                 ) -> tuple[FactorModel, dict[str, np.ndarray]]:
    """Global mean, user and item biases (see the module docstring). Alternating exact updates
    until the objective decreases by at most ``tol`` (relative) over an epoch, ``epochs`` epochs
    or ``max_time`` seconds. Returns (model, history)."""
    _check_train(train, 0)
    check_parameters(reg=(reg, 0.0, None))
    _check_stopping(epochs, tol, max_time)
    monitor = _EpochMonitor(train, validation, callback, 0, tol, max_time, epochs, "descent",
                            lambda model: factor_objective(train, model, 0.0, reg), name="baseline",
                            cause=f"a value is too large for float64 (--reg {reg:g}); rescale the ratings")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # the monitor reports a divergence
        return monitor.finish(_baseline_loop(train, reg, epochs, monitor))


# ---------------------------------------------------------------- ALS / WALS

def _wals_loop(train: Ratings, rank: int, reg: float, reg_bias: float, w0: float, weights: np.ndarray | None,
               biases: bool, implicit: bool, alpha: float, epochs: int, seed: int, monitor: _EpochMonitor,
               init_scale: float, cg_steps: int = 0) -> FactorModel:
    n_users, n_items = train.shape
    rng, U, V, b, c = _initial_factors(train, rank, seed, init_scale)
    mu = 0.0 if implicit else float(train.values.mean())
    reg_scaling = "none" if implicit else "count"
    solver = {"reg": reg, "reg_bias": reg_bias, "reg_scaling": reg_scaling, "w0": w0, "biases": biases,
              "implicit": implicit, "alpha": alpha, "cg_steps": cg_steps}
    model = FactorModel(mu, b, c, U, V, train.user_ids, train.item_ids,
                        None if implicit else _rating_range(train), not implicit, solver)
    users = HalfStep(train.users, train.items, train.values, n_users, n_items, rank, solver, weights)
    items = HalfStep(train.items, train.users, train.values, n_items, n_users, rank, solver, weights)
    for epoch in range(1, epochs + 1):
        # items fixed: features [v_j, 1], targets r_ij - mu - c_j (conjugate-gradient sweeps start
        # from the current factors)
        user_bias, U[:] = users.solve(V, mu, c, U if cg_steps else None, b if cg_steps and biases else None)
        if biases:
            b[:] = user_bias
        item_bias, V[:] = items.solve(U, mu, b, V if cg_steps else None,  # users fixed: [u_i, 1], r_ij - mu - b_i
                                      c if cg_steps and biases else None)
        if biases:
            c[:] = item_bias
        # The objective at (U, V): the item rows' part left by their solve plus the users' penalty
        # (O(n k) instead of a pass over the ratings; tests check it against factor_objective).
        model.convergence["objective"] = items.objective + users.penalty(U, b)
        if monitor(epoch, model):
            break
    return model


def fit_wals(train: Ratings, rank: int = 32, reg: float = 0.1, reg_bias: float | None = None, w0: float = 0.0,
             weights: np.ndarray | None = None, frequency_power: float = 0.0, implicit: bool = False,
             alpha: float = 1.0, epochs: int = 50, seed: int = 0, validation: Ratings | None = None,
             patience: int = 0, callback: Callback | None = None, init_scale: float = 0.1, tol: float = 1e-3,
             max_time: float | None = None, cg_steps: int = 0) -> tuple[FactorModel, dict[str, np.ndarray]]:
    """Weighted MF by weighted alternating least squares (see the module docstring).

    ``w0``: weight of the unobserved entries (0 gives plain ALS on the observed entries);
    ``weights``: per-rating weights w_ij, multiplied by frequency weights when
    ``frequency_power`` is not 0; ``implicit``: implicit-feedback mode (confidence 1 + alpha r).
    Stops when the objective (:func:`factor_objective`) decreases by at most ``tol`` (relative)
    over an epoch, after ``epochs`` epochs or ``max_time`` seconds. With a ``validation`` set, the
    epoch of lowest validation RMSE is kept and training stops after ``patience`` epochs without
    improvement (0: never stop early). Returns (model, history).
    """
    _check_train(train, rank)
    check_parameters(reg=(reg, 0.0, None), reg_bias=(reg_bias, 0.0, None), w0=(w0, 0.0, None),
                     alpha=(alpha, 0.0, None), frequency_power=(frequency_power, -FREQUENCY_POWER_MAX,
                                                                FREQUENCY_POWER_MAX))
    _check_stopping(epochs, tol, max_time)
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != train.values.shape or not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ParameterError("weights must be finite, nonnegative, one per training rating")
    if frequency_power:
        freq = frequency_weights(train, frequency_power)
        weights = freq if weights is None else weights * freq
    if implicit:
        w0 = 1.0
        if np.any(train.values < 0):
            raise DataError("implicit feedback needs nonnegative counts or ratings (confidence 1 + alpha r)")
    reg_bias = reg if reg_bias is None else reg_bias
    name = "wals --implicit" if implicit else ("wals" if w0 or weights is not None else "als")
    monitor = _EpochMonitor(train, validation, callback, patience, tol, max_time, epochs, "descent",
                            lambda model: model.convergence["objective"], name=name,
                            cause=f"a value is too large for float64 (--reg {reg:g}, --reg-bias {reg_bias:g}, "
                                  f"--w0 {w0:g}" + (f", --alpha {alpha:g}" if implicit else "")
                                  + "); use smaller ones or rescale the ratings")
    # the monitor reports a divergence; BLAS on one thread and one pool of row threads for the run
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), solver_threads():
        model = _wals_loop(train, rank, reg, reg_bias, w0, weights, not implicit, implicit, alpha, epochs, seed,
                           monitor, init_scale, cg_steps)
    model.solver["frequency_power"] = frequency_power
    return monitor.finish(model)


def fit_als(train: Ratings, rank: int = 32, reg: float = 0.1, reg_bias: float | None = None, epochs: int = 50,
            seed: int = 0, validation: Ratings | None = None, patience: int = 0,
            callback: Callback | None = None, tol: float = 1e-3, max_time: float | None = None, cg_steps: int = 0
            ) -> tuple[FactorModel, dict[str, np.ndarray]]:
    """MF with biases on the observed entries by ALS: :func:`fit_wals` with w0 = 0 and unit weights.
    ``cg_steps``: conjugate-gradient steps per row and sweep, warm-started from the current factors
    (:func:`~mfcli.completion.factors.cg_solve_rows`; 0: exact solves)."""
    return fit_wals(train, rank, reg, reg_bias, 0.0, None, 0.0, False, 1.0, epochs, seed, validation, patience,
                    callback, tol=tol, max_time=max_time, cg_steps=cg_steps)


# ---------------------------------------------------------------- SGD

def _scatter(index: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """n x p sums of the rows of ``values`` that share an ``index`` (a vectorized np.add.at):
    one sparse n x batch 0/1 matrix, built directly in CSC form (one entry per column), times values."""
    import scipy.sparse as sp  # imported here: the ALS path does not need scipy

    summing = sp.csc_matrix((np.ones(len(index)), index, np.arange(len(index) + 1)), shape=(n, len(index)))
    return summing @ values


def _sgd_loop(train: Ratings, rank: int, reg: float, reg_bias: float, lr: float, lr_decay: float, batch_size: int,
              epochs: int, seed: int, monitor: _EpochMonitor, init_scale: float) -> FactorModel:
    n_users, n_items = train.shape
    rng, U, V, b, c = _initial_factors(train, rank, seed, init_scale)
    mu = float(train.values.mean())
    model = FactorModel(mu, b, c, U, V, train.user_ids, train.item_ids, _rating_range(train), True,
                        {"reg": reg, "reg_bias": reg_bias, "reg_scaling": "count", "w0": 0.0, "biases": True})
    step = lr
    with np.errstate(over="ignore", invalid="ignore"):  # a divergence is caught by the monitor
        for epoch in range(1, epochs + 1):
            permutation = rng.permutation(len(train))
            for start in range(0, len(train), batch_size):
                batch = permutation[start:start + batch_size]
                users, items = train.users[batch], train.items[batch]
                Ub, Vb = U[users], V[items]
                error = train.values[batch] - (mu + b[users] + c[items] + np.einsum("ij,ij->i", Ub, Vb))
                # Per-rating gradient steps, summed over the minibatch (Koren et al. 2009, eq. 5).
                grad = np.hstack([error[:, None] * Vb - reg * Ub, (error - reg_bias * b[users])[:, None]])
                sums = _scatter(users, grad, n_users)
                U += step * sums[:, :rank]
                b += step * sums[:, rank]
                grad = np.hstack([error[:, None] * Ub - reg * Vb, (error - reg_bias * c[items])[:, None]])
                sums = _scatter(items, grad, n_items)
                V += step * sums[:, :rank]
                c += step * sums[:, rank]
            step *= lr_decay
            if monitor(epoch, model):
                break
    return model


def fit_sgd(train: Ratings, rank: int = 32, reg: float = 0.1, reg_bias: float | None = None, lr: float = 0.02,
            lr_decay: float = 0.97, batch_size: int = 4096, epochs: int = 100, seed: int = 0,
            validation: Ratings | None = None, patience: int = 0, callback: Callback | None = None,
            init_scale: float = 0.1, tol: float = 1e-3, max_time: float | None = None
            ) -> tuple[FactorModel, dict[str, np.ndarray]]:
    """MF with biases on the observed entries by minibatch SGD (see the module docstring).

    Each step takes a minibatch of ``batch_size`` ratings, computes every rating's gradient at
    once and adds them per user and item; the step size ``lr`` shrinks by ``lr_decay`` per epoch.
    Stops when the objective (:func:`factor_objective`, computed after each epoch) has not
    improved on its best by more than ``tol`` (relative) for 3 epochs, after ``epochs`` epochs or
    ``max_time`` seconds; a diverging run (non-finite objective) raises ParameterError.
    """
    _check_train(train, rank)
    check_parameters(reg=(reg, 0.0, None), reg_bias=(reg_bias, 0.0, None), lr=(lr, 0.0, None),
                     lr_decay=(lr_decay, 0.0, 1.0))
    _check_stopping(epochs, tol, max_time)
    if lr <= 0 or batch_size < 1:
        raise ParameterError(f"--lr must be positive and --batch-size at least 1 (got {lr}, {batch_size})")
    reg_bias = reg if reg_bias is None else reg_bias
    monitor = _EpochMonitor(train, validation, callback, patience, tol, max_time, epochs, "plateau",
                            lambda model: factor_objective(train, model, reg, reg_bias), name="sgd",
                            cause=f"the step size --lr {lr:g} (times --reg {reg:g}) is too large for these ratings; "
                                  "try smaller ones")
    return monitor.finish(_sgd_loop(train, rank, reg, reg_bias, lr, lr_decay, batch_size, epochs, seed, monitor,
                                    init_scale))


# ---------------------------------------------------------------- BPR

class _Interactions:
    """Membership test of (user, item) pairs in the training interactions: a dense bitmap when the
    matrix is small enough (64 Mi cells), else a binary search in the sorted pair keys."""

    DENSE_CELLS = 1 << 26

    def __init__(self, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int):
        self.n_items = n_items
        self.dense = None
        if n_users * n_items <= self.DENSE_CELLS:
            self.dense = np.zeros(n_users * n_items, dtype=bool)
            self.dense[users * n_items + items] = True
        else:
            self.keys = sorted_unique(users * n_items + items)

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.n_items + items
        if self.dense is not None:
            return self.dense[keys]
        position = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return self.keys[position] == keys


def _sample_negatives(rng: np.random.Generator, users: np.ndarray, interactions: _Interactions, n_items: int,
                      rounds: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A uniform random item per user that the user has not interacted with, redrawn up to
    ``rounds`` times. Returns (items, valid): ``valid`` is False where every draw hit an interaction."""
    items = rng.integers(0, n_items, len(users))
    hit = interactions.contains(users, items)
    for _ in range(rounds):
        if not hit.any():
            break
        redraw = np.flatnonzero(hit)
        items[redraw] = rng.integers(0, n_items, len(redraw))
        hit[redraw] = interactions.contains(users[redraw], items[redraw])
    return items, ~hit


# Triples on which the BPR stopping rule measures the loss each epoch.
BPR_CHECK_TRIPLES = 100_000


def _bpr_loop(train: Ratings, rank: int, reg: float, lr: float, lr_decay: float, batch_size: int, epochs: int,
              seed: int, monitor: _EpochMonitor, state: dict) -> FactorModel:
    n_users, n_items = train.shape
    rng = np.random.default_rng(seed)
    # float32 factors (half the memory traffic of the gathers and scatters), initialised as the
    # implicit package does: uniform in [-0.5, 0.5] / rank; item biases 0.
    W = ((rng.random((n_users, rank)) - 0.5) / rank).astype(np.float32)
    H = ((rng.random((n_items, rank)) - 0.5) / rank).astype(np.float32)
    c = np.zeros(n_items, dtype=np.float32)
    positive_keys = sorted_unique(train.users * n_items + train.items)
    users_all, items_all = positive_keys // n_items, positive_keys % n_items
    interactions = _Interactions(users_all, items_all, n_users, n_items)
    # The stopping rule watches the BPR loss on a fixed sample of triples (the same every epoch, so
    # that its changes are the model's progress, not the noise of resampling).
    check_rng = np.random.default_rng([seed, 1])
    fixed = check_rng.choice(len(positive_keys), min(len(positive_keys), BPR_CHECK_TRIPLES), replace=False)
    fixed_j, valid = _sample_negatives(check_rng, users_all[fixed], interactions, n_items)
    fixed_u, fixed_i, fixed_j = users_all[fixed][valid], items_all[fixed][valid], fixed_j[valid]
    solver = {"reg": reg, "reg_scaling": "none", "w0": 1.0, "biases": False, "implicit": True, "alpha": 1.0,
              "model": "bpr"}
    model = FactorModel(0.0, np.zeros(n_users), c.astype(np.float64), W.astype(np.float64), H.astype(np.float64),
                        train.user_ids, train.item_ids, None, False, solver)
    step = np.float32(lr)
    reg32 = np.float32(reg)
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(positive_keys))
        negatives, valid = _sample_negatives(rng, users_all[order], interactions, n_items)
        order, negatives = order[valid], negatives[valid]
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            u, i, j = users_all[batch], items_all[batch], negatives[start:start + batch_size]
            Wu, Hi, Hj = W[u], H[i], H[j]
            x = np.einsum("ij,ij->i", Wu, Hi - Hj) + c[i] - c[j]
            z = (0.5 * (1.0 - np.tanh(0.5 * x))).astype(np.float32)  # d/dx ln sigma(x) = sigma(-x)
            grad_u = z[:, None] * (Hi - Hj) - reg32 * Wu
            grad_i = z[:, None] * Wu - reg32 * Hi
            grad_j = -z[:, None] * Wu - reg32 * Hj
            W += step * _scatter32(u, grad_u, n_users)
            H += step * _scatter32(np.concatenate([i, j]), np.vstack([grad_i, grad_j]), n_items)
            c += step * _scatter32(np.concatenate([i, j]), np.concatenate([z - reg32 * c[i], -z - reg32 * c[j]]),
                                   n_items)
        step *= np.float32(lr_decay)
        model.user_factors, model.item_factors = W.astype(np.float64), H.astype(np.float64)
        model.item_bias = c.astype(np.float64)
        x = np.einsum("ij,ij->i", W[fixed_u], H[fixed_i] - H[fixed_j]) + c[fixed_i] - c[fixed_j]
        state["loss"] = float(np.mean(np.logaddexp(0.0, -x.astype(np.float64)))) if len(x) else 0.0  # -ln sigma(x)
        if monitor(epoch, model):
            break
    return model


def _scatter32(index: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """:func:`_scatter` in float32 (values n x p or n)."""
    import scipy.sparse as sp

    summing = sp.csc_matrix((np.ones(len(index), dtype=np.float32), index, np.arange(len(index) + 1)),
                            shape=(n, len(index)))
    return summing @ values


def fit_bpr(train: Ratings, rank: int = 64, reg: float = 0.01, lr: float = 0.1, lr_decay: float = 0.97,
            batch_size: int = 4096, epochs: int = 100, seed: int = 0, callback: Callback | None = None,
            tol: float = 1e-3, max_time: float | None = None) -> tuple[FactorModel, dict[str, np.ndarray]]:
    """Bayesian personalized ranking (Rendle, Freudenthaler, Gantner & Schmidt-Thieme, UAI 2009):

        max sum_{(u, i, j)} ln sigma(x_ui - x_uj) - lambda (|W|^2 + |H|^2 + |c|^2),
        x_ui = c_i + <w_u, h_i>,

    over triples of a user u, an item i the user interacted with and an item j they did not, by
    LearnBPR: stochastic gradient steps on triples drawn by bootstrap (here each interaction once
    per epoch in random order, j uniform among the user's other items), taken in minibatches of
    ``batch_size`` triples whose gradients are added per user and item; the step ``lr`` shrinks by
    ``lr_decay`` per epoch. The values of the ratings are ignored: every rating is an interaction.
    Stops when the mean loss -ln sigma(x_uij) on a fixed sample of (up to 100,000) triples has not
    improved on its best by more than ``tol`` (relative) for 3 epochs, after ``epochs`` epochs or
    ``max_time`` seconds.

    Scores are ranking scores (no rating scale). A new user is folded in by the implicit-feedback
    least-squares projection onto the item factors (as ``wals --implicit`` folds in), an
    approximation of BPR's own problem. Returns (model, history).
    """
    _check_train(train, rank)
    if rank < 1:
        raise ParameterError(f"--rank must be at least 1, not {rank}")
    check_parameters(reg=(reg, 0.0, None), lr=(lr, 0.0, None), lr_decay=(lr_decay, 0.0, 1.0))
    _check_stopping(epochs, tol, max_time)
    if lr <= 0 or batch_size < 1:
        raise ParameterError(f"--lr must be positive and --batch-size at least 1 (got {lr}, {batch_size})")
    if train.n_items < 2:
        raise DataError("BPR needs at least two items")
    state: dict[str, float] = {}
    monitor = _EpochMonitor(train, None, callback, 0, tol, max_time, epochs, "plateau", lambda model: state["loss"],
                            name="bpr", cause=f"the step size --lr {lr:g} is too large; try a smaller one")
    with np.errstate(over="ignore", invalid="ignore"):  # a divergence is caught by the monitor
        model = _bpr_loop(train, rank, reg, lr, lr_decay, batch_size, epochs, seed, monitor, state)
    return monitor.finish(model)


# ---------------------------------------------------------------- zero-filled SVD

def fit_svd(train: Ratings, rank: int = 16, seed: int = 0, callback: Callback | None = None
            ) -> tuple[FactorModel, dict[str, np.ndarray]]:
    """Rank-k truncated SVD of the zero-filled ratings matrix: U = U_k S_k, V = V_k (ARPACK, run
    to its own convergence; a non-convergence raises)."""
    from scipy.sparse.linalg import ArpackNoConvergence, svds

    _check_train(train, rank)
    n_users, n_items = train.shape
    if not 1 <= rank < min(n_users, n_items):
        raise ParameterError(f"--rank for svd must be between 1 and {min(n_users, n_items) - 1} "
                             f"(the matrix is {n_users}x{n_items}), not {rank}")
    v0 = np.random.default_rng(seed).normal(size=min(n_users, n_items))
    try:
        u, s, vt = svds(train.to_csr(), k=rank, v0=v0)
    except ArpackNoConvergence:
        raise ParameterError(f"the truncated SVD of rank {rank} did not converge; try a smaller --rank") from None
    order = np.argsort(-s)
    model = FactorModel(0.0, np.zeros(n_users), np.zeros(n_items), u[:, order] * s[order], vt[order].T.copy(),
                        train.user_ids, train.item_ids, _rating_range(train), True,
                        {"reg": 0.0, "reg_scaling": "none", "w0": 1.0, "biases": False})
    monitor = _EpochMonitor(train, None, callback, 0, 0.0, None, 1, "descent", name="svd")
    monitor(1, model)
    model, history = monitor.finish(model)
    model.convergence.update(converged=True, stop_reason="exact")
    return model, history


# ---------------------------------------------------------------- estimators

class _Estimator:
    """fit / fit_transform / transform / predict around a fit function. ``accepts``: the
    parameters the model takes (passed to its fit function; ``seed`` is taken by every model, and
    unused by the deterministic ones); any other name is refused with the list of these."""

    name = ""
    accepts: tuple[str, ...] = ()

    def __init__(self, **params):
        self._check_names(params)
        self.params = {**DEFAULTS[self.name], **params}

    @classmethod
    def _check_names(cls, params) -> None:
        valid = (*cls.accepts, *(() if "seed" in cls.accepts else ("seed",)))
        for name in params:
            if name not in valid:
                raise ParameterError(f"model {cls.name} has no parameter '{name}' (its parameters: {', '.join(valid)})")

    def _given(self) -> dict[str, Any]:
        """The parameters to pass to the fit function (None values left to its defaults)."""
        return {k: self.params[k] for k in self.accepts if k in self.params and self.params[k] is not None}

    def _fit(self, train, validation=None, callback=None):
        raise NotImplementedError

    def fit(self, train: Ratings, validation: Ratings | None = None, callback: Callback | None = None):
        self.model_, self.history_ = self._fit(train, validation, callback)
        self.user_factors_ = self.model_.user_factors
        self.item_factors_ = self.model_.item_factors
        self.user_bias_ = self.model_.user_bias
        self.item_bias_ = self.model_.item_bias
        self.converged_ = self.model_.convergence.get("converged")
        self.stop_reason_ = self.model_.convergence.get("stop_reason")
        self.n_epochs_ = self.model_.convergence.get("epochs")
        return self

    def fit_transform(self, train: Ratings, validation: Ratings | None = None, callback: Callback | None = None):
        """Fit and return the user factors (n_users x k)."""
        return self.fit(train, validation, callback).user_factors_

    def transform(self, new: Ratings) -> np.ndarray:
        """Factors of the users of ``new`` (ids of known items) by fold-in with the items fixed."""
        new = new.reindex(new.user_ids, self.model_.item_ids, drop_unknown=True)
        return self.model_.fold_in_rows(new.users, new.items, new.values, new.n_users)[1]

    def predict(self, user_ids, item_ids) -> np.ndarray:
        return self.model_.predict(user_ids, item_ids)


class BiasBaseline(_Estimator):
    name = "baseline"
    accepts = ("reg", "epochs", "tol", "max_time")

    def _fit(self, train, validation=None, callback=None):
        return fit_baseline(train, validation=validation, callback=callback, **self._given())


class ALS(_Estimator):
    name = "als"
    accepts = ("rank", "reg", "reg_bias", "epochs", "seed", "patience", "tol", "max_time", "cg_steps")

    def _fit(self, train, validation=None, callback=None):
        return fit_als(train, validation=validation, callback=callback, **self._given())


class WALS(_Estimator):
    name = "wals"
    accepts = ("rank", "reg", "reg_bias", "w0", "weights", "frequency_power", "implicit", "alpha", "epochs", "seed",
               "patience", "tol", "max_time", "cg_steps")

    def __init__(self, **params):
        self._check_names(params)
        defaults = DEFAULTS["wals-implicit"] if params.get("implicit") else DEFAULTS["wals"]
        self.params = {**defaults, **params}

    def _fit(self, train, validation=None, callback=None):
        return fit_wals(train, validation=validation, callback=callback, **self._given())


class BPR(_Estimator):
    name = "bpr"
    accepts = ("rank", "reg", "lr", "lr_decay", "batch_size", "epochs", "seed", "tol", "max_time")

    def _fit(self, train, validation=None, callback=None):
        return fit_bpr(train, callback=callback, **self._given())


class SGD(_Estimator):
    name = "sgd"
    accepts = ("rank", "reg", "reg_bias", "lr", "lr_decay", "batch_size", "epochs", "seed", "patience", "tol",
               "max_time")

    def _fit(self, train, validation=None, callback=None):
        return fit_sgd(train, validation=validation, callback=callback, **self._given())


class ZeroFilledSVD(_Estimator):
    name = "svd"
    accepts = ("rank", "seed")

    def _fit(self, train, validation=None, callback=None):
        return fit_svd(train, callback=callback, **self._given())


ESTIMATORS = {cls.name: cls for cls in (BiasBaseline, ALS, WALS, SGD, BPR, ZeroFilledSVD)}
