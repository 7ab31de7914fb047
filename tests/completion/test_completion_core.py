"""Matrix completion core: id maps, splits, solvers against independent computations."""

from __future__ import annotations

import numpy as np
import pytest

from mfcli.completion import models as M
from mfcli.completion.data import IdMap, Ratings, areas, holdout_split, mask_split, random_split
from mfcli.completion.evaluate import evaluate, extend_factor_model, restrict
from mfcli.completion.factors import solve_rows
from mfcli.completion.persist import factor_model_from_result, factor_model_to_result, predictor_from_result
from mfcli.errors import DataError, ParameterError
from mfcli.metrics import mae, rmse


def planted(n_users=60, n_items=50, rank=3, density=0.6, noise=0.01, seed=0, offset=3.0):
    """Ratings of a planted low-rank matrix plus noise, observed at random (ids 1-based ints)."""
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(n_users, rank))
    V = rng.normal(size=(n_items, rank))
    full = offset + U @ V.T / np.sqrt(rank)
    observed = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(observed)
    values = full[users, items] + noise * rng.normal(size=len(users))
    return Ratings.from_triplets(users + 1, items + 1, values), full


# ---------------------------------------------------------------- ids and splits

def test_id_map_round_trip_integers_and_strings():
    ids = np.array([42, 7, 1000, 3])
    idmap = IdMap(ids)
    assert np.array_equal(idmap.ids[idmap.index(ids)], ids)
    assert list(idmap.index([7, 5, "42", "x"])) == [1, -1, 0, -1]
    names = IdMap(np.array(["bob", "alice", "carol"]))
    assert np.array_equal(names.ids[names.index(["carol", "bob"])], ["carol", "bob"])
    assert names.index(["dave"])[0] == -1
    extended = names.extend(["dave", "alice", "erin"])
    assert list(extended.ids) == ["bob", "alice", "carol", "dave", "erin"]


def test_triplets_map_ids_and_back():
    ratings = Ratings.from_triplets(["u2", "u1", "u2"], [10, 20, 20], [1.0, 2.0, 3.0])
    assert ratings.shape == (2, 2)
    back = list(zip(ratings.user_ids.ids[ratings.users], ratings.item_ids.ids[ratings.items], ratings.values))
    assert back == [("u2", 10, 1.0), ("u1", 20, 2.0), ("u2", 20, 3.0)]


def _triplets(ratings):
    return list(zip(ratings.user_ids.ids[ratings.users].tolist(), ratings.item_ids.ids[ratings.items].tolist(),
                    ratings.values.tolist()))


def test_reindex_keeps_or_drops_unknown_ids_and_compact_keeps_every_rating():
    ratings = Ratings.from_triplets(["u1", "u2", "u3", "u1"], [10, 20, 20, 30], [1.0, 2.0, 3.0, 4.0])
    users, items = IdMap(np.array(["u3", "u1"])), IdMap(np.array([20, 10]))
    kept = ratings.reindex(users, items)
    assert list(kept.users) == [1, -1, 0, 1] and list(kept.items) == [1, 0, 0, -1]
    dropped = ratings.reindex(users, items, drop_unknown=True)
    assert _triplets(dropped) == [("u1", 10, 1.0), ("u3", 20, 3.0)] and dropped.shape == (2, 2)
    sparse = ratings.subset(np.array([True, False, True, False]))  # u2 and item 30 have no ratings left
    compact = sparse.compact()
    assert compact.shape == (2, 2) and _triplets(compact) == _triplets(sparse)
    assert ratings.compact() is ratings


def test_drop_duplicates_keeps_the_first_rating_of_each_pair():
    ids = IdMap(np.array([1, 2]))
    ratings = Ratings([0, 1, 0, 0], [1, 1, 1, 0], [5.0, 4.0, 3.0, 2.0], ids, ids)
    assert _triplets(ratings.drop_duplicates()) == [(1, 2, 5.0), (2, 2, 4.0), (1, 1, 2.0)]
    with pytest.raises(DataError, match="1 duplicate"):
        ratings.check_duplicates()


def test_duplicate_ratings_are_refused():
    with pytest.raises(DataError, match="duplicate"):
        Ratings.from_triplets([1, 2, 1], [5, 5, 5], [1.0, 2.0, 3.0])


def test_nan_ratings_are_refused():
    with pytest.raises(DataError, match="NaN"):
        Ratings.from_triplets([1, 2], [5, 5], [1.0, np.nan])


def test_random_split_is_a_disjoint_partition():
    ratings, _ = planted()
    train, test = random_split(ratings, 0.25, seed=3)
    assert len(train) + len(test) == len(ratings)
    assert abs(len(test) - 0.25 * len(ratings)) <= 1
    keys = lambda r: set(zip(r.users.tolist(), r.items.tolist()))  # noqa: E731
    assert not keys(train) & keys(test)
    again, _ = random_split(ratings, 0.25, seed=3)
    assert np.array_equal(again.values, train.values)
    with pytest.raises(ParameterError):
        random_split(ratings, 1.5)
    with pytest.raises(DataError, match="empty"):
        random_split(ratings.subset(np.arange(3)), 0.01)


def test_mask_split_selects_the_masked_ratings():
    import scipy.sparse as sp

    ratings, _ = planted(n_users=10, n_items=8)
    matrix = Ratings.from_sparse(ratings.to_csr())
    mask = sp.random(10, 8, density=0.5, random_state=1, format="csr")
    mask.data[:] = 1
    (part,) = mask_split(matrix, [mask])
    expected = np.asarray(mask[matrix.users, matrix.items]).ravel() != 0
    assert len(part) == expected.sum()
    with pytest.raises(DataError, match="shape"):
        mask_split(matrix, [sp.csr_matrix((3, 3))])


def test_holdout_areas_partition_the_ratings():
    ratings, _ = planted()
    seen_users, seen_items = holdout_split(ratings, 0.2, 0.3, seed=1)
    masks = areas(ratings, seen_users, seen_items)
    total = sum(mask.astype(int) for mask in masks.values())
    assert np.all(total == 1)
    assert (~seen_users).sum() == 12 and (~seen_items).sum() == 15
    area_one = restrict(ratings, seen_users, seen_items)
    assert len(area_one) == masks["I"].sum() and area_one.shape == (48, 35)


# ---------------------------------------------------------------- solvers

def test_gram_identity_equals_dense_weighted_solve():
    """solve_rows with w0 on unobserved entries == the normal equations over every column."""
    rng = np.random.default_rng(0)
    n_rows, n_cols, k = 7, 11, 3
    observed = rng.random((n_rows, n_cols)) < 0.4
    observed[0] = False  # a row without observations
    targets = rng.normal(size=(n_rows, n_cols))
    weights = rng.uniform(0.5, 2.0, size=(n_rows, n_cols))
    features = np.hstack([rng.normal(size=(n_cols, k)), np.ones((n_cols, 1))])
    reg = rng.uniform(0.1, 1.0, size=(n_rows, k + 1))
    w0 = 0.3
    import scipy.sparse as sp

    matrix = sp.csr_matrix(observed.astype(float))
    rows, cols = np.nonzero(observed)  # row-major, the CSR order
    got = solve_rows(matrix, targets[rows, cols], features, reg, weights[rows, cols], w0, n_factors=k)
    for i in range(n_rows):
        A = np.diag(reg[i]).astype(float)
        b = np.zeros(k + 1)
        for j in range(n_cols):
            f = features[j]
            if observed[i, j]:
                A += weights[i, j] * np.outer(f, f)
                b += weights[i, j] * targets[i, j] * f
            else:
                fk = np.concatenate([f[:k], [0.0]])  # the bias is not pulled on unobserved entries
                A += w0 * np.outer(fk, fk)
        np.testing.assert_allclose(got[i], np.linalg.solve(A, b), rtol=1e-5, atol=1e-6)


def _objective(model, train, reg, reg_bias, w0):
    """The WALS objective of the models docstring, computed densely."""
    raw = model.global_mean + model.user_bias[train.users] + model.item_bias[train.items] + \
        np.einsum("ij,ij->i", model.user_factors[train.users], model.item_factors[train.items])
    fit = np.sum((train.values - raw) ** 2)
    interaction = model.user_factors @ model.item_factors.T
    observed = np.zeros(train.shape, dtype=bool)
    observed[train.users, train.items] = True
    unobserved = w0 * np.sum(interaction[~observed] ** 2)
    n = train.user_counts()
    m = train.item_counts()
    penalty = reg * (n @ np.sum(model.user_factors**2, 1) + m @ np.sum(model.item_factors**2, 1)) + \
        reg_bias * (n @ model.user_bias**2 + m @ model.item_bias**2)
    return fit + unobserved + penalty


@pytest.mark.parametrize("w0", [0.0, 0.05])
def test_wals_objective_never_increases(w0):
    ratings, _ = planted(noise=0.3)
    values = []
    for epochs in range(1, 6):
        model, _ = M.fit_wals(ratings, rank=3, reg=0.05, reg_bias=0.02, w0=w0, epochs=epochs, seed=1)
        values.append(_objective(model, ratings, 0.05, 0.02, w0))
    assert all(b <= a * (1 + 1e-9) for a, b in zip(values, values[1:])), values


@pytest.mark.parametrize("fit", [M.fit_als, M.fit_wals, M.fit_sgd])
def test_recovers_planted_low_rank_matrix(fit):
    """Held-out entries of a rank-3 matrix (noise 0.01) are predicted within a small multiple of the noise
    (SGD: much better than the baseline)."""
    ratings, full = planted(noise=0.01)
    train, test = random_split(ratings, 0.2, seed=0)
    if fit is M.fit_sgd:
        model, _ = fit(train, rank=3, reg=0.001, reg_bias=0.001, lr=0.05, epochs=150, batch_size=256)
    else:
        model, _ = fit(train, rank=3, reg=1e-4, reg_bias=1e-4, epochs=60)
    model.clip = False
    error = rmse(test.values, model.scores(test.users, test.items))
    baseline, _ = M.fit_baseline(train, reg=0.0)
    baseline.clip = False
    baseline_error = rmse(test.values, baseline.scores(test.users, test.items))
    if fit is M.fit_sgd:
        assert error < 0.2 * baseline_error
    else:
        assert error < 0.05, error
    assert baseline_error > 0.5


def test_baseline_is_exact_on_an_additive_matrix():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=20), rng.normal(size=15)
    full = 3.0 + a[:, None] + b[None, :]
    users, items = np.nonzero(rng.random(full.shape) < 0.7)
    ratings = Ratings.from_triplets(users, items, full[users, items])
    train, test = random_split(ratings, 0.2, seed=0)
    model, _ = M.fit_baseline(train, reg=0.0, epochs=200)
    model.clip = False
    assert rmse(test.values, model.scores(test.users, test.items)) < 1e-4


def test_zero_filled_svd_is_the_best_rank_k_approximation():
    ratings, _ = planted(n_users=20, n_items=15)
    model, _ = M.fit_svd(ratings, rank=4)
    dense = ratings.to_csr().toarray()
    u, s, vt = np.linalg.svd(dense)
    np.testing.assert_allclose(model.user_factors @ model.item_factors.T, (u[:, :4] * s[:4]) @ vt[:4], atol=1e-8)


def test_fold_in_equals_an_independent_ridge_solve():
    ratings, _ = planted(noise=0.1)
    model, _ = M.fit_als(ratings, rank=3, reg=0.05, reg_bias=0.02, epochs=5)
    mine = ratings.users == 4
    items, values = ratings.items[mine], ratings.values[mine]
    bias, factors = model.fold_in(items, values)
    F = np.hstack([model.item_factors[items], np.ones((len(items), 1))])
    t = values - model.global_mean - model.item_bias[items]
    n = len(items)
    A = F.T @ F + np.diag([0.05 * n] * 3 + [0.02 * n])
    expected = np.linalg.solve(A, F.T @ t)
    np.testing.assert_allclose(np.append(factors, bias), expected, rtol=1e-6)


@pytest.mark.parametrize("fit", [
    lambda r: M.fit_als(r, rank=3, epochs=3),
    lambda r: M.fit_wals(r, rank=3, w0=0.05, frequency_power=0.5, epochs=3),
    lambda r: M.fit_wals(r.subset(r.values >= 0), rank=3, implicit=True, alpha=0.5, epochs=3),
    lambda r: M.fit_svd(r, rank=3),
])
def test_batched_fold_in_equals_one_row_at_a_time(fit):
    ratings, _ = planted(noise=0.1)
    model, _ = fit(ratings)
    rng = np.random.default_rng(1)
    rows = rng.integers(0, 7, 120)  # row 6 may be empty, row 7 is: both get zeros
    items = rng.integers(0, ratings.n_items, 120)
    keep = np.unique(rows * ratings.n_items + items, return_index=True)[1]
    rows, items = rows[keep], items[keep]
    values = rng.uniform(1, 5, len(rows))
    biases, factors = model.fold_in_rows(rows, items, values, 8)
    for row in range(8):
        mine = rows == row
        bias, expected = model.fold_in(items[mine], values[mine]) if mine.any() else (0.0, np.zeros(3))
        assert biases[row] == bias and np.array_equal(factors[row], expected)


def test_implicit_mode_ranks_a_users_block_first():
    """Two groups of users each consume their own block of items; held-out block items rank on top."""
    rng = np.random.default_rng(0)
    users, items, counts = [], [], []
    for user in range(40):
        block = np.arange(0, 10) if user < 20 else np.arange(10, 20)
        for item in rng.choice(block, 6, replace=False):
            users.append(user)
            items.append(item)
            counts.append(float(rng.integers(1, 5)))
    ratings = Ratings.from_triplets(users, items, counts)
    model, _ = M.fit_wals(ratings, rank=2, reg=0.1, implicit=True, alpha=2.0, epochs=10)
    scores = model.user_scores(0)
    seen = set(ratings.items[ratings.users == 0].tolist())
    unseen_ranked = [i for i in np.argsort(-scores) if i not in seen]
    own_block = set(model.item_ids.index(np.arange(0, 10)).tolist())
    assert set(unseen_ranked[:4]) <= own_block


def test_unseen_users_and_items_are_counted_and_get_the_baseline():
    ratings, _ = planted()
    model, _ = M.fit_als(ratings, rank=2, epochs=3)
    test = Ratings.from_triplets([1, 999, 1], [1, 2, 888], [3.0, 4.0, 2.0])
    report = evaluate(model, test)
    assert report["unseen_users"] == 1 and report["unseen_items"] == 1 and report["n_test_unseen"] == 2
    item = model.item_ids.index([2])[0]
    assert model.predict([999], [2])[0] == pytest.approx(np.clip(model.global_mean + model.item_bias[item], 1, 9))
    assert model.predict([999], [888])[0] == pytest.approx(model.global_mean)


def test_extension_folds_in_unseen_rows_and_columns():
    ratings, _ = planted(noise=0.05)
    seen_users, seen_items = holdout_split(ratings, 0.2, 0.2, seed=0)
    model, _ = M.fit_als(restrict(ratings, seen_users, seen_items), rank=3, reg=1e-3, reg_bias=1e-3, epochs=30)
    extended = extend_factor_model(model, ratings)
    assert len(extended.user_ids) == ratings.n_users and len(extended.item_ids) == ratings.n_items
    new_user = ratings.user_ids.ids[~seen_users][0]
    row = extended.user_ids.index([new_user])[0]
    mine = (ratings.user_ids.ids[ratings.users] == new_user) & seen_items[ratings.items]
    bias, factors = model.fold_in(model.item_ids.index(ratings.item_ids.ids[ratings.items[mine]]),
                                  ratings.values[mine])
    np.testing.assert_allclose(extended.user_factors[row], factors)
    # Area IV (unseen user, unseen item) is predicted far better than by the global mean.
    four = ratings.subset(areas(ratings, seen_users, seen_items)["IV"])
    users = extended.user_ids.index(four.user_ids.ids[four.users])
    items = extended.item_ids.index(four.item_ids.ids[four.items])
    assert rmse(four.values, extended.scores(users, items)) < 0.5 * np.std(four.values)


def test_result_round_trip_gives_identical_predictions(tmp_path):
    from mfcli.io.result import read_result, write_result

    ratings = Ratings.from_triplets(["a", "b", "c", "a", "b"], ["x", "y", "x", "y", "z"], [1, 2, 3, 4, 5])
    model, history = M.fit_als(ratings, rank=2, epochs=3)
    result = factor_model_to_result("als", model, ratings, {"rank": 2}, history)
    write_result(result, tmp_path / "m.h5")
    loaded = read_result(tmp_path / "m.h5")
    again = factor_model_from_result(loaded)
    users, items = np.array(["a", "c", "q"]), np.array(["z", "y", "x"])
    np.testing.assert_array_equal(again.predict(users, items), model.predict(users, items))
    assert list(predictor_from_result(loaded).item_ids.ids) == ["x", "y", "z"]


def test_rmse_and_mae_match_scikit_learn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=100), rng.normal(size=100)
    assert rmse(a, b) == pytest.approx(np.sqrt(sklearn_metrics.mean_squared_error(a, b)), rel=1e-12)
    assert mae(a, b) == pytest.approx(sklearn_metrics.mean_absolute_error(a, b), rel=1e-12)
    assert np.isnan(rmse([], []))
    with pytest.raises(ValueError):
        rmse([1, 2], [1])


@pytest.mark.parametrize("name", ["baseline", "als", "wals", "sgd", "bpr", "svd"])
def test_completion_estimators_refuse_an_unknown_parameter_with_the_valid_ones(name):
    """Today an unknown (or misspelt) parameter is dropped silently."""
    from mfcli.completion.evaluate import make_estimator
    from mfcli.completion.models import ESTIMATORS

    with pytest.raises(ParameterError, match=rf"model {name} has no parameter 'epocs' \(its parameters: ") as error:
        make_estimator(name, epocs=5)
    assert all(accepted in str(error.value) for accepted in ESTIMATORS[name].accepts)
    accepted = make_estimator(name, epochs=5) if "epochs" in ESTIMATORS[name].accepts else make_estimator(name)
    assert accepted.params.get("epochs", 5) == 5


def test_completion_estimators_pass_what_they_accept_to_their_fit_function():
    """Every accepted name is a parameter of the model's fit function (none dropped on the way)."""
    import inspect

    from mfcli.completion import models

    fits = {"baseline": models.fit_baseline, "als": models.fit_als, "wals": models.fit_wals, "sgd": models.fit_sgd,
            "bpr": models.fit_bpr, "svd": models.fit_svd}
    for name, cls in models.ESTIMATORS.items():
        signature = inspect.signature(fits[name]).parameters
        assert set(cls.accepts) <= set(signature), name
