"""mfcli recommend: the top-N unseen items of a user from a completion model."""

from __future__ import annotations

import click

from mfcli.cli import console
from mfcli.cli.options import force_option, json_option


@click.command(short_help="Top-N unseen items for a user, or for every user, from a model saved by `mfcli complete`.")
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.option("--user", "user_id", metavar="ID", help="The user (an id of the training ratings).")
@click.option("--all-users", is_flag=True, help="Top N of every user of the model (CSV user,rank,item,score).")
@click.option("--users", "users_path", metavar="FILE",
              help="Top N of the users listed in FILE (one id per line, header 'user' optional; '-': stdin).")
@click.option("-n", "--top", "top_n", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many items to recommend.")
@click.option("--new-ratings", "new_ratings", metavar="FILE",
              help="Ratings of a user the model has not seen: 'item,rating' lines, or 'user,item,rating' "
                   "lines (then --user picks one); folded in without retraining.")
@click.option("--include-seen", is_flag=True, help="Also rank the items the user has already rated.")
@click.option("-o", "--output", metavar="PATH", help="Write the CSV here instead of stdout ('-': stdout).")
@force_option
@json_option
def command(model_path: str, user_id: str | None, all_users: bool, users_path: str | None, top_n: int,
            new_ratings: str | None, include_seen: bool, output: str | None, force: bool, as_json: bool) -> None:
    """Recommend the TOP items with the highest scores for --user, leaving out the items the user
    rated in training (or in --new-ratings); or for many users at once with --all-users or
    --users FILE.

    The score is the model's ranking score, mu + b_i + c_j + <u_i, v_j> for factor models (the
    predicted rating before clipping to the rating range, which would tie the best items), the
    continuous output for DMF.

    One user: writes CSV 'rank,item,score' to stdout (or -o FILE), or with --json {user,
    n_rated, items: [{rank, item, score}]}. A new user's ratings (--new-ratings) are folded into
    the model: the user's factors are solved with the item factors fixed, as WALS projects a new
    row (for DMF: the user branch of the network is applied to the new rating vector).

    Many users (--all-users, --users FILE): writes CSV 'user,rank,item,score' (N lines per user,
    fewer for a user with fewer unseen items) to stdout or -o FILE; the users are scored in
    blocks, one matrix product per block. Ids of FILE unknown to the model are skipped and
    counted on stderr. With --json (which needs -o FILE) stdout gets {n_users, top, rows,
    unknown_users, output}. From Python: mfcli.completion.ranking.recommend.
    """
    import numpy as np

    from mfcli.completion.data import train_ratings_from_result
    from mfcli.completion.persist import predictor_from_result
    from mfcli.errors import InputError, ParameterError
    from mfcli.io.atomic import check_output_path
    from mfcli.io.result import read_result

    batch = all_users or users_path is not None
    if sum((all_users, users_path is not None, user_id is not None and new_ratings is None)) > 1:
        raise ParameterError("give one of --user, --all-users and --users FILE")
    if batch and new_ratings is not None:
        raise ParameterError("--new-ratings folds in one new user; it does not combine with --all-users or --users")
    if output == "-":
        output = None
    if batch and as_json and output is None:
        raise ParameterError("--json with --all-users or --users prints a summary; give -o FILE for the CSV")
    if output is not None:
        check_output_path(output, force)
    result = read_result(model_path)
    predictor = predictor_from_result(result)
    train = train_ratings_from_result(result)
    if batch:
        _recommend_batch(predictor, train, users_path, top_n, include_seen, output, force, as_json)
        return
    if new_ratings is not None:
        from mfcli.io.ratings import read_new_ratings

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
        scores = predictor.new_user_scores(index[index >= 0], values[index >= 0], clip=False)
        seen = index[index >= 0]
        who = f"new user {user_id}" if user_id is not None else "the new user"
    else:
        if user_id is None:
            raise ParameterError("give --user ID, --all-users or --users FILE (or --new-ratings FILE for a user "
                                 "the model has not seen)")
        user = int(predictor.user_ids.index(np.asarray([user_id]))[0])
        if user < 0:
            example = ", ".join(str(v) for v in predictor.user_ids.ids[:3])
            raise InputError(f"user {user_id} is not in the model ({len(predictor.user_ids)} users, e.g. {example}); "
                             "use --new-ratings FILE to fold in a new user's ratings")
        scores = predictor.ranking_scores(np.asarray([user]))[0]
        seen = train.items[train.users == user]
        who = f"user {user_id}"
    from mfcli.completion.ranking import top_n_of_scores

    scores = np.asarray(scores, dtype=np.float64).copy()
    if not include_seen:
        scores[seen] = -np.inf
    top, top_scores = top_n_of_scores(scores[None, :], top_n)
    listed = top[0] >= 0
    top, top_scores = top[0][listed], top_scores[0][listed]
    candidates = int(np.count_nonzero(scores > -np.inf))
    item_ids = predictor.item_ids.ids[top]
    console.info(f"Top {len(top)} of {candidates} items for {who} ({len(np.unique(seen))} rated)")
    if as_json and output is None:
        console.emit_json({"user": user_id, "n_rated": int(len(seen)),
                           "items": [{"rank": k + 1, "item": item, "score": float(score)}
                                     for k, (item, score) in enumerate(zip(item_ids.tolist(), top_scores))]})
        return
    text = "\n".join(["rank,item,score"] + [f"{k + 1},{item},{score:.6g}" for k, (item, score) in
                                            enumerate(zip(item_ids.tolist(), top_scores))]) + "\n"
    _write_text(output, force, [text])
    if as_json:
        console.emit_json({"user": user_id, "n_rated": int(len(seen)), "output": output,
                           "items": [{"rank": k + 1, "item": item, "score": float(score)}
                                     for k, (item, score) in enumerate(zip(item_ids.tolist(), top_scores))]})


def _write_text(output: str | None, force: bool, chunks) -> None:
    """Write the text chunks to stdout, or atomically to ``output``."""
    if output is None:
        from mfcli.io.write import write_stdout

        for chunk in chunks:
            write_stdout(chunk)
        return
    from mfcli.io.atomic import atomic_file

    with atomic_file(output, force=force) as tmp:
        with open(tmp, "w") as fh:
            for chunk in chunks:
                fh.write(chunk)


def _recommend_batch(predictor, train, users_path: str | None, top_n: int, include_seen: bool,
                     output: str | None, force: bool, as_json: bool) -> None:
    import numpy as np

    from mfcli.completion.data import align
    from mfcli.completion.ranking import iter_top_n, seen_matrix
    from mfcli.errors import InputError

    n_users = len(predictor.user_ids)
    unknown = 0
    if users_path is None:
        users = np.arange(n_users)
    else:
        from mfcli.io.ratings import read_user_list

        ids = read_user_list(users_path)
        users = predictor.user_ids.index(ids)
        unknown = int(np.count_nonzero(users < 0))
        if unknown == len(users):
            example = ", ".join(str(v) for v in predictor.user_ids.ids[:3])
            raise InputError(f"none of the {len(users)} users in '{users_path}' is in the model "
                             f"({n_users} users, e.g. {example}); check the ids")
        if unknown:
            console.warn(f"{unknown} user id(s) of '{users_path}' are not in the model: skipped")
        users = users[users >= 0]
    exclude = None if include_seen else seen_matrix(*align(predictor, train), (n_users, len(predictor.item_ids)))
    counts = {"rows": 0}

    def chunks():
        yield "user,rank,item,score\n"
        user_ids, item_ids = predictor.user_ids.ids, predictor.item_ids.ids
        for block, items, scores in iter_top_n(predictor, users, top_n, exclude):
            lines = []
            for user, row_items, row_scores in zip(user_ids[block].tolist(), items, scores):
                listed = row_items >= 0
                lines.extend(f"{user},{rank},{item},{score:.6g}" for rank, (item, score) in
                             enumerate(zip(item_ids[row_items[listed]].tolist(), row_scores[listed].tolist()),
                                       start=1))
            counts["rows"] += len(lines)
            if lines:
                yield "\n".join(lines) + "\n"

    _write_text(output, force, chunks())
    console.info(f"Top {top_n} items of {len(users)} users: {counts['rows']} rows"
                 + (f" written to {output}" if output else ""))
    if as_json:
        console.emit_json({"n_users": int(len(users)), "top": int(top_n), "rows": counts["rows"],
                           "unknown_users": unknown, "output": output})
