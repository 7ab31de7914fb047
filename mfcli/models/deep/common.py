"""What the deep variants share: the state a variant's layer updates work on, the variant
interface the driver (:mod:`mfcli.models.deep.driver`) calls, and small linear-algebra pieces
(projected gradient with step 1/L, chained products, the products X C^T by one pass). NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mfcli.errors import ParameterError
from mfcli.models.matrix import DataMatrix
from mfcli.models.registry import get_model
from mfcli.result import Layer

PG_STEPS = 10  # projected-gradient steps on a small block per sweep
# tol of the layer-wise runs of the models with a joint stage (a start that stage polishes; the
# single-layer models' own defaults, for a final answer, are tighter)
LAYER_INIT_TOL = 1e-4


@dataclass
class DeepState:
    """What every variant's layer updates read and write: the data, ||X||_F^2, the ranks, the
    working dtype, the factors W_l and H_l of every layer and the layer-wise initialization.
    Each variant extends it with the products it keeps between sweeps (its ``state_type``)."""

    data: DataMatrix
    x_sq: float
    ranks: list[int]
    dtype: np.dtype
    W: list[np.ndarray] = field(default_factory=list)
    H: list[np.ndarray] = field(default_factory=list)
    init_layers: list[Layer] = field(default_factory=list)

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


class DeepVariant:
    """A deep model = a chain, a single-layer model for the initialization, and layer updates.

    Its inits, parameters (``self.params``: every one, checked, defaults filled) and whether it
    needs X >= 0 come from its :mod:`~mfcli.models.registry` entry; ``state_type`` is the
    dataclass its layer updates work on (:class:`DeepState` extended with what it keeps between
    sweeps)."""

    name = ""
    chain = "activations"
    refines = True
    default_tol = 1e-5
    state_type: type[DeepState] = DeepState
    time_limit: dict[str, float] = {}  # {"max_time": seconds} for the layer-wise runs while the driver sets it

    def __init__(self, init: str | None = None, **params: Any):
        # the registry's entry is the one declaration of the model's inits and parameters
        self.spec = get_model(self.name, "deep")
        self.init = init or self.spec.default_init
        if self.init not in self.spec.all_inits:
            raise ParameterError(f"{self.name} takes --init {', '.join(self.spec.all_inits)}, not '{self.init}'")
        self.params = self.spec.check_params(params)  # all of them; unknown names refused

    @property
    def nonnegative(self) -> bool:
        """The model needs X >= 0."""
        return self.spec.nonnegative

    # initialization ---------------------------------------------------------------------------
    def init_layer(self, Y, rank: int, index: int, seed, callback) -> Layer:
        raise NotImplementedError

    def next_input(self, layer: Layer, state: DeepState):
        """What layer l+1 factorizes: W_l (features chain) or H_l (activations chain)."""
        return layer.W if self.chain == "features" else layer.H

    def prepare(self, state: DeepState) -> None:
        """Set up the joint stage (the products its state keeps) after the layer-wise initialization."""

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
