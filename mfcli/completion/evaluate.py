"""Fit any completion model by name, evaluate it on held-out ratings, and the extendability
protocol of Nguyen et al. (areas I-IV: rows and/or columns unseen during training).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mfcli.completion import DEEP_MODELS, MODELS
from mfcli.completion.data import IdMap, Ratings, align, areas, sorted_unique
from mfcli.completion.factors import FactorModel
from mfcli.errors import DataError, ParameterError
from mfcli.metrics import mae, ranking_metrics, rmse

def make_estimator(name: str, **params):
    """The estimator of model ``name`` with ``params`` over its defaults (None values ignored)."""
    params = {k: v for k, v in params.items() if v is not None}
    if name in DEEP_MODELS:
        from mfcli.completion.dmf import DMF

        return DMF(discrete=name == "dmf-d", **params)
    from mfcli.completion.models import ESTIMATORS

    if name not in ESTIMATORS:
        raise ParameterError(f"unknown completion model '{name}'; choose one of {', '.join(MODELS)}")
    return ESTIMATORS[name](**params)


def evaluate(predictor, test: Ratings, errors: bool = True) -> dict[str, Any]:
    """RMSE and MAE on ``test`` (any id maps); unseen users/items are predicted by the baseline and
    counted. ``errors=False``: the counts only, RMSE and MAE None (implicit feedback, which is
    judged by its rankings: the predictions are not computed)."""
    if len(test) == 0:
        raise DataError("the test set is empty; give a larger --test-fraction or a test file with ratings")
    users, items = align(predictor, test)
    predictions = predictor.scores(users, items) if errors else None
    unseen = (users < 0) | (items < 0)
    return {
        "rmse": rmse(test.values, predictions) if errors else None,
        "mae": mae(test.values, predictions) if errors else None,
        "n_test": int(len(test)),
        "unseen_users": int(len(sorted_unique(test.users[users < 0]))),
        "unseen_items": int(len(sorted_unique(test.items[items < 0]))),
        "n_test_unseen": int(unseen.sum()),
    }


def evaluate_ranking(predictor, seen: Ratings, test: Ratings, k: int = 10,
                     min_value: float | None = None) -> dict[str, Any]:
    """Precision, recall, nDCG and MAP at ``k`` and coverage of each test user's top-k list
    (:func:`mfcli.metrics.ranking_metrics`).

    ``seen``: the ratings the predictor knows each user by (training ratings, and the side
    ratings of users extended without retraining), any id maps: their items are left out of the
    user's list. ``test``: the held-out interactions; those of users or items the predictor does
    not know, and those of items the user has already seen, cannot be ranked and are left out.
    With ``min_value``, only held-out ratings >= ``min_value`` count as relevant. The lists are
    drawn from every item of the predictor (coverage is over them).
    Returns {k, precision, recall, ndcg, map, coverage, n_users, n_relevant}.
    """
    from mfcli.completion.ranking import seen_matrix, top_n

    if k < 1:
        raise ParameterError(f"--top-k must be at least 1, not {k}")
    shape = (len(predictor.user_ids), len(predictor.item_ids))
    seen_pattern = seen_matrix(*align(predictor, seen), shape)
    users, items = align(predictor, test)
    keep = (users >= 0) & (items >= 0)
    if min_value is not None:
        keep &= test.values >= min_value
    relevant = seen_matrix(users[keep], items[keep], shape).minus(seen_pattern)
    evaluated = np.flatnonzero(np.diff(relevant.indptr))
    recommended, _ = top_n(predictor, evaluated, k, exclude=seen_pattern)
    metrics = ranking_metrics(recommended, relevant[evaluated], k, shape[1])
    return {"k": int(k), **metrics, "n_relevant": int(relevant.nnz)}


def restrict(ratings: Ratings, seen_users: np.ndarray, seen_items: np.ndarray) -> Ratings:
    """The ratings of area I (seen users and items) with id maps of the seen ids only."""
    return ratings.reindex(IdMap(ratings.user_ids.ids[seen_users]), IdMap(ratings.item_ids.ids[seen_items]),
                           drop_unknown=True)


def extend_factor_model(model: FactorModel, side: Ratings) -> FactorModel:
    """``model`` extended to the users and items of ``side`` it lacks, by fold-in, without retraining.

    A new user's bias and factors are solved from its ratings in ``side`` of the model's items
    (items fixed), a new item's from its ratings by the model's users (users fixed), as WALS
    projects new rows; a pair of a new user and a new item is then predicted from both (area IV).
    """
    user_ids = model.user_ids.extend(side.user_ids.ids)
    item_ids = model.item_ids.extend(side.item_ids.ids)
    side = side.reindex(user_ids, item_ids)
    n_old_u, n_old_i = len(model.user_ids), len(model.item_ids)
    U = np.vstack([model.user_factors, np.zeros((len(user_ids) - n_old_u, model.rank))])
    V = np.vstack([model.item_factors, np.zeros((len(item_ids) - n_old_i, model.rank))])
    b = np.concatenate([model.user_bias, np.zeros(len(user_ids) - n_old_u)])
    c = np.concatenate([model.item_bias, np.zeros(len(item_ids) - n_old_i)])
    transposed = FactorModel(model.global_mean, model.item_bias, model.user_bias, model.item_factors,
                             model.user_factors, model.item_ids, model.user_ids, model.rating_range, model.clip,
                             model.solver)
    mine = (side.users >= n_old_u) & (side.items < n_old_i)
    b[n_old_u:], U[n_old_u:] = model.fold_in_rows(side.users[mine] - n_old_u, side.items[mine], side.values[mine],
                                                  len(user_ids) - n_old_u)
    mine = (side.items >= n_old_i) & (side.users < n_old_u)
    c[n_old_i:], V[n_old_i:] = transposed.fold_in_rows(side.items[mine] - n_old_i, side.users[mine],
                                                       side.values[mine], len(item_ids) - n_old_i)
    return FactorModel(model.global_mean, b, c, U, V, user_ids, item_ids, model.rating_range, model.clip,
                       model.solver)


def evaluate_areas(predictor, test: Ratings, seen_users: np.ndarray, seen_items: np.ndarray) -> dict[str, Any]:
    """RMSE, MAE and count of ``test`` ratings in each area I-IV (masks over ``test``'s own id maps)."""
    out = {}
    for area, mask in areas(test, seen_users, seen_items).items():
        part = test.subset(mask)
        if len(part) == 0:
            out[area] = {"rmse": None, "mae": None, "n_test": 0}
            continue
        users, items = align(predictor, part)
        predictions = predictor.scores(users, items)
        out[area] = {"rmse": rmse(part.values, predictions), "mae": mae(part.values, predictions),
                     "n_test": int(len(part))}
    return out
