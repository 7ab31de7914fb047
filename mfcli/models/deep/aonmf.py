"""Deep approximately orthogonal NMF: soft H_l >= 0 with the AONMF penalty on every layer;
H_1 by HALS, H_l (l >= 2) by projected gradient, W_L with unit columns (see
:mod:`mfcli.models.deep`). NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfcli.metrics import relative_error_from_residual
from mfcli.models.deep.common import LAYER_INIT_TOL, PG_STEPS, DeepState, DeepVariant, _lipschitz
from mfcli.models.hals import hals_block_update, hals_rows, unit_columns_update
from mfcli.models.linalg import floor_for, frobenius_residual_sq
from mfcli.models.matrix import project_update
from mfcli.models.onmf import soft_assignments
from mfcli.result import Layer


@dataclass
class AONMFState(DeepState):
    """Deep AONMF's products kept between sweeps: X H_1^T (m x r_1) and H_1 H_1^T."""

    XH1t: np.ndarray | None = None
    H1H1t: np.ndarray | None = None


class DeepAONMF(DeepVariant):
    """Deep approximately orthogonal NMF (soft H_l with the AONMF penalty)."""

    name = "deep-aonmf"
    state_type = AONMFState
    chain = "features"

    def __init__(self, init=None, **params):
        super().__init__(init, **params)
        self.penalty = self.params["penalty"]

    def init_layer(self, Y, rank, index, seed, callback):
        from mfcli.models.onmf import aonmf

        return aonmf(Y, rank, penalty=self.penalty, init=self.init, seed=seed, callback=callback,
                     tol=LAYER_INIT_TOL, **self.time_limit).layers[0]

    def prepare(self, state):
        state.H = [np.asarray(layer.H, dtype=np.float64) for layer in state.init_layers]
        state.H[0] = np.asarray(state.init_layers[0].H, dtype=state.dtype).copy()
        state.W = [np.asarray(layer.W, dtype=np.float64) for layer in state.init_layers]
        state.XH1t = np.asarray(state.data.XHt(state.H[0]), dtype=np.float64)
        state.H1H1t = np.asarray(state.H[0] @ state.H[0].T, dtype=np.float64)

    def _upper(self, state, index) -> np.ndarray:
        """V_l = W_L H_L ... H_{l+1} (m x r_l): the basis that multiplies H_l in the global model."""
        V = state.W[state.L - 1]
        for j in range(state.L - 1, index, -1):
            V = V @ state.H[j]
        return V

    def _lower(self, state, index):
        """(X C_{l-1}^T, C_{l-1} C_{l-1}^T) with C_{l-1} = H_{l-1} ... H_1."""
        XCt, CCt = state.XH1t, state.H1H1t
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
            state.XH1t = np.asarray(project_update(state.data, V, update), dtype=np.float64)
            state.H1H1t = np.asarray(H @ H.T, dtype=np.float64)
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
                HHt = state.H1H1t
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
    XCt = state.XH1t
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
