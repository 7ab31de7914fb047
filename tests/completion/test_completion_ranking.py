"""Ranking metrics, top-N lists, implicit-feedback models (WALS with conjugate gradients, BPR)
and batch recommendations, each against an independent computation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp

from mfcli.completion import models as M
from mfcli.completion.data import IdMap, Ratings, random_split
from mfcli.completion.evaluate import evaluate_ranking
from mfcli.completion.factors import FactorModel, cg_solve_rows, solve_rows
from mfcli.completion.ranking import recommend, seen_matrix, top_n, top_n_of_scores
from mfcli.metrics import ranking_metrics


# ---------------------------------------------------------------- brute force, written independently

def brute_force_metrics(lists: list[list[int]], relevant: list[set[int]], k: int, n_items: int) -> dict:
    """Precision, recall, nDCG, MAP at k and coverage, one user at a time with Python sets."""
    sums = {"precision": 0.0, "recall": 0.0, "ndcg": 0.0, "map": 0.0}
    users = 0
    for items, truth in zip(lists, relevant):
        if not truth:
            continue
        users += 1
        top = [item for item in items[:k] if item >= 0]
        gains = [1.0 if item in truth else 0.0 for item in top]
        sums["precision"] += sum(gains) / k
        sums["recall"] += sum(gains) / len(truth)
        dcg = sum(gain / math.log2(position + 2) for position, gain in enumerate(gains))
        ideal = sorted([1.0] * len(truth) + [0.0] * k, reverse=True)[:k]
        sums["ndcg"] += dcg / sum(gain / math.log2(position + 2) for position, gain in enumerate(ideal))
        hits, precisions = 0, []
        for position, gain in enumerate(gains, start=1):
            if gain:
                hits += 1
                precisions.append(hits / position)
        sums["map"] += sum(precisions) / min(k, len(truth))
    listed = {item for items in lists for item in items[:k] if item >= 0}
    out = {key: value / users for key, value in sums.items()}
    out["coverage"] = len(listed) / n_items
    out["n_users"] = users
    return out


def as_csr(relevant: list[set[int]], n_items: int) -> sp.csr_matrix:
    rows = [u for u, items in enumerate(relevant) for _ in items]
    cols = [i for items in relevant for i in sorted(items)]
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(relevant), n_items))


# ---------------------------------------------------------------- metrics

def test_ranking_metrics_on_a_hand_worked_example():
    # list [3, 1, 4], relevant {3, 4}: hits at ranks 1 and 3.
    got = ranking_metrics(np.array([[3, 1, 4]]), as_csr([{3, 4}], 6), 3, 6)
    assert got["precision"] == pytest.approx(2 / 3)
    assert got["recall"] == pytest.approx(1.0)
    assert got["ndcg"] == pytest.approx((1 + 1 / 2) / (1 + 1 / math.log2(3)))
    assert got["map"] == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert got["coverage"] == pytest.approx(3 / 6) and got["n_users"] == 1


def test_ranking_metrics_match_a_brute_force_computation():
    rng = np.random.default_rng(0)
    n_users, n_items, k = 40, 30, 7
    lists, relevant = [], []
    for user in range(n_users):
        items = rng.permutation(n_items)[:k].tolist()
        if user % 5 == 0:  # a short list: fewer candidates than k
            items = items[:3] + [-1] * (k - 3)
        lists.append(items)
        size = int(rng.integers(0, 12))  # users with no relevant item are left out
        relevant.append(set(rng.choice(n_items, size, replace=False).tolist()))
    got = ranking_metrics(np.array(lists), as_csr(relevant, n_items), k, n_items)
    expected = brute_force_metrics(lists, relevant, k, n_items)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key


def test_ranking_metrics_perfect_and_empty_lists():
    relevant = as_csr([{0, 1}, {2}], 5)
    perfect = ranking_metrics(np.array([[0, 1, 4], [2, 3, 4]]), relevant, 3, 5)
    assert perfect["ndcg"] == pytest.approx(1.0) and perfect["map"] == pytest.approx(1.0)
    assert perfect["recall"] == pytest.approx(1.0)
    empty = ranking_metrics(-np.ones((2, 3), dtype=int), relevant, 3, 5)
    assert empty["precision"] == empty["ndcg"] == empty["map"] == 0.0 and empty["coverage"] == 0.0


# ---------------------------------------------------------------- top-N

class DenseScores:
    """A predictor stub with given ranking scores."""

    def __init__(self, scores):
        self.scores_ = np.asarray(scores, dtype=np.float64)
        self.user_ids = IdMap.range(self.scores_.shape[0])
        self.item_ids = IdMap.range(self.scores_.shape[1])

    def ranking_scores(self, users):
        return self.scores_[users]


def test_top_n_equals_a_full_sort_without_the_seen_items(monkeypatch):
    import mfcli.completion.ranking as ranking

    monkeypatch.setattr(ranking, "BLOCK_CELLS", 64)  # several blocks
    rng = np.random.default_rng(1)
    scores = np.round(rng.normal(size=(25, 13)), 1)  # with ties
    seen = rng.random(scores.shape) < 0.4
    seen[3] = True  # a user who has seen everything
    seen[4, :-2] = True  # two candidates left for n = 5
    users = np.array([0, 3, 4, 7, 24, 12])
    exclude = sp.csr_matrix(seen)
    items, values = top_n(DenseScores(scores), users, 5, exclude)
    for row, user in enumerate(users):
        candidates = [j for j in range(13) if not seen[user, j]]
        expected = sorted(candidates, key=lambda j: (-scores[user, j], j))[:5]
        listed = [int(j) for j in items[row] if j >= 0]
        assert listed == expected
        assert np.all(np.isnan(values[row, len(expected):]))
        np.testing.assert_array_equal(values[row, :len(expected)], scores[user, expected])


def test_top_n_of_scores_keeps_more_than_the_catalog_padded():
    items, values = top_n_of_scores(np.array([[0.5, 2.0, -np.inf]]), 4)
    assert items.tolist() == [[1, 0, -1, -1]] and np.isnan(values[0, 2:]).all()


def planted_interactions(n_users=60, n_items=40, groups=3, per_user=8, seed=0):
    """Each group of users interacts with its own block of items (values 1-5)."""
    rng = np.random.default_rng(seed)
    block = n_items // groups
    users, items, values = [], [], []
    for user in range(n_users):
        group = user % groups
        for item in rng.choice(np.arange(group * block, (group + 1) * block), per_user, replace=False):
            users.append(user)
            items.append(item)
            values.append(float(rng.integers(1, 6)))
    return Ratings.from_triplets(users, items, values)


def brute_force_evaluation(model: FactorModel, train: Ratings, test: Ratings, k: int) -> dict:
    """Every item scored by model.scores (unclipped), the training items removed, sorted by score."""
    model = FactorModel(model.global_mean, model.user_bias, model.item_bias, model.user_factors,
                        model.item_factors, model.user_ids, model.item_ids, model.rating_range, False, model.solver)
    n_items = len(model.item_ids)
    lists, relevant = [], []
    for user in range(len(model.user_ids)):
        uid = model.user_ids.ids[user]
        seen = set(model.item_ids.index(train.item_ids.ids[train.items[train.user_ids.ids[train.users] == uid]]))
        held = set(model.item_ids.index(test.item_ids.ids[test.items[test.user_ids.ids[test.users] == uid]]))
        held = {i for i in held if i >= 0} - seen
        if not held:
            continue
        scores = model.scores(np.full(n_items, user), np.arange(n_items))
        candidates = sorted((j for j in range(n_items) if j not in seen), key=lambda j: (-scores[j], j))
        lists.append((candidates[:k] + [-1] * k)[:k])
        relevant.append(held)
    return brute_force_metrics(lists, relevant, k, n_items)


@pytest.mark.parametrize("fit", [
    lambda train: M.fit_als(train, rank=3, epochs=5),
    lambda train: M.fit_wals(train, rank=3, implicit=True, reg=0.5, epochs=5),
    lambda train: M.fit_bpr(train, rank=4, epochs=5, batch_size=64),
])
def test_evaluate_ranking_matches_a_brute_force_evaluation(fit):
    ratings = planted_interactions()
    train, test = random_split(ratings, 0.25, seed=2)
    model, _ = fit(train)
    got = evaluate_ranking(model, train, test, k=5)
    expected = brute_force_evaluation(model, train, test, 5)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9), key


def test_recommend_api_lists_unseen_items_of_the_given_users():
    ratings = planted_interactions()
    model, _ = M.fit_wals(ratings, rank=3, implicit=True, reg=0.5, epochs=5)
    users, items, scores = recommend(model, ratings, user_ids=[5, 0], n=4)
    assert users.tolist() == [5, 0] and items.shape == (2, 4)
    for uid, row in zip(users, items):
        seen = set(ratings.item_ids.ids[ratings.items[ratings.user_ids.ids[ratings.users] == uid]].tolist())
        assert not seen & set(row.tolist())
    assert np.all(np.diff(scores, axis=1) <= 0)
    with pytest.raises(Exception, match="not in the model"):
        recommend(model, ratings, user_ids=[999])


def test_seen_matrix_ignores_unknown_pairs():
    matrix = seen_matrix(np.array([0, 1, -1, 1]), np.array([2, 0, 1, 0]), (2, 3))
    assert matrix.toarray().tolist() == [[0, 0, 1], [1, 0, 0]]


# ---------------------------------------------------------------- implicit models

def test_conjugate_gradient_reaches_the_exact_solve():
    rng = np.random.default_rng(0)
    n_rows, n_cols, k = 9, 20, 4
    pattern = sp.csr_matrix(rng.random((n_rows, n_cols)) < 0.4)
    pattern.sort_indices()
    weights = 1.0 + 3.0 * rng.random(pattern.nnz)
    targets = np.ones(pattern.nnz)
    features = rng.normal(size=(n_cols, k))
    exact = solve_rows(pattern, targets, features, np.full((n_rows, k), 0.5), weights, 1.0)
    got, _ = cg_solve_rows(pattern, targets, weights, features, 0.5, 1.0, np.zeros((n_rows, k)), steps=3 * k)
    nonempty = np.diff(pattern.indptr) > 0
    np.testing.assert_allclose(got[nonempty], exact[nonempty], rtol=2e-3, atol=2e-4)


def test_conjugate_gradient_with_a_ridge_per_row_reaches_the_exact_solve():
    """Explicit ALS: features [v_j, 1] (the bias), unit weights, the ridge lambda n_i per row and
    per feature (reg on the factors, reg_bias on the bias), as HalfStep sets it up."""
    rng = np.random.default_rng(1)
    n_rows, n_cols, k = 9, 20, 4
    pattern = sp.csr_matrix(rng.random((n_rows, n_cols)) < 0.4)
    pattern.sort_indices()
    targets = rng.normal(size=pattern.nnz)
    features = np.hstack([rng.normal(size=(n_cols, k - 1)), np.ones((n_cols, 1))])
    counts = np.diff(pattern.indptr).astype(float)
    ridge = np.array([0.3] * (k - 1) + [0.05])[None, :] * counts[:, None]
    exact = solve_rows(pattern, targets, features, ridge)
    got, _ = cg_solve_rows(pattern, targets, np.ones(pattern.nnz), features, 0.0, 0.0, np.zeros((n_rows, k)),
                           steps=3 * k, row_reg=ridge)
    nonempty = counts > 0
    np.testing.assert_allclose(got[nonempty], exact[nonempty], rtol=2e-3, atol=2e-4)


@pytest.mark.parametrize("settings", [
    {}, {"w0": 0.05}, {"w0": 0.05, "frequency_power": 0.5}, {"implicit": True, "alpha": 2.0, "reg": 0.5},
    {"implicit": True, "alpha": 2.0, "reg": 0.5, "cg_steps": 3}, {"cg_steps": 3},
])
def test_the_solvers_objective_equals_a_direct_computation(settings):
    """The objective the ALS/WALS loop reports from its last solve equals factor_objective's, and
    factor_objective equals a dense computation over every entry."""
    ratings = planted_interactions(seed=3)
    settings = dict(settings)
    reg = settings.pop("reg", 0.05)
    model, history = M.fit_wals(ratings, rank=3, reg=reg, reg_bias=0.02, epochs=4, tol=0, **settings)
    weights = M.frequency_weights(ratings, settings["frequency_power"]) if "frequency_power" in settings else None
    direct = M.factor_objective(ratings, model, reg, 0.02, model.solver["w0"], weights)
    assert history["objective"][-1] == pytest.approx(direct, rel=1e-6)
    assert dense_objective(model, ratings, reg, 0.02, weights) == pytest.approx(direct, rel=1e-9)


def dense_objective(model, ratings, reg, reg_bias, weights=None):
    """sum over every entry of the weighted squared error, plus the penalty (dense matrices)."""
    n_users, n_items = len(model.user_ids), len(model.item_ids)
    observed = np.zeros((n_users, n_items), dtype=bool)
    observed[ratings.users, ratings.items] = True
    w = np.zeros((n_users, n_items))
    w[ratings.users, ratings.items] = 1.0 if weights is None else weights
    interaction = model.user_factors @ model.item_factors.T
    solver = model.solver
    if solver.get("implicit"):
        confidence = np.ones((n_users, n_items))
        confidence[ratings.users, ratings.items] = (1 + solver["alpha"] * ratings.values) * w[observed]
        preference = observed.astype(float)
        return float(np.sum(confidence * (preference - interaction) ** 2)
                     + reg * (np.sum(model.user_factors**2) + np.sum(model.item_factors**2)))
    r = np.zeros((n_users, n_items))
    r[ratings.users, ratings.items] = ratings.values
    predicted = model.global_mean + model.user_bias[:, None] + model.item_bias[None, :] + interaction
    value = np.sum(w[observed] * (r - predicted)[observed] ** 2) + solver["w0"] * np.sum(interaction[~observed] ** 2)
    n, m = observed.sum(1), observed.sum(0)
    value += reg * (n @ np.sum(model.user_factors**2, 1) + m @ np.sum(model.item_factors**2, 1))
    value += reg_bias * (n @ model.user_bias**2 + m @ model.item_bias**2)
    return float(value)


@pytest.mark.parametrize("fit", [
    lambda r: M.fit_wals(r, rank=3, implicit=True, reg=0.5, epochs=15),
    lambda r: M.fit_wals(r, rank=3, implicit=True, reg=0.5, epochs=15, cg_steps=3),
    lambda r: M.fit_bpr(r, rank=6, epochs=60, batch_size=64, lr=0.05),
])
def test_implicit_models_rank_the_users_own_block_first(fit):
    ratings = planted_interactions(n_users=60, n_items=45, groups=3, per_user=9)
    train, test = random_split(ratings, 0.3, seed=0)
    model, _ = fit(train)
    _, listed, _ = recommend(model, train, n=5)
    block_of_user = model.user_ids.ids % 3
    in_own_block = (listed // 15) == block_of_user[:, None]
    # Random lists of 5 among a user's ~39 unseen items would hold ~1.1 items of the own block
    # (~9 unseen items there): the block structure must be found.
    assert in_own_block.mean() > 0.9, in_own_block.mean()
    assert evaluate_ranking(model, train, test, k=5)["recall"] > 0.4


def test_bpr_scores_are_unclipped_and_item_bias_counts():
    model, _ = M.fit_bpr(planted_interactions(), rank=3, epochs=3, batch_size=64)
    assert model.rating_range is None and not model.clip
    expected = model.item_bias[None, :] + model.user_factors[:2] @ model.item_factors.T
    np.testing.assert_allclose(model.ranking_scores(np.array([0, 1])), expected)


# ---------------------------------------------------------------- command line

@pytest.fixture
def implicit_file(tmp_path):
    ratings = planted_interactions(n_users=60, n_items=45, groups=3, per_user=9)
    path = tmp_path / "plays.csv"
    lines = ["user,item,plays"] + [f"u{u},i{i},{v:g}" for u, i, v in
                                   zip(ratings.users, ratings.items, ratings.values)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("extra", [["-m", "wals", "--implicit"], ["-m", "bpr", "--epochs", "30"]])
def test_complete_reports_ranking_metrics_as_the_headline_of_implicit_feedback(invoke, implicit_file, extra):
    result = invoke("complete", str(implicit_file), *extra, "--rank", "3", "--top-k", "5", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["rmse"] is None and doc["mae"] is None and doc["implicit"] is True
    ranking = doc["ranking"]
    assert ranking["k"] == 5 and set(ranking) >= {"precision", "recall", "ndcg", "map", "coverage", "n_users"}
    assert 0 <= ranking["precision"] <= 1 and 0 <= ranking["ndcg"] <= 1
    assert "nDCG@5" in result.stderr and "RMSE" not in result.stderr


def test_complete_ranking_of_explicit_ratings_and_top_k_zero(invoke, implicit_file):
    result = invoke("complete", str(implicit_file), "--rank", "2", "--json")
    doc = json.loads(result.stdout)
    assert doc["rmse"] is not None and doc["ranking"]["k"] == 10 and "nDCG@10" in result.stderr
    result = invoke("complete", str(implicit_file), "--rank", "2", "--top-k", "0", "--json")
    assert "ranking" not in json.loads(result.stdout)
    result = invoke("complete", str(implicit_file), "-m", "bpr", "--top-k", "0")
    assert result.exit_code == 1 and "--top-k" in result.stderr


@pytest.fixture
def implicit_model(invoke, implicit_file, tmp_path):
    out = tmp_path / "model.h5"
    result = invoke("complete", str(implicit_file), "-m", "wals", "--implicit", "--rank", "3", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    return out


def test_recommend_all_users_equals_one_user_at_a_time(invoke, implicit_model):
    result = invoke("recommend", str(implicit_model), "--all-users", "-n", "4")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "user,rank,item,score"
    rows = [line.split(",") for line in lines[1:]]
    users = sorted({row[0] for row in rows})
    assert len(rows) == 4 * len(users) and len(users) == 60
    for user in ("u0", "u17", "u59"):
        single = invoke("recommend", str(implicit_model), "--user", user, "-n", "4").stdout.strip().splitlines()[1:]
        assert [f"{user},{line}" for line in single] == [",".join(row) for row in rows if row[0] == user]


def test_recommend_users_file_skips_unknown_ids_and_writes_a_file(invoke, implicit_model, tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("user\nu3\nnobody\nu4\n")
    out = tmp_path / "top.csv"
    result = invoke("recommend", str(implicit_model), "--users", str(users), "-n", "2", "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc == {"n_users": 2, "top": 2, "rows": 4, "unknown_users": 1, "output": str(out)}
    assert [line.split(",")[0] for line in out.read_text().splitlines()[1:]] == ["u3", "u3", "u4", "u4"]
    assert "1 user id(s)" in result.stderr
    again = invoke("recommend", str(implicit_model), "--users", str(users), "-o", str(out))
    assert again.exit_code == 1 and "--force" in again.stderr
    nobody = tmp_path / "nobody.txt"
    nobody.write_text("x\ny\n")
    result = invoke("recommend", str(implicit_model), "--users", str(nobody))
    assert result.exit_code == 1 and "none of the 2 users" in result.stderr
    result = invoke("recommend", str(implicit_model), "--all-users", "--json")
    assert result.exit_code == 1 and "-o FILE" in result.stderr
    result = invoke("recommend", str(implicit_model), "--all-users", "--user", "u3")
    assert result.exit_code == 1 and "one of" in result.stderr


def test_a_saved_bpr_model_recommends_for_known_and_new_users(invoke, implicit_file, tmp_path):
    out = tmp_path / "bpr.h5"
    result = invoke("complete", str(implicit_file), "-m", "bpr", "--rank", "4", "--epochs", "40", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    known = invoke("recommend", str(out), "--user", "u0", "-n", "3", "--json")
    assert known.exit_code == 0, known.stderr
    assert len(json.loads(known.stdout)["items"]) == 3
    new = tmp_path / "new.csv"
    new.write_text("item,plays\ni0,3\ni1,5\ni2,1\n")
    folded = invoke("recommend", str(out), "--new-ratings", str(new), "-n", "3", "--json")
    assert folded.exit_code == 0, folded.stderr
    items = [entry["item"] for entry in json.loads(folded.stdout)["items"]]
    assert len(items) == 3 and not {"i0", "i1", "i2"} & set(items)


def test_predict_reports_no_rmse_for_an_implicit_model(invoke, implicit_model, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("user,item,plays\nu0,i1,3\nu1,i2,5\n")
    result = invoke("predict", str(implicit_model), str(pairs), "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert "rmse" not in doc and len(doc["predictions"]) == 2 and "preferences" in result.stderr
