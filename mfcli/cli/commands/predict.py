"""mfcli predict: scores of a completion model for user,item pairs."""

from __future__ import annotations

import click

from mfcli.cli import console
from mfcli.cli.options import force_option, json_option


@click.command(short_help="Predict ratings for user,item pairs with a model saved by `mfcli complete`.")
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.argument("pairs_path", metavar="PAIRS")
@click.option("-o", "--output", metavar="PATH", help="Write the CSV here instead of stdout ('-': stdout).")
@force_option
@json_option
def command(model_path: str, pairs_path: str, output: str | None, force: bool, as_json: bool) -> None:
    """Predict the rating of each user,item pair of PAIRS (CSV/TSV lines 'user,item[,rating]',
    header optional; '-' reads stdin) with the model in MODEL.

    Writes CSV 'user,item,score' to stdout (or -o FILE). Users or items the model has not
    seen are predicted by its baseline (global mean plus the known bias) and counted on
    stderr. When PAIRS has a third column of ratings, RMSE and MAE are printed on stderr (not
    for implicit-feedback models, whose scores are preferences, not ratings).

    \b
    --json prints on stdout, instead of the CSV (which still goes to -o FILE if given):
      {n_pairs, unknown_user_pairs, unknown_item_pairs, rmse, mae (with true ratings),
       predictions: [{user, item, score}], output (with -o FILE)}
    """
    import io

    import numpy as np

    from mfcli.completion.persist import predictor_from_result
    from mfcli.io.atomic import atomic_file, check_output_path
    from mfcli.io.write import write_stdout
    from mfcli.io.ratings import read_pairs
    from mfcli.io.result import read_result
    from mfcli.metrics import mae, rmse

    if output == "-":
        output = None
    if output is not None:
        check_output_path(output, force)
    predictor = predictor_from_result(read_result(model_path))
    users, items, truth = read_pairs(pairs_path)
    u = predictor.user_ids.index(users)
    i = predictor.item_ids.index(items)
    scores = predictor.scores(u, i)
    unknown_users = int(np.count_nonzero(u < 0))
    unknown_items = int(np.count_nonzero(i < 0))
    if unknown_users or unknown_items:
        console.warn(f"{unknown_users} pair(s) with a user and {unknown_items} with an item unknown to the model: "
                     "predicted by the baseline")
    document = {"n_pairs": int(len(scores)), "unknown_user_pairs": unknown_users,
                "unknown_item_pairs": unknown_items}
    implicit = bool(getattr(predictor, "solver", {}).get("implicit"))
    if truth is not None and implicit:
        console.info("an implicit-feedback model (wals --implicit, bpr) scores preferences, not ratings: "
                     "no RMSE or MAE against the third column")
    elif truth is not None:
        document["rmse"] = rmse(truth, scores)
        document["mae"] = mae(truth, scores)
        console.info(f"RMSE {document['rmse']:.4f}, MAE {document['mae']:.4f} on {len(scores)} rated pairs")
    if output is not None or not as_json:
        buffer = io.StringIO()
        buffer.write("user,item,score\n")
        for a, b, s in zip(users.tolist(), items.tolist(), scores.tolist()):
            buffer.write(f"{a},{b},{s:.6g}\n")
        if output is None:
            write_stdout(buffer.getvalue())
        else:
            with atomic_file(output, force=force) as tmp:
                tmp.write_text(buffer.getvalue())
            console.info(f"Wrote {len(scores)} predictions to {output}")
            document["output"] = output
    if as_json:
        document["predictions"] = [{"user": a, "item": b, "score": float(s)}
                                   for a, b, s in zip(users.tolist(), items.tolist(), scores)]
        console.emit_json(document)
