"""mfcli complete: train a matrix-completion model on ratings and evaluate it on held-out ratings."""

from __future__ import annotations

import math

import click

from mfcli.cli import console
from mfcli.cli.options import command_line, file_output, force_option, json_option, seed_option
from mfcli.completion import DEEP_MODELS, MODELS, RANKING_MODELS


def _parse_masks(ctx, param, value):
    if value is None:
        return None
    parts = [p for p in value.split(",") if p]
    if len(parts) not in (2, 3):
        raise click.BadParameter("give TRAIN.npz,TEST.npz or TRAIN.npz,VAL.npz,TEST.npz")
    return parts


def _parse_hidden(ctx, param, value):
    if value is None:
        return None
    try:
        units = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        units = []
    if not units:
        raise click.BadParameter(f"'{value}' is not a list of integers such as 256,128")
    return units


class _Finite(click.FloatRange):
    """A FloatRange that also refuses NaN and +-inf (which pass FloatRange's comparisons)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number; give one in {self._describe_range()}", param, ctx)
        return number


# Which options each model takes (the others are ignored with a warning).
_APPLIES = {
    "baseline": {"reg", "epochs", "tol", "max_time"},
    "als": {"rank", "reg", "reg_bias", "epochs", "tol", "max_time"},
    "wals": {"rank", "reg", "reg_bias", "w0", "frequency_power", "implicit", "alpha", "epochs", "tol", "max_time",
             "cg_steps"},
    "sgd": {"rank", "reg", "reg_bias", "lr", "batch_size", "epochs", "tol", "max_time"},
    "bpr": {"rank", "reg", "lr", "batch_size", "epochs", "tol", "max_time"},
    "svd": {"rank"},
    "dmf": {"rank", "reg", "epochs", "lr", "batch_size", "hidden", "max_time"},
    "dmf-d": {"rank", "reg", "epochs", "lr", "batch_size", "hidden", "max_time"},
}
# frequency weights (n_i m_j / mean)^-P: |P| <= 8 keeps them within float64 for any count ratio.
FREQUENCY_POWER_MAX = 8.0


@click.command(short_help="Matrix completion of ratings: train baseline/ALS/SGD/WALS/BPR/SVD/DMF, report RMSE, "
                          "MAE and ranking metrics.")
@click.argument("ratings_path", metavar="RATINGS")
@click.option("-m", "--model", type=click.Choice(MODELS), default="als", show_default=True, help="Completion model.")
@click.option("-r", "--rank", type=click.IntRange(min=1), default=None,
              help="Number of latent factors (default per model, see below).")
@click.option("--reg", type=_Finite(min=0), default=None, help="L2 regularization lambda of the factors.")
@click.option("--reg-bias", type=_Finite(min=0), default=None, help="L2 regularization of the biases.")
@click.option("--w0", type=_Finite(min=0), default=None,
              help="wals: weight of the unobserved entries (pulls their interaction towards 0).")
@click.option("--frequency-power", type=_Finite(-FREQUENCY_POWER_MAX, FREQUENCY_POWER_MAX), default=None,
              help="wals: frequency weights w_ij = (n_i m_j / mean)^-P on the observed ratings (0: none).")
@click.option("--implicit", is_flag=True,
              help="wals: implicit feedback (confidence 1 + alpha r, preference 1); judged by ranking metrics.")
@click.option("--alpha", type=_Finite(min=0), default=None, help="wals --implicit: confidence slope.")
@click.option("--cg-steps", type=click.IntRange(min=0), default=None,
              help="wals --implicit: conjugate-gradient steps per sweep (0: exact solves; default 3).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Maximum number of training epochs (sweeps); the stopping rule usually ends a run first.")
@click.option("--tol", type=_Finite(min=0), default=None,
              help="Stop when the training objective decreases by at most this, relative, over an epoch "
                   "(sgd, bpr: has not improved on its best by more than this for 3 epochs); 0: run all "
                   "--epochs. Default per model, see below.")
@click.option("--max-time", "--time-budget", "max_time", type=_Finite(min=0, min_open=True), default=None,
              metavar="SECONDS", help="Stop training after this many seconds (checked after each epoch).")
@click.option("--lr", type=_Finite(min=0, min_open=True), default=None, help="sgd/bpr/dmf: learning rate.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="sgd/bpr: ratings per minibatch; dmf: rows and columns per sub-matrix.")
@click.option("--top-k", type=click.IntRange(min=0), default=10, show_default=True,
              help="Length of the top-k lists scored by precision, recall, nDCG and MAP (0: no ranking metrics).")
@seed_option
@click.option("--test-fraction", type=_Finite(0, 1, min_open=True, max_open=True), default=0.2,
              show_default=True,
              help="Random fraction of the ratings held out for testing.")
@click.option("--test", "test_path", metavar="FILE", help="Test ratings from a file instead of a random split.")
@click.option("--masks", callback=_parse_masks, metavar="TRAIN,[VAL,]TEST",
              help="Split by sparse 0/1 .npz masks of the ratings matrix (the DMF papers' split); VAL "
                   "picks the best epoch.")
@click.option("--dense", is_flag=True, help="RATINGS is a dense users x items matrix with NaN for missing.")
@click.option("--holdout-rows", type=_Finite(0, 1, max_open=True), default=0.0, show_default=True,
              help="Fraction of users left out of training and predicted from their ratings without "
                   "retraining (areas II/IV).")
@click.option("--holdout-cols", type=_Finite(0, 1, max_open=True), default=0.0, show_default=True,
              help="Fraction of items left out of training (areas III/IV).")
@click.option("--hidden", metavar="N,N", callback=_parse_hidden,
              help="dmf: units of the hidden layers of each branch, e.g. 256,128.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="dmf: where to train (auto: cuda when available).")
@click.option("-o", "--output", metavar="PATH", callback=file_output("the model (HDF5)"),
              help="Save the trained model (HDF5 result file).")
@force_option
@json_option
def command(ratings_path: str, model: str, seed: int, top_k: int, test_fraction: float, test_path: str | None,
            masks, dense: bool, holdout_rows: float, holdout_cols: float, hidden: list[int] | None, device: str,
            output: str | None, force: bool, as_json: bool, **hyper) -> None:
    """Train a completion model on RATINGS and report RMSE, MAE and ranking metrics on held-out
    ratings.

    RATINGS: user,item,rating[,timestamp] lines (MovieLens u.data with tabs, ratings.dat with
    '::', ratings.csv with a header; the separator and a header line are detected), a
    scipy.sparse .npz users x items matrix (ids = row/column numbers from 0), or with --dense a
    matrix with NaN for missing ratings.

    \b
    Models and their defaults (measured on MovieLens by benchmarks/bench_completion.py and
    benchmarks/bench_implicit.py; --epochs is a limit, the stopping rule --tol ends a run first):
      baseline  global mean + user and item biases            reg 10, tol 1e-4, epochs 100
      als       MF with biases on observed ratings, ALS       rank 32, reg 0.1, reg-bias 0.1,
                                                              tol 1e-3, epochs 50
      sgd       the same objective by minibatch SGD           rank 32, reg 0.1, lr 0.02 (x0.97
                                                              per epoch), tol 1e-3, epochs 100
      wals      weighted MF, w0 on unobserved entries, WALS   as als plus w0 0.001
      wals --implicit  implicit feedback (Hu et al. 2008),    rank 32, reg 10, alpha 0.3, cg-steps 3,
                conjugate-gradient sweeps                     tol 1e-3, epochs 50
      bpr       Bayesian personalized ranking (Rendle et al.  rank 64, reg 0.01, lr 0.1, batch
                2009), minibatch SGD on (user, seen, unseen)  4096, tol 1e-3, epochs 100
      svd       truncated SVD of the zero-filled matrix       rank 16 (the naive reference)
      dmf       deep MF: MLP branches on a user's row and an  hidden 512, rank (latent) 128,
                item's column, cosine output (needs torch:    dropout 0.3 (inputs 0.25), lr
                pip install 'mfcli[deep]')                    0.001, batch 512 x 512, <= 40 epochs
      dmf-d     DMF + a learned smooth quantizer whose slope  as dmf; lambda 1 -> 200 over 30
                lambda grows until the output is discrete     epochs; discrete predictions
    The regularization of als/sgd/wals is per rating (lambda n_i |u_i|^2 per user); for dmf,
    --reg is the weight decay gamma (default 1e-5). dmf stops early when the validation RMSE
    (the VAL mask, else 5% of the training ratings) has not improved for 4 epochs.
    A run ended by --epochs or --max-time before its stopping rule was met prints a warning and
    reports converged: false.

    Ranking: for each test user, the --top-k items of highest score among the items the user has
    not rated in training are compared with the user's held-out items (every held-out rating is
    an interaction): precision@k, recall@k, nDCG@k, MAP@k and the catalog coverage of the lists
    (mfcli.metrics.ranking_metrics). For implicit feedback (wals --implicit, bpr) these are the
    headline figures and RMSE/MAE are not reported (the scores are preferences, not ratings).

    Users or items of the test set that are not in the training set are predicted by the
    baseline and counted. Ratings of --test that are also in RATINGS are removed from training
    (with a warning), so the model is never tested on ratings it was trained on.
    sample:survey-ratings (the survey's 9 movies x 15 users) is read as 15 users x 9 movies.
    With --holdout-rows/--holdout-cols the RMSE is reported for the
    areas I-IV of Nguyen et al. (seen/unseen users x seen/unseen items): unseen users and
    items are predicted from their training ratings without retraining (fold-in for factor
    models; for DMF the network's branches, folded in toward those ratings with the other
    side's embeddings fixed).

    Prints a table on stderr; -o saves the model for `mfcli predict` and `mfcli recommend`.

    \b
    --json prints on stdout {model, rank, rmse, mae, n_train, n_test, seconds, epochs,
    converged, stop_reason, n_validation, unseen_users, unseen_items, n_test_unseen, split},
    ranking {k, precision, recall, ndcg, map, coverage, n_users, n_relevant} (--top-k > 0;
    rmse and mae are null for implicit feedback), and where they apply: best_epoch and
    validation_rmse (a validation set), areas {I, II, III, IV: {rmse, mae, n_test}}
    (--holdout-rows/--holdout-cols), continuous_rmse, continuous_mae and boundaries (dmf-d:
    rmse and mae are of the discrete predictions), output (-o).
    """
    import time

    import numpy as np

    from mfcli.completion import data as cdata
    from mfcli.completion.evaluate import (evaluate, evaluate_areas, evaluate_ranking, extend_factor_model,
                                           make_estimator, restrict)
    from mfcli.completion.persist import factor_model_to_result
    from mfcli.errors import DataError, ParameterError
    from mfcli.io.atomic import check_output_path
    from mfcli.io.ratings import read_mask, read_ratings
    from mfcli.io.result import write_result
    from mfcli.result import make_provenance

    if output is not None:
        check_output_path(output, force)
    if sum(x is not None for x in (test_path, masks)) > 1:
        raise ParameterError("give at most one of --test and --masks")
    if (holdout_rows or holdout_cols) and test_path:
        raise ParameterError("--holdout-rows/--holdout-cols need a random or mask split, not --test")
    if masks is not None and not (ratings_path.lower().endswith(".npz") or dense):
        raise ParameterError("--masks needs a matrix input (a .npz ratings matrix or --dense)")
    deep = model in DEEP_MODELS
    implicit = model in RANKING_MODELS or (model == "wals" and bool(hyper.get("implicit")))
    if implicit and top_k == 0:
        raise ParameterError(f"{model}{' --implicit' if model == 'wals' else ''} models implicit feedback, judged "
                             "by ranking metrics; give --top-k 1 or more")
    params = {k: v for k, v in hyper.items() if v is not None and v is not False}
    if hidden is not None:
        params["hidden"] = hidden
    ignored = sorted(k for k in params if k not in _APPLIES[model] and not (k == "implicit" and model == "bpr"))
    if ignored:
        console.warn(f"{', '.join('--' + k.replace('_', '-') for k in ignored)} do(es) not apply to {model}; ignored")
    params = {k: v for k, v in params.items() if k in _APPLIES[model]}
    params["seed"] = seed
    if deep:
        params["device"] = device
        if "max_time" in params:
            params["time_budget"] = params.pop("max_time")

    ratings = read_ratings(ratings_path, dense=dense)
    check_rating_magnitudes(ratings, ratings_path, model)
    console.info(f"Read {ratings_path}: {len(ratings)} ratings, {ratings.n_users} users x {ratings.n_items} items, "
                 f"values {ratings.values.min():g}..{ratings.values.max():g}")
    validation = None
    if masks is not None:
        parts = cdata.mask_split(ratings, [read_mask(p) for p in masks])
        train, test = parts[0], parts[-1]
        validation = parts[1] if len(parts) == 3 else None
        split = f"masks {','.join(masks)}"
    elif test_path is not None:
        test = read_ratings(test_path, dense=dense)
        check_rating_magnitudes(test, test_path, model)
        train = without_test_ratings(ratings, test, ratings_path, test_path)
        split = f"test file {test_path}"
    else:
        train, test = cdata.random_split(ratings, test_fraction, seed)
        split = f"random {1 - test_fraction:.0%}/{test_fraction:.0%} split (seed {seed})"
    if len(test) == 0:
        raise DataError("the test set is empty; give a larger --test-fraction or a test file with ratings")
    if len(train) == 0:
        raise DataError("the training set is empty; check the split")
    # Only the ids seen in training define the model (the matrix split keeps the full id maps).
    train = train.compact()
    if validation is not None:
        validation = validation.reindex(train.user_ids, train.item_ids, drop_unknown=True)
    estimator = make_estimator(model, **params)

    holdout = bool(holdout_rows or holdout_cols)
    fit_set = train
    if holdout:
        seen_users, seen_items = cdata.holdout_split(train, holdout_rows, holdout_cols, seed)
        fit_set = restrict(train, seen_users, seen_items)
        if validation is not None:
            validation = validation.reindex(fit_set.user_ids, fit_set.item_ids, drop_unknown=True)
        console.info(f"Held out {int((~seen_users).sum())} users and {int((~seen_items).sum())} items "
                     f"({len(train) - len(fit_set)} training ratings used only as their inputs)")

    console.info(f"Training {model} on {len(fit_set)} ratings ({split}), testing on {len(test)}")
    start = time.perf_counter()
    with console.Progress(f"{model}", estimator.params.get("epochs")) as progress:
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
    report = evaluate(predictor, test)
    if not implicit and not np.isfinite(report["rmse"]):
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
    if top_k:
        seen = predictor.ratings if deep else (train if holdout else fit_set)
        summary["ranking"] = evaluate_ranking(predictor, seen, test, top_k)
    if deep and estimator.discrete:
        summary.update(estimator.discrete_report(predictor, test))
    if holdout:
        # Areas are defined over the users and items of the whole training split.
        test_in_train = test.reindex(train.user_ids, train.item_ids, drop_unknown=True)
        summary["areas"] = evaluate_areas(predictor, test_in_train, seen_users, seen_items)
    history = getattr(estimator, "history_", {})
    if history.get("validation_rmse") is not None and len(history["validation_rmse"]):
        summary["best_epoch"] = int(np.argmin(history["validation_rmse"]) + 1)
        summary["validation_rmse"] = float(np.min(history["validation_rmse"]))
    _print_summary(summary)
    warning = _convergence_warning(model, estimator, stopping, deep)
    if warning:
        console.warn(warning)

    if output is not None:
        from mfcli.io.ratings import describe_source

        result_params = {"model": model, **estimator.params}
        if deep:
            result = estimator.to_result(predictor, result_params, summary)
        else:
            result = factor_model_to_result(model, predictor, train if holdout else fit_set, result_params,
                                            history, summary)
        result.input = describe_source(ratings_path)
        result.provenance = make_provenance(command_line())
        result.seconds = seconds
        result.converged = stopping["converged"]
        write_result(result, output, force=force)
        console.info(f"Wrote {output}")
        summary["output"] = output
    if as_json:
        console.emit_json(summary)


def without_test_ratings(ratings, test, ratings_path: str, test_path: str):
    """The training ratings without the (user, item) pairs of the test set, with a warning when
    there were any: a model tested on ratings it was trained on reports an error far too low."""
    import numpy as np

    in_train = test.reindex(ratings.user_ids, ratings.item_ids)
    known = (in_train.users >= 0) & (in_train.items >= 0)
    width = max(ratings.n_items, 1)
    overlap = np.isin(ratings.users * width + ratings.items, in_train.users[known] * width + in_train.items[known])
    if not overlap.any():
        return ratings
    console.warn(f"{int(overlap.sum())} of the {len(test)} test ratings of {test_path} are also in {ratings_path}; "
                 "they were removed from training, so that the model is tested only on ratings it has not seen")
    return ratings.subset(~overlap)


def check_rating_magnitudes(ratings, source: str, model: str) -> None:
    """Refuse ratings whose magnitudes the model's arithmetic cannot take (float32 for the deep
    models, float64 otherwise; :func:`mfcli.validation.require_workable_magnitude`)."""
    import numpy as np

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
    """One line when a limit (--epochs, --max-time) ended a run whose stopping rule was not met."""
    if stopping["converged"] or stopping["stop_reason"] not in ("max_iter", "max_time"):
        return None
    if deep:
        if not estimator.has_stopping_rule_:
            return None
        rule = "the validation RMSE was still improving"
    else:
        info = estimator.model_.convergence
        if not info.get("tol"):
            return None  # --tol 0: a fixed number of epochs was asked for
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


def _print_summary(summary: dict) -> None:
    from rich.table import Table

    ranking = summary.get("ranking")
    k = ranking["k"] if ranking else None
    ranking_columns = [(f"P@{k}", "precision"), (f"R@{k}", "recall"), (f"nDCG@{k}", "ndcg"), (f"MAP@{k}", "map"),
                       ("coverage", "coverage")]
    headline = [("RMSE", "rmse"), ("MAE", "mae")] if not summary.get("implicit") else ranking_columns
    table = Table(title=f"{summary['model']}: {summary['split']}")
    for column in ("rank", *(c for c, _ in headline), "train", "test", "unseen in test", "epochs", "seconds"):
        table.add_column(column)
    unseen = f"{summary['n_test_unseen']} ({summary['unseen_users']} users, {summary['unseen_items']} items)"
    source = ranking if summary.get("implicit") else summary
    epochs = f"{summary['epochs']} ({'converged' if summary['converged'] else summary['stop_reason']})"
    table.add_row(str(summary["rank"]), *(_number(source[key]) for _, key in headline), str(summary["n_train"]),
                  str(summary["n_test"]), unseen, epochs, f"{summary['seconds']:.2f}")
    console.print_table(table)
    if ranking and not summary.get("implicit"):
        title = f"Ranking: top {k} of the unrated items of {ranking['n_users']} test users vs their held-out ratings"
        ranks = Table(title=title)
        for column, _ in ranking_columns:
            ranks.add_column(column)
        ranks.add_row(*(_number(ranking[key]) for _, key in ranking_columns))
        console.print_table(ranks)
    if "continuous_rmse" in summary:
        console.info(f"Discrete predictions above; before the quantizer: RMSE {summary['continuous_rmse']:.4f}, "
                     f"MAE {summary['continuous_mae']:.4f}")
    if "areas" in summary:
        areas = Table(title="Extendability (Nguyen et al., Fig. 2)")
        for column in ("area", "users", "items", "RMSE", "MAE", "test ratings"):
            areas.add_column(column)
        kinds = {"I": ("seen", "seen"), "II": ("unseen", "seen"), "III": ("seen", "unseen"), "IV": ("unseen", "unseen")}
        for area, values in summary["areas"].items():
            r = "-" if values["rmse"] is None else f"{values['rmse']:.4f}"
            m = "-" if values["mae"] is None else f"{values['mae']:.4f}"
            areas.add_row(area, *kinds[area], r, m, str(values["n_test"]))
        console.print_table(areas)


def _number(value) -> str:
    return "-" if value is None or value != value else f"{value:.4f}"
