"""mfcli complete: train a matrix-completion model on ratings and evaluate it on held-out ratings."""

from __future__ import annotations

import click

from mfcli.cli import console
from mfcli.cli.options import command_line, file_output, force_option, json_option, seed_option
from mfcli.completion import DEEP_MODELS, MODELS


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


@click.command(short_help="Matrix completion of ratings: train baseline/ALS/SGD/WALS/SVD/DMF, report RMSE and MAE.")
@click.argument("ratings_path", metavar="RATINGS")
@click.option("-m", "--model", type=click.Choice(MODELS), default="als", show_default=True, help="Completion model.")
@click.option("-r", "--rank", type=click.IntRange(min=1), default=None,
              help="Number of latent factors (default per model, see below).")
@click.option("--reg", type=click.FloatRange(min=0), default=None, help="L2 regularization lambda of the factors.")
@click.option("--reg-bias", type=click.FloatRange(min=0), default=None, help="L2 regularization of the biases.")
@click.option("--w0", type=click.FloatRange(min=0), default=None,
              help="wals: weight of the unobserved entries (pulls their interaction towards 0).")
@click.option("--frequency-power", type=float, default=None,
              help="wals: frequency weights w_ij = (n_i m_j / mean)^-P on the observed ratings (0: none).")
@click.option("--implicit", is_flag=True, help="wals: implicit feedback (confidence 1 + alpha r, preference 1).")
@click.option("--alpha", type=click.FloatRange(min=0), default=None, help="wals --implicit: confidence slope.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Training epochs (sweeps).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="sgd/dmf: learning rate.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="sgd: ratings per minibatch; dmf: rows and columns per sub-matrix.")
@seed_option
@click.option("--test-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.2,
              show_default=True,
              help="Random fraction of the ratings held out for testing.")
@click.option("--test", "test_path", metavar="FILE", help="Test ratings from a file instead of a random split.")
@click.option("--masks", callback=_parse_masks, metavar="TRAIN,[VAL,]TEST",
              help="Split by sparse 0/1 .npz masks of the ratings matrix (the DMF papers' split); VAL "
                   "picks the best epoch.")
@click.option("--dense", is_flag=True, help="RATINGS is a dense users x items matrix with NaN for missing.")
@click.option("--holdout-rows", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Fraction of users left out of training and predicted from their ratings without "
                   "retraining (areas II/IV).")
@click.option("--holdout-cols", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Fraction of items left out of training (areas III/IV).")
@click.option("--hidden", metavar="N,N", callback=_parse_hidden,
              help="dmf: units of the hidden layers of each branch, e.g. 256,128.")
@click.option("--time-budget", type=click.FloatRange(min=0, min_open=True), default=None,
              help="dmf: stop training after this many seconds.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="dmf: where to train (auto: cuda when available).")
@click.option("-o", "--output", metavar="PATH", callback=file_output("the model (HDF5)"),
              help="Save the trained model (HDF5 result file).")
@force_option
@json_option
def command(ratings_path: str, model: str, seed: int, test_fraction: float, test_path: str | None, masks,
            dense: bool, holdout_rows: float, holdout_cols: float, hidden: list[int] | None, device: str,
            output: str | None, force: bool, as_json: bool, **hyper) -> None:
    """Train a completion model on RATINGS and report RMSE and MAE on held-out ratings.

    RATINGS: user,item,rating[,timestamp] lines (MovieLens u.data with tabs, ratings.dat with
    '::', ratings.csv with a header; the separator and a header line are detected), a
    scipy.sparse .npz users x items matrix (ids = row/column numbers from 0), or with --dense a
    matrix with NaN for missing ratings.

    \b
    Models and their defaults (measured on MovieLens by benchmarks/bench_completion.py):
      baseline  global mean + user and item biases            reg 10, epochs 10
      als       MF with biases on observed ratings, ALS       rank 32, reg 0.1, reg-bias 0.1, epochs 8
      sgd       the same objective by minibatch SGD           rank 32, reg 0.03, lr 0.01, epochs 25
      wals      weighted MF, w0 on unobserved entries, WALS   as als plus w0 0.001
      svd       truncated SVD of the zero-filled matrix       rank 16 (the naive reference)
      dmf       deep MF: MLP branches on a user's row and an  hidden 512, rank (latent) 128,
                item's column, cosine output (needs torch:    dropout 0.3 (inputs 0.25), lr
                pip install 'mfcli[deep]')                    0.001, batch 512 x 512, <= 40 epochs
      dmf-d     DMF + a learned smooth quantizer whose slope  as dmf; lambda 1 -> 200 over 30
                lambda grows until the output is discrete     epochs; discrete predictions
    The regularization of als/sgd/wals is per rating (lambda n_i |u_i|^2 per user); for dmf,
    --reg is the weight decay gamma (default 1e-5). dmf stops early when the validation RMSE
    (the VAL mask, else 5% of the training ratings) has not improved for 4 epochs, or after
    --time-budget seconds.

    Users or items of the test set that are not in the training set are predicted by the
    baseline and counted. Ratings of --test that are also in RATINGS are removed from training
    (with a warning), so the model is never tested on ratings it was trained on.
    sample:survey-ratings (the survey's 9 movies x 15 users) is read as 15 users x 9 movies. With --holdout-rows/--holdout-cols the RMSE is reported for the
    areas I-IV of Nguyen et al. (seen/unseen users x seen/unseen items): unseen users and
    items are predicted from their training ratings without retraining (fold-in for factor
    models, the network's branches for DMF).

    Prints a table on stderr; -o saves the model for `mfcli predict` and `mfcli recommend`.

    \b
    --json prints on stdout {model, rank, rmse, mae, n_train, n_test, seconds, n_validation,
    unseen_users, unseen_items, n_test_unseen, split}, and where they apply: best_epoch and
    validation_rmse (a validation set), areas {I, II, III, IV: {rmse, mae, n_test}}
    (--holdout-rows/--holdout-cols), continuous_rmse, continuous_mae and boundaries (dmf-d:
    rmse and mae are of the discrete predictions), output (-o).
    """
    import time

    import numpy as np

    from mfcli.completion import data as cdata
    from mfcli.completion.evaluate import evaluate, evaluate_areas, extend_factor_model, make_estimator, restrict
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

    ratings = read_ratings(ratings_path, dense=dense)
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

    params = {k: v for k, v in hyper.items() if v is not None}
    params["seed"] = seed
    if hidden is not None:
        params["hidden"] = hidden
    deep = model in DEEP_MODELS
    deep_options = {"rank", "reg", "epochs", "lr", "batch_size", "seed", "hidden", "time_budget"}
    if deep:
        params["device"] = device
        ignored = sorted(k for k in params if k not in deep_options | {"device"} and params[k] not in (False,))
        params = {k: v for k, v in params.items() if k in deep_options | {"device"}}
    else:
        ignored = sorted(k for k in ("hidden", "time_budget") if k in params)
        params = {k: v for k, v in params.items() if k not in ("hidden", "time_budget")}
    if ignored:
        console.warn(f"{', '.join('--' + k.replace('_', '-') for k in ignored)} do(es) not apply to {model}; ignored")
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

    if deep:
        predictor = estimator.predictor(train if holdout else fit_set)
    elif holdout:
        predictor = extend_factor_model(estimator.model_, train)
    else:
        predictor = estimator.model_
    report = evaluate(predictor, test)
    summary = {"model": model, "rank": int(estimator.model_.rank) if not deep else int(estimator.rank_),
               "rmse": report["rmse"], "mae": report["mae"], "n_train": int(len(fit_set)),
               "n_test": report["n_test"], "seconds": round(seconds, 3),
               "n_validation": int(len(validation)) if validation is not None else 0,
               "unseen_users": report["unseen_users"], "unseen_items": report["unseen_items"],
               "n_test_unseen": report["n_test_unseen"], "split": split}
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


def _print_summary(summary: dict) -> None:
    from rich.table import Table

    table = Table(title=f"{summary['model']}: {summary['split']}")
    for column in ("rank", "RMSE", "MAE", "train", "test", "unseen in test", "seconds"):
        table.add_column(column)
    unseen = f"{summary['n_test_unseen']} ({summary['unseen_users']} users, {summary['unseen_items']} items)"
    table.add_row(str(summary["rank"]), f"{summary['rmse']:.4f}", f"{summary['mae']:.4f}", str(summary["n_train"]),
                  str(summary["n_test"]), unseen, f"{summary['seconds']:.2f}")
    console.print_table(table)
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
