"""Deep matrix factorization: one driver, seven models that differ only in their layer updates.

Two chains (survey, De Handschutter, Gillis & Siebert, "A survey on deep matrix factorizations",
Computer Science Review 42, 2021, sections 3.1-3.2):

- features chain (deep ONMF, deep AONMF; section 3.2.1): X ~= W_1 H_1, W_1 ~= W_2 H_2, ...,
  W_{L-1} ~= W_L H_L, hence X ~= W_L H_L ... H_1. Layer l's data-space view is its basis W_l
  (m x r_l) with the composite coefficients C_l = H_l ... H_1 (r_l x n).
- activations chain (multilayer NMF, deep semi-NMF, deep NMF, deep sparse NMF, deep nsNMF;
  section 3.1): X ~= W_1 H_1, H_1 ~= W_2 H_2, ..., hence X ~= W_1 W_2 ... W_L H_L. Layer l's
  data-space view is the basis W_1 ... W_l with the coefficients H_l.

The driver (:func:`deep_factorize`) initializes layer by layer with the variant's single-layer
model (survey Algorithm 2), then, for variants with a joint stage, runs sweeps
``for l in layers: variant.update_layer(state, l)`` followed by ``variant.end_sweep(state)``,
recording the global loss per sweep (``Result.history``) under the shared stopping rules.

Layer updates:

- ``deep-onmf``: every H_l a hard assignment (one nonzero per column). Block coordinate descent
  on the global loss ||X - W_L H_L ... H_1||_F^2: (1) every pixel is moved to the top-level group
  whose basis vector fits it best, with the optimal weight (exact minimization for that pixel;
  among the layer-1 clusters of that group, all of which give the same global loss, it takes the
  one of largest cosine with the layer-1 basis); (2) for l = 2..L, every cluster of layer l-1 is
  moved likewise, as a block, to a group and a layer-l cluster of it (a cluster is not moved
  when that would leave its parent empty); (3) W_L is the least-squares basis for the new
  composite coefficients (and so is each W_l for its layer's view, which the global loss does not
  involve). Each step is an exact block minimization, so the global loss never increases. All
  of it needs the products with X once per sweep: X C_l^T = (X H_1^T) (H_l ... H_2)^T.
- ``deep-aonmf``: soft H_l >= 0 with the AONMF penalty lambda sum_{j<k} <h_j, h_k> on each; H_1
  by HALS, H_l (l >= 2) by projected gradient with step 1/L on the global loss,
  W_L by exact unit-norm column updates. Objective: 1/2 global loss + penalties, never increases.
- ``multilayer`` (Cichocki & Zdunek, Electronics Letters 42(16), 2006; survey Algorithm 2): the
  sequential NMFs only.
- ``deep-semi`` (Trigeorgis, Bousmalis, Zafeiriou & Schuller, ICML 2014 / IEEE TPAMI 2017; survey
  Algorithm 3): semi-NMF pretraining, then W_l = A_l^+ X B_l^+ and H_l by HALS on
  ||X - A_l W_l H_l||, B_l = W_{l+1} H_{l+1}. Not a descent method on the global loss (survey
  section 3.1), so its recorded loss may rise.
- ``deep-nmf`` (survey Algorithm 4): BCD on ||X - W_1 ... W_L H_L||^2 with W_l, H_L >= 0: W_1 and
  H_L by HALS, W_l (l >= 2) by projected gradient with step 1/L; or, with ``loss="layers"``, the
  layer-balanced loss sum_l lambda_l ||H_{l-1} - W_l H_l||^2 (H_0 = X, lambda_1 = 1, lambda_l =
  ``layer_weight``), BCD on every W_l and H_l. Both never increase their objective.
- ``deep-sparse``: deep NMF with lambda ||H_L||_1 (lambda relative to the rms column norm, as
  :mod:`mfcli.models.sparse`), W_1 with unit columns and W_l (l >= 2) column-stochastic, so the
  scale cannot escape the penalty (survey section 3.2.2).
- ``deep-nsnmf``: X ~= W_1 S_1 W_2 S_2 ... W_L S_L H_L with the nsNMF smoothing
  S_l = (1 - theta) I + theta / r_l 11^T (survey section 3.2.3); BCD as deep NMF.

Hierarchy: ``Layer.assignments`` of layer 1 give each data column's cluster, of layer l the
parent in layer l of each cluster of layer l-1 (hard for deep ONMF; for soft models the largest
contribution, with its share in ``assignment_weights``). NumPy only.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mfcli.errors import ConvergenceWarning, ParameterError
from mfcli.metrics import relative_error_from_residual
from mfcli.models.base import (Monitor, Stopping, check_scale, frobenius_residual_sq, gram_solve, prepare_data,
                               require_finite_factors, warn_not_converged)
from mfcli.models.hals import floor_for, hals_block_update, hals_rows, unit_columns_update
from mfcli.models.matrix import DataMatrix, InMemoryMatrix, project_update
from mfcli.models.onmf import soft_assignments
from mfcli.models.registry import COMMON_INITS, check_number
from mfcli.result import Layer, Result
from mfcli.validation import check_ranks

PG_STEPS = 10  # projected-gradient steps on a small block per sweep
# tol of the layer-wise runs of the models with a joint stage (a start that stage polishes; the
# single-layer models' own defaults, for a final answer, are tighter)
LAYER_INIT_TOL = 1e-4


# ----------------------------------------------------------------------------------------------
# shared pieces


@dataclass
class DeepState:
    """Everything a variant's layer updates read and write."""

    data: DataMatrix
    x_sq: float
    ranks: list[int]
    dtype: np.dtype
    W: list[np.ndarray] = field(default_factory=list)
    H: list[np.ndarray] = field(default_factory=list)
    init_layers: list[Layer] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def L(self) -> int:
        return len(self.ranks)


def _lipschitz(*grams: np.ndarray) -> float:
    value = 1.0
    for G in grams:
        value *= max(float(np.linalg.eigvalsh(np.asarray(G, dtype=np.float64))[-1]), 1e-300)
    return value


def _pg_block(W: np.ndarray, AtA: np.ndarray, BBt: np.ndarray, AtXBt: np.ndarray, project, steps: int = PG_STEPS):
    """Projected gradient on f(W) = 1/2 <W, A^T A W B B^T> - <W, A^T X B^T>, step 1/L (descent)."""
    AtA = np.asarray(AtA, dtype=np.float64)
    BBt = np.asarray(BBt, dtype=np.float64)
    AtXBt = np.asarray(AtXBt, dtype=np.float64)
    step = 1.0 / _lipschitz(AtA, BBt)
    W = np.asarray(W, dtype=np.float64)
    for _ in range(steps):
        W = project(W - step * (AtA @ W @ BBt - AtXBt))
    return W


def _nonnegative(W: np.ndarray) -> np.ndarray:
    return np.maximum(W, 0.0)


def _product(matrices: list[np.ndarray], size: int) -> np.ndarray:
    """M_1 M_2 ... M_k (identity of ``size`` when the list is empty), in float64."""
    out = np.eye(size)
    for M in matrices:
        out = out @ np.asarray(M, dtype=np.float64)
    return out


def _products_with_x(state: DeepState, coefficients: list[np.ndarray]) -> list[np.ndarray]:
    """X C_l^T (float64) for every matrix C_l of the list, by one pass over X (the C_l stacked)."""
    stacked = np.vstack(coefficients).astype(state.dtype)
    XCt = np.asarray(state.data.XHt(stacked), dtype=np.float64)
    return np.split(XCt, np.cumsum([C.shape[0] for C in coefficients])[:-1], axis=1)


def _stage_callback(callback, stage: str):
    if callback is None:
        return None

    def report(iteration, relative_error, **info):
        info["stage"] = stage
        callback(iteration, relative_error, **info)

    return report


# ----------------------------------------------------------------------------------------------
# the variants


class DeepVariant:
    """A deep model = a chain, a single-layer model for the initialization, and layer updates."""

    name = ""
    chain = "activations"
    refines = True
    nonnegative = True
    default_init = "nndsvda"
    inits: tuple[str, ...] = COMMON_INITS
    default_tol = 1e-5
    time_limit: dict[str, float] = {}  # {"max_time": seconds} for the layer-wise runs while the driver sets it

    def __init__(self, init: str | None = None, **params: Any):
        self.init = init or self.default_init
        if self.init not in self.inits:
            raise ParameterError(f"{self.name} takes --init {', '.join(self.inits)}, not '{self.init}'")
        self.params = params

    # initialization ---------------------------------------------------------------------------
    def init_layer(self, Y, rank: int, index: int, seed, callback) -> Layer:
        raise NotImplementedError

    def next_input(self, layer: Layer, state: DeepState):
        """What layer l+1 factorizes: W_l (features chain) or H_l (activations chain)."""
        return layer.W if self.chain == "features" else layer.H

    def prepare(self, state: DeepState) -> None:
        """Set up the joint stage (caches) after the layer-wise initialization."""

    # joint stage ------------------------------------------------------------------------------
    def update_layer(self, state: DeepState, index: int) -> None:
        raise NotImplementedError

    def end_sweep(self, state: DeepState) -> tuple[float, float]:
        """Finish a sweep; return (global relative error, objective)."""
        raise NotImplementedError

    def evaluate(self, state: DeepState) -> tuple[float, float]:
        """(global relative error, objective) of the current state (after initialization)."""
        raise NotImplementedError

    # output -----------------------------------------------------------------------------------
    def finish(self, state: DeepState) -> list[Layer]:
        raise NotImplementedError


# ---------- features chain: deep ONMF ------------------------------------------------------------


class DeepONMF(DeepVariant):
    """Deep orthogonal NMF (hard assignments at every layer); see the module docstring.

    ``loss="global"`` (default): ||X - W_L H_L ... H_1||^2. ``loss="layers"``: the data-centric
    sum_l ||X - W_l H_l ... H_1||^2 of De Handschutter & Gillis ("A consistent and flexible
    framework for deep matrix factorizations", Pattern Recognition 134, 2023), in which every
    layer's basis fits the data; BCD with the same three steps, each exact, so it never increases.
    """

    name = "deep-onmf"
    chain = "features"
    default_init = "restarts"
    inits = ("restarts", "spa", "kmeans++", "random")
    default_tol = 1e-4

    def __init__(self, init=None, **params):
        super().__init__(init, **params)
        self.loss = str(params.get("loss", "global"))
        if self.loss not in ("global", "layers"):
            raise ParameterError(f"deep-onmf loss must be 'global' or 'layers', not '{self.loss}'")
        self.restarts = check_number("restarts", params.get("restarts", 10), low=1, integer=True)
        self.screen_size = check_number("screen_size", params.get("screen_size", 5000), low=1, integer=True)
        self.layer_tol = check_number("layer_tol", params.get("layer_tol", 1e-3), low=0)

    def weights(self, state) -> np.ndarray:
        """lambda_l of every layer's term in the loss."""
        lam = np.zeros(state.L)
        if self.loss == "global":
            lam[-1] = 1.0
        else:
            lam[:] = 1.0
        return lam

    def init_layer(self, Y, rank, index, seed, callback):
        from mfcli.models.onmf import onmf

        result = onmf(Y, rank, init=self.init, restarts=self.restarts, screen_size=self.screen_size, seed=seed,
                      callback=callback, max_iter=int(self.params.get("layer_max_iter", 200)),
                      tol=self.layer_tol, window=1, **self.time_limit)
        # A start that the joint stage polishes: it stops at the first iteration that gains less
        # than layer_tol. Converging the layer-wise ONMF further lowers its own objective but
        # (Urban, ranks 7,6,4,2) moves the layer-2 endmembers away from the ground truth.
        return result.layers[0]

    def prepare(self, state):
        state.cache["assign"] = [np.asarray(layer.assignments, dtype=np.int64) for layer in state.init_layers]
        state.cache["weight"] = []
        for index, layer in enumerate(state.init_layers):  # the weights of the hard H_l
            H = np.asarray(layer.H, dtype=np.float64)
            assign = state.cache["assign"][index]
            state.cache["weight"].append(H[assign, np.arange(assign.size)])
        state.W = [np.asarray(layer.W, dtype=np.float64) for layer in state.init_layers]
        # every layer's data-space basis fits its composite coefficients (the model's own W_l
        # for l < L come from factorizing W_{l-1}, not X)
        self._fit_bases(state)

    # helpers on the tree ----------------------------------------------------------------------
    @staticmethod
    def _paths(state) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """For every pair of layers (l <= i), the ancestor in layer i of each cluster of layer l
        and the product of the weights of layers l+1..i on the way: anc[l][i], gain[l][i]."""
        assign, weight = state.cache["assign"], state.cache["weight"]
        L = state.L
        anc = [[None] * L for _ in range(L)]
        gain = [[None] * L for _ in range(L)]
        for low in range(L):
            anc[low][low] = np.arange(state.ranks[low])
            gain[low][low] = np.ones(state.ranks[low])
            for high in range(low + 1, L):
                parent = assign[high][anc[low][high - 1]]
                anc[low][high] = parent
                gain[low][high] = gain[low][high - 1] * weight[high][anc[low][high - 1]]
        return anc, gain

    def _layer_products(self, state) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Y_l = X C_l^T (m x r_l) and d_l = diag(C_l C_l^T) for every layer."""
        assign, weight = state.cache["assign"], state.cache["weight"]
        Y = [state.cache["XH1t"]]
        d = [np.bincount(assign[0], weights=weight[0] ** 2, minlength=state.ranks[0])]
        for index in range(1, state.L):
            H = np.zeros((state.ranks[index], state.ranks[index - 1]))
            H[assign[index], np.arange(state.ranks[index - 1])] = weight[index]
            Y.append(Y[-1] @ H.T)
            d.append(np.bincount(assign[index], weights=weight[index] ** 2 * d[-1], minlength=state.ranks[index]))
        return Y, d

    def _fit_bases(self, state) -> None:
        """X H_1^T by one pass, then every W_l = X C_l^T diag(C_l C_l^T)^-1 (least squares)."""
        assign, weight = state.cache["assign"][0], state.cache["weight"][0]
        H1 = np.zeros((state.ranks[0], assign.size), dtype=state.dtype)
        H1[assign, np.arange(assign.size)] = weight
        state.cache["XH1t"] = np.asarray(state.data.XHt(H1), dtype=np.float64)
        self._update_bases(state)

    def _update_bases(self, state) -> None:
        Y, d = self._layer_products(state)
        for index in range(state.L):
            ok = d[index] > 0
            W = state.W[index].copy()
            W[:, ok] = Y[index][:, ok] / d[index][ok]
            state.W[index] = W

    # the sweep ---------------------------------------------------------------------------------
    def update_layer(self, state, index):
        if index == 0:
            self._move_pixels(state)
        else:
            self._move_clusters(state, index)

    def _move_pixels(self, state) -> None:
        """Each pixel to its best layer-1 cluster with the optimal weight (exact for the loss)."""
        L, ranks = state.L, state.ranks
        lam = self.weights(state)
        anc, gain = self._paths(state)
        r1 = ranks[0]
        assign, weight = state.cache["assign"][0], state.cache["weight"][0]
        # the loss of pixel j in layer-1 cluster k with weight h is sum_l lam_l ||x_j - h a_lk v_lk||^2,
        # a_lk = weights above k up to layer l, v_lk = k's ancestor in W_l: minimized by
        # h = z_k^T x_j / D_k with z_k = sum_l lam_l a_lk v_lk, D_k = sum_l lam_l a_lk^2 ||v_lk||^2.
        Z = np.zeros((state.data.shape[0], r1))
        D = np.zeros(r1)
        for level in range(L):
            if lam[level] == 0:
                continue
            V = state.W[level][:, anc[0][level]]
            Z += lam[level] * V * gain[0][level]
            D += lam[level] * gain[0][level] ** 2 * np.sum(V * V, axis=0)
        alive = D > 0
        inv_sqrt_D = np.where(alive, 1.0 / np.sqrt(np.where(alive, D, 1.0)), 0.0)
        if self.loss == "global":
            # siblings under one top-level cluster fit equally (their z_k are parallel): the tie is
            # broken by the cosine with the layer-1 basis, which leaves the loss unchanged
            tie_basis = state.W[0]
            tie_norm = np.linalg.norm(tie_basis, axis=0)
            tie_scale = 1.0 / np.where(tie_norm > 0, tie_norm, 1.0)
            top = anc[0][L - 1]
            basis = np.hstack([Z, tie_basis])
        else:
            basis = Z

        def move(B, cols):
            B = np.asarray(B, dtype=np.float64)
            width = B.shape[1]
            scores = B[:r1] * inv_sqrt_D[:, None]
            scores[~alive] = -np.inf
            cluster = np.argmax(scores, axis=0)
            if self.loss == "global":
                group = top[cluster]
                fine = B[r1:] * tie_scale[:, None]
                fine[top[:, None] != group[None, :]] = -np.inf
                fine[~alive] = -np.inf
                cluster = np.argmax(fine, axis=0)
            h = np.maximum(B[:r1][cluster, np.arange(width)], 0.0) / np.where(alive[cluster], D[cluster], 1.0)
            assign[cols] = cluster
            weight[cols] = h
            H_block = np.zeros((r1, width), dtype=state.dtype)
            H_block[cluster, np.arange(width)] = h
            return H_block

        state.cache["XH1t"] = np.asarray(project_update(state.data, basis.astype(state.dtype), move),
                                         dtype=np.float64)

    def _move_clusters(self, state, index) -> None:
        """Each cluster k of layer l-1, as a block, to its best layer-l cluster with the optimal weight."""
        L, ranks = state.L, state.ranks
        lam = self.weights(state)
        anc, gain = self._paths(state)
        Y, d = self._layer_products(state)
        y = Y[index - 1]           # X C_{l-1}^T: one column per cluster of layer l-1
        sizes = d[index - 1]       # ||c_k||^2
        r = ranks[index]
        # cluster k under q with factor g costs sum_{i >= l} lam_i ||X_k - g b_iq v_iq c_k^T||^2
        # (b_iq: weights above q up to layer i): minimized by g = z_q^T y_k / (D_q ||c_k||^2).
        Z = np.zeros((state.data.shape[0], r))
        D = np.zeros(r)
        for level in range(index, L):
            if lam[level] == 0:
                continue
            V = state.W[level][:, anc[index][level]]
            Z += lam[level] * V * gain[index][level]
            D += lam[level] * gain[index][level] ** 2 * np.sum(V * V, axis=0)
        alive = D > 0
        fits = (Z.T @ y) / np.where(alive, np.sqrt(np.where(alive, D, 1.0)), 1.0)[:, None]  # r x r_{l-1}
        fits[~alive] = -np.inf
        top = anc[index][L - 1]
        here = state.W[index]
        here_norm = np.linalg.norm(here, axis=0)
        cosines = (here.T @ y) / np.where(here_norm > 0, here_norm, 1.0)[:, None]
        assign, weight = state.cache["assign"][index], state.cache["weight"][index]
        children = np.bincount(assign, minlength=r)
        for k in range(ranks[index - 1]):
            if sizes[k] <= 0:
                continue
            current = assign[k]
            if children[current] <= 1:
                options = np.array([current])  # a sole child stays: every cluster keeps a child
            else:
                options = np.flatnonzero(alive)
            if options.size == 0:
                continue
            best = options[np.argmax(fits[options, k])]
            if self.loss == "global":  # equal fits within a top-level cluster: the closest basis vector
                siblings = options[top[options] == top[best]]
                best = siblings[np.argmax(cosines[siblings, k])]
            factor = max(float(Z[:, best] @ y[:, k]), 0.0) / (D[best] * sizes[k])
            children[current] -= 1
            children[best] += 1
            assign[k] = best
            weight[k] = factor

    def end_sweep(self, state):
        self._update_bases(state)
        return self.evaluate(state)

    def evaluate(self, state):
        Y, d = self._layer_products(state)
        lam = self.weights(state)
        objective = 0.0
        for index in range(state.L):
            if lam[index]:
                residual = frobenius_residual_sq(state.x_sq, state.W[index], Y[index], np.diag(d[index]))
                objective += lam[index] * max(residual, 0.0)
        top = state.L - 1
        residual = frobenius_residual_sq(state.x_sq, state.W[top], Y[top], np.diag(d[top]))
        return relative_error_from_residual(state.x_sq, residual), 0.5 * objective

    def finish(self, state):
        Y, d = self._layer_products(state)
        assign, weight = state.cache["assign"], state.cache["weight"]
        n = assign[0].size
        dtype = state.dtype
        layers = []
        composite_cluster = assign[0].copy()
        composite_weight = weight[0].copy()
        for index in range(state.L):
            r = state.ranks[index]
            if index == 0:
                H = np.zeros((r, n), dtype=dtype)
                H[assign[0], np.arange(n)] = weight[0]
                coefficients = None
            else:
                H = np.zeros((r, state.ranks[index - 1]), dtype=dtype)
                H[assign[index], np.arange(state.ranks[index - 1])] = weight[index]
                composite_weight = composite_weight * weight[index][composite_cluster]
                composite_cluster = assign[index][composite_cluster]
                coefficients = np.zeros((r, n), dtype=dtype)
                coefficients[composite_cluster, np.arange(n)] = composite_weight
            residual = frobenius_residual_sq(state.x_sq, state.W[index], Y[index], np.diag(d[index]))
            init_layer = state.init_layers[index]
            layers.append(Layer(W=state.W[index].astype(dtype), H=H, coefficients=coefficients,
                                assignments=assign[index].copy(), assignment_weights=weight[index].copy(),
                                relative_error=relative_error_from_residual(state.x_sq, residual),
                                history=init_layer.history,
                                attrs={"init_relative_error": init_layer.relative_error, "init": init_layer.attrs}))
        return layers


# ---------- features chain: deep AONMF ------------------------------------------------------------


class DeepAONMF(DeepVariant):
    """Deep approximately orthogonal NMF (soft H_l with the AONMF penalty)."""

    name = "deep-aonmf"
    chain = "features"
    default_init = "spa"

    def __init__(self, init=None, **params):
        super().__init__(init, **params)
        self.penalty = check_number("penalty", params.get("penalty", 1.0), low=0)

    def init_layer(self, Y, rank, index, seed, callback):
        from mfcli.models.onmf import aonmf

        return aonmf(Y, rank, penalty=self.penalty, init=self.init, seed=seed, callback=callback,
                     tol=LAYER_INIT_TOL, **self.time_limit).layers[0]

    def prepare(self, state):
        state.H = [np.asarray(layer.H, dtype=np.float64) for layer in state.init_layers]
        state.H[0] = np.asarray(state.init_layers[0].H, dtype=state.dtype).copy()
        state.W = [np.asarray(layer.W, dtype=np.float64) for layer in state.init_layers]
        state.cache["XH1t"] = np.asarray(state.data.XHt(state.H[0]), dtype=np.float64)
        state.cache["H1H1t"] = np.asarray(state.H[0] @ state.H[0].T, dtype=np.float64)

    def _upper(self, state, index) -> np.ndarray:
        """V_l = W_L H_L ... H_{l+1} (m x r_l): the basis that multiplies H_l in the global model."""
        V = state.W[state.L - 1]
        for j in range(state.L - 1, index, -1):
            V = V @ state.H[j]
        return V

    def _lower(self, state, index):
        """(X C_{l-1}^T, C_{l-1} C_{l-1}^T) with C_{l-1} = H_{l-1} ... H_1."""
        XCt, CCt = state.cache["XH1t"], state.cache["H1H1t"]
        for j in range(1, index):
            XCt = XCt @ state.H[j].T
            CCt = state.H[j] @ CCt @ state.H[j].T
        return XCt, CCt

    def _penalty_gram(self, r: int) -> np.ndarray:
        return self.penalty * (np.ones((r, r)) - np.eye(r))

    def update_layer(self, state, index):
        r = state.ranks[index]
        if index == 0:
            V = self._upper(state, 0).astype(state.dtype)
            G = V.T.astype(np.float64) @ V.astype(np.float64) + self._penalty_gram(r)
            H = state.H[0]
            update = hals_block_update(H, G, 3, 0.1, floor_for(state.dtype))
            state.cache["XH1t"] = np.asarray(project_update(state.data, V, update), dtype=np.float64)
            state.cache["H1H1t"] = np.asarray(H @ H.T, dtype=np.float64)
            return
        V = self._upper(state, index)
        XCt, CCt = self._lower(state, index)
        VtV = V.T @ V
        gradient_const = V.T @ XCt
        P = self._penalty_gram(r)
        step = 1.0 / (_lipschitz(VtV, CCt) + self.penalty * r)
        H = state.H[index]
        for _ in range(PG_STEPS):
            H = np.maximum(H - step * (VtV @ H @ CCt - gradient_const + P @ H), 0.0)
        state.H[index] = H

    def end_sweep(self, state):
        top = state.L - 1
        XCt, CCt = self._lower(state, state.L)
        state.W[top] = unit_columns_update(state.W[top], XCt, CCt, sweeps=3)
        # the other layers' data-space bases: nonnegative least squares for their coefficients
        for index in range(top):
            XCt_l, CCt_l = self._lower(state, index + 1)
            Wt = hals_rows(np.ascontiguousarray(state.W[index].T), XCt_l.T, CCt_l, 20, 0.0, floor=0.0)
            state.W[index] = np.ascontiguousarray(Wt.T)
        return self.evaluate(state)

    def evaluate(self, state):
        top = state.L - 1
        XCt, CCt = self._lower(state, state.L)
        residual = frobenius_residual_sq(state.x_sq, state.W[top], XCt, CCt)
        penalty = 0.0
        for index in range(state.L):
            if index == 0:
                HHt = state.cache["H1H1t"]
            else:
                HHt = state.H[index] @ state.H[index].T
            penalty += self.penalty * 0.5 * float(HHt.sum() - np.trace(HHt))
        return relative_error_from_residual(state.x_sq, residual), 0.5 * max(residual, 0.0) + penalty

    def finish(self, state):
        return _finish_features_soft(state)


def _finish_features_soft(state) -> list[Layer]:
    """Layers of a soft features chain; X C_l^T = (X C_{l-1}^T) H_l^T from the kept X H_1^T, so
    no pass over X."""
    dtype = state.dtype
    layers = []
    C = np.asarray(state.H[0], dtype=np.float64)
    XCt = state.cache["XH1t"]
    for index in range(state.L):
        H = state.H[index]
        if index > 0:
            C = H @ C
            XCt = XCt @ H.T
        layer_basis = np.asarray(state.W[index], dtype=np.float64)
        if index == 0:
            assignments, shares = soft_assignments(H)
        else:  # child k (column) to the parent p (row) of largest contribution (H_l)_pk ||w_p||
            assignments, shares = soft_assignments(np.maximum(H * np.linalg.norm(layer_basis, axis=0)[:, None], 0.0))
        residual = frobenius_residual_sq(state.x_sq, layer_basis, XCt, C @ C.T)
        init_layer = state.init_layers[index]
        layers.append(Layer(W=layer_basis.astype(dtype), H=np.asarray(H, dtype=dtype),
                            coefficients=None if index == 0 else C.astype(dtype),
                            assignments=assignments, assignment_weights=np.asarray(shares, dtype=np.float64),
                            relative_error=relative_error_from_residual(state.x_sq, residual),
                            history=init_layer.history, attrs={"init_relative_error": init_layer.relative_error}))
    return layers


# ---------- activations chain ----------------------------------------------------------------------


class ActivationsChain(DeepVariant):
    """X ~= W_1 M_2 ... M_L H_L with M_l = W_l S_l (S_l = I except for deep nsNMF).

    Layers >= 2 factorize activations, not data columns: where layer 1 starts from picked
    columns (spa, kmeans++), they start from ``later_init``."""

    chain = "activations"
    later_init = "nndsvda"

    def smoothing(self, rank: int) -> np.ndarray:
        return np.eye(rank)

    def layer_model(self, index: int):
        from mfcli.models.nmf import nmf

        return nmf

    def layer_kwargs(self, index: int) -> dict[str, Any]:
        return {}

    def init_layer(self, Y, rank, index, seed, callback):
        model = self.layer_model(index)
        init = self.later_init if index > 0 and self.init in ("spa", "kmeans++") else self.init
        start = {"tol": LAYER_INIT_TOL} if self.refines else {}  # multilayer: the layers are the answer
        return model(Y, rank, init=init, seed=seed, callback=callback, **start, **self.time_limit,
                     **self.layer_kwargs(index)).layers[0]

    def factor(self, state, index) -> np.ndarray:
        """M_l = W_l S_l (float64)."""
        return np.asarray(state.W[index], dtype=np.float64) @ state.cache["S"][index]

    def prepare(self, state):
        state.W = [np.asarray(layer.W, dtype=np.float64) for layer in state.init_layers]
        state.H = [np.asarray(layer.H, dtype=np.float64) for layer in state.init_layers]
        state.H[-1] = np.asarray(state.init_layers[-1].H, dtype=state.dtype).copy()
        state.cache["S"] = [self.smoothing(r) for r in state.ranks]
        self.rescale(state)
        self.first_products(state)

    def rescale(self, state) -> None:
        """Move scale between the initial factors before X H_L^T is computed (deep sparse NMF)."""

    def first_products(self, state) -> None:
        """The products with X the joint stage starts from: X H_L^T (one pass) and H_L H_L^T."""
        self._refresh_top(state)

    def _refresh_top(self, state) -> None:
        H = np.asarray(state.H[-1], dtype=state.dtype)
        state.cache["XHLt"] = np.asarray(state.data.XHt(H), dtype=np.float64)
        state.cache["HLHLt"] = np.asarray(H @ H.T, dtype=np.float64)

    def basis(self, state, upto: int) -> np.ndarray:
        """W_1 S_1 ... W_upto S_upto (data-space basis of layer ``upto``, 1-based count)."""
        return _product([self.factor(state, j) for j in range(upto)], state.data.shape[0])

    def project_w(self, index: int):
        return _nonnegative

    def update_layer(self, state, index):
        L = state.L
        A = self.basis(state, index)                                     # m x r_{l-1}
        R = _product([self.factor(state, j) for j in range(index + 1, L)], state.ranks[index])  # r_l x r_L
        S = state.cache["S"][index]
        XBt = state.cache["XHLt"] @ R.T @ S.T                            # X (S R H_L)^T
        BBt = S @ R @ state.cache["HLHLt"] @ R.T @ S.T
        if index == 0:
            state.W[0] = self.update_first(state, XBt, BBt)
        else:
            state.W[index] = _pg_block(state.W[index], A.T @ A, BBt, A.T @ XBt, self.project_w(index))

    def update_first(self, state, XBt, BBt) -> np.ndarray:
        Wt = hals_rows(np.ascontiguousarray(state.W[0].T), XBt.T, BBt, 10, 0.1, floor=0.0)
        return np.ascontiguousarray(Wt.T)

    def h_l1(self, state) -> float:
        return 0.0

    def end_sweep(self, state):
        P = self.basis(state, state.L)
        H = state.H[-1]
        update = hals_block_update(H, P.T @ P, 3, 0.1, 0.0, l1=self.h_l1(state))
        state.cache["XHLt"] = np.asarray(project_update(state.data, P.astype(state.dtype), update), dtype=np.float64)
        state.cache["HLHLt"] = np.asarray(H @ H.T, dtype=np.float64)
        return self.evaluate(state)

    def evaluate(self, state):
        P = self.basis(state, state.L)
        residual = frobenius_residual_sq(state.x_sq, P, state.cache["XHLt"], state.cache["HLHLt"])
        penalty = self.h_l1(state) * float(np.asarray(state.H[-1], dtype=np.float64).sum())
        return relative_error_from_residual(state.x_sq, residual), 0.5 * max(residual, 0.0) + penalty

    def implied_coefficients(self, state) -> list[np.ndarray]:
        """H_l for every layer: the top H_L carried down, H_l = M_{l+1} ... M_L H_L, so every
        layer's view is consistent with the jointly refined factors."""
        H_top = np.asarray(state.H[-1], dtype=np.float64)
        out = []
        for index in range(state.L):
            R = _product([self.factor(state, j) for j in range(index + 1, state.L)], state.ranks[index])
            out.append(R @ H_top)
        return out

    def coefficients_for_output(self, state) -> list[np.ndarray]:
        return self.implied_coefficients(state) if self.refines else [np.asarray(H, np.float64) for H in state.H]

    def finish(self, state):
        dtype = state.dtype
        coefficients = self.coefficients_for_output(state)
        XCt_all = _products_with_x(state, coefficients)
        layers = []
        for index in range(state.L):
            r = state.ranks[index]
            C, XCt = coefficients[index], XCt_all[index]
            basis = self.basis(state, index + 1)
            residual = frobenius_residual_sq(state.x_sq, basis, XCt, C @ C.T)
            if index == 0:
                assignments, shares = soft_assignments(C)
            else:
                # child k (a component of layer l-1) is explained by parent p in proportion to
                # (M_l)_kp times the mass of p's coefficients
                contribution = self.factor(state, index) * np.maximum(C, 0).sum(axis=1)[None, :]
                assignments, shares = soft_assignments(np.maximum(contribution.T, 0.0))
            init_layer = state.init_layers[index]
            W_own = np.asarray(state.W[index], dtype=dtype)
            layers.append(Layer(W=W_own, H=C.astype(dtype), basis=None if index == 0 and np.allclose(
                self.factor(state, 0), state.W[0]) else basis.astype(dtype),
                assignments=assignments, assignment_weights=np.asarray(shares, dtype=np.float64),
                relative_error=relative_error_from_residual(state.x_sq, residual), history=init_layer.history,
                attrs={"init_relative_error": init_layer.relative_error}))
            if "S" in state.cache and not np.allclose(state.cache["S"][index], np.eye(r)):
                layers[-1].arrays["S"] = state.cache["S"][index]
        return layers


class Multilayer(ActivationsChain):
    """Cichocki's multilayer NMF: sequential NMFs H_{l-1} ~= W_l H_l, no joint stage.

    ``first_layer="minvol"`` makes the first layer a minimum-volume NMF (Leplat, Ang & Gillis
    2020: endmembers spanning a simplex of small volume, abundances H_1 on the simplex,
    :mod:`mfcli.models.minvol`, which ``benchmarks/bench_unmixing.py`` compares with the other
    methods); the next layers then group its abundances, as in the sequential scheme.
    """

    name = "multilayer"
    refines = False
    first_layers = ("nmf", "minvol")

    def __init__(self, init=None, **params):
        super().__init__(init, **params)
        self.first_layer = str(params.get("first_layer", "nmf"))
        if self.first_layer not in self.first_layers:
            raise ParameterError(f"first_layer must be one of {', '.join(self.first_layers)}, not '{self.first_layer}'")

    def init_layer(self, Y, rank, index, seed, callback):
        if index > 0 or self.first_layer != "minvol":
            return super().init_layer(Y, rank, index, seed, callback)
        from mfcli.models.minvol import INITS as MINVOL_INITS, minvol

        if not hasattr(Y, "to_array"):
            raise ParameterError("first_layer=minvol works on data in memory; use --engine memory")
        init = self.init if self.init in MINVOL_INITS else "spa"
        return minvol(Y.to_array(), rank, init=init, seed=seed, callback=callback, **self.time_limit).layers[0]


class DeepNMF(ActivationsChain):
    """Survey Algorithm 4 (BCD on the global loss), or the layer-balanced loss."""

    name = "deep-nmf"
    losses = ("global", "layers")

    def __init__(self, init=None, **params):
        super().__init__(init, **params)
        self.loss = str(params.get("loss", "global"))
        if self.loss not in self.losses:
            raise ParameterError(f"{self.name} takes loss {' or '.join(self.losses)}, not '{self.loss}'")
        self.layer_weight = check_number("layer_weight", params.get("layer_weight", 1.0), low=0, low_open=True)

    def lam(self, index: int) -> float:
        return 1.0 if index == 0 else self.layer_weight

    def prepare(self, state):
        super().prepare(state)
        if self.loss == "layers":
            state.H = [np.asarray(H, dtype=state.dtype).copy() if j == 0 else np.asarray(H, dtype=np.float64)
                       for j, H in enumerate(state.H)]

    def update_layer(self, state, index):
        if self.loss == "global":
            return super().update_layer(state, index)
        # layer-balanced: H_l then W_l, exact HALS blocks of sum_l lambda_l ||H_{l-1} - W_l H_l||^2
        L = state.L
        lam, lam_next = self.lam(index), (self.lam(index + 1) if index + 1 < L else 0.0)
        W = state.W[index]
        r = state.ranks[index]
        gram = lam * (W.T @ W) + lam_next * np.eye(r)
        upper = state.W[index + 1] @ state.H[index + 1] if index + 1 < L else None
        if index == 0:
            H = state.H[0]

            def cross(B, cols):  # lambda_1 W_1^T X_J + lambda_2 (W_2 H_2)_J
                out = lam * np.asarray(B, dtype=np.float64)
                if upper is not None:
                    out += lam_next * upper[:, cols]
                return out

            update = hals_block_update(H, gram, 3, 0.1, 0.0, cross=cross)
            XH1t = np.asarray(project_update(state.data, W.astype(state.dtype), update), dtype=np.float64)
            H64 = np.asarray(H, dtype=np.float64)
            Wt = hals_rows(np.ascontiguousarray(W.T), XH1t.T, H64 @ H64.T, 10, 0.1, floor=0.0)
            state.W[0] = np.ascontiguousarray(Wt.T)
            state.cache["XH1t"] = XH1t
            return
        below = np.asarray(state.H[index - 1], dtype=np.float64)
        cross = lam * (W.T @ below)
        if upper is not None:
            cross = cross + lam_next * upper
        state.H[index] = hals_rows(np.asarray(state.H[index], dtype=np.float64), cross, gram, 10, 0.1, floor=0.0)
        H = state.H[index]
        Wt = hals_rows(np.ascontiguousarray(W.T), (below @ H.T).T, H @ H.T, 10, 0.1, floor=0.0)
        state.W[index] = np.ascontiguousarray(Wt.T)

    def end_sweep(self, state):
        if self.loss == "global":
            return super().end_sweep(state)
        self._refresh_top(state)  # H_L moved: the global error is reported too (one more pass)
        return self.evaluate(state)

    def evaluate(self, state):
        if self.loss == "global":
            return super().evaluate(state)
        if "XH1t" not in state.cache:
            state.cache["XH1t"] = np.asarray(state.data.XHt(np.asarray(state.H[0], dtype=state.dtype)),
                                             dtype=np.float64)
        H1 = np.asarray(state.H[0], dtype=np.float64)
        objective = self.lam(0) * frobenius_residual_sq(state.x_sq, state.W[0], state.cache["XH1t"], H1 @ H1.T)
        for index in range(1, state.L):
            below = np.asarray(state.H[index - 1], dtype=np.float64)
            objective += self.lam(index) * float(np.sum((below - state.W[index] @ state.H[index]) ** 2))
        P = self.basis(state, state.L)
        residual = frobenius_residual_sq(state.x_sq, P, state.cache["XHLt"], state.cache["HLHLt"])
        return relative_error_from_residual(state.x_sq, residual), 0.5 * objective

    def coefficients_for_output(self, state):
        if self.loss == "layers":
            return [np.asarray(H, dtype=np.float64) for H in state.H]
        return super().coefficients_for_output(state)


class DeepSparse(DeepNMF):
    """Deep NMF with lambda ||H_L||_1; unit columns of W_1, column-stochastic W_l (l >= 2)."""

    name = "deep-sparse"
    losses = ("global",)

    def __init__(self, init=None, **params):
        super().__init__(init, **params)
        self.l1 = check_number("l1", params.get("l1", 0.1), low=0)

    def layer_model(self, index):
        from mfcli.models.nmf import nmf
        from mfcli.models.sparse import sparse_nmf

        return sparse_nmf if index == 0 else nmf

    def layer_kwargs(self, index):
        return {"l1": self.l1} if index == 0 else {}

    def rescale(self, state):
        for index in range(1, state.L):  # column-stochastic W_l; the scale moves up the chain
            sums = state.W[index].sum(axis=0)
            sums = np.where(sums > 0, sums, 1.0)
            state.W[index] = state.W[index] / sums
            if index < state.L - 1:
                state.W[index + 1] = sums[:, None] * state.W[index + 1]
            else:
                state.H[index] = (np.asarray(state.H[index], dtype=np.float64) * sums[:, None]).astype(state.dtype)

    def prepare(self, state):
        super().prepare(state)
        state.cache["l1"] = self.l1 * float(np.sqrt(state.x_sq / state.data.shape[1]))

    def h_l1(self, state) -> float:
        return state.cache.get("l1", 0.0)

    def project_w(self, index):
        from mfcli.models.archetypal import project_columns_to_simplex

        return project_columns_to_simplex

    def update_first(self, state, XBt, BBt):
        return unit_columns_update(state.W[0], XBt, BBt, sweeps=3)


class DeepNsNMF(DeepNMF):
    """Deep nonsmooth NMF: X ~= W_1 S_1 W_2 S_2 ... W_L S_L H_L."""

    name = "deep-nsnmf"
    losses = ("global",)

    def __init__(self, init=None, **params):
        super().__init__(init, **params)
        self.theta = check_number("theta", params.get("theta", 0.5), low=0, high=1)

    def smoothing(self, rank):
        from mfcli.models.nsnmf import smoothing_matrix

        return smoothing_matrix(rank, self.theta)

    def layer_model(self, index):
        from mfcli.models.nsnmf import nsnmf

        return nsnmf

    def layer_kwargs(self, index):
        return {"theta": self.theta}


class DeepSemi(ActivationsChain):
    """Trigeorgis et al.'s deep semi-NMF (survey Algorithm 3)."""

    name = "deep-semi"
    nonnegative = False
    default_init = "kmeans++"
    later_init = "kmeans++"  # semi-NMF starts from picked columns or at random (no NNDSVD)
    inits = ("kmeans++", "spa", "random")

    def layer_model(self, index):
        from mfcli.models.semi import semi_nmf

        return semi_nmf

    def first_products(self, state):
        """X H_l^T of every layer (one pass over X) and H_L H_L^T."""
        state.H = [np.asarray(H, dtype=state.dtype).copy() for H in state.H]
        state.cache["XHt"] = _products_with_x(state, state.H)
        state.cache["XHLt"] = state.cache["XHt"][-1]
        H = state.H[-1]
        state.cache["HLHLt"] = np.asarray(H @ H.T, dtype=np.float64)

    def update_layer(self, state, index):
        L = state.L
        A = self.basis(state, index)                              # W_1 ... W_{l-1}
        if index == L - 1:
            XBt = state.cache["XHt"][index]
            H_b = np.asarray(state.H[index], dtype=np.float64)
            BBt = H_b @ H_b.T
        else:
            W_next = state.W[index + 1]
            H_next = np.asarray(state.H[index + 1], dtype=np.float64)
            XBt = state.cache["XHt"][index + 1] @ W_next.T
            BBt = W_next @ (H_next @ H_next.T) @ W_next.T
        # W_l = A^+ (X B^T) (B B^T)^+
        left = np.linalg.lstsq(A, XBt, rcond=None)[0]
        state.W[index] = np.linalg.lstsq(BBt, left.T, rcond=None)[0].T
        basis = A @ state.W[index]
        H = state.H[index]
        update = hals_block_update(H, basis.T @ basis, 3, 0.1, 0.0)
        state.cache["XHt"][index] = np.asarray(project_update(state.data, basis.astype(state.dtype), update),
                                               dtype=np.float64)
        if index == L - 1:
            state.cache["XHLt"] = state.cache["XHt"][index]
            state.cache["HLHLt"] = np.asarray(H, dtype=np.float64) @ np.asarray(H, dtype=np.float64).T

    def end_sweep(self, state):
        return self.evaluate(state)

    def coefficients_for_output(self, state):
        return [np.asarray(H, dtype=np.float64) for H in state.H]


VARIANTS: dict[str, type[DeepVariant]] = {
    cls.name: cls for cls in (DeepONMF, DeepAONMF, Multilayer, DeepSemi, DeepNMF, DeepSparse, DeepNsNMF)
}
DEEP_MODELS = tuple(VARIANTS)


# ----------------------------------------------------------------------------------------------
# the driver


def deep_factorize(X, ranks, model: str = "deep-onmf", *, init: str | None = None, max_iter: int = 100,
                   tol: float | None = None, target_error: float | None = None, max_time: float | None = None,
                   seed: int = 0, callback=None, dtype=None, **params: Any) -> Result:
    """Deep factorization of X with the given ``ranks`` (layer 1 first, non-increasing).

    ``model``: one of :data:`DEEP_MODELS` (see the module docstring for each objective).
    ``init``: the layer-wise initialization (deep-onmf: restarts | spa | kmeans++ | random; the
    NMF-based models: nndsvda | nndsvd | nndsvdar | spa | kmeans++ | random).
    ``max_iter``/``tol``/``target_error``/``max_time``: stopping of the joint stage (sweeps;
    ``max_iter=0`` keeps the layer-wise initialization). ``params``: model parameters
    (restarts, screen_size, penalty, l1, theta, loss, layer_weight).

    Returns a Result with one Layer per layer (own factors W, H; data-space ``basis`` and
    ``coefficients`` where they differ; ``assignments`` for the tree) and the joint stage's
    history in ``Result.history`` (``global_loss``, ``relative_error``, ``seconds``; entry 0 is
    the layer-wise initialization).
    """
    if model not in VARIANTS:
        raise ParameterError(f"unknown deep model '{model}'; choose one of {', '.join(DEEP_MODELS)}")
    variant = VARIANTS[model](init, **params)
    started = time.perf_counter()
    data = prepare_data(X, model, nonnegative=variant.nonnegative, dtype=dtype)
    ranks = check_ranks(list(ranks), data.shape)
    if isinstance(max_iter, bool) or int(max_iter) != max_iter or max_iter < 0:
        raise ParameterError(f"max_iter must be an integer >= 0, got {max_iter}")
    tol = variant.default_tol if tol is None else tol
    # the joint stage's rules, checked before the (long) layer-wise initialization
    stopping = Stopping(max_iter=max(int(max_iter), 1), tol=tol, target_error=target_error, max_time=max_time)
    deadline = None if max_time is None else started + stopping.max_time
    state = DeepState(data=data, x_sq=check_scale(data), ranks=ranks, dtype=np.dtype(data.dtype))
    seeds = [int(child.generate_state(1)[0]) for child in np.random.SeedSequence(seed).spawn(len(ranks))]
    Y = data
    init_monitors = []
    for index, rank in enumerate(ranks):
        # --max-time bounds the whole run: each layer gets what is left (at least one iteration)
        variant.time_limit = {} if deadline is None else {"max_time": max(deadline - time.perf_counter(), 1e-6)}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            layer = variant.init_layer(Y, rank, index, seeds[index],
                                       _stage_callback(callback, f"layer {index + 1}/{len(ranks)} (rank {rank})"))
        for warning in caught:  # a layer that did not converge matters when no joint stage follows
            if not issubclass(warning.category, ConvergenceWarning):
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        init_monitors.append((index, layer.attrs.get("converged", True), layer.attrs.get("stop_reason")))
        state.init_layers.append(layer)
        if index + 1 < len(ranks):
            Y = InMemoryMatrix(np.ascontiguousarray(variant.next_input(layer, state), dtype=data.dtype))
    variant.time_limit = {}
    variant.prepare(state)
    init_seconds = time.perf_counter() - started
    error0, objective0 = variant.evaluate(state)
    errors, objectives, seconds = [error0], [objective0], [init_seconds]
    sweeps = 0
    if not variant.refines:  # the result is the layer-wise one: converged when every layer is
        unconverged = [(index, reason) for index, done, reason in init_monitors if not done]
        converged = not unconverged
        reason = "layers converged" if converged else f"layer {unconverged[0][0] + 1} stopped at {unconverged[0][1]}"
        if not converged:
            warnings.warn(f"{model}: {reason} before converging (the layers are sequential NMFs with no joint stage); "
                          "raise max_iter/max_time to go on", ConvergenceWarning, stacklevel=2)
    elif max_iter == 0:
        converged, reason = True, "max_iter 0"
    else:
        if deadline is not None:
            stopping.max_time = max(deadline - time.perf_counter(), 1e-6)
        monitor = Monitor(stopping, callback, stage="joint refinement",
                          hint=f"{model}'s joint refinement diverged; the data's scale is the likely cause "
                               "(values near the floating-point limits: rescale the data)")
        monitor.record_start(error0, objective0)  # the tol rule measures progress from the initialization
        monitor.restart_clock()
        while True:
            for index in range(state.L):
                variant.update_layer(state, index)
            error, objective = variant.end_sweep(state)
            if monitor(error, objective=objective):
                break
        errors, objectives = monitor.errors, monitor.objectives
        seconds = [init_seconds, *monitor.seconds]
        converged, reason, sweeps = monitor.converged, monitor.reason, monitor.iteration
        warn_not_converged(monitor, f"{model} (joint refinement)")
    layers = variant.finish(state)
    for number, layer in enumerate(layers, 1):
        require_finite_factors(f"{model} layer {number}", None, W=layer.W, H=layer.H)
    history = {"global_loss": np.asarray(objectives, dtype=np.float64),
               "relative_error": np.asarray(errors, dtype=np.float64),
               "seconds": np.asarray(seconds, dtype=np.float64)}
    result_params = {"ranks": ranks, "model": model, "init": variant.init, "seed": seed, "max_iter": max_iter,
                     "tol": tol, "target_error": target_error, "max_time": max_time, **params}
    summary = {"relative_error": float(errors[-1]),
               "layer_relative_errors": [layer.relative_error for layer in layers],
               "global_loss": float(objectives[-1]), "stop_reason": reason, "chain": variant.chain}
    return Result(model=model, layers=layers, params=result_params, history=history, summary=summary,
                  seconds=time.perf_counter() - started, converged=converged, n_iter=sweeps)


def layer_abundances(result: Result, X, method: str = "nnls") -> None:
    """Soft abundances of every layer's data-space endmembers for all columns at once, exact
    NNLS (H >= 0) or FCLS (also sum to one) by :mod:`mfcli.models.nnls`, stored in
    ``Layer.abundances`` in X's dtype. NNLS is warm-started from a few HALS sweeps (the passive
    sets are then nearly right, and block principal pivoting settles in fewer exchanges)."""
    from mfcli.models.matrix import as_data_matrix

    if method not in ("nnls", "fcls"):
        raise ParameterError(f"abundances are nnls or fcls, not '{method}'")
    data = as_data_matrix(X)
    for layer in result.layers:
        layer.abundances = soft_abundances(layer.data_basis, data, method)
        layer.attrs["abundances"] = method


def soft_abundances(basis: np.ndarray, X, method: str = "nnls") -> np.ndarray:
    """NNLS or FCLS abundances of the columns of X (an array or DataMatrix, e.g. one block of
    columns: each column is solved on its own) for ``basis``, in X's dtype (see
    :func:`layer_abundances`)."""
    from mfcli.models.matrix import as_data_matrix
    from mfcli.models.nnls import fcls, nnls_from_grams

    data = as_data_matrix(X)
    W = np.asarray(basis, dtype=data.dtype)
    if method == "fcls":
        return np.asarray(fcls(W, data), dtype=data.dtype)
    WtX = np.asarray(data.WtX(W), dtype=np.float64)
    G = W.astype(np.float64).T @ W.astype(np.float64)
    start = np.maximum(gram_solve(G, WtX), 0.0)
    start = hals_rows(start, WtX, G, 5, 0.0, floor=0.0)
    return np.asarray(nnls_from_grams(G, WtX, init=start), dtype=data.dtype)


class DeepFactorization:
    """Estimator for :func:`deep_factorize`: ``DeepFactorization([7, 6, 4, 2]).fit(X).layers_``."""

    def __init__(self, ranks, model: str = "deep-onmf", **params: Any):
        self.ranks = list(ranks)
        self.model = model
        self.params = params

    def fit(self, X, y=None):
        self.result_ = deep_factorize(X, self.ranks, self.model, **self.params)
        self.layers_ = self.result_.layers
        self.relative_error_ = self.result_.relative_error
        self.history_ = self.result_.history
        self.n_iter_ = self.result_.n_iter
        return self

    def fit_transform(self, X, y=None):
        return self.fit(X).layers_[-1].data_coefficients

    def transform(self, X, layer: int = -1):
        """Soft abundances (NNLS) of new columns for the data-space basis of ``layer``."""
        from mfcli.models.nnls import nnls

        if not hasattr(self, "result_"):
            raise ParameterError("this DeepFactorization is not fitted yet; call fit first")
        X = prepare_data(X, self.model, nonnegative=VARIANTS[self.model].nonnegative)  # finite (and >= 0): as fit
        return nnls(self.result_.layer(layer).data_basis, X)
