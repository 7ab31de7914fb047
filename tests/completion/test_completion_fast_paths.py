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
