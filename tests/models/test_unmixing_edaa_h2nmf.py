"""EDAA (entropic descent AA), H2NMF (top-down hierarchy) and the refinement of hierarchy layers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io

from checks import hierarchy_groups, nonincreasing
from mfcli.errors import ParameterError
from mfcli.hierarchy import to_json_dict, tree_from_result
from mfcli.metrics import match_endmembers, spectral_angles
from mfcli.models.edaa import edaa, entropic_iteration, entropic_step, max_correlation, select_run, start_runs
from mfcli.models.h2nmf import h2nmf, split_threshold
from mfcli.models.refine import column_clusters, largest, refine_layers, refined_coefficients
from mfcli.models.registry import get_model


def planted_mixture(seed: int, m: int = 30, r: int = 3, n: int = 400, alpha: float = 1.0, pure: int = 1,
                    noise: float = 0.0):
    """X = E A (+ noise), A on the simplex; the first ``pure`` x r pixels are pure (each endmember ``pure`` times)."""
    rng = np.random.default_rng(seed)
    E = np.abs(rng.standard_normal((m, r))) + 0.1
    A = rng.dirichlet(np.full(r, alpha), size=n).T
    for copy in range(pure):
        A[:, copy * r:(copy + 1) * r] = np.eye(r)
    X = np.maximum(E @ A + noise * rng.standard_normal((m, n)), 0.0)
    return X, E, A


def clustered_scene(seed: int, m: int = 30, sizes=(120, 90, 70, 60), spread: float = 0.05):
    """Pixels around len(sizes) distinct nonnegative spectra, with their true cluster labels."""
    rng = np.random.default_rng(seed)
    centres = np.abs(rng.standard_normal((m, len(sizes)))) + 0.05
    labels = np.repeat(np.arange(len(sizes)), sizes)
    brightness = rng.uniform(0.7, 1.3, labels.size)
    X = centres[:, labels] * brightness + spread * np.abs(rng.standard_normal((m, labels.size)))
    return X, labels, centres


def sad_to_truth(E, E_true):
    return spectral_angles(E[:, match_endmembers(E, E_true)], E_true)


# ---------------------------------------------------------------------------------------------
# EDAA


def test_entropic_step_stays_on_the_simplex_and_keeps_zeros():
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(5), size=7).T  # columns on the simplex
    P[1, 2] = 0.0
    P[:, 2] /= P[:, 2].sum()
    Q = entropic_step(P, 1e3 * rng.standard_normal(P.shape), 1.0, axis=0)  # a huge step: no overflow
    assert np.all(np.isfinite(Q)) and np.all(Q >= 0)
    np.testing.assert_allclose(Q.sum(axis=0), 1.0, rtol=1e-12)
    assert Q[1, 2] == 0.0


@pytest.mark.parametrize("factor", [1.0, 8.0])
def test_edaa_iterates_stay_on_the_simplex_and_the_objective_never_increases(factor):
    X, _, _ = planted_mixture(1, alpha=0.5, noise=0.01)
    Z = X / np.linalg.norm(X, axis=0)
    rng = np.random.default_rng(2)
    r, n = 3, Z.shape[1]
    Bt = np.exp(0.1 * rng.random((1, r, n)))
    Bt /= Bt.sum(axis=2, keepdims=True)
    runs = start_runs(Z, Bt, np.full((1, r, n), 1.0 / r), [factor])
    x_sq = float(np.vdot(Z, Z))
    objectives = [float(runs.objective[0])]
    for _ in range(40):
        entropic_iteration(Z, x_sq, runs, 20, 20)
        A, B = runs.A[0], runs.Bt[0].T
        assert np.all(A >= 0) and np.all(B >= 0)
        np.testing.assert_allclose(A.sum(axis=0), 1.0, rtol=1e-10)  # abundances: columns of A
        np.testing.assert_allclose(B.sum(axis=0), 1.0, rtol=1e-10)  # archetype weights: columns of B
        direct = 0.5 * np.linalg.norm(Z - Z @ B @ A) ** 2
        np.testing.assert_allclose(runs.objective[0], direct, rtol=1e-8)
        objectives.append(float(runs.objective[0]))
    assert nonincreasing(objectives)
    assert objectives[-1] < 0.2 * objectives[0]
    if factor == 8.0:
        assert runs.rejected[0] >= 0  # the safeguard may have halved steps; monotone either way


@pytest.mark.parametrize("factor", [1.0, 64.0])  # 64: steps rejected and halved
def test_b_steps_on_the_supports_are_the_dense_steps(factor):
    """Runs whose B^T rows live on segments of the pixels (the refinement's) step on those entries
    only: the same iterates, objectives, steps and rejections as the steps on all r x N entries."""
    X, _, _ = planted_mixture(2, alpha=0.5, noise=0.01)
    Z = X / np.linalg.norm(X, axis=0)
    rng = np.random.default_rng(3)
    r, n = 4, Z.shape[1]
    label = np.sort(rng.integers(0, r, n))
    segments = np.concatenate([[0], np.cumsum(np.bincount(label, minlength=r))])
    support = (label[None, :] == np.arange(r)[:, None]) * np.exp(0.1 * rng.random((r, n)))
    Bt = support / support.sum(axis=1, keepdims=True)
    dense = start_runs(Z, Bt[None].copy(), np.full((1, r, n), 1.0 / r), [factor])
    restricted = start_runs(Z, Bt[None].copy(), np.full((1, r, n), 1.0 / r), [factor], segments=segments)
    x_sq = float(np.vdot(Z, Z))
    for _ in range(15):
        entropic_iteration(Z, x_sq, dense, 5, 5)
        entropic_iteration(Z, x_sq, restricted, 5, 5)
        np.testing.assert_allclose(restricted.Bt, dense.Bt, rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(restricted.A, dense.A, rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(restricted.E, dense.E, rtol=1e-9)
        np.testing.assert_allclose(restricted.objective, dense.objective, rtol=1e-12)
        assert restricted.rejected[0] == dense.rejected[0] and restricted.step_b[0] == dense.step_b[0]
    assert not np.any(restricted.Bt[0][label[None, :] != np.arange(r)[:, None]])  # zero off the supports
    if factor == 64.0:
        assert dense.rejected[0] > 0
    with pytest.raises(ParameterError, match="segments"):
        start_runs(Z, Bt[None], np.full((1, r, n), 1.0 / r), [factor], segments=[0, n])


def test_edaa_recovers_planted_endmembers_and_reports_its_selection():
    # l1: pixels divided by their sums are exact convex combinations of the endmembers divided by
    # theirs (l2 normalization bends mixtures off the simplex, so exact recovery needs l1)
    X, E, _ = planted_mixture(3, n=300, alpha=0.7, pure=2)
    result = edaa(X, 3, runs=4, max_iter=120, seed=0, normalize="l1")
    layer = result.layers[0]
    assert sad_to_truth(layer.W, E).max() < 1.0
    np.testing.assert_allclose(layer.H.sum(axis=0), 1.0, rtol=1e-8)
    assert np.all(layer.H >= 0)
    np.testing.assert_allclose(X @ layer.arrays["A"], layer.W, rtol=1e-8, atol=1e-12)  # W = X A, A >= 0
    assert np.all(layer.arrays["A"] >= 0)
    fits, correlations = layer.arrays["run_fit"], layer.arrays["run_correlation"]
    assert len(fits) == 4 and layer.attrs["selected_run"] == select_run(fits, correlations)
    history = layer.history["objective"]
    assert nonincreasing(history) and len(history) == result.n_iter


def test_edaa_screened_runs_and_the_registry():
    X, E, _ = planted_mixture(4, n=700, alpha=0.7, pure=3)
    spec = get_model("edaa")
    assert not spec.inits and spec.transform == "fcls"
    result = spec.run(X, 3, runs=3, screen_size=300, max_iter=60, seed=1, normalize="l1")
    layer = result.layers[0]
    assert layer.attrs["screened"] is True
    assert np.count_nonzero(layer.arrays["A"].sum(axis=1)) <= 300  # archetypes from the sample's pixels
    assert sad_to_truth(layer.W, E).mean() < 3.0
    estimators = pytest.importorskip("mfcli.estimators", reason="mfcli.estimators needs scikit-learn")
    estimator = estimators.EDAA(3, runs=2, max_iter=30).fit(X.T)  # samples x features
    assert estimator.transform(X[:, :5].T).shape == (5, 3)
    with pytest.raises(ParameterError, match="own random starts"):
        edaa(X, 3, init="spa")


def test_model_selection_takes_the_least_correlated_of_the_good_fits():
    fits = np.array([100.0, 103.0, 104.5, 200.0])
    correlations = np.array([0.9, 0.5, 0.4, 0.1])
    assert select_run(fits, correlations) == 2  # 104.5 is within 5% of 100; 200 is not
    E = np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 1.0], [3.0, 6.1, 0.0]])
    assert max_correlation(E) == pytest.approx(np.corrcoef(E.T)[0, 1])


# ---------------------------------------------------------------------------------------------
# H2NMF


def test_split_threshold_cuts_between_two_groups_of_shares():
    rng = np.random.default_rng(0)
    shares = np.concatenate([rng.uniform(0.0, 0.2, 300), rng.uniform(0.7, 1.0, 200)])
    assert 0.2 <= split_threshold(shares) <= 0.7


def test_h2nmf_recovers_planted_clusters_and_its_tree_matches_the_ranks():
    X, labels, _ = clustered_scene(0)
    result = h2nmf(X, [4, 3, 2])
    assert result.ranks == [4, 3, 2] and result.n_iter == 3
    tree = tree_from_result(result)
    document = to_json_dict(tree)
    truth = sorted(sorted(int(j) + 1 for j in np.flatnonzero(labels == k)) for k in range(4))
    assert hierarchy_groups(document, 1) == truth
    for level, rank in enumerate([4, 3, 2], start=1):
        groups = hierarchy_groups(document, level)
        assert len(groups) == rank
        assert sorted(j for group in groups for j in group) == list(range(1, X.shape[1] + 1))
    # cutting the tree at fewer clusters is the same as growing it less
    for rank in (3, 2):
        alone = to_json_dict(tree_from_result(h2nmf(X, [rank])))
        assert hierarchy_groups(alone, 1) == hierarchy_groups(document, [4, 3, 2].index(rank) + 1)


def test_h2nmf_layer_errors_are_the_clusters_rank_one_fits():
    X, _, _ = clustered_scene(1, spread=0.2)
    result = h2nmf(X, [5, 3, 1])
    errors = []
    for layer in result.layers:
        reconstruction = layer.data_basis @ layer.data_coefficients
        direct = np.linalg.norm(X - reconstruction) / np.linalg.norm(X)
        assert layer.relative_error == pytest.approx(direct, rel=1e-8)
        errors.append(layer.relative_error)
    assert errors[0] <= errors[1] <= errors[2]
    assert nonincreasing(result.history["relative_error"])
    with pytest.raises(ParameterError, match="not iterative"):
        h2nmf(X, [3, 2], max_iter=10)


def test_unmix_h2nmf_writes_the_same_hierarchy_files(invoke, tmp_path):
    X, labels, _ = clustered_scene(2, m=20, sizes=(40, 30, 30))
    scipy.io.savemat(tmp_path / "scene.mat", {"Y": X, "nRow": np.array([[10]]), "nCol": np.array([[10]])})
    out = tmp_path / "h2"
    result = invoke("unmix", str(tmp_path / "scene.mat"), "--ranks", "3,2", "--model", "h2nmf", "-o", str(out),
                    "--no-plots", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["model"] == "h2nmf" and summary["refine"] == "edaa"
    assert [entry["rank"] for entry in summary["layers"]] == [3, 2]
    for name in ("result.h5", "hierarchy.json", "hierarchy.nwk", "hierarchy.dot"):
        assert (out / name).exists()
    document = json.loads((out / "hierarchy.json").read_text())
    assert hierarchy_groups(document, 1) == sorted(sorted(int(j) + 1 for j in np.flatnonzero(labels == k))
                                                   for k in range(3))
    from mfcli.io.result import read_result

    saved = read_result(out / "result.h5")
    for layer in saved.layers:  # W: the clusters' basis vectors; basis: the refined endmembers
        assert layer.basis is not None and not np.allclose(layer.basis, layer.W)
        assert layer.attrs["refinement"]["method"] == "edaa"
        assert layer.coefficients.shape == (layer.rank, X.shape[1])
    refused = invoke("unmix", str(tmp_path / "scene.mat"), "--ranks", "3,2", "--model", "h2nmf", "--max-iter", "5",
                     "-o", str(tmp_path / "other"))
    assert refused.exit_code == 1 and "not iterative" in refused.stderr


# ---------------------------------------------------------------------------------------------
# refinement of hierarchy layers


def cone_distance(E: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Relative distance of each column of E to the cone {X h, h >= 0} (Lawson-Hanson NNLS, SciPy:
    an independent computation)."""
    from scipy.optimize import nnls as scipy_nnls

    E = np.asarray(E, dtype=np.float64)
    return np.array([scipy_nnls(X, E[:, k])[1] / np.linalg.norm(E[:, k]) for k in range(E.shape[1])])


def test_refinement_moves_cluster_centroids_to_materials_inside_the_data_cone():
    from mfcli.models.deep import deep_factorize

    X, E, _ = planted_mixture(5, m=25, r=3, n=500, alpha=0.4, pure=3, noise=0.002)
    result = deep_factorize(X, [6, 3], model="deep-onmf", init="spa", seed=0)
    before = [np.array(layer.data_basis, dtype=np.float64) for layer in result.layers]
    assignments = [layer.assignments.copy() for layer in result.layers]
    refine_layers(X, result.layers, seed=0, sample_size=200, candidates=40)
    for index, layer in enumerate(result.layers):
        after = np.asarray(layer.data_basis, dtype=np.float64)
        assert np.all(cone_distance(after, X) <= cone_distance(before[index], X) + 1e-6)
        np.testing.assert_array_equal(layer.assignments, assignments[index])  # the tree is kept
        clusters = column_clusters(result.layers, index + 1)
        for k in range(layer.rank):  # each endmember stays a combination of its own cluster's pixels
            members = X[:, clusters == k]
            assert cone_distance(after[:, [k]], members)[0] < 1e-6
    assert sad_to_truth(result.layers[1].data_basis, E).mean() < 0.5 * sad_to_truth(before[1], E).mean()
    refined_coefficients(X, result.layers)
    layer = result.layers[1]
    direct = np.linalg.norm(X - layer.data_basis @ layer.data_coefficients) / np.linalg.norm(X)
    assert layer.relative_error == pytest.approx(direct, rel=1e-6)
    assert layer.attrs["cluster_relative_error"] > 0 and layer.attrs["refinement"]["method"] == "edaa"


def test_refinement_choice_and_errors():
    from mfcli.cli.commands.unmix import refinement_method

    assert refinement_method("auto", "deep-onmf", False) == "edaa"
    assert refinement_method("auto", "h2nmf", False) == "edaa"
    assert refinement_method("auto", "deep-nmf", False) == "none"
    assert refinement_method("auto", "deep-onmf", True) == "none"
    assert refinement_method("auto", "deep-onmf", False, is_image=False) == "none"  # e.g. ratings
    with pytest.raises(ParameterError, match="in memory"):
        refinement_method("edaa", "deep-onmf", True)
    X, _, _ = planted_mixture(6)
    from mfcli.result import Layer

    with pytest.raises(ParameterError, match="unknown refinement"):
        refine_layers(X, [Layer(W=X[:, :3], H=np.zeros((3, X.shape[1])))], method="minvol")
    with pytest.raises(ParameterError, match="hierarchy of clusters"):
        refine_layers(X, [Layer(W=X[:, :3], H=np.zeros((3, X.shape[1])))])


def test_the_refinements_candidates_are_the_largest_coordinates_ties_to_the_earlier_pixel():
    rng = np.random.default_rng(0)
    for _ in range(500):
        n, count = int(rng.integers(0, 40)), int(rng.integers(0, 45))
        values = rng.integers(0, 5, n).astype(float) if rng.random() < 0.7 else rng.random(n)  # ties, or none
        expected = np.sort(np.argsort(-values, kind="stable")[:count])
        np.testing.assert_array_equal(largest(values, count), expected)
