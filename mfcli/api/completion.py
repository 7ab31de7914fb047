"""The completion workflow: :func:`complete` (``mfcli complete``) trains a recommender model
on ratings and scores it on held-out ratings."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from mfcli.api.common import SILENT, Reporter, check_seed, refuse_unknown
from mfcli.api.results import save_result


# The hyperparameters of the completion models (the CLI's options), each with its valid range,
# and which models take which.
COMPLETION_PARAMS = {
    "rank": (int, 1, None), "reg": (float, 0, None), "reg_bias": (float, 0, None), "w0": (float, 0, None),
    "frequency_power": (float, -8.0, 8.0), "implicit": (bool, None, None), "alpha": (float, 0, None),
    "cg_steps": (int, 0, None), "epochs": (int, 1, None), "tol": (float, 0, None), "max_time": (float, 0, None),
    "lr": (float, 0, None), "batch_size": (int, 1, None), "hidden": (list, None, None), "device": (str, None, None),
}
COMPLETION_APPLIES = {
    "baseline": {"reg", "epochs", "tol", "max_time"},
    "als": {"rank", "reg", "reg_bias", "epochs", "tol", "max_time", "cg_steps"},
    "wals": {"rank", "reg", "reg_bias", "w0", "frequency_power", "implicit", "alpha", "epochs", "tol", "max_time",
             "cg_steps"},
    "sgd": {"rank", "reg", "reg_bias", "lr", "batch_size", "epochs", "tol", "max_time"},
    "bpr": {"rank", "reg", "lr", "batch_size", "epochs", "tol", "max_time"},
    "svd": {"rank"},
    "dmf": {"rank", "reg", "epochs", "lr", "batch_size", "hidden", "max_time", "device"},
    "dmf-d": {"rank", "reg", "epochs", "lr", "batch_size", "hidden", "max_time", "device"},
}
COMPLETION_SPLIT = ("test", "test_fraction", "masks", "dense", "holdout_rows", "holdout_cols", "top_k", "seed")


@dataclasses.dataclass
class Completion:
    """A fitted completion model and its scores: ``summary`` is the document of
    ``mfcli complete --json`` (rmse, mae, ranking, epochs, ...); ``predictor`` predicts
    ratings (:mod:`mfcli.completion`); ``result`` is the Result that ``save`` writes (read by
    ``mfcli predict`` and ``mfcli recommend``); ``warning``: why it did not converge, or None."""

    model: str
    summary: dict
    estimator: Any
    predictor: Any
    result: Any
    warning: str | None = None

    def save(self, path: str | os.PathLike, force: bool = False) -> Path:
        """Write the model to the HDF5 file ``path`` (atomic; ``force`` replaces a file)."""
        return save_result(self.result, path, force=force)


def as_ratings(ratings, dense: bool = False):
    """Ratings from a path or spec (triplets, a sparse .npz users x items matrix, ``dense``: a
    NaN-masked matrix, ``sample:survey-ratings``), a :class:`~mfcli.completion.data.Ratings`,
    or a (users, items, values) triple of arrays (user and item ids of any type). Returns
    (ratings, the input's metadata for the Result, its name in messages)."""
    from mfcli.completion.data import Ratings
    from mfcli.errors import ParameterError
    from mfcli.io.ratings import describe_source, read_ratings

    if isinstance(ratings, (str, os.PathLike)):
        path = os.fspath(ratings)
        return read_ratings(path, dense=dense), describe_source(path), path
    if isinstance(ratings, Ratings):
        return ratings, {"source": "", "format": "ratings", "layout": "users x items"}, "the ratings"
    if isinstance(ratings, tuple) and len(ratings) == 3:
        return (Ratings.from_triplets(*ratings), {"source": "", "format": "ratings", "layout": "users x items"},
                "the ratings")
    raise ParameterError("ratings must be a path, a Ratings object or a (users, items, values) triple of arrays, "
                         f"not {type(ratings).__name__}")


def _check_completion_params(model: str, given: dict[str, Any]) -> dict[str, Any]:
    from mfcli.errors import ParameterError
    from mfcli.models.registry import check_number

    if model not in COMPLETION_APPLIES:
        raise ParameterError(f"unknown completion model '{model}'; choose one of {', '.join(COMPLETION_APPLIES)}")
    valid = sorted(COMPLETION_APPLIES[model] | set(COMPLETION_SPLIT) | ({"implicit"} if model == "bpr" else set()))
    refuse_unknown(given, valid, f"completion model {model}")
    checked = {}
    for name, value in given.items():
        if name in COMPLETION_SPLIT or value is None:
            continue
        kind, low, high = COMPLETION_PARAMS[name]
        if kind in (int, float):
            value = check_number(name, value, low, high, low_open=name in ("lr", "max_time"), integer=kind is int)
        elif kind is list:
            value = [check_number(name, v, 1, None, integer=True) for v in value]
        elif name == "device" and value not in ("auto", "cpu", "cuda"):
            raise ParameterError(f"device must be auto, cpu or cuda, not {value!r}")
        checked[name] = value
    return checked


def complete(ratings, model: str = "als", *, reporter: Reporter | None = None, **params: Any) -> Completion:
    """Train a completion model on ``ratings`` and score it on held-out ratings, as
    ``mfcli complete`` does; returns a :class:`Completion` (``.summary`` is the ``--json``
    document, ``.save(path)`` writes the model).

    ``ratings``: see :func:`as_ratings`. The split (the CLI's names): ``test`` (test ratings,
    same forms; those also in ``ratings`` are removed from training with a warning),
    ``masks`` (paths of 0/1 .npz masks TRAIN,[VAL,]TEST), else a random ``test_fraction``
    (0.2; 0: no test split, the model is trained on every rating and ``summary`` has no
    scores); ``holdout_rows``/``holdout_cols`` (users/items left out of training and folded
    in); ``top_k`` (10; 0: no ranking metrics); ``seed``; ``dense``. Hyperparameters: ``rank``,
    ``reg``, ``reg_bias``, ``w0``, ``frequency_power``, ``implicit``, ``alpha``, ``cg_steps``,
    ``epochs``, ``tol``, ``max_time``, ``lr``, ``batch_size``, ``hidden``, ``device``, as the
    model takes them (``mfcli complete --help`` lists each model's and its defaults); a name the
    model does not take is refused.
    """
    import time

    import numpy as np

    from mfcli.completion import DEEP_MODELS, RANKING_MODELS
    from mfcli.completion import data as cdata
    from mfcli.completion.evaluate import (evaluate as evaluate_ratings, evaluate_areas, evaluate_ranking,
                                           extend_factor_model, make_estimator, restrict)
    from mfcli.completion.persist import factor_model_to_result
    from mfcli.errors import DataError, ParameterError
    from mfcli.io.ratings import read_mask

    reporter = reporter or SILENT
    hyper = _check_completion_params(model, params)
    seed = check_seed(params.get("seed", 0))
    top_k = params.get("top_k", 10)
    test_spec, masks = params.get("test"), params.get("masks")
    dense = bool(params.get("dense"))
    test_fraction = params.get("test_fraction", 0.2)
    holdout_rows, holdout_cols = params.get("holdout_rows") or 0.0, params.get("holdout_cols") or 0.0
    from mfcli.models.registry import check_number

    top_k = check_number("top_k", top_k, 0, None, integer=True)
    test_fraction = check_number("test_fraction", test_fraction, 0, 1, high_open=True)
    holdout_rows = check_number("holdout_rows", holdout_rows, 0, 1, high_open=True)
    holdout_cols = check_number("holdout_cols", holdout_cols, 0, 1, high_open=True)
    if test_spec is not None and masks is not None:
        raise ParameterError("give at most one of --test and --masks")
    no_test = test_spec is None and masks is None and test_fraction == 0  # train on every rating
    if (holdout_rows or holdout_cols) and no_test:
        raise ParameterError("holdout_rows/holdout_cols need a test split; give test_fraction > 0 or masks")
    if (holdout_rows or holdout_cols) and test_spec is not None:
        raise ParameterError("--holdout-rows/--holdout-cols need a random or mask split, not --test")
    if masks is not None:
        masks = [os.fspath(m) for m in ([masks] if isinstance(masks, (str, os.PathLike)) else masks)]
        if not (isinstance(ratings, (str, os.PathLike)) and (os.fspath(ratings).lower().endswith(".npz") or dense)):
            raise ParameterError("--masks needs a matrix input (a .npz ratings matrix or --dense)")
    deep = model in DEEP_MODELS
    implicit = model in RANKING_MODELS or (model == "wals" and bool(hyper.get("implicit")))
    if implicit and top_k == 0 and not no_test:
        raise ParameterError(f"{model}{' --implicit' if model == 'wals' else ''} models implicit feedback, judged "
                             "by ranking metrics; give --top-k 1 or more")
    est_params = {k: v for k, v in hyper.items() if v is not False and (model != "bpr" or k != "implicit")}
    est_params["seed"] = seed
    if deep:
        est_params.setdefault("device", "auto")
        if "max_time" in est_params:
            est_params["time_budget"] = est_params.pop("max_time")

    ratings, source, name = as_ratings(ratings, dense=dense)
    check_rating_magnitudes(ratings, name, model)
    reporter.info(f"Read {name}: {len(ratings)} ratings, {ratings.n_users} users x {ratings.n_items} items, "
                  f"values {ratings.values.min():g}..{ratings.values.max():g}")
    validation = None
    if masks is not None:
        parts = cdata.mask_split(ratings, [read_mask(p) for p in masks])
        train, test = parts[0], parts[-1]
        validation = parts[1] if len(parts) == 3 else None
        split = f"masks {','.join(masks)}"
    elif test_spec is not None:
        test, _, test_name = as_ratings(test_spec, dense=dense)
        check_rating_magnitudes(test, test_name, model)
        train = without_test_ratings(ratings, test, name, test_name, reporter)
        split = f"test file {test_name}" if isinstance(test_spec, (str, os.PathLike)) else "test ratings given"
    elif no_test:
        train, test = ratings, None
        split = "all ratings (no test split)"
    else:
        train, test = cdata.random_split(ratings, test_fraction, seed)
        split = f"random {1 - test_fraction:.0%}/{test_fraction:.0%} split (seed {seed})"
    if test is not None and len(test) == 0:
        raise DataError("the test set is empty; give a larger --test-fraction or a test file with ratings")
    if len(train) == 0:
        raise DataError("the training set is empty; check the split")
    # Only the ids seen in training define the model (the matrix split keeps the full id maps).
    train = train.compact()
    if validation is not None:
        validation = validation.reindex(train.user_ids, train.item_ids, drop_unknown=True)
    estimator = make_estimator(model, **est_params)

    holdout = bool(holdout_rows or holdout_cols)
    fit_set = train
    if holdout:
        seen_users, seen_items = cdata.holdout_split(train, holdout_rows, holdout_cols, seed)
        fit_set = restrict(train, seen_users, seen_items)
        if validation is not None:
            validation = validation.reindex(fit_set.user_ids, fit_set.item_ids, drop_unknown=True)
        reporter.info(f"Held out {int((~seen_users).sum())} users and {int((~seen_items).sum())} items "
                      f"({len(train) - len(fit_set)} training ratings used only as their inputs)")

    reporter.info(f"Training {model} on {len(fit_set)} ratings ({split})"
                  + (f", testing on {len(test)}" if test is not None else ""))
    start = time.perf_counter()
    with reporter.progress(f"{model}", estimator.params.get("epochs")) as progress:
        estimator.fit(fit_set, validation=validation, callback=progress)
    seconds = time.perf_counter() - start
    stopping = _stopping(estimator, deep)
    _require_finite(estimator, model, deep)

    if deep:
        predictor = estimator.predictor(train if holdout else fit_set)
    elif holdout:
        predictor = extend_factor_model(estimator.model_, train)
    else:
        predictor = estimator.model_
    if test is None:
        report = {"rmse": None, "mae": None, "n_test": 0, "unseen_users": 0, "unseen_items": 0, "n_test_unseen": 0}
    else:
        report = evaluate_ratings(predictor, test, errors=not implicit)
    if test is not None and not implicit and not np.isfinite(report["rmse"]):
        raise DataError(f"{model} predicts non-finite ratings; check the scale of the ratings and the "
                        "regularization (--reg)")
    summary = {"model": model, "rank": int(estimator.model_.rank) if not deep else int(estimator.rank_),
               "rmse": None if implicit else report["rmse"], "mae": None if implicit else report["mae"],
               "n_train": int(len(fit_set)), "n_test": report["n_test"], "seconds": round(seconds, 3),
               **stopping,
               "n_validation": int(len(validation)) if validation is not None else 0,
               "unseen_users": report["unseen_users"], "unseen_items": report["unseen_items"],
               "n_test_unseen": report["n_test_unseen"], "split": split}
    if implicit:
        summary["implicit"] = True
    if top_k and test is not None:
        seen = predictor.ratings if deep else (train if holdout else fit_set)
        summary["ranking"] = evaluate_ranking(predictor, seen, test, top_k)
    if deep and estimator.discrete and test is not None:
        summary.update(estimator.discrete_report(predictor, test))
    if holdout:
        # Areas are defined over the users and items of the whole training split.
        test_in_train = test.reindex(train.user_ids, train.item_ids, drop_unknown=True)
        summary["areas"] = evaluate_areas(predictor, test_in_train, seen_users, seen_items)
    history = getattr(estimator, "history_", {})
    if history.get("validation_rmse") is not None and len(history["validation_rmse"]):
        summary["best_epoch"] = int(np.argmin(history["validation_rmse"]) + 1)
        summary["validation_rmse"] = float(np.min(history["validation_rmse"]))

    from mfcli.result import make_provenance

    result_params = {"model": model, **estimator.params}
    if deep:
        result = estimator.to_result(predictor, result_params, summary)
    else:
        result = factor_model_to_result(model, predictor, train if holdout else fit_set, result_params,
                                        history, summary)
    result.input = source
    result.provenance = make_provenance(["python", "mfcli.complete"])
    result.seconds = seconds
    result.converged = stopping["converged"]
    return Completion(model, summary, estimator, predictor, result, _convergence_warning(model, estimator, stopping,
                                                                                        deep))


def without_test_ratings(ratings, test, ratings_name: str, test_name: str, reporter: Reporter | None = None):
    """The training ratings without the (user, item) pairs of the test set, with a warning when
    there were any: a model tested on ratings it was trained on reports an error far too low."""
    import numpy as np

    in_train = test.reindex(ratings.user_ids, ratings.item_ids)
    known = (in_train.users >= 0) & (in_train.items >= 0)
    width = max(ratings.n_items, 1)
    from mfcli.completion.data import is_member

    overlap = is_member(ratings.users * width + ratings.items,
                        np.sort(in_train.users[known] * width + in_train.items[known]))
    if not overlap.any():
        return ratings
    (reporter or SILENT).warn(f"{int(overlap.sum())} of the {len(test)} test ratings of {test_name} are also in "
                               f"{ratings_name}; they were removed from training, so that the model is tested only "
                               "on ratings it has not seen")
    return ratings.subset(~overlap)


def check_rating_magnitudes(ratings, source: str, model: str) -> None:
    """Refuse ratings whose magnitudes the model's arithmetic cannot take (float32 for the deep
    models, float64 otherwise; :func:`mfcli.validation.require_workable_magnitude`)."""
    import numpy as np

    from mfcli.completion import DEEP_MODELS
    from mfcli.validation import largest_magnitude, require_workable_magnitude

    largest = largest_magnitude(ratings.values)
    if largest:
        dtype = np.float32 if model in DEEP_MODELS else np.float64
        require_workable_magnitude(largest, dtype, len(ratings), f"the ratings of {source}", float64_option=None)


def _stopping(estimator, deep: bool) -> dict:
    """{epochs, converged, stop_reason} of a fitted estimator."""
    if deep:
        return {"epochs": int(len(estimator.history_["seconds"])), "converged": bool(estimator.converged_),
                "stop_reason": estimator.stop_reason_}
    return {"epochs": int(estimator.n_epochs_ or 0), "converged": bool(estimator.converged_),
            "stop_reason": estimator.stop_reason_}


def _convergence_warning(model: str, estimator, stopping: dict, deep: bool) -> str | None:
    """One line when a limit (epochs, max_time) ended a run whose stopping rule was not met."""
    if stopping["converged"] or stopping["stop_reason"] not in ("max_iter", "max_time"):
        return None
    if deep:
        if not estimator.has_stopping_rule_:
            return None
        rule = "the validation RMSE was still improving"
    else:
        info = estimator.model_.convergence
        if not info.get("tol"):
            return None  # tol 0: a fixed number of epochs was asked for
        progress = info.get("last_progress")
        rule = f"last relative decrease {progress:.2g} > --tol {info['tol']:g}" if progress is not None and \
            info.get("rule") == "descent" else f"--tol {info['tol']:g} not met"
    limit = "--epochs" if stopping["stop_reason"] == "max_iter" else "--max-time"
    return (f"{model} stopped by {limit} after {stopping['epochs']} epochs before its stopping rule was met "
            f"({rule}); converged: false. Raise {limit} (or loosen --tol) for a converged model.")


def _require_finite(estimator, model: str, deep: bool) -> None:
    """A DataError unless the fitted parameters are finite (no run exits 0 with a NaN answer)."""
    import numpy as np

    from mfcli.errors import DataError

    if deep:
        arrays = [layer[key] for layer in estimator.user_layers_ + estimator.item_layers_ for key in layer]
    else:
        m = estimator.model_
        arrays = [m.user_factors, m.item_factors, m.user_bias, m.item_bias, np.asarray([m.global_mean])]
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise DataError(f"{model} produced non-finite parameters; the ratings' scale or a step size or "
                        "regularization is too large (check --lr, --reg, --alpha)")
