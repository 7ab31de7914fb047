"""Deep matrix factorization (DMF) and discrete DMF-D, extendable to unseen rows and columns.

Nguyen, Tsiligianni & Deligiannis, "Matrix factorization via deep learning" (../shared/seeds/002)
and "Extendable neural matrix completion", ICASSP 2018; DMF-D from "Learning discrete matrix
factorization models", IEEE SPL 2018.

Two branches of fully connected layers map the row X_i (user i's ratings over the training
items) and the column Y_j (item j's ratings over the training users) of the training matrix,
missing entries 0, to latent vectors U_i = h_X(X_i), V_j = h_Y(Y_j) in R^d; the prediction is
their cosine F(X_i, Y_j) = <U_i, V_j> / (|U_i| |V_j|) in [-1, 1], mapped to ratings in
[alpha, beta] by r = mu + (mu - alpha) F with mu = (alpha + beta) / 2. The objective is

    L = 1/|Omega| sum_{ij in Omega} (F(X_i, Y_j) - (M_ij - mu) / (mu - alpha))^2
        + gamma (|W_X|^2 + |W_Y|^2)                                   (eq. 1, gamma as Adam's weight decay)

trained with Adam on minibatches of sub-matrices (a block of rows x a block of columns, every
observed entry once per epoch), an exponential learning-rate decay, and early stopping on a
validation split. While training on a block, the inputs of its rows and columns hide the
entries of that block, so the network learns to predict entries that are not in its inputs,
which is what it does at test time (``mask_targets``).

DMF-D passes the rating-scale output x through the smooth quantizer (eq. 4)

    G_{lambda,b}(x) = I_v + Delta sigmoid(lambda (x - b_v))   for I_v <= x < I_{v+1}

with learnable boundaries b_v between the allowed levels I_1 < ... < I_d (spacing Delta),
penalized by gamma2 |b - b_uniform|^2, and lambda raised geometrically during training so the
output ends discrete; predictions use the hard quantizer Q_b (eq. 3).

Inputs are the ratings divided by beta (so a missing 0 differs from every rating). Extendability:
a new row t (a user unseen in training) is predicted from its ratings of the training items by
the row branch, F(M_t,:, M_:,j), without retraining; likewise new columns, and both (areas II-IV
of Fig. 2). The row branch generalizes to new rows far less well than it fits the training rows
(MovieLens 1M, benchmarks/bench_dmf.py: area II stays near 0.94 RMSE while area I reaches 0.86;
stronger input dropout does not close the gap), so by default the network's embedding u_t^0 of a
new row is then folded in toward its ratings with the trained column embeddings fixed, as WALS
folds in a new row: u_t = argmin_u sum_j (s_tj - <u, v_j>)^2 + lambda |u - u_t^0|^2
(:func:`fold_in_embeddings`; likewise new columns; ``fold_in=None`` keeps the network's output). Prediction needs NumPy only: the network weights are stored as arrays and
:func:`forward_numpy` applies them. Training needs PyTorch (``pip install 'mfcli[deep]'``).
"""

from __future__ import annotations

import copy
import math
import os
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from mfcli.completion.data import IdMap, Ratings, align, random_split, ratings_arrays, train_ratings_from_result
from mfcli.errors import DataError, MissingDependencyError, ParameterError
from mfcli.metrics import mae, rmse

DMF_DEFAULTS: dict[str, Any] = {
    "hidden": [512],
    "latent": 128,
    "dropout": 0.3,
    "input_dropout": 0.25,
    "input_norm": False,
    "batch_norm": False,
    "activation": "relu",
    "lr": 1e-3,
    "lr_decay": 0.95,
    "weight_decay": 1e-5,
    "batch_size": 512,
    "epochs": 40,
    "patience": 4,
    "mask_targets": True,
    "validation_fraction": 0.05,
    "time_budget": None,
    "threads": None,
    # Users and items unseen in training: ridge fold-in of their embeddings toward the network's
    # output with this lambda (fold_in_embeddings); None: the network's output alone. 10 is the best
    # of benchmarks/bench_dmf.py's grid on the validation mask of MovieLens 1M (areas II-IV).
    "fold_in": 10.0,
    "device": "auto",
    "seed": 0,
    # DMF-D
    "lambda_start": 1.0,
    "lambda_end": 200.0,
    "lambda_epochs": 30,
    "gamma2": 1e-3,
}


def require_torch():
    """Import torch, or raise MissingDependencyError saying how to install it."""
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch", "deep", "the dmf and dmf-d models (training)") from None
    return torch


# ---------------------------------------------------------------- scaling and quantizer (NumPy)

def rating_scale(alpha: float, beta: float) -> tuple[float, float]:
    """(mu, half) with mu = (alpha + beta) / 2 and half = mu - alpha: r = mu + half * s, s in [-1, 1]."""
    if not beta > alpha:
        raise DataError(f"all training ratings are equal ({alpha:g}); DMF needs a range of ratings")
    mu = (alpha + beta) / 2.0
    return mu, mu - alpha


def to_unit(ratings, alpha: float, beta: float) -> np.ndarray:
    """Ratings in [alpha, beta] scaled to [-1, 1]: (r - mu) / (mu - alpha)."""
    mu, half = rating_scale(alpha, beta)
    return (np.asarray(ratings, dtype=np.float64) - mu) / half


def from_unit(values, alpha: float, beta: float) -> np.ndarray:
    """The inverse of :func:`to_unit`."""
    mu, half = rating_scale(alpha, beta)
    return mu + half * np.asarray(values, dtype=np.float64)


def rating_levels(values: np.ndarray, max_levels: int = 21) -> np.ndarray:
    """The allowed discrete levels: the distinct training ratings, which must be equally spaced."""
    levels = np.unique(np.asarray(values, dtype=np.float64))
    if len(levels) < 2 or len(levels) > max_levels:
        raise DataError(f"dmf-d needs between 2 and {max_levels} distinct rating levels, found {len(levels)}")
    steps = np.diff(levels)
    if not np.allclose(steps, steps[0], rtol=1e-6, atol=1e-9):
        raise DataError("dmf-d needs equally spaced rating levels (e.g. 1,2,3,4,5); found "
                        + ",".join(f"{v:g}" for v in levels[:10]))
    return levels


def uniform_boundaries(levels: np.ndarray) -> np.ndarray:
    """Inner boundaries b_1..b_{d-1} of the uniform quantizer: midpoints between levels."""
    return (levels[:-1] + levels[1:]) / 2.0


def _interval(x: np.ndarray, levels: np.ndarray) -> np.ndarray:
    delta = levels[1] - levels[0]
    return np.clip(np.floor((x - levels[0]) / delta), 0, len(levels) - 2).astype(np.int64)


def smooth_quantize(x, levels: np.ndarray, boundaries: np.ndarray, lam: float) -> np.ndarray:
    """G_{lambda,b}(x) of eq. (4): I_v + Delta sigmoid(lambda (x - b_v)) on [I_v, I_{v+1})."""
    x = np.asarray(x, dtype=np.float64)
    v = _interval(x, levels)
    delta = levels[1] - levels[0]
    z = np.clip(lam * (x - boundaries[v]), -500, 500)
    return levels[v] + delta / (1.0 + np.exp(-z))


def hard_quantize(x, levels: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    """Q_b(x) of eq. (3): I_v, or I_{v+1} where x >= b_v, on [I_v, I_{v+1})."""
    x = np.asarray(x, dtype=np.float64)
    v = _interval(x, levels)
    return levels[v] + (levels[1] - levels[0]) * (x >= boundaries[v])


# ---------------------------------------------------------------- NumPy forward pass

def forward_numpy(layers: list[dict[str, np.ndarray]], inputs, activation: str = "relu") -> np.ndarray:
    """Apply a branch stored as arrays (Linear [+ BatchNorm] + activation ..., last Linear only) to
    the rows of ``inputs`` (dense or scipy.sparse). Dropout is the identity at inference."""
    h = inputs
    for index, layer in enumerate(layers):
        h = h @ layer["weight"].T
        h = np.asarray(h) + layer["bias"]
        if index < len(layers) - 1:
            if "bn_mean" in layer:
                h = (h - layer["bn_mean"]) / np.sqrt(layer["bn_var"] + layer["bn_eps"]) * layer["bn_weight"] \
                    + layer["bn_bias"]
            h = _activate(h, activation)
    return h


def _activate(h: np.ndarray, activation: str) -> np.ndarray:
    if activation == "relu":
        return np.maximum(h, 0.0)
    if activation == "tanh":
        return np.tanh(h)
    raise ParameterError(f"unknown activation '{activation}'")


def scale_inputs(values: np.ndarray, rows: np.ndarray, n_rows: int, input_norm: bool) -> np.ndarray:
    """The entries ``values`` of ``n_rows`` network inputs (entry k in input ``rows[k]``); with
    ``input_norm``, each divided by the square root of its input's number of entries."""
    if not input_norm:
        return values
    return values / np.sqrt(np.maximum(np.bincount(rows, minlength=n_rows), 1))[rows]


def normalize_rows(Z: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    return Z / np.maximum(norms, 1e-12)


# ---------------------------------------------------------------- input matrices

def input_matrices(ratings: Ratings, beta: float) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Row inputs X (users x items) and column inputs Y = X^T (items x users): ratings / beta, missing 0."""
    X = sp.csr_matrix((ratings.values / beta, (ratings.users, ratings.items)), shape=ratings.shape)
    X.sort_indices()
    Y = X.T.tocsr()
    Y.sort_indices()
    return X, Y


# ---------------------------------------------------------------- predictor (NumPy only)

class DMFPredictor:
    """Predictions of a trained DMF from its normalized embeddings (NumPy only).

    ``U``/``V``: unit row/column embeddings of every known user/item (the training ones and those
    extended from side ratings); pairs with an unknown id get the bias baseline. For DMF-D the
    scores are quantized by the learned boundaries. The training items come first in
    ``item_ids``: they are the network's input columns. ``ratings``: the ratings the embeddings
    were computed from (training plus side ratings), saved with the model.
    """

    def __init__(self, U, V, user_ids: IdMap, item_ids: IdMap, alpha, beta, baseline, user_layers=None,
                 activation="relu", levels=None, boundaries=None, input_norm=False, ratings: Ratings | None = None,
                 fold_in: float | None = None):
        self.U, self.V = U, V
        self.fold_in = fold_in
        self.user_ids, self.item_ids = user_ids, item_ids
        self.alpha, self.beta = float(alpha), float(beta)
        self.baseline = baseline  # (global mean, user bias, item bias)
        self.user_layers = user_layers
        self.activation = activation
        self.levels = levels
        self.boundaries = boundaries
        self.input_norm = bool(input_norm)
        self.ratings = ratings

    @property
    def discrete(self) -> bool:
        return self.levels is not None

    def _finish(self, unit: np.ndarray) -> np.ndarray:
        ratings = from_unit(np.clip(unit, -1.0, 1.0), self.alpha, self.beta)
        if self.discrete:
            return hard_quantize(ratings, self.levels, self.boundaries)
        return ratings

    def continuous_scores(self, users, items) -> np.ndarray:
        """Scores before the quantizer (DMF-D), baseline for unknown ids."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        known = (users >= 0) & (items >= 0)
        mu, b, c = self.baseline
        out = mu + np.where(users >= 0, b[np.maximum(users, 0)], 0.0) + np.where(items >= 0, c[np.maximum(items, 0)], 0.0)
        out = np.clip(out, self.alpha, self.beta)
        out[known] = from_unit(np.clip(np.einsum("ij,ij->i", self.U[users[known]], self.V[items[known]]), -1, 1),
                               self.alpha, self.beta)
        return out

    def scores(self, users, items) -> np.ndarray:
        out = self.continuous_scores(users, items)
        if self.discrete:
            return hard_quantize(out, self.levels, self.boundaries)
        return out

    def user_scores(self, user: int, clip: bool = True) -> np.ndarray:
        return self._finish(self.V @ self.U[user]) if clip else from_unit(self.V @ self.U[user], self.alpha, self.beta)

    def ranking_scores(self, users) -> np.ndarray:
        """len(users) x n_items continuous scores (before any quantizer) of user indices ``users``."""
        return from_unit(self.U[np.asarray(users, dtype=np.int64)] @ self.V.T, self.alpha, self.beta)

    def new_user_scores(self, items, values, clip: bool = True) -> np.ndarray:
        """Scores of every item for a user given only by ratings of known items (the row branch)."""
        if self.user_layers is None:
            raise ParameterError("this DMF model was saved without its network; cannot score a new user")
        n_inputs = self.user_layers[0]["weight"].shape[1]  # the training items, indices 0..n_inputs-1
        items = np.asarray(items, dtype=np.int64)
        keep = (items >= 0) & (items < n_inputs)
        x = np.zeros((1, n_inputs))
        x[0, items[keep]] = scale_inputs(np.asarray(values, dtype=np.float64)[keep] / self.beta,
                                         np.zeros(int(keep.sum()), dtype=np.int64), 1, self.input_norm)
        u = normalize_rows(forward_numpy(self.user_layers, x, self.activation))
        if self.fold_in is not None:
            known = items >= 0
            u = fold_in_embeddings(u, self.V, np.ones(1, dtype=bool), np.zeros(int(known.sum()), dtype=np.int64),
                                   items[known], to_unit(np.asarray(values, dtype=np.float64)[known], self.alpha,
                                                         self.beta), np.ones(len(self.V), dtype=bool), self.fold_in)
        u = u[0]
        return self._finish(self.V @ u) if clip else from_unit(self.V @ u, self.alpha, self.beta)


def embed_all(user_layers, item_layers, activation, ratings: Ratings, seen_users: np.ndarray,
              seen_items: np.ndarray, beta: float, input_norm: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Unit embeddings of every user and item of ``ratings`` from their ratings of the *seen* items /
    by the *seen* users (the network's input columns), with NumPy only."""
    user_cols = np.full(ratings.n_items, -1, dtype=np.int64)
    user_cols[np.flatnonzero(seen_items)] = np.arange(int(seen_items.sum()))
    item_cols = np.full(ratings.n_users, -1, dtype=np.int64)
    item_cols[np.flatnonzero(seen_users)] = np.arange(int(seen_users.sum()))

    def inputs(rows, cols, n_rows, n_cols):
        keep = cols >= 0
        rows = rows[keep]
        values = scale_inputs(ratings.values[keep] / beta, rows, n_rows, input_norm)
        return sp.csr_matrix((values, (rows, cols[keep])), shape=(n_rows, n_cols))

    X = inputs(ratings.users, user_cols[ratings.items], ratings.n_users, int(seen_items.sum()))
    Y = inputs(ratings.items, item_cols[ratings.users], ratings.n_items, int(seen_users.sum()))
    return (normalize_rows(forward_numpy(user_layers, X, activation)),
            normalize_rows(forward_numpy(item_layers, Y, activation)))


def fold_in_embeddings(start: np.ndarray, other: np.ndarray, new: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                       unit_values: np.ndarray, other_seen: np.ndarray, lam: float) -> np.ndarray:
    """Embeddings of the rows flagged ``new`` refined from the network's unit embeddings ``start`` by
    their ratings (``unit_values`` in [-1, 1] at (``rows``, ``cols``)) of the other side's seen
    rows ``other``, the other side fixed:

        u_t = argmin_u sum_j (s_tj - <u, v_j>)^2 + lam |u - u_t^0|^2,

    the fold-in of WALS (a ridge solve per row, :func:`mfcli.completion.factors.solve_rows` on the
    residuals around u_t^0) with the network's output as the prior mean: lam -> inf keeps the
    network's prediction cos(u^0, v), lam -> 0 is a plain least-squares fit on the item
    embeddings. The prediction of a refined row is <u_t, v_j> (clipped to [-1, 1]). Other rows are
    returned unchanged."""
    from mfcli.completion.factors import solve_rows

    out = np.array(start, dtype=np.float64, copy=True)
    keep = new[rows] & other_seen[cols]
    if not keep.any():
        return out
    targets_rows = np.flatnonzero(new)
    local = np.full(len(new), -1, dtype=np.int64)
    local[targets_rows] = np.arange(len(targets_rows))
    r, c, s = local[rows[keep]], cols[keep], unit_values[keep]
    order = np.lexsort((c, r))
    r, c, s = r[order], c[order], s[order]
    counts = np.bincount(r, minlength=len(targets_rows))
    indptr = np.concatenate([[0], np.cumsum(counts)])
    pattern = sp.csr_matrix((np.ones(len(r)), c, indptr), shape=(len(targets_rows), other.shape[0]))
    residual = s - np.einsum("ij,ij->i", out[targets_rows][r], other[c])
    delta = solve_rows(pattern, residual, other, np.full((len(targets_rows), other.shape[1]), float(lam)))
    out[targets_rows] += delta
    return out


# ---------------------------------------------------------------- training (torch)

def _sparse_linear(torch):
    """x @ W for a sparse x (rows x inputs) and a dense W (inputs x units), with the backward pass
    W.grad = x^T @ grad also as a sparse product, with the transpose x^T built once beside x (so the
    backward pass never transposes a sparse tensor)."""

    class SparseLinear(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, x_t, weight):
            ctx.save_for_backward(x_t)
            return torch.sparse.mm(x, weight)

        @staticmethod
        def backward(ctx, grad):
            (x_t,) = ctx.saved_tensors
            return None, None, torch.sparse.mm(x_t, grad)

    return SparseLinear.apply


def _branch(torch, n_inputs: int, hidden: list[int], latent: int, dropout: float, batch_norm: bool, activation: str):
    nn = torch.nn
    sparse_linear = _sparse_linear(torch)

    class Branch(nn.Module):
        """Fully connected layers; the first takes a sparse input (given with its transpose)."""

        def __init__(self):
            super().__init__()
            sizes = [n_inputs, *hidden, latent]
            first = nn.Linear(sizes[0], sizes[1])
            self.first_weight = nn.Parameter(first.weight.detach().t().contiguous())  # inputs x units
            self.first_bias = nn.Parameter(first.bias.detach().clone())
            self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[1:-1], sizes[2:]))
            self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in hidden) if batch_norm else None
            self.drop = nn.Dropout(dropout)
            self.act = torch.relu if activation == "relu" else torch.tanh

        def forward(self, x, x_t=None):
            if x.is_sparse:
                h = sparse_linear(x, x_t, self.first_weight) + self.first_bias
            else:
                h = x @ self.first_weight + self.first_bias
            for index, linear in enumerate(self.linears):
                if self.norms is not None:
                    h = self.norms[index](h)
                h = linear(self.drop(self.act(h)))
            return h

    return Branch()


def _export_branch(branch) -> list[dict[str, np.ndarray]]:
    def array(tensor):
        return tensor.detach().cpu().double().numpy().copy()

    layers = [{"weight": array(branch.first_weight).T.copy(), "bias": array(branch.first_bias)}]
    layers += [{"weight": array(linear.weight), "bias": array(linear.bias)} for linear in branch.linears]
    if branch.norms is not None:
        for layer, norm in zip(layers, branch.norms):
            layer.update(bn_mean=array(norm.running_mean), bn_var=array(norm.running_var),
                         bn_weight=array(norm.weight), bn_bias=array(norm.bias), bn_eps=np.asarray(norm.eps))
    return layers


def _sparse_rows(torch, matrix: sp.csr_matrix, rows: np.ndarray, hide: np.ndarray | None, device,
                 drop: float = 0.0, rng: np.random.Generator | None = None, input_norm: bool = False):
    """torch sparse COO of ``matrix[rows]`` and of its transpose, the columns where ``hide`` is true removed
    and, with ``drop`` > 0, a random fraction ``drop`` of the other entries dropped (the rest scaled by
    1 / (1 - drop), as inverted dropout does)."""
    sub = matrix[rows].tocoo()
    keep = np.ones(sub.nnz, dtype=bool) if hide is None else ~hide[sub.col]
    if drop > 0:
        keep &= rng.random(sub.nnz) >= drop
    sub_row, sub_col, data = sub.row[keep], sub.col[keep], sub.data[keep]
    if input_norm:
        data = scale_inputs(data, sub_row, len(rows), input_norm)
    elif drop > 0:
        data = data / (1.0 - drop)
    row_index = torch.from_numpy(sub_row.astype(np.int64))
    col_index = torch.from_numpy(sub_col.astype(np.int64))
    values = torch.from_numpy(data.astype(np.float32))
    shape = (len(rows), matrix.shape[1])
    x = torch.sparse_coo_tensor(torch.stack([row_index, col_index]), values, shape, device=device,
                                is_coalesced=True, check_invariants=False)
    x_t = torch.sparse_coo_tensor(torch.stack([col_index, row_index]), values, shape[::-1], device=device,
                                  check_invariants=False).coalesce()
    return x, x_t


def _pick_device(torch, device: str):
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ParameterError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu or auto")
    return torch.device(device)


class DMF:
    """Deep matrix factorization estimator (see the module docstring); ``discrete=True`` for DMF-D.

    Parameters (defaults in ``DMF_DEFAULTS``, chosen for a 2-core CPU on MovieLens 1M): hidden
    layer sizes ``hidden``, latent dimension ``latent``, ``dropout`` (hidden units) and
    ``input_dropout`` (a random fraction of each training input's ratings is dropped, so the
    branches learn from inputs holding other subsets of a row's ratings, as an unseen row's
    input does), ``input_norm`` (divide each input by the square root of its number of ratings,
    so rows with many and few ratings give inputs of similar size), ``batch_norm``, Adam's ``lr``
    with decay ``lr_decay`` per epoch and ``weight_decay`` (gamma), ``batch_size`` rows and columns
    per sub-matrix, at most ``epochs`` epochs, early stopping after ``patience`` epochs without a
    better validation RMSE, ``time_budget`` seconds at most, ``threads`` for torch on the CPU,
    ``device``; DMF-D: lambda grows from ``lambda_start`` to ``lambda_end`` over ``lambda_epochs``
    epochs (early stopping waits until it has), ``gamma2`` the boundary penalty.
    """

    name = "dmf"

    def __init__(self, discrete: bool = False, rank: int | None = None, **params):
        unknown = set(params) - set(DMF_DEFAULTS) - {"reg"}
        if unknown:
            raise ParameterError(f"unknown dmf option(s): {', '.join(sorted(unknown))}")
        self.discrete = discrete
        self.params = {**DMF_DEFAULTS, **params}
        if rank is not None:
            self.params["latent"] = int(rank)
        if "reg" in params:  # --reg is gamma, the weight decay
            self.params["weight_decay"] = float(self.params.pop("reg"))
        self.params["hidden"] = [int(h) for h in self.params["hidden"]]

    @property
    def rank_(self) -> int:
        return int(self.params["latent"])

    # -- training
    def fit(self, train: Ratings, validation: Ratings | None = None, callback=None):
        torch = require_torch()
        p = self.params
        if len(train) == 0:
            raise DataError("the training set is empty")
        # a refit's validation must see the network being trained, not one exported by an earlier fit
        self.user_layers_ = self.item_layers_ = None
        threads = p["threads"] or max(1, min(os.cpu_count() or 1, 4))
        torch.set_num_threads(int(threads))
        device = _pick_device(torch, p["device"])
        seed = int(p["seed"])
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        fraction = float(p["validation_fraction"])
        if (validation is None or len(validation) == 0) and 0.0 < fraction < 1.0:
            try:
                train, validation = random_split(train, fraction, seed)
            except DataError:  # too few ratings to hold any out: train without a validation set
                pass
        self.alpha_, self.beta_ = float(train.values.min()), float(train.values.max())
        alpha, beta = self.alpha_, self.beta_
        mu, half = rating_scale(alpha, beta)
        from mfcli.completion.models import fit_baseline

        base, _ = fit_baseline(train)
        self.baseline_ = (base.global_mean, base.user_bias, base.item_bias)
        self.train_ = train
        n_users, n_items = train.shape
        X, Y = input_matrices(train, beta)
        targets = sp.csr_matrix((to_unit(train.values, alpha, beta), (train.users, train.items)), shape=train.shape)
        targets.sort_indices()

        hidden, latent = p["hidden"], int(p["latent"])
        user_net = _branch(torch, n_items, hidden, latent, p["dropout"], p["batch_norm"], p["activation"]).to(device)
        item_net = _branch(torch, n_users, hidden, latent, p["dropout"], p["batch_norm"], p["activation"]).to(device)
        parameters = [{"params": [*user_net.parameters(), *item_net.parameters()],
                       "weight_decay": p["weight_decay"]}]
        levels = boundaries = None
        if self.discrete:
            self.levels_ = rating_levels(train.values)
            b0 = uniform_boundaries(self.levels_)
            boundaries = torch.nn.Parameter(torch.tensor(b0, dtype=torch.float32, device=device))
            b_uniform = torch.tensor(b0, dtype=torch.float32, device=device)
            levels = torch.tensor(self.levels_, dtype=torch.float32, device=device)
            parameters.append({"params": [boundaries], "weight_decay": 0.0})
        optimizer = torch.optim.Adam(parameters, lr=p["lr"])
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=p["lr_decay"])

        batch = int(p["batch_size"])
        epochs = int(p["epochs"])
        budget = p["time_budget"]
        start = time.perf_counter()
        history = {"train_rmse": [], "validation_rmse": [], "seconds": [], "lambda": []}
        best = (math.inf, 0, None)
        stopped_by = "epochs"
        has_validation = validation is not None and len(validation) > 0
        for epoch in range(1, epochs + 1):
            user_net.train()
            item_net.train()
            # DMF-D: lambda grows geometrically over the first lambda_epochs epochs (or the first
            # 80% of the time budget), then stays at lambda_end.
            ramp = min(int(p["lambda_epochs"]), epochs)
            progress = (epoch - 1) / max(ramp - 1, 1)
            if budget:
                progress = max(progress, (time.perf_counter() - start) / (0.8 * budget))
            lam = p["lambda_start"] * (p["lambda_end"] / p["lambda_start"]) ** min(progress, 1.0)
            row_blocks = np.array_split(rng.permutation(n_users), max(1, math.ceil(n_users / batch)))
            col_blocks = np.array_split(rng.permutation(n_items), max(1, math.ceil(n_items / batch)))
            pairs = [(r, c) for r in range(len(row_blocks)) for c in range(len(col_blocks))]
            rng.shuffle(pairs)
            epoch_targets, epoch_outputs = [], []  # in [-1, 1], for the training RMSE
            in_rows = np.zeros(n_users, dtype=bool)
            in_cols = np.zeros(n_items, dtype=bool)
            out_of_time = False
            for r, c in pairs:
                rows, cols = row_blocks[r], col_blocks[c]
                col_position = np.full(n_items, -1, dtype=np.int64)
                col_position[cols] = np.arange(len(cols))
                block = targets[rows].tocoo()
                local = col_position[block.col]
                keep = local >= 0
                if not keep.any():
                    continue
                in_rows[rows] = True
                in_cols[cols] = True
                hide_cols = in_cols if p["mask_targets"] else None
                hide_rows = in_rows if p["mask_targets"] else None
                x, x_t = _sparse_rows(torch, X, rows, hide_cols, device, p["input_dropout"], rng, p["input_norm"])
                y, y_t = _sparse_rows(torch, Y, cols, hide_rows, device, p["input_dropout"], rng, p["input_norm"])
                in_rows[rows] = False
                in_cols[cols] = False
                u = torch.nn.functional.normalize(user_net(x, x_t), dim=1)
                v = torch.nn.functional.normalize(item_net(y, y_t), dim=1)
                i_index = torch.from_numpy(block.row[keep].astype(np.int64)).to(device)
                j_index = torch.from_numpy(local[keep]).to(device)
                target = torch.from_numpy(block.data[keep].astype(np.float32)).to(device)
                cosine = (u[i_index] * v[j_index]).sum(dim=1)
                if self.discrete:
                    rating = mu + half * cosine
                    quantized = _smooth_quantize_torch(torch, rating, levels, boundaries, lam)
                    output = (quantized - mu) / half
                    loss = ((output - target) ** 2).mean() + p["gamma2"] * ((boundaries - b_uniform) ** 2).sum()
                else:
                    output = cosine
                    loss = ((output - target) ** 2).mean()
                if not torch.isfinite(loss):
                    raise ParameterError(f"{'dmf-d' if self.discrete else 'dmf'} diverged at epoch {epoch}: the "
                                         f"training loss became {float(loss.detach())}; try a smaller --lr (now {p['lr']:g})")
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                epoch_targets.append(target.cpu().numpy())
                epoch_outputs.append(output.detach().cpu().numpy())
                if budget and time.perf_counter() - start > budget:
                    out_of_time = True
                    break
            scheduler.step()
            self._user_net, self._item_net = user_net, item_net
            if self.discrete:
                self.boundaries_ = boundaries.detach().cpu().double().numpy().copy()
            self.lambda_ = lam
            train_rmse = rmse(from_unit(np.concatenate(epoch_targets), alpha, beta),
                              from_unit(np.concatenate(epoch_outputs), alpha, beta)) if epoch_targets else math.nan
            val_rmse = math.nan
            if validation is not None and len(validation):
                predictor = self.predictor()
                val_rmse = rmse(validation.values, predictor.scores(*align(predictor, validation)))
            seconds = time.perf_counter() - start
            for key, value in (("train_rmse", train_rmse), ("validation_rmse", val_rmse), ("seconds", seconds),
                               ("lambda", lam)):
                history[key].append(value)
            if callback is not None:
                callback(epoch, train_rmse, validation_rmse=val_rmse, seconds=seconds, total=epochs)
            if has_validation and not np.isfinite(val_rmse):
                raise ParameterError(f"{'dmf-d' if self.discrete else 'dmf'}: the validation RMSE became {val_rmse} "
                                     f"at epoch {epoch}; try a smaller --lr (now {p['lr']:g})")
            if not math.isnan(val_rmse) and val_rmse < best[0]:
                best = (val_rmse, epoch, self._snapshot())
            elif not math.isnan(val_rmse) and epoch - best[1] >= p["patience"] > 0 and \
                    (not self.discrete or lam >= p["lambda_end"]):
                stopped_by = "early stopping"
                break
            if out_of_time or (budget and seconds > budget):
                stopped_by = "time budget"
                break
        if best[2] is not None:
            self._restore(best[2])
            self.best_epoch_ = best[1]
        else:
            self.best_epoch_ = len(history["seconds"])
        self.stopped_by_ = stopped_by
        # Early stopping on the validation RMSE is the stopping rule; --epochs and the time budget
        # are limits, which end a run unconverged.
        self.has_stopping_rule_ = bool(has_validation and p["patience"] > 0)
        self.converged_ = stopped_by == "early stopping"
        self.stop_reason_ = {"early stopping": "early_stopping", "epochs": "max_iter",
                             "time budget": "max_time"}[stopped_by]
        self.history_ = {k: np.asarray(v, dtype=np.float64) for k, v in history.items()}
        self.device_ = str(device)
        self.threads_ = int(threads)
        self.user_layers_ = _export_branch(self._user_net.eval())
        self.item_layers_ = _export_branch(self._item_net.eval())
        return self

    def _snapshot(self):
        return (copy.deepcopy(self._user_net.state_dict()), copy.deepcopy(self._item_net.state_dict()),
                None if not self.discrete else self.boundaries_.copy())

    def _restore(self, state):
        self._user_net.load_state_dict(state[0])
        self._item_net.load_state_dict(state[1])
        if state[2] is not None:
            self.boundaries_ = state[2]

    # -- prediction
    def predictor(self, side: Ratings | None = None) -> DMFPredictor:
        """A NumPy predictor for the training users and items, extended (without retraining) to the
        users and items of ``side`` that training did not see, from their ratings in ``side``."""
        user_layers = getattr(self, "user_layers_", None) or _export_branch(self._user_net.eval())
        item_layers = getattr(self, "item_layers_", None) or _export_branch(self._item_net.eval())
        train = self.train_
        ratings = train
        if side is not None:
            user_ids = train.user_ids.extend(side.user_ids.ids)
            item_ids = train.item_ids.extend(side.item_ids.ids)
            extra = side.reindex(user_ids, item_ids)
            ratings = Ratings(np.concatenate([train.users, extra.users]), np.concatenate([train.items, extra.items]),
                              np.concatenate([train.values, extra.values]), user_ids, item_ids)
            ratings = ratings.drop_duplicates()
        seen_users = np.zeros(ratings.n_users, dtype=bool)
        seen_users[: train.n_users] = True
        seen_items = np.zeros(ratings.n_items, dtype=bool)
        seen_items[: train.n_items] = True
        activation = self.params["activation"]
        U, V = embed_all(user_layers, item_layers, activation, ratings, seen_users, seen_items, self.beta_,
                         self.params["input_norm"])
        lam = self.params.get("fold_in")
        if lam is not None:
            unit = to_unit(np.clip(ratings.values, self.alpha_, self.beta_), self.alpha_, self.beta_)
            U, V = (fold_in_embeddings(U, V, ~seen_users, ratings.users, ratings.items, unit, seen_items, lam),
                    fold_in_embeddings(V, U, ~seen_items, ratings.items, ratings.users, unit, seen_users, lam))
        mu, b, c = self.baseline_
        b = np.concatenate([b, np.zeros(ratings.n_users - len(b))])
        c = np.concatenate([c, np.zeros(ratings.n_items - len(c))])
        return DMFPredictor(U, V, ratings.user_ids, ratings.item_ids, self.alpha_, self.beta_, (mu, b, c),
                            user_layers, activation, self.levels_ if self.discrete else None,
                            self.boundaries_ if self.discrete else None, self.params["input_norm"], ratings, lam)

    def discrete_report(self, predictor: DMFPredictor, test: Ratings) -> dict[str, Any]:
        """RMSE/MAE of the continuous output before the quantizer, and the learned boundaries."""
        continuous = predictor.continuous_scores(*align(predictor, test))
        return {"continuous_rmse": rmse(test.values, continuous), "continuous_mae": mae(test.values, continuous),
                "boundaries": [float(v) for v in self.boundaries_]}

    def to_result(self, predictor: DMFPredictor, params: dict[str, Any], summary: dict[str, Any]):
        """The Result of this model with the embeddings, id maps and ratings of ``predictor`` (one
        made by :meth:`predictor`, possibly extended to users and items unseen in training)."""
        from mfcli.result import Layer, Result

        arrays = {
            **ratings_arrays(predictor.ratings),
            "completion/user_bias": predictor.baseline[1], "completion/item_bias": predictor.baseline[2],
        }
        for branch, layers in (("user", self.user_layers_), ("item", self.item_layers_)):
            for index, layer in enumerate(layers):
                for key, value in layer.items():
                    arrays[f"dmf/{branch}/{index}/{key}"] = np.asarray(value)
        if self.discrete:
            arrays["dmf/levels"] = self.levels_
            arrays["dmf/boundaries"] = self.boundaries_
        dmf = {"alpha": self.alpha_, "beta": self.beta_, "global_mean": predictor.baseline[0],
               "hidden": self.params["hidden"], "latent": self.rank_, "activation": self.params["activation"],
               "batch_norm": self.params["batch_norm"], "n_layers": len(self.user_layers_),
               "input_norm": self.params["input_norm"], "fold_in": self.params.get("fold_in"),
               "discrete": self.discrete, "best_epoch": self.best_epoch_, "stopped_by": self.stopped_by_,
               "device": self.device_, "threads": self.threads_}
        layer = Layer(W=predictor.U, H=predictor.V.T.copy(), history=dict(self.history_),
                      attrs={"W": "unit user embeddings h_X(X_i)/|h_X(X_i)| (n_users x latent)",
                             "H": "unit item embeddings transposed (latent x n_items)"})
        params = {**params, "dmf": dmf, "completion": {"global_mean": predictor.baseline[0],
                                                       "rating_range": [self.alpha_, self.beta_]}}
        return Result(model="dmf-d" if self.discrete else "dmf", layers=[layer], params=params, arrays=arrays,
                      summary=summary, n_iter=len(self.history_["seconds"]))


def _smooth_quantize_torch(torch, x, levels, boundaries, lam):
    """Torch version of :func:`smooth_quantize` (differentiable in x and the boundaries)."""
    delta = levels[1] - levels[0]
    v = torch.clamp(torch.floor((x.detach() - levels[0]) / delta), 0, len(levels) - 2).long()
    return levels[v] + delta * torch.sigmoid(lam * (x - boundaries[v]))


def layers_from_arrays(arrays: dict[str, np.ndarray], branch: str, n_layers: int) -> list[dict[str, np.ndarray]]:
    layers = []
    for index in range(n_layers):
        prefix = f"dmf/{branch}/{index}/"
        layers.append({key[len(prefix):]: np.asarray(value) for key, value in arrays.items()
                       if key.startswith(prefix)})
    return layers


def dmf_predictor_from_result(result) -> DMFPredictor:
    """The NumPy predictor of a saved DMF/DMF-D result (no torch needed). Files that also hold
    ``dmf/input_item_index`` (written by earlier versions, always 0..n-1) read the same."""
    a = result.arrays
    dmf = result.params["dmf"]
    user_layers = layers_from_arrays(a, "user", int(dmf["n_layers"]))
    layer = result.layers[0]
    discrete = bool(dmf.get("discrete"))
    return DMFPredictor(np.asarray(layer.W, dtype=np.float64), np.asarray(layer.H, dtype=np.float64).T,
                        IdMap(a["completion/user_ids"]), IdMap(a["completion/item_ids"]), dmf["alpha"], dmf["beta"],
                        (float(dmf["global_mean"]), np.asarray(a["completion/user_bias"]),
                         np.asarray(a["completion/item_bias"])),
                        user_layers, dmf.get("activation", "relu"), np.asarray(a["dmf/levels"]) if discrete else None,
                        np.asarray(a["dmf/boundaries"]) if discrete else None, bool(dmf.get("input_norm", False)),
                        train_ratings_from_result(result), dmf.get("fold_in"))
