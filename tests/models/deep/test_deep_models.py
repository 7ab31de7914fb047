"""Deep factorizations: the survey's showcase, monotone refinement, hard H_l, consistent trees."""

from __future__ import annotations

import numpy as np
import pytest

from checks import hierarchy_groups
from mfcli.errors import ParameterError
from mfcli.hierarchy import to_json_dict, tree_from_result
from mfcli.models.deep import DEEP_MODELS, deep_factorize

SURVEY_LAYER1 = [[1, 2, 3, 4, 5], [6, 8, 9], [7, 10], [11, 12, 13, 14, 15]]
SURVEY_LAYER2 = [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13, 14, 15]]


def scene(m=30, n=600, seed=0):
    """Pixels of 5 materials in 3 families (two pairs of similar spectra and a singleton)."""
    rng = np.random.default_rng(seed)
    base = rng.random((m, 3)) ** 2
    materials = np.column_stack([base[:, 0], base[:, 0] + 0.3 * rng.random(m), base[:, 1],
                                 base[:, 1] + 0.3 * rng.random(m), base[:, 2]])
    labels = rng.integers(0, 5, n)
    X = materials[:, labels] * rng.uniform(0.7, 1.3, n) + 0.02 * rng.random((m, n))
    return X, labels


def groups_of_columns(result, layer: int):
    """1-based column groups of a layer, from the tree (independent of numbering)."""
    return hierarchy_groups(to_json_dict(tree_from_result(result)), layer)


def test_survey_showcase_ranks_4_3(survey_ratings):
    result = deep_factorize(survey_ratings, [4, 3], "deep-onmf", seed=0)
    assert groups_of_columns(result, 1) == SURVEY_LAYER1
    assert groups_of_columns(result, 2) == SURVEY_LAYER2
    tree = tree_from_result(result)
    merges = tree.merges(2)
    assert len(merges) == 1
    merged = sorted(sorted(int(j) + 1 for j in tree.cluster(1, child).members) for child in merges[0][1])
    assert merged == [[6, 8, 9], [7, 10]]


def test_deep_onmf_refinement_never_increases_the_global_loss():
    X, _ = scene()
    result = deep_factorize(X, [5, 4, 3, 2], "deep-onmf", tol=0, max_iter=15, seed=1)
    loss = result.history["global_loss"]
    assert loss.size == 16  # the initialization, then one value per sweep
    assert np.all(np.diff(loss) <= 1e-10 * loss[0])
    # the recorded loss is that of the stored factors: X ~= W_L H_L ... H_1
    layers = result.layers
    product = layers[-1].W.astype(np.float64)
    for layer in reversed(layers):
        product = product @ layer.H
    assert 0.5 * np.sum((X - product) ** 2) == pytest.approx(loss[-1], rel=1e-8)
    assert result.relative_error == pytest.approx(np.linalg.norm(X - product) / np.linalg.norm(X), rel=1e-8)


@pytest.mark.parametrize("seed", range(5))
def test_best_within_a_group_is_argmax_with_the_other_groups_rows_at_minus_infinity(seed):
    """Deep ONMF's tie-break: each column's best row among its group's rows (row 0 for a group
    without rows), as np.argmax with every other row at -inf; many ties (the first row wins)."""
    from mfcli.models.deep.onmf import best_within

    rng = np.random.default_rng(seed)
    for _ in range(40):
        r, n, groups = int(rng.integers(1, 10)), int(rng.integers(1, 60)), int(rng.integers(1, 4))
        scores = rng.integers(0, 4, (r, n)).astype(float)
        row_group = rng.integers(0, groups + 1, r)  # group `groups` is no group: some groups have no rows
        members = [np.flatnonzero(row_group == g) for g in range(groups)]
        group = rng.integers(0, groups, n)
        allowed = row_group[:, None] == group[None, :]
        expected = np.argmax(np.where(allowed, scores, -np.inf), axis=0)
        np.testing.assert_array_equal(best_within(scores, group, members), expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pixel_moves_from_the_layer1_scores_equal_the_direct_scores(monkeypatch, dtype):
    """Deep ONMF's global-loss sweep scores the top-level clusters from W_1^T X (r_1 rows) instead
    of taking z_k^T X as well (2 r_1 rows): the same moves, weights and X H_1^T to rounding."""
    from mfcli.models.deep.onmf import DeepONMF

    X, _ = scene(m=40, n=900, seed=4)
    X = X.astype(dtype)
    derived_calls = []
    original = DeepONMF._top_scores

    def spy(self, *args):
        groups = original(self, *args)
        derived_calls.append(groups is not None)
        return groups

    monkeypatch.setattr(DeepONMF, "_top_scores", spy)
    fast = deep_factorize(X, [6, 4, 3, 2], "deep-onmf", tol=0, max_iter=8, seed=2)
    assert derived_calls and all(derived_calls)  # the derived scores were taken at every sweep
    monkeypatch.setattr(DeepONMF, "_top_scores", lambda self, *args: None)
    direct = deep_factorize(X, [6, 4, 3, 2], "deep-onmf", tol=0, max_iter=8, seed=2)
    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    for a, b in zip(fast.layers, direct.layers):
        np.testing.assert_array_equal(a.assignments, b.assignments)
        np.testing.assert_allclose(a.H, b.H, rtol=tolerance, atol=tolerance * float(np.max(b.H)))
        np.testing.assert_allclose(a.W, b.W, rtol=tolerance, atol=tolerance * float(np.max(b.W)))
    np.testing.assert_allclose(fast.history["global_loss"], direct.history["global_loss"], rtol=tolerance)


def test_pixel_moves_take_the_direct_scores_where_the_bases_are_not_those_of_the_tree(monkeypatch):
    """The derived scores hold only where each W_l is X C_l^T / diag(C_l C_l^T), as every sweep
    leaves them: with the top layer's basis changed, the layer-1 scores are not used."""
    from mfcli.models.deep.onmf import DeepONMF

    X, _ = scene(m=20, n=300, seed=5)
    seen = []
    original = DeepONMF._top_scores

    def spy(self, state, anc, gain, alive):
        groups = original(self, state, anc, gain, alive)
        if not seen:
            top = state.W[state.L - 1]
            saved = top.copy()
            top[0, :] *= 1.001
            seen.append((groups is not None, original(self, state, anc, gain, alive)))
            top[:] = saved
        return groups

    monkeypatch.setattr(DeepONMF, "_top_scores", spy)
    deep_factorize(X, [4, 2], "deep-onmf", tol=0, max_iter=2, seed=0)
    consistent, changed = seen[0]
    assert consistent and changed is None


def test_every_H_is_a_hard_assignment_and_views_are_consistent():
    X, _ = scene(seed=2)
    result = deep_factorize(X, [5, 4, 2], "deep-onmf", seed=3)
    for index, layer in enumerate(result.layers, start=1):
        assert np.all(np.count_nonzero(layer.H, axis=0) == 1), index
        np.testing.assert_array_equal(np.argmax(layer.H, axis=0), layer.assignments)
        C = layer.data_coefficients
        assert C.shape == (layer.rank, X.shape[1]) and np.all(np.count_nonzero(C, axis=0) == 1)
        direct = np.linalg.norm(X - layer.data_basis @ C) / np.linalg.norm(X)
        assert layer.relative_error == pytest.approx(direct, rel=1e-8)
    composite = result.layers[0].H.astype(np.float64)
    for layer in result.layers[1:]:
        composite = layer.H @ composite
        np.testing.assert_allclose(composite, layer.data_coefficients, rtol=1e-6)


def test_tree_is_consistent():
    X, _ = scene(seed=4)
    result = deep_factorize(X, [5, 4, 3, 2], "deep-onmf", seed=0)
    tree = tree_from_result(result)
    document = to_json_dict(tree)
    n = X.shape[1]
    seen = np.concatenate([c["members"] for c in document["layers"][0]["clusters"]])
    assert np.array_equal(np.sort(seen), np.arange(n))  # every column in exactly one layer-1 cluster
    for level in range(1, len(document["layers"])):
        below = document["layers"][level - 1]["clusters"]
        clusters = document["layers"][level]["clusters"]
        children = [child for c in clusters for child in c["children"]]
        assert sorted(children) == list(range(len(below)))  # each child has exactly one parent
        for c in clusters:
            assert c["size"] == sum(below[child]["size"] for child in c["children"])
            for child in c["children"]:
                assert below[child]["parent"] == c["id"]
        assert sum(c["size"] for c in clusters) == n
    assert all(c["parent"] is None for c in document["layers"][-1]["clusters"])


def test_dot_export_escapes_quotes_and_backslashes_in_labels():
    import re

    from mfcli.hierarchy import build_tree, to_dot

    tree = build_tree([np.array([0, 1, 1]), np.array([0, 0])], [2, 1],
                      labels=[['12" pipe', "C:\\roof"], ["all"]])
    dot = to_dot(tree)
    assert '12\\" pipe' in dot and "C:\\\\roof" in dot
    for line in dot.splitlines():
        unescaped = re.sub(r"\\.", "", line)  # drop escape pairs, then quotes must pair up
        assert unescaped.count('"') % 2 == 0, line


def test_ranks_decreasing_by_one_merge_two_clusters():
    X, _ = scene(seed=5)
    result = deep_factorize(X, [5, 4, 3], "deep-onmf", seed=0)
    tree = tree_from_result(result)
    for level in (2, 3):
        merges = tree.merges(level)
        assert len(merges) == 1 and len(merges[0][1]) == 2


def test_similar_materials_merge_first():
    X, labels = scene(seed=6)
    result = deep_factorize(X, [5, 3], "deep-onmf", seed=0)
    groups = groups_of_columns(result, 2)
    families = [sorted(np.flatnonzero(np.isin(labels, members)) + 1) for members in ([0, 1], [2, 3], [4])]
    assert sorted(groups) == sorted(families)


@pytest.mark.parametrize("model", DEEP_MODELS)
def test_every_deep_model_runs_keeps_dtype_and_builds_a_tree(model):
    X, _ = scene(m=15, n=200, seed=7)
    for dtype in (np.float32, np.float64):
        result = deep_factorize(X.astype(dtype), [4, 3, 2], model, max_iter=8, seed=0)
        assert [layer.rank for layer in result.layers] == [4, 3, 2]
        for layer in result.layers:
            assert layer.W.dtype == dtype and layer.H.dtype == dtype, model
            assert layer.data_basis.shape == (15, layer.rank)
            assert layer.data_coefficients.shape == (layer.rank, 200)
            assert np.isfinite(layer.relative_error)
        tree = tree_from_result(result)
        assert sum(c.size for c in tree.layers[-1]) == 200
        assert result.history["global_loss"].size == result.n_iter + 1


@pytest.mark.parametrize("model,params", [
    ("deep-onmf", {"loss": "layers"}), ("deep-nmf", {}), ("deep-nmf", {"loss": "layers", "layer_weight": 0.5}), ("deep-aonmf", {}),
    ("deep-sparse", {"l1": 0.05}), ("deep-nsnmf", {"theta": 0.3})])
def test_descent_variants_never_increase_their_objective(model, params):
    X, _ = scene(m=15, n=200, seed=8)
    result = deep_factorize(X, [4, 3, 2], model, max_iter=25, tol=0, seed=0, **params)
    objective = result.history["global_loss"]
    assert np.all(np.diff(objective) <= 1e-9 * objective[0]), objective


def test_deep_nmf_refinement_improves_on_the_sequential_multilayer():
    X, _ = scene(m=15, n=200, seed=9)
    sequential = deep_factorize(X, [4, 3, 2], "multilayer", seed=0)
    joint = deep_factorize(X, [4, 3, 2], "deep-nmf", max_iter=100, seed=0)
    assert sequential.n_iter == 0 and sequential.history["global_loss"].size == 1
    assert joint.relative_error < sequential.relative_error


def test_deep_semi_on_signed_data():
    rng = np.random.default_rng(10)
    X = rng.standard_normal((12, 3)) @ rng.random((3, 150))
    result = deep_factorize(X, [3, 2], "deep-semi", max_iter=20, seed=0)
    assert result.layers[-1].H.min() >= 0 and result.layers[0].W.min() < 0
    with pytest.raises(Exception, match="negative"):
        deep_factorize(X, [3, 2], "deep-onmf")


def test_same_seed_same_result():
    X, _ = scene(seed=11)
    a = deep_factorize(X, [4, 2], "deep-onmf", seed=5)
    b = deep_factorize(X, [4, 2], "deep-onmf", seed=5)
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_array_equal(la.W, lb.W)
        np.testing.assert_array_equal(la.assignments, lb.assignments)


@pytest.mark.parametrize("ranks,message", [
    ([4, 5], "rank 5 (layer 2) is larger than rank 4"),
    ([4, 0], "rank 0 (layer 2)"),
    ([16, 3], "rank 16 (layer 1) is larger than min"),
])
def test_bad_ranks_name_the_offender(survey_ratings, ranks, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        deep_factorize(survey_ratings, ranks, "deep-onmf")


def test_estimator():
    X, _ = scene(seed=12)
    estimators = pytest.importorskip("mfcli.estimators", reason="mfcli.estimators needs scikit-learn")
    model = estimators.DeepFactorization([4, 2], model="deep-onmf", random_state=0).fit(X.T)  # samples x features
    assert len(model.layers_) == 2 and model.result_.history["global_loss"].size == model.n_iter_ + 1
    abundances = model.transform(X[:, :10].T, layer=1)
    assert abundances.shape == (10, 4) and abundances.min() >= 0


@pytest.mark.parametrize("method", ["nnls", "fcls"])
def test_layer_abundances_are_the_exact_constrained_least_squares(method):
    from mfcli.models.deep import layer_abundances
    from mfcli.models.nnls import fcls, nnls

    X, _ = scene(seed=13)
    result = deep_factorize(X, [4, 2], "deep-onmf", seed=0)
    layer_abundances(result, X, method)
    for layer in result.layers:
        expected = (nnls if method == "nnls" else fcls)(layer.data_basis, X)
        np.testing.assert_allclose(layer.abundances, expected, atol=1e-9)
        assert layer.abundances.dtype == X.dtype


@pytest.mark.slow
def test_multilayer_with_a_minimum_volume_first_layer():
    """first_layer=minvol: layer 1 is exactly mfcli's minvol (abundances on the simplex), and
    the next layer groups those abundances."""
    from mfcli.metrics import match_endmembers, spectral_angle_matrix
    from mfcli.models.minvol import minvol

    rng = np.random.default_rng(3)
    E = rng.random((30, 3)) + 0.1
    A = rng.dirichlet(np.full(3, 0.7), size=400).T
    X = E @ A
    result = deep_factorize(X, [3, 2], "multilayer", first_layer="minvol", seed=0)
    first = result.layers[0]
    np.testing.assert_allclose(first.H.sum(axis=0), 1.0, atol=1e-6)
    np.testing.assert_allclose(first.W, minvol(X, 3, init="spa", seed=0).layers[0].W, rtol=1e-10)
    angles = spectral_angle_matrix(first.W, E)[match_endmembers(first.W, E), np.arange(3)]
    assert angles.max() < 10.0
    assert result.layers[1].data_basis.shape == (30, 2)
    with pytest.raises(ParameterError, match="first_layer"):
        deep_factorize(X, [3, 2], "multilayer", first_layer="sparse")


def test_progress_names_every_stage_and_counts_the_joint_sweeps():
    reports = []
    X, _ = scene()
    result = deep_factorize(X, [4, 2], "deep-nmf", max_iter=3, tol=0,
                            callback=lambda iteration, error, **info: reports.append((iteration, info["stage"])))
    stages = [stage for _, stage in reports]
    assert stages[0] == "layer 1/2 (rank 4)" and "layer 2/2 (rank 2)" in stages
    joint = [iteration for iteration, stage in reports if stage == "joint refinement"]
    assert joint == [1, 2, 3] and result.n_iter == 3
