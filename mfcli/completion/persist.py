"""A fitted completion model as a :class:`~mfcli.result.Result`, and back (no file I/O here).

Layout inside the Result (written to HDF5 by :func:`mfcli.io.result.write_result`):

* ``layers[0]``: ``W`` = user factors U (n_users x k), ``H`` = item factors transposed V^T
  (k x n_items), so the interaction part of the predictions is ``W @ H``. For DMF these are the
  unit-normalized outputs of the two network branches for the training rows and columns.
* ``arrays``: ``completion/user_ids``, ``completion/item_ids`` (external ids, index order),
  ``completion/user_bias``, ``completion/item_bias``, ``completion/train_users``,
  ``completion/train_items``, ``completion/train_values`` (the training ratings as indices, used
  to skip seen items in ``recommend`` and as the DMF network's inputs), ``dmf/...`` (network
  weights, see :mod:`mfcli.completion.dmf`).
* ``params``: the model's hyperparameters; ``params["completion"]``: ``global_mean``,
  ``rating_range``, ``clip`` and the ``solver`` settings that fold-in of new users needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mfcli.completion import DEEP_MODELS
from mfcli.completion.data import IdMap, Ratings, ratings_arrays
from mfcli.completion.factors import FactorModel
from mfcli.errors import InputError
from mfcli.result import Layer, Result


def factor_model_to_result(name: str, model: FactorModel, train: Ratings, params: dict[str, Any],
                           history: dict[str, np.ndarray] | None = None, summary: dict[str, Any] | None = None,
                           input_meta: dict[str, Any] | None = None, provenance: dict[str, Any] | None = None,
                           seconds: float | None = None) -> Result:
    """The Result of a fitted factor model (see the module docstring for the layout)."""
    layer = Layer(W=np.asarray(model.user_factors), H=np.asarray(model.item_factors).T.copy(),
                  history=dict(history or {}),
                  attrs={"W": "user factors (n_users x rank)", "H": "item factors transposed (rank x n_items)"})
    arrays = ratings_arrays(train)
    arrays["completion/user_bias"] = np.asarray(model.user_bias, dtype=np.float64)
    arrays["completion/item_bias"] = np.asarray(model.item_bias, dtype=np.float64)
    completion = {"global_mean": model.global_mean,
                  "rating_range": list(model.rating_range) if model.rating_range is not None else None,
                  "clip": model.clip, "solver": model.solver}
    return Result(model=name, layers=[layer], params={**params, "completion": completion}, arrays=arrays,
                  summary=dict(summary or {}), input=dict(input_meta or {}), provenance=dict(provenance or {}),
                  seconds=seconds, n_iter=len(next(iter(history.values()))) if history else None)


def factor_model_from_result(result: Result) -> FactorModel:
    """The FactorModel stored by :func:`factor_model_to_result`."""
    a = result.arrays
    completion = result.params.get("completion", {})
    layer = result.layers[0]
    rating_range = completion.get("rating_range")
    return FactorModel(
        float(completion.get("global_mean", 0.0)), np.asarray(a["completion/user_bias"], dtype=np.float64),
        np.asarray(a["completion/item_bias"], dtype=np.float64), np.asarray(layer.W, dtype=np.float64),
        np.asarray(layer.H, dtype=np.float64).T, IdMap(a["completion/user_ids"]), IdMap(a["completion/item_ids"]),
        tuple(rating_range) if rating_range is not None else None, bool(completion.get("clip", True)),
        dict(completion.get("solver", {})))


def is_completion_result(result: Result) -> bool:
    return "completion/user_ids" in result.arrays


def predictor_from_result(result: Result):
    """An object with ``user_ids``, ``item_ids``, ``scores(users, items)``, ``user_scores(user)`` and
    ``new_user_scores(items, values)`` for a completion Result of any model."""
    if not is_completion_result(result):
        raise InputError(f"this result holds a '{result.model}' model, not a completion model; "
                         "give a file written by mfcli complete")
    if result.model in DEEP_MODELS:
        from mfcli.completion.dmf import dmf_predictor_from_result

        return dmf_predictor_from_result(result)
    return factor_model_from_result(result)
