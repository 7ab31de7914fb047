"""Top-N recommendation lists for many users at once (NumPy only).

A predictor (a :class:`~mfcli.completion.factors.FactorModel` or a DMF predictor) gives, for a
block of user indices, the ranking scores of every item (``ranking_scores(users)``: one matrix
product ``U_block V^T`` plus the biases, not clipped to the rating range, so that the order is
the model's and not broken by ties at the top of the scale). :func:`top_n` scores users block by
block, masks the items each user has already seen with -inf, and takes the N best of each row
with ``argpartition`` (O(n_items) per user) before sorting only those N.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from mfcli.completion.data import Pattern
from mfcli.errors import ParameterError

# Scores held at once: block of users x items (float64), about 32 MiB.
BLOCK_CELLS = 1 << 22


def seen_matrix(users: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> Pattern:
    """users x items 0/1 CSR pattern of the (user, item) index pairs with both indices >= 0."""
    return Pattern.from_pairs(users, items, shape)


def block_size(n_items: int) -> int:
    return max(1, BLOCK_CELLS // max(int(n_items), 1))


def top_n_of_scores(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best columns of each row of ``scores`` (best first; ties by column index) and their
    scores; columns scored -inf (masked) are never listed: their places hold index -1 and score NaN."""
    n_rows, n_cols = scores.shape
    n_take = min(n, n_cols)
    if n_take < n_cols:
        # the n_take largest at the end: no negated copy, and about half the time of selecting
        # the smallest of -scores (MovieLens 100K's 943 x 1682 scores: 9 ms instead of 18 ms, timed
        # outside benchmarks/)
        candidates = np.argpartition(scores, n_cols - n_take, axis=1)[:, n_cols - n_take:]
    else:
        candidates = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
    values = np.take_along_axis(scores, candidates, axis=1)
    order = np.lexsort((candidates, -values), axis=1)
    items = np.take_along_axis(candidates, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    masked = ~(values > -np.inf)
    items = np.where(masked, -1, items)
    values = np.where(masked, np.nan, values)
    if n_take < n:
        items = np.hstack([items, np.full((n_rows, n - n_take), -1, dtype=items.dtype)])
        values = np.hstack([values, np.full((n_rows, n - n_take), np.nan)])
    return items.astype(np.int64), values


def _check_n(n: int) -> None:
    if int(n) < 1:
        raise ParameterError(f"the number of recommendations must be at least 1, not {n}")


def _top_n_block(predictor, block: np.ndarray, n: int, exclude: Pattern | None) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best items and scores of the user indices ``block`` (one score matrix)."""
    scores = predictor.ranking_scores(block)
    if scores.dtype != np.float64 or not (scores.flags.owndata and scores.flags.writeable):
        scores = np.array(scores, dtype=np.float64)  # masked below: never a view of the predictor's arrays
    if exclude is not None:
        seen = exclude[block]
        rows = np.repeat(np.arange(len(block)), np.diff(seen.indptr))
        scores[rows, seen.indices] = -np.inf
    return top_n_of_scores(scores, int(n))


def iter_top_n(predictor, users, n: int, exclude: Pattern | None = None
               ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(users, items, scores)`` block by block: for the user indices of the block, their
    ``n`` best item indices (n_block x n, best first, -1 where fewer candidates remain) and scores.

    ``exclude``: users x items CSR pattern of items never to recommend (the items each user rated
    in training; a :class:`~mfcli.completion.data.Pattern` or a scipy.sparse CSR matrix); ``None``
    ranks every item.
    """
    _check_n(n)
    users = np.asarray(users, dtype=np.int64)
    step = block_size(len(predictor.item_ids))
    for start in range(0, len(users), step):
        block = users[start:start + step]
        yield (block, *_top_n_block(predictor, block, n, exclude))


def top_n(predictor, users, n: int, exclude: Pattern | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(items, scores)``: the ``n`` best item indices of every user index of ``users`` (a
    len(users) x n array, best first, -1 where fewer candidates remain) and their ranking scores.
    See :func:`iter_top_n`; here the blocks (at least one per thread) are scored on the row
    solvers' threads (:func:`~mfcli.completion.factors.n_threads`; the products and the selection
    release the GIL), BLAS on one thread each, and put back in order."""
    from mfcli.completion.factors import n_threads
    from mfcli.models.threads import pass_pool, solver_threads

    _check_n(n)
    users = np.asarray(users, dtype=np.int64)
    threads = n_threads()
    step = max(1, min(block_size(len(predictor.item_ids)), -(-len(users) // threads)))
    blocks = [users[start:start + step] for start in range(0, len(users), step)]
    if not blocks:
        return np.zeros((0, int(n)), dtype=np.int64), np.zeros((0, int(n)))
    with solver_threads(), pass_pool(min(threads, len(blocks))) as pool:
        parts = list(pool.map(lambda block: _top_n_block(predictor, block, n, exclude), blocks))
    return np.vstack([part[0] for part in parts]), np.vstack([part[1] for part in parts])


def recommend(predictor, seen=None, user_ids=None, n: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-``n`` lists for many users from the Python API.

    ``predictor``: a fitted factor model or DMF predictor (e.g. ``estimator.model_``, or
    :func:`mfcli.completion.persist.predictor_from_result` of a saved model); ``seen``: the ratings
    whose items are left out of each user's list (the training ratings, any id maps; None: every
    item is ranked); ``user_ids``: external ids of the users (default: every user of the model).
    Returns ``(user_ids, item_ids, scores)``: the user ids (n_users), and n_users x n arrays of
    item ids and ranking scores, best first. A place left empty (a user with fewer than ``n``
    unseen items) has score NaN and holds no meaningful item id. Unknown user ids raise
    ParameterError.
    """
    if user_ids is None:
        users = np.arange(len(predictor.user_ids))
    else:
        users = predictor.user_ids.index(np.asarray(user_ids))
        if (users < 0).any():
            missing = np.asarray(user_ids)[users < 0]
            raise ParameterError(f"{len(missing)} user id(s) are not in the model, e.g. {missing[0]}")
    exclude = None
    if seen is not None:
        exclude = seen_matrix(predictor.user_ids.index(seen.user_ids.ids[seen.users]),
                              predictor.item_ids.index(seen.item_ids.ids[seen.items]),
                              (len(predictor.user_ids), len(predictor.item_ids)))
    items, scores = top_n(predictor, users, n, exclude)
    item_ids = predictor.item_ids.ids[np.maximum(items, 0)]
    return predictor.user_ids.ids[users], item_ids, scores
