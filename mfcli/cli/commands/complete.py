"""mfcli complete: train a matrix-completion model on ratings and evaluate it on held-out ratings."""

from __future__ import annotations

import math

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


class _Finite(click.FloatRange):
    """A FloatRange that also refuses NaN and +-inf (which pass FloatRange's comparisons)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number; give one in {self._describe_range()}", param, ctx)
        return number


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
              help="als, wals --implicit: conjugate-gradient steps per row and sweep, from the current "
                   "factors (0: exact solves; default 3).")
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
                (conjugate-gradient sweeps)                   cg-steps 3, tol 1e-3, epochs 50
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
    from mfcli.api import COMPLETION_APPLIES, complete
    from mfcli.io.atomic import check_output_path
    from mfcli.result import make_provenance

    if output is not None:
        check_output_path(output, force)
    params = {k: v for k, v in hyper.items() if v is not None and v is not False}
    if hidden is not None:
        params["hidden"] = hidden
    applies = COMPLETION_APPLIES[model]
    ignored = sorted(k for k in params if k not in applies and not (k == "implicit" and model == "bpr"))
    if ignored:
        console.warn(f"{', '.join('--' + k.replace('_', '-') for k in ignored)} do(es) not apply to {model}; ignored")
    params = {k: v for k, v in params.items() if k in applies}
    if model in DEEP_MODELS:
        params["device"] = device
    completion = complete(ratings_path, model, reporter=console.REPORTER, seed=seed, top_k=top_k,
                          test_fraction=test_fraction, test=test_path, masks=masks, dense=dense,
                          holdout_rows=holdout_rows, holdout_cols=holdout_cols, **params)
    summary = completion.summary
    _print_summary(summary)
    if completion.warning:
        console.warn(completion.warning)
    if output is not None:
        completion.result.provenance = make_provenance(command_line())
        completion.save(output, force=force)
        console.info(f"Wrote {output}")
        summary["output"] = output
    if as_json:
        console.emit_json(summary)


def _print_summary(summary: dict) -> None:
    if console.quiet():
        return
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
