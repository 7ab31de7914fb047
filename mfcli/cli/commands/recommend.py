"""mfcli recommend: the top-N unseen items of a user from a completion model."""

from __future__ import annotations

import click

from mfcli.cli import console
from mfcli.cli.options import json_option


@click.command(short_help="Top-N unseen items for a user from a model saved by `mfcli complete`.")
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.option("--user", "user_id", metavar="ID", help="The user (an id of the training ratings).")
@click.option("-n", "--top", "top_n", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many items to recommend.")
@click.option("--new-ratings", "new_ratings", metavar="FILE",
              help="Ratings of a user the model has not seen: 'item,rating' lines, or 'user,item,rating' "
                   "lines (then --user picks one); folded in without retraining.")
@click.option("--include-seen", is_flag=True, help="Also rank the items the user has already rated.")
@json_option
def command(model_path: str, user_id: str | None, top_n: int, new_ratings: str | None, include_seen: bool,
            as_json: bool) -> None:
    """Recommend the TOP items with the highest predicted scores for --user, leaving out the items
    the user rated in training (or in --new-ratings).

    Writes CSV 'rank,item,score' to stdout, or with --json {user, n_rated, items: [{rank,
    item, score}]}. A new user's
    ratings (--new-ratings) are folded into the model: the user's factors are solved with the
    item factors fixed, as WALS projects a new row (for DMF: the user branch of the network is
    applied to the new rating vector).
    """
    import numpy as np

    from mfcli.completion.persist import predictor_from_result, train_ratings_from_result
    from mfcli.errors import InputError, ParameterError
    from mfcli.io.ratings import read_new_ratings
    from mfcli.io.result import read_result

    result = read_result(model_path)
    predictor = predictor_from_result(result)
    train = train_ratings_from_result(result)
    if new_ratings is not None:
        users, items, values = read_new_ratings(new_ratings)
        if users is not None:
            if user_id is None:
                distinct = np.unique(users)
                if len(distinct) > 1:
                    raise ParameterError(f"'{new_ratings}' holds ratings of {len(distinct)} users; pick one with --user")
                user_id = str(distinct[0])
            mine = np.asarray(users).astype(str) == str(user_id)
            if not mine.any():
                raise InputError(f"user {user_id} has no ratings in '{new_ratings}'; check --user")
            items, values = items[mine], values[mine]
        index = predictor.item_ids.index(items)
        unknown = int(np.count_nonzero(index < 0))
        if unknown == len(index):
            raise InputError(f"none of the {len(index)} items in '{new_ratings}' is known to the model; "
                             "the new user needs ratings of items seen in training")
        if unknown:
            console.warn(f"{unknown} rated item(s) unknown to the model were ignored")
        scores = predictor.new_user_scores(index[index >= 0], values[index >= 0])
        seen = index[index >= 0]
        who = f"new user {user_id}" if user_id is not None else "the new user"
    else:
        if user_id is None:
            raise ParameterError("give --user ID (or --new-ratings FILE for a user the model has not seen)")
        user = int(predictor.user_ids.index(np.asarray([user_id]))[0])
        if user < 0:
            example = ", ".join(str(v) for v in predictor.user_ids.ids[:3])
            raise InputError(f"user {user_id} is not in the model ({len(predictor.user_ids)} users, e.g. {example}); "
                             "use --new-ratings FILE to fold in a new user's ratings")
        scores = predictor.user_scores(user)
        seen = train.items[train.users == user]
        who = f"user {user_id}"
    scores = np.asarray(scores, dtype=np.float64).copy()
    if not include_seen:
        scores[seen] = -np.inf
    candidates = int(np.count_nonzero(np.isfinite(scores)))
    top = np.argsort(-scores, kind="stable")[: min(top_n, candidates)]
    item_ids = predictor.item_ids.ids[top]
    console.info(f"Top {len(top)} of {candidates} items for {who} ({len(seen)} rated)")
    if as_json:
        console.emit_json({"user": user_id, "n_rated": int(len(seen)),
                           "items": [{"rank": k + 1, "item": item, "score": float(scores[j])}
                                     for k, (item, j) in enumerate(zip(item_ids.tolist(), top))]})
        return
    lines = ["rank,item,score"] + [f"{k + 1},{item},{scores[j]:.6g}" for k, (item, j) in
                                   enumerate(zip(item_ids.tolist(), top))]
    console.echo("\n".join(lines))
