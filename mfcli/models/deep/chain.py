"""The activations chain X ~= W_1 W_2 ... W_L H_L: multilayer NMF, deep semi-NMF, deep NMF on
the global (or layer-balanced) loss, deep sparse NMF and deep nsNMF, which differ from
:class:`ActivationsChain` only where their objectives do (see :mod:`mfcli.models.deep`).
NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mfcli.errors import ParameterError
from mfcli.metrics import relative_error_from_residual
from mfcli.models.deep.common import (LAYER_INIT_TOL, DeepState, DeepVariant, _nonnegative, _pg_block, _product,
                                      _products_with_x)
from mfcli.models.hals import hals_block_update, hals_rows, unit_columns_update
from mfcli.models.linalg import frobenius_residual_sq
from mfcli.models.matrix import project_update
from mfcli.models.onmf import soft_assignments
from mfcli.result import Layer


@dataclass
class ChainState(DeepState):
    """An activations chain's products kept between sweeps: the smoothing S_l of every layer
    (I except for deep nsNMF), X H_L^T (m x r_L) and H_L H_L^T."""

    S: list[np.ndarray] = field(default_factory=list)
    XHLt: np.ndarray | None = None
    HLHLt: np.ndarray | None = None


@dataclass
class DeepNMFState(ChainState):
    """Deep NMF's, with X H_1^T for the layer-balanced loss."""

    XH1t: np.ndarray | None = None


@dataclass
class SparseState(DeepNMFState):
    """Deep sparse NMF's, with the absolute l1 weight on H_L (``l1`` x the rms column norm of X)."""

    l1: float = 0.0


@dataclass
class SemiState(ChainState):
    """Deep semi-NMF's, with X H_l^T of every layer (``XHt[l]``, m x r_l)."""

    XHt: list[np.ndarray] = field(default_factory=list)


class ActivationsChain(DeepVariant):
    """X ~= W_1 M_2 ... M_L H_L with M_l = W_l S_l (S_l = I except for deep nsNMF).

    Layers >= 2 factorize activations, not data columns: where layer 1 starts from picked
    columns (spa, kmeans++), they start from ``later_init``."""

    chain = "activations"
    state_type = ChainState
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
        return np.asarray(state.W[index], dtype=np.float64) @ state.S[index]

    def prepare(self, state):
        state.W = [np.asarray(layer.W, dtype=np.float64) for layer in state.init_layers]
        state.H = [np.asarray(layer.H, dtype=np.float64) for layer in state.init_layers]
        state.H[-1] = np.asarray(state.init_layers[-1].H, dtype=state.dtype).copy()
        state.S = [self.smoothing(r) for r in state.ranks]
        self.rescale(state)
        self.first_products(state)

    def rescale(self, state) -> None:
        """Move scale between the initial factors before X H_L^T is computed (deep sparse NMF)."""

    def first_products(self, state) -> None:
        """The products with X the joint stage starts from: X H_L^T (one pass) and H_L H_L^T."""
        self._refresh_top(state)

    def _refresh_top(self, state) -> None:
        H = np.asarray(state.H[-1], dtype=state.dtype)
        state.XHLt = np.asarray(state.data.XHt(H), dtype=np.float64)
        state.HLHLt = np.asarray(H @ H.T, dtype=np.float64)

    def basis(self, state, upto: int) -> np.ndarray:
        """W_1 S_1 ... W_upto S_upto (data-space basis of layer ``upto``, 1-based count)."""
        return _product([self.factor(state, j) for j in range(upto)], state.data.shape[0])

    def project_w(self, index: int):
        return _nonnegative

    def update_layer(self, state, index):
        L = state.L
        A = self.basis(state, index)                                     # m x r_{l-1}
        R = _product([self.factor(state, j) for j in range(index + 1, L)], state.ranks[index])  # r_l x r_L
        S = state.S[index]
        XBt = state.XHLt @ R.T @ S.T                            # X (S R H_L)^T
        BBt = S @ R @ state.HLHLt @ R.T @ S.T
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
        state.XHLt = np.asarray(project_update(state.data, P.astype(state.dtype), update), dtype=np.float64)
        state.HLHLt = np.asarray(H @ H.T, dtype=np.float64)
        return self.evaluate(state)

    def evaluate(self, state):
        P = self.basis(state, state.L)
        residual = frobenius_residual_sq(state.x_sq, P, state.XHLt, state.HLHLt)
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
            if not np.allclose(state.S[index], np.eye(r)):
                layers[-1].arrays["S"] = state.S[index]
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

    def __init__(self, init=None, **params):
        super().__init__(init, **params)
        self.first_layer = self.params["first_layer"]

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
    state_type = DeepNMFState

    def __init__(self, init=None, **params):
        super().__init__(init, **params)
        # deep sparse NMF and deep nsNMF have the global loss only (no loss parameter)
        self.loss = self.params.get("loss", "global")
        self.layer_weight = self.params.get("layer_weight")

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
            state.XH1t = XH1t
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
        if state.XH1t is None:
            state.XH1t = np.asarray(state.data.XHt(np.asarray(state.H[0], dtype=state.dtype)),
                                             dtype=np.float64)
        H1 = np.asarray(state.H[0], dtype=np.float64)
        objective = self.lam(0) * frobenius_residual_sq(state.x_sq, state.W[0], state.XH1t, H1 @ H1.T)
        for index in range(1, state.L):
            below = np.asarray(state.H[index - 1], dtype=np.float64)
            objective += self.lam(index) * float(np.sum((below - state.W[index] @ state.H[index]) ** 2))
        P = self.basis(state, state.L)
        residual = frobenius_residual_sq(state.x_sq, P, state.XHLt, state.HLHLt)
        return relative_error_from_residual(state.x_sq, residual), 0.5 * objective

    def coefficients_for_output(self, state):
        if self.loss == "layers":
            return [np.asarray(H, dtype=np.float64) for H in state.H]
        return super().coefficients_for_output(state)


class DeepSparse(DeepNMF):
    """Deep NMF with lambda ||H_L||_1; unit columns of W_1, column-stochastic W_l (l >= 2)."""

    name = "deep-sparse"
    state_type = SparseState

    def __init__(self, init=None, **params):
        super().__init__(init, **params)
        self.l1 = self.params["l1"]

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
        state.l1 = self.l1 * float(np.sqrt(state.x_sq / state.data.shape[1]))

    def h_l1(self, state) -> float:
        return state.l1

    def project_w(self, index):
        from mfcli.models.archetypal import project_columns_to_simplex

        return project_columns_to_simplex

    def update_first(self, state, XBt, BBt):
        return unit_columns_update(state.W[0], XBt, BBt, sweeps=3)


class DeepNsNMF(DeepNMF):
    """Deep nonsmooth NMF: X ~= W_1 S_1 W_2 S_2 ... W_L S_L H_L."""

    name = "deep-nsnmf"

    def __init__(self, init=None, **params):
        super().__init__(init, **params)
        self.theta = self.params["theta"]

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
    state_type = SemiState
    later_init = "kmeans++"  # semi-NMF starts from picked columns or at random (no NNDSVD)

    def layer_model(self, index):
        from mfcli.models.semi import semi_nmf

        return semi_nmf

    def first_products(self, state):
        """X H_l^T of every layer (one pass over X) and H_L H_L^T."""
        state.H = [np.asarray(H, dtype=state.dtype).copy() for H in state.H]
        state.XHt = _products_with_x(state, state.H)
        state.XHLt = state.XHt[-1]
        H = state.H[-1]
        state.HLHLt = np.asarray(H @ H.T, dtype=np.float64)

    def update_layer(self, state, index):
        L = state.L
        A = self.basis(state, index)                              # W_1 ... W_{l-1}
        if index == L - 1:
            XBt = state.XHt[index]
            H_b = np.asarray(state.H[index], dtype=np.float64)
            BBt = H_b @ H_b.T
        else:
            W_next = state.W[index + 1]
            H_next = np.asarray(state.H[index + 1], dtype=np.float64)
            XBt = state.XHt[index + 1] @ W_next.T
            BBt = W_next @ (H_next @ H_next.T) @ W_next.T
        # W_l = A^+ (X B^T) (B B^T)^+
        left = np.linalg.lstsq(A, XBt, rcond=None)[0]
        state.W[index] = np.linalg.lstsq(BBt, left.T, rcond=None)[0].T
        basis = A @ state.W[index]
        H = state.H[index]
        update = hals_block_update(H, basis.T @ basis, 3, 0.1, 0.0)
        state.XHt[index] = np.asarray(project_update(state.data, basis.astype(state.dtype), update),
                                               dtype=np.float64)
        if index == L - 1:
            state.XHLt = state.XHt[index]
            state.HLHLt = np.asarray(H, dtype=np.float64) @ np.asarray(H, dtype=np.float64).T

    def end_sweep(self, state):
        return self.evaluate(state)

    def coefficients_for_output(self, state):
        return [np.asarray(H, dtype=np.float64) for H in state.H]
