"""The fast paths of `complete`'s scoring and training against the slow, obvious computation:
pair products in blocks, ranking scores as one product, top-N lists scored on several threads,
the distinct-id check of IdMap, and a fit that does not depend on its number of row threads."""

from __future__ import annotations

import numpy as np
import pytest

from mfcli.completion.data import IdMap, Ratings
from mfcli.completion.factors import FactorModel, pair_dots
from mfcli.errors import DataError


def _random_model(rng, n_users=70, n_items=90, rank=6) -> FactorModel:
    return FactorModel(3.2, rng.normal(size=n_users), rng.normal(size=n_items), rng.normal(size=(n_users, rank)),
                       rng.normal(size=(n_items, rank)), IdMap.range(n_users), IdMap.range(n_items), (1.0, 5.0))


def test_pair_dots_in_blocks_equal_one_dot_per_pair():
    rng = np.random.default_rng(0)
    U, V = rng.normal(size=(50, 7)), rng.normal(size=(60, 7))
    users, items = rng.integers(0, 50, 10_001), rng.integers(0, 60, 10_001)  # 3 blocks, the last one short
    expected = np.array([U[u] @ V[i] for u, i in zip(users, items)])
    np.testing.assert_allclose(pair_dots(U, V, users, items), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pair_dots(U, V, users, items, block=7), expected, rtol=1e-12, atol=1e-12)
    assert pair_dots(U, V, users[:0], items[:0]).shape == (0,)


def test_scores_of_known_and_unknown_pairs_equal_the_formula():
    rng = np.random.default_rng(1)
    model = _random_model(rng)
    users, items = rng.integers(-1, 70, 9000), rng.integers(-1, 90, 9000)
    expected = np.full(len(users), model.global_mean)
    for k, (u, i) in enumerate(zip(users, items)):
        expected[k] += (model.user_bias[u] if u >= 0 else 0.0) + (model.item_bias[i] if i >= 0 else 0.0)
        if u >= 0 and i >= 0:
            expected[k] += model.user_factors[u] @ model.item_factors[i]
    np.testing.assert_allclose(model.scores(users, items), np.clip(expected, 1.0, 5.0), rtol=1e-12, atol=1e-12)
    known = (users >= 0) & (items >= 0)
    np.testing.assert_allclose(model.scores(users[known], items[known]), np.clip(expected[known], 1.0, 5.0),
                               rtol=1e-12, atol=1e-12)


def test_ranking_scores_as_one_product_equal_the_sum_of_their_terms():
    rng = np.random.default_rng(2)
    model = _random_model(rng)
    users = np.array([5, 0, 69, 5, 33])
    expected = (model.global_mean + model.user_bias[users][:, None] + model.item_bias[None, :]
                + model.user_factors[users] @ model.item_factors.T)
    got = model.ranking_scores(users)
    assert got.shape == (5, 90) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    got[0, 0] = np.inf  # a fresh array: the model is untouched
    np.testing.assert_allclose(model.ranking_scores(users), expected, rtol=1e-12, atol=1e-12)


class _ViewScores:
    """A predictor whose scores are a view of its own array (masking them in place would corrupt it)."""

    def __init__(self, scores):
        self.scores_ = scores
        self.user_ids = IdMap.range(scores.shape[0])
        self.item_ids = IdMap.range(scores.shape[1])

    def ranking_scores(self, users):
        users = np.asarray(users)
        return self.scores_[users.min():users.max() + 1][users - users.min()] if users.size > 1 else \
            self.scores_[users[0]:users[0] + 1]


@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_top_n_on_threads_equals_a_full_sort_of_each_user(monkeypatch, threads):
    from mfcli.completion.data import Pattern
    from mfcli.completion.ranking import top_n

    monkeypatch.setenv("MFCLI_THREADS", threads)
    rng = np.random.default_rng(3)
    model = _random_model(rng, n_users=41, n_items=37)
    seen = rng.random((41, 37)) < 0.3
    exclude = Pattern.from_pairs(*np.nonzero(seen), seen.shape)
    users = rng.permutation(41)
    items, values = top_n(model, users, 6, exclude)
    scores = model.ranking_scores(np.arange(41))
    for row, user in enumerate(users):
        candidates = np.flatnonzero(~seen[user])
        expected = candidates[np.argsort(-scores[user, candidates], kind="stable")][:6]
        np.testing.assert_array_equal(items[row], expected)
        np.testing.assert_allclose(values[row], scores[user, expected], rtol=1e-12)


def test_top_n_never_masks_the_predictors_own_scores():
    from mfcli.completion.data import Pattern
    from mfcli.completion.ranking import top_n

    scores = np.arange(20.0).reshape(4, 5)
    predictor = _ViewScores(scores)
    exclude = Pattern.from_pairs(np.array([0, 1, 2]), np.array([4, 4, 4]), (4, 5))
    items, _ = top_n(predictor, np.array([0]), 2, exclude)
    assert items.tolist() == [[3, 2]]
    np.testing.assert_array_equal(scores, np.arange(20.0).reshape(4, 5))


@pytest.mark.parametrize("ids", [[3, 9, 3], ["a", "b", "a"], [1, 1]])
def test_id_maps_refuse_repeated_ids(ids):
    with pytest.raises(DataError, match="unique"):
        IdMap(ids)


def test_id_maps_of_distinct_ids_index_them():
    ids = IdMap(["z", "a", "m"])
    assert ids.index(["a", "z", "q"]).tolist() == [1, 0, -1]
    assert len(IdMap([])) == 0 and len(IdMap([7])) == 1


@pytest.mark.parametrize("implicit", [False, True])
def test_a_fit_does_not_depend_on_its_number_of_row_threads(monkeypatch, implicit):
    """Each block of rows is solved alone and writes only its rows, so one thread and several
    give the same factors, bit for bit; BLAS's thread count is given back after the fit."""
    from mfcli.completion.models import fit_als, fit_wals
    from mfcli.models.threads import _blas_libraries

    rng = np.random.default_rng(4)
    users, items = np.nonzero(rng.random((120, 80)) < 0.2)
    ratings = Ratings(users, items, rng.integers(1, 6, len(users)).astype(float), IdMap.range(120),
                      IdMap.range(80))
    before = [library.get_num_threads() for library in _blas_libraries()]
    models = []
    for threads in ("1", "2"):
        monkeypatch.setenv("MFCLI_THREADS", threads)
        model, _ = fit_wals(ratings, rank=5, reg=1.0, implicit=True, epochs=4) if implicit else \
            fit_als(ratings, rank=5, epochs=4)
        models.append(model)
    np.testing.assert_array_equal(models[0].user_factors, models[1].user_factors)
    np.testing.assert_array_equal(models[0].item_factors, models[1].item_factors)
    np.testing.assert_array_equal(models[0].user_bias, models[1].user_bias)
    assert [library.get_num_threads() for library in _blas_libraries()] == before


@pytest.mark.parametrize("merge_cells", [0, 64, 2048])
def test_row_blocks_cover_every_row_once_and_each_merged_class_pads_within_the_bound(merge_cells):
    from mfcli.completion.factors import _row_blocks

    rng = np.random.default_rng(5)
    counts = rng.integers(0, 120, 300)
    counts[:20] = 0
    indptr = np.concatenate([[0], np.cumsum(counts)])
    blocks = list(_row_blocks(indptr, max_cells=4096, merge_cells=merge_cells))
    rows = np.concatenate([block for block, _ in blocks])
    np.testing.assert_array_equal(np.sort(rows), np.flatnonzero(counts))  # each nonempty row, once
    step = np.maximum(1, 1 << np.maximum(np.floor(np.log2(np.maximum(counts, 1))).astype(int) - 2, 0))
    own_length = -(-counts // step) * step  # the row's length class
    for block, positions in blocks:
        assert positions.shape[0] == len(block) and positions.size <= 4096 or len(block) == 1
        for row, entries in zip(block, positions):
            real = entries[entries < indptr[-1]]
            np.testing.assert_array_equal(real, np.arange(indptr[row], indptr[row + 1]))
        padding_beyond_class = int((positions.shape[1] - own_length[block]).sum())
        joined = len(np.unique(own_length[block])) - 1  # classes joined to the first: each pads <= merge_cells
        if merge_cells == 0:
            assert joined == 0 and padding_beyond_class == 0  # one length class per block
        assert padding_beyond_class <= merge_cells * joined


def test_conjugate_gradient_sweeps_on_merged_blocks_equal_those_on_one_class_per_block():
    from mfcli.completion.data import Pattern
    from mfcli.completion.factors import RowPlan, cg_solve_rows

    rng = np.random.default_rng(6)
    n_rows, n_cols, k = 120, 70, 6
    counts = rng.integers(1, 40, n_rows)
    cols = [np.sort(rng.choice(n_cols, c, replace=False)) for c in counts]
    pattern = Pattern(np.concatenate([[0], np.cumsum(counts)]), np.concatenate(cols), (n_rows, n_cols))
    weights = 1.0 + rng.uniform(0, 3, pattern.nnz)
    targets = np.ones(pattern.nnz)
    features, start = rng.normal(size=(n_cols, k)), rng.normal(size=(n_rows, k))
    one_class = RowPlan(pattern, weights, 1.0, max_cells=1 << 15)
    merged = RowPlan(pattern, weights, 1.0, max_cells=1 << 15, merge_cells=2048)
    assert len(merged.blocks) < len(one_class.blocks)
    x1, q1 = cg_solve_rows(pattern, targets, weights, features, 2.0, 1.0, start, 3, plan=one_class)
    x2, q2 = cg_solve_rows(pattern, targets, weights, features, 2.0, 1.0, start, 3, plan=merged)
    np.testing.assert_allclose(x2, x1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(q2, q1, rtol=1e-4, atol=1e-5)
