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
* ``svd``: the rank-k truncated SVD of the zero-filled ratings matrix, min ||A - U V^T||_F^2,
  the naive reference the course page warns about (missing ratings count as 0).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from mfcli.completion.data import Ratings
from mfcli.completion.factors import FactorModel, HalfStep
from mfcli.errors import DataError, ParameterError
from mfcli.metrics import rmse

Callback = Callable[..., Any]

# The library defaults (mfcli complete). benchmarks/bench_completion.py measures them on MovieLens
# 100K (80/20) and 1M (DMF masks) in its "(library defaults)" rows, beside its per-dataset settings.
DEFAULTS: dict[str, dict[str, Any]] = {
    "baseline": {"rank": 0, "reg": 10.0, "epochs": 10},
    "als": {"rank": 32, "reg": 0.1, "reg_bias": 0.1, "epochs": 8},
    "wals": {"rank": 32, "reg": 0.1, "reg_bias": 0.1, "w0": 0.001, "epochs": 8},
    "sgd": {"rank": 32, "reg": 0.03, "reg_bias": 0.01, "epochs": 25, "lr": 0.01, "batch_size": 4096},
    "svd": {"rank": 16},
}


def _check_train(train: Ratings, rank: int) -> None:
    if len(train) == 0:
        raise DataError("the training set is empty; give more ratings or a smaller test fraction")
    if rank < 0:
        raise ParameterError(f"--rank must be positive, not {rank}")


def frequency_weights(train: Ratings, power: float) -> np.ndarray:
    """w_ij = (n_i m_j / (mean n * mean m))^(-power): down-weights heavy users and popular items."""
    n = train.user_counts().astype(np.float64)
    m = train.item_counts().astype(np.float64)
    scale = n[train.users] * m[train.items] / (n[n > 0].mean() * m[m > 0].mean())
    return scale ** (-float(power))


class _Tracker:
    """Per-epoch history, callback, and the best state on the validation set (early stopping)."""

    TRAIN_SAMPLE = 50_000

    def __init__(self, train, validation, callback, patience):
        self.validation, self.callback, self.patience = validation, callback, patience
        # The training RMSE of the history is measured on a fixed sample of the ratings (cheap).
        if len(train) > self.TRAIN_SAMPLE:
            train = train.subset(np.random.default_rng(0).choice(len(train), self.TRAIN_SAMPLE, replace=False))
        self.train = train
        self.history: dict[str, list[float]] = {"train_rmse": [], "validation_rmse": [], "seconds": []}
        self.best = None
        self.best_error = np.inf
        self.best_epoch = 0
        self.start = time.perf_counter()

    def __call__(self, epoch: int, model: FactorModel) -> bool:
        """Record one epoch; True when training should stop."""
        train_error = rmse(self.train.values, model.scores(self.train.users, self.train.items)) \
            if not model.solver.get("implicit") else float("nan")
        seconds = time.perf_counter() - self.start
        self.history["train_rmse"].append(train_error)
        self.history["seconds"].append(seconds)
        stop = False
        if self.validation is not None and len(self.validation):
            error = rmse(self.validation.values, model.scores(self.validation.users, self.validation.items))
            self.history["validation_rmse"].append(error)
            if error < self.best_error:
                self.best_error, self.best_epoch = error, epoch
                self.best = _copy(model)
            elif self.patience and epoch - self.best_epoch >= self.patience:
                stop = True
        if self.callback is not None:
            info = {"epoch": epoch, "seconds": seconds}
            if self.history["validation_rmse"]:
                info["validation_rmse"] = self.history["validation_rmse"][-1]
            self.callback(epoch, train_error, **info)
        return stop

    def finish(self, model: FactorModel) -> tuple[FactorModel, dict[str, np.ndarray]]:
        history = {k: np.asarray(v, dtype=np.float64) for k, v in self.history.items() if v}
        if self.best is not None:
            model = self.best
            model.solver["best_epoch"] = self.best_epoch
        return model, history


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


# ---------------------------------------------------------------- baseline

def _baseline_loop(train: Ratings, reg: float, epochs: int, tracker: _Tracker) -> FactorModel:
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
        if tracker(epoch, model):
            break
    return model


def fit_baseline(train: Ratings, reg: float = 10.0, epochs: int = 10, validation: Ratings | None = None,
                 callback: Callback | None = None) -> tuple[FactorModel, dict[str, np.ndarray]]:
    """Global mean, user and item biases (see the module docstring). Returns (model, history)."""
    _check_train(train, 0)
    tracker = _Tracker(train, validation, callback, patience=0)
    return tracker.finish(_baseline_loop(train, reg, epochs, tracker))


# ---------------------------------------------------------------- ALS / WALS

def _wals_loop(train: Ratings, rank: int, reg: float, reg_bias: float, w0: float, weights: np.ndarray | None,
               biases: bool, implicit: bool, alpha: float, epochs: int, seed: int, tracker: _Tracker,
               init_scale: float) -> FactorModel:
    n_users, n_items = train.shape
    rng, U, V, b, c = _initial_factors(train, rank, seed, init_scale)
    mu = 0.0 if implicit else float(train.values.mean())
    reg_scaling = "none" if implicit else "count"
    solver = {"reg": reg, "reg_bias": reg_bias, "reg_scaling": reg_scaling, "w0": w0, "biases": biases,
              "implicit": implicit, "alpha": alpha}
    model = FactorModel(mu, b, c, U, V, train.user_ids, train.item_ids,
                        None if implicit else _rating_range(train), not implicit, solver)
    users = HalfStep(train.users, train.items, train.values, n_users, n_items, rank, solver, weights)
    items = HalfStep(train.items, train.users, train.values, n_items, n_users, rank, solver, weights)
    for epoch in range(1, epochs + 1):
        user_bias, U[:] = users.solve(V, mu, c)  # items fixed: features [v_j, 1], targets r_ij - mu - c_j
        if biases:
            b[:] = user_bias
        item_bias, V[:] = items.solve(U, mu, b)  # users fixed: features [u_i, 1], targets r_ij - mu - b_i
        if biases:
            c[:] = item_bias
        if tracker(epoch, model):
            break
    return model


def fit_wals(train: Ratings, rank: int = 32, reg: float = 0.1, reg_bias: float | None = None, w0: float = 0.0,
             weights: np.ndarray | None = None, frequency_power: float = 0.0, implicit: bool = False,
             alpha: float = 1.0, epochs: int = 8, seed: int = 0, validation: Ratings | None = None,
             patience: int = 0, callback: Callback | None = None, init_scale: float = 0.1
             ) -> tuple[FactorModel, dict[str, np.ndarray]]:
    """Weighted MF by weighted alternating least squares (see the module docstring).

    ``w0``: weight of the unobserved entries (0 gives plain ALS on the observed entries);
    ``weights``: per-rating weights w_ij, multiplied by frequency weights when
    ``frequency_power`` is not 0; ``implicit``: implicit-feedback mode (confidence 1 + alpha r).
    With a ``validation`` set, the epoch of lowest validation RMSE is kept and training stops
    after ``patience`` epochs without improvement (0: never stop early). Returns (model, history).
    """
    _check_train(train, rank)
    if w0 < 0 or reg < 0:
        raise ParameterError(f"--w0 and --reg must be nonnegative (got w0={w0}, reg={reg})")
    if frequency_power:
        freq = frequency_weights(train, frequency_power)
        weights = freq if weights is None else weights * freq
    if implicit:
        w0 = 1.0
        if np.any(train.values < 0):
            raise DataError("implicit feedback needs nonnegative counts or ratings (confidence 1 + alpha r)")
    reg_bias = reg if reg_bias is None else reg_bias
    tracker = _Tracker(train, validation, callback, patience)
    model = _wals_loop(train, rank, reg, reg_bias, w0, weights, not implicit, implicit, alpha, epochs, seed,
                       tracker, init_scale)
    model.solver["frequency_power"] = frequency_power
    return tracker.finish(model)


def fit_als(train: Ratings, rank: int = 32, reg: float = 0.1, reg_bias: float | None = None, epochs: int = 8,
            seed: int = 0, validation: Ratings | None = None, patience: int = 0,
            callback: Callback | None = None) -> tuple[FactorModel, dict[str, np.ndarray]]:
    """MF with biases on the observed entries by ALS: :func:`fit_wals` with w0 = 0 and unit weights."""
    return fit_wals(train, rank, reg, reg_bias, 0.0, None, 0.0, False, 1.0, epochs, seed, validation, patience,
                    callback)


# ---------------------------------------------------------------- SGD

def _scatter(index: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """n x p sums of the rows of ``values`` that share an ``index`` (a vectorized np.add.at):
    one sparse n x batch 0/1 matrix, built directly in CSC form (one entry per column), times values."""
    summing = sp.csc_matrix((np.ones(len(index)), index, np.arange(len(index) + 1)), shape=(n, len(index)))
    return summing @ values


def _sgd_loop(train: Ratings, rank: int, reg: float, reg_bias: float, lr: float, lr_decay: float, batch_size: int,
              epochs: int, seed: int, tracker: _Tracker, init_scale: float) -> FactorModel:
    n_users, n_items = train.shape
    rng, U, V, b, c = _initial_factors(train, rank, seed, init_scale)
    mu = float(train.values.mean())
    model = FactorModel(mu, b, c, U, V, train.user_ids, train.item_ids, _rating_range(train), True,
                        {"reg": reg, "reg_bias": reg_bias, "reg_scaling": "count", "w0": 0.0, "biases": True})
    step = lr
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
        if tracker(epoch, model):
            break
    return model


def fit_sgd(train: Ratings, rank: int = 32, reg: float = 0.03, reg_bias: float | None = None, lr: float = 0.01,
            lr_decay: float = 0.95, batch_size: int = 4096, epochs: int = 25, seed: int = 0,
            validation: Ratings | None = None, patience: int = 0, callback: Callback | None = None,
            init_scale: float = 0.1) -> tuple[FactorModel, dict[str, np.ndarray]]:
    """MF with biases on the observed entries by minibatch SGD (see the module docstring).

    Each step takes a minibatch of ``batch_size`` ratings, computes every rating's gradient at
    once and adds them per user and item; the step size ``lr`` shrinks by ``lr_decay`` per epoch.
    """
    _check_train(train, rank)
    if lr <= 0 or batch_size < 1:
        raise ParameterError(f"--lr must be positive and --batch-size at least 1 (got {lr}, {batch_size})")
    reg_bias = reg if reg_bias is None else reg_bias
    tracker = _Tracker(train, validation, callback, patience)
    return tracker.finish(_sgd_loop(train, rank, reg, reg_bias, lr, lr_decay, batch_size, epochs, seed, tracker,
                                    init_scale))


# ---------------------------------------------------------------- zero-filled SVD

def fit_svd(train: Ratings, rank: int = 16, seed: int = 0, callback: Callback | None = None
            ) -> tuple[FactorModel, dict[str, np.ndarray]]:
    """Rank-k truncated SVD of the zero-filled ratings matrix: U = U_k S_k, V = V_k."""
    from scipy.sparse.linalg import svds

    _check_train(train, rank)
    n_users, n_items = train.shape
    if not 1 <= rank < min(n_users, n_items):
        raise ParameterError(f"--rank for svd must be between 1 and {min(n_users, n_items) - 1} "
                             f"(the matrix is {n_users}x{n_items}), not {rank}")
    v0 = np.random.default_rng(seed).normal(size=min(n_users, n_items))
    u, s, vt = svds(train.to_csr(), k=rank, v0=v0)
    order = np.argsort(-s)
    model = FactorModel(0.0, np.zeros(n_users), np.zeros(n_items), u[:, order] * s[order], vt[order].T.copy(),
                        train.user_ids, train.item_ids, _rating_range(train), True,
                        {"reg": 0.0, "reg_scaling": "none", "w0": 1.0, "biases": False})
    tracker = _Tracker(train, None, callback, 0)
    tracker(1, model)
    return tracker.finish(model)


# ---------------------------------------------------------------- estimators

class _Estimator:
    """fit / fit_transform / transform / predict around a fit function."""

    name = ""

    def __init__(self, **params):
        self.params = {**DEFAULTS[self.name], **params}

    def _fit(self, train, validation=None, callback=None):
        raise NotImplementedError

    def fit(self, train: Ratings, validation: Ratings | None = None, callback: Callback | None = None):
        self.model_, self.history_ = self._fit(train, validation, callback)
        self.user_factors_ = self.model_.user_factors
        self.item_factors_ = self.model_.item_factors
        self.user_bias_ = self.model_.user_bias
        self.item_bias_ = self.model_.item_bias
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


def _pick(params: dict, *names: str) -> dict:
    return {k: params[k] for k in names if k in params and params[k] is not None}


class BiasBaseline(_Estimator):
    name = "baseline"

    def _fit(self, train, validation=None, callback=None):
        return fit_baseline(train, validation=validation, callback=callback, **_pick(self.params, "reg", "epochs"))


class ALS(_Estimator):
    name = "als"

    def _fit(self, train, validation=None, callback=None):
        return fit_als(train, validation=validation, callback=callback,
                       **_pick(self.params, "rank", "reg", "reg_bias", "epochs", "seed", "patience"))


class WALS(_Estimator):
    name = "wals"

    def _fit(self, train, validation=None, callback=None):
        return fit_wals(train, validation=validation, callback=callback,
                        **_pick(self.params, "rank", "reg", "reg_bias", "w0", "weights", "frequency_power",
                                "implicit", "alpha", "epochs", "seed", "patience"))


class SGD(_Estimator):
    name = "sgd"

    def _fit(self, train, validation=None, callback=None):
        return fit_sgd(train, validation=validation, callback=callback,
                       **_pick(self.params, "rank", "reg", "reg_bias", "lr", "lr_decay", "batch_size", "epochs",
                               "seed", "patience"))


class ZeroFilledSVD(_Estimator):
    name = "svd"

    def _fit(self, train, validation=None, callback=None):
        return fit_svd(train, callback=callback, **_pick(self.params, "rank", "seed"))


ESTIMATORS = {cls.name: cls for cls in (BiasBaseline, ALS, WALS, SGD, ZeroFilledSVD)}
