"""Deep orthogonal NMF: a hard assignment in every H_l, block coordinate descent on the
global loss ||X - W_L H_L ... H_1||_F^2 (or the data-centric sum of layer losses); see
:mod:`mfcli.models.deep` for the three exact steps of a sweep. NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mfcli.metrics import relative_error_from_residual
from mfcli.models.deep.common import DeepState, DeepVariant
from mfcli.models.linalg import argmax_of_columns, frobenius_residual_sq
from mfcli.models.matrix import project_update
from mfcli.models.threads import scratch
from mfcli.result import Layer


@dataclass
class ONMFState(DeepState):
    """Deep ONMF's tree: H_l held as ``assign[l]`` (the row of each column's one nonzero: the
    parent of each cluster of layer l-1, of each pixel for l = 1) and ``weight[l]`` (its value);
    ``XH1t`` = X H_1^T (m x r_1), from which every X C_l^T follows without a pass over X."""

    assign: list[np.ndarray] = field(default_factory=list)
    weight: list[np.ndarray] = field(default_factory=list)
    XH1t: np.ndarray | None = None
    first_sizes: np.ndarray | None = None  # diag(H_1 H_1^T), kept until the pixels move


def best_within(scores: np.ndarray, group: np.ndarray, members: list[np.ndarray]) -> np.ndarray:
    """For every column j, the first row of the largest ``scores[:, j]`` among the rows
    ``members[group[j]]`` (row 0 where that group has none): the argmax of each group's rows,
    then each column's from its group's, without masking the rows of the other groups."""
    n = scores.shape[1]
    choices = np.zeros((max(len(members), 1), n), dtype=np.int64)
    for position, rows in enumerate(members):
        if rows.size:
            choices[position] = rows[argmax_of_columns(scores[rows])]
    return np.take_along_axis(choices, group[None, :], axis=0)[0]


class DeepONMF(DeepVariant):
    """Deep orthogonal NMF (hard assignments at every layer); see the module docstring.

    ``loss="global"`` (default): ||X - W_L H_L ... H_1||^2. ``loss="layers"``: the data-centric
    sum_l ||X - W_l H_l ... H_1||^2 of De Handschutter & Gillis ("A consistent and flexible
    framework for deep matrix factorizations", Pattern Recognition 134, 2023), in which every
    layer's basis fits the data; BCD with the same three steps, each exact, so it never increases.
    """

    name = "deep-onmf"
    state_type = ONMFState
    chain = "features"
    default_tol = 1e-4

    def __init__(self, init=None, **params):
        super().__init__(init, **params)
        self.loss = self.params["loss"]
        self.restarts = self.params["restarts"]
        self.screen_size = self.params["screen_size"]
        self.layer_tol = self.params["layer_tol"]

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
                      callback=callback, max_iter=self.params["layer_max_iter"],
                      tol=self.layer_tol, window=1, **self.time_limit)
        # A start that the joint stage polishes: it stops at the first iteration that gains less
        # than layer_tol. Converging the layer-wise ONMF further lowers its own objective but
        # (Urban, ranks 7,6,4,2) moves the layer-2 endmembers away from the ground truth.
        return result.layers[0]

    def prepare(self, state):
        state.assign = [np.asarray(layer.assignments, dtype=np.int64) for layer in state.init_layers]
        state.weight = []
        state.first_sizes = None
        for index, layer in enumerate(state.init_layers):  # the weights of the hard H_l
            H = np.asarray(layer.H, dtype=np.float64)
            assign = state.assign[index]
            state.weight.append(H[assign, np.arange(assign.size)])
        state.W = [np.asarray(layer.W, dtype=np.float64) for layer in state.init_layers]
        # every layer's data-space basis fits its composite coefficients (the model's own W_l
        # for l < L come from factorizing W_{l-1}, not X)
        self._fit_bases(state)

    # helpers on the tree ----------------------------------------------------------------------
    @staticmethod
    def _paths(state) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """For every pair of layers (l <= i), the ancestor in layer i of each cluster of layer l
        and the product of the weights of layers l+1..i on the way: anc[l][i], gain[l][i]."""
        assign, weight = state.assign, state.weight
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
        assign, weight = state.assign, state.weight
        Y = [state.XH1t]
        if state.first_sizes is None:  # a pass over the pixels' weights: once per sweep, not once per use
            state.first_sizes = np.bincount(assign[0], weights=weight[0] ** 2, minlength=state.ranks[0])
        d = [state.first_sizes]
        for index in range(1, state.L):
            H = np.zeros((state.ranks[index], state.ranks[index - 1]))
            H[assign[index], np.arange(state.ranks[index - 1])] = weight[index]
            Y.append(Y[-1] @ H.T)
            d.append(np.bincount(assign[index], weights=weight[index] ** 2 * d[-1], minlength=state.ranks[index]))
        return Y, d

    def _fit_bases(self, state) -> None:
        """X H_1^T by one pass, then every W_l = X C_l^T diag(C_l C_l^T)^-1 (least squares)."""
        assign, weight = state.assign[0], state.weight[0]
        H1 = np.zeros((state.ranks[0], assign.size), dtype=state.dtype)
        H1[assign, np.arange(assign.size)] = weight
        state.XH1t = np.asarray(state.data.XHt(H1), dtype=np.float64)
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
        divisor = np.where(alive, D, 1.0)
        if self.loss == "global":
            groups = self._top_scores(state, anc, gain, alive)
            if groups is not None:
                move, basis = self._global_move(state, groups, alive, gain[0][L - 1]), state.W[0]
            else:
                move, basis = self._global_move_direct(state, alive, divisor, anc), np.hstack([Z, state.W[0]])
        else:
            dead = np.flatnonzero(~alive)
            inv_sqrt_D = np.where(alive, 1.0 / np.sqrt(divisor), 0.0)
            basis = Z

            def move(B, cols):
                width = B.shape[1]
                scores = scratch("deep_onmf_scores", (r1, width), np.float64)
                np.multiply(B, inv_sqrt_D[:, None], out=scores)
                scores[dead] = -np.inf
                cluster = argmax_of_columns(scores)
                h = np.take_along_axis(B, cluster[None, :], axis=0)[0].astype(np.float64)
                return self._place(state, cols, cluster, h, divisor)

        state.XH1t = np.asarray(project_update(state.data, basis.astype(state.dtype), move), dtype=np.float64)
        state.first_sizes = None

    @staticmethod
    def _place(state, cols, cluster, h, divisor=None):
        """Record the pixels ``cols`` in ``cluster`` with weights max(h, 0) (/ ``divisor`` of the
        cluster); returns their block of H_1."""
        np.maximum(h, 0.0, out=h)
        if divisor is not None:
            h /= divisor[cluster]
        state.assign[0][cols] = cluster
        state.weight[0][cols] = h
        width = cluster.size
        H_block = np.zeros((state.ranks[0], width), dtype=state.dtype)
        H_block[cluster, np.arange(width)] = h
        return H_block

    @staticmethod
    def _tie_scale(state) -> np.ndarray:
        """1 / ||w_1k||: the tie-break's cosines with the layer-1 basis, to a factor ||x|| per pixel."""
        norms = np.linalg.norm(state.W[0], axis=0)
        return 1.0 / np.where(norms > 0, norms, 1.0)

    def _top_scores(self, state, anc, gain, alive):
        """For the global loss: (candidates, C, 1 / ||v_q||, top). The candidates are the top-layer
        clusters q with a live layer-1 cluster below them; v_q is q's basis vector; top is the
        top-layer ancestor of each layer-1 cluster. C (r_1 x candidates) gives v_q = W_1 C[:, q],
        so v_q^T x follows from the layer-1 scores W_1^T x. That holds where the bases are those of
        the current tree, W_l = X C_l^T / diag(C_l C_l^T), as every sweep leaves them:
        v_q = sum_k [top(k) = q] a_k ||c_1k||^2 w_1k / ||c_Lq||^2, a_k the weights above k.
        None where it does not hold to rounding (the scores are then taken directly)."""
        L = state.L
        top = anc[0][L - 1]
        candidates = np.flatnonzero(np.bincount(top[alive], minlength=state.ranks[L - 1]))
        if candidates.size == 0:
            return None
        _, d = self._layer_products(state)
        first, last = d[0], d[L - 1]
        if np.any(last[candidates] <= 0):
            return None
        C = np.zeros((state.ranks[0], candidates.size))
        for column, q in enumerate(candidates):
            members = top == q
            C[members, column] = gain[0][L - 1][members] * first[members] / last[q]
        V = state.W[L - 1][:, candidates]
        scale = np.linalg.norm(V, axis=0)
        if np.any(scale <= 0) or np.max(np.abs(state.W[0] @ C - V)) > 1e-9 * float(np.max(scale)):
            return None
        return candidates, C, 1.0 / scale, top

    def _global_move(self, state, groups, alive, gains):
        """The global loss's move from the layer-1 scores B = W_1^T x alone (r_1 rows): the best
        candidate top-level cluster q by v_q^T x / ||v_q|| = (C^T B)_q / ||v_q|| (:meth:`_top_scores`;
        every live layer-1 cluster k under q scores that, z_k being parallel to v_q), then among
        q's live layer-1 clusters the best cosine with w_1k, which leaves the loss unchanged, with
        weight h = z_k^T x / D_k = v_q^T x / (a_k ||v_q||^2)."""
        candidates, C, inv_norm, top = groups
        tie_scale = self._tie_scale(state)
        combine = (C * inv_norm).T.astype(state.dtype)
        position = np.full(state.ranks[state.L - 1], -1)
        position[candidates] = np.arange(candidates.size)
        factor = np.zeros(state.ranks[0])  # h = (v_q^T x / ||v_q||) / (a_k ||v_q||)
        live = np.flatnonzero(alive)
        factor[live] = inv_norm[position[top[live]]] / gains[live]
        members = [live[top[live] == q] for q in candidates]

        def move(B, cols):
            width = B.shape[1]
            fits = np.matmul(combine, B)
            group = argmax_of_columns(fits)  # position among the candidates
            fine = scratch("deep_onmf_scores", (state.ranks[0], width), np.float64)
            np.multiply(B, tie_scale[:, None], out=fine)
            cluster = best_within(fine, group, members)
            h = np.take_along_axis(fits, group[None, :], axis=0)[0].astype(np.float64)
            h *= factor[cluster]
            return self._place(state, cols, cluster, h)

        return move

    def _global_move_direct(self, state, alive, divisor, anc):
        """The global loss's move from both sets of products taken directly: z_k^T x / sqrt(D_k)
        (r_1 rows) for the top-level cluster and the cosines with w_1k (r_1 more) for the tie;
        where :meth:`_top_scores` cannot derive the first from the second."""
        r1 = state.ranks[0]
        top = anc[0][state.L - 1]
        dead = np.flatnonzero(~alive)
        inv_sqrt_D = np.where(alive, 1.0 / np.sqrt(divisor), 0.0)
        tie_scale = self._tie_scale(state)
        live = np.flatnonzero(alive)
        members = [live[top[live] == q] for q in range(state.ranks[state.L - 1])]

        def move(B, cols):
            width = B.shape[1]
            scores = scratch("deep_onmf_scores", (r1, width), np.float64)
            np.multiply(B[:r1], inv_sqrt_D[:, None], out=scores)
            scores[dead] = -np.inf
            group = top[argmax_of_columns(scores)]
            fine = scores  # the scores are spent: the tie-break's cosines take their place
            np.multiply(B[r1:], tie_scale[:, None], out=fine)
            cluster = best_within(fine, group, members)
            h = np.take_along_axis(B[:r1], cluster[None, :], axis=0)[0].astype(np.float64)
            return self._place(state, cols, cluster, h, divisor)

        return move

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
        assign, weight = state.assign[index], state.weight[index]
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
        assign, weight = state.assign, state.weight
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
