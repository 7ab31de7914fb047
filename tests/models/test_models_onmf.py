"""ONMF (restarts, hard assignments) and AONMF: properties, and the survey's ratings showcase."""

from __future__ import annotations

import numpy as np
import pytest

from mfcli.models.onmf import aonmf, onmf

SURVEY_LAYER1 = [[1, 2, 3, 4, 5], [6, 8, 9], [7, 10], [11, 12, 13, 14, 15]]
SPA_LOCAL_OPTIMUM = [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12], [13, 14, 15]]


def partition(assignments):
    """1-based groups of columns, sorted, independent of cluster numbering."""
    groups: dict[int, list[int]] = {}
    for j, k in enumerate(assignments):
        groups.setdefault(int(k), []).append(j + 1)
    return sorted(groups.values())


def partition_loss(X, groups):
    """Best ONMF loss of a fixed partition: sum_k ||X_k||^2 - sigma_1(X_k)^2 (by full SVD)."""
    total = 0.0
    for group in groups:
        block = X[:, np.array(group) - 1]
        total += np.sum(block**2) - np.linalg.svd(block, compute_uv=False)[0] ** 2
    return total


def clustered(m=20, n=300, r=4, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.random((m, r)) ** 3
    labels = rng.integers(0, r, n)
    X = W[:, labels] * rng.uniform(0.5, 2.0, n) + 0.01 * rng.random((m, n))
    return X, labels


def test_survey_rank4_finds_the_best_partition_and_beats_spa(survey_ratings):
    best = onmf(survey_ratings, 4, seed=0).layers[0]
    assert partition(best.assignments) == SURVEY_LAYER1
    spa_only = onmf(survey_ratings, 4, init="spa").layers[0]
    assert partition(spa_only.assignments) == SPA_LOCAL_OPTIMUM
    assert best.relative_error < spa_only.relative_error - 0.01
    # the restarts are what make it work: SPA's start alone is among them and loses
    assert "spa" in best.attrs["starts"] and best.arrays["start_errors"][0] > best.relative_error + 0.01
    # the reported loss is the partition's optimum (leading singular vector per cluster)
    x_sq = np.sum(survey_ratings**2)
    assert best.relative_error**2 * x_sq == pytest.approx(partition_loss(survey_ratings, SURVEY_LAYER1), rel=1e-6)
    assert spa_only.relative_error**2 * x_sq > partition_loss(survey_ratings, SURVEY_LAYER1)


def test_exactly_one_nonzero_per_column_and_error_is_exact():
    X, _ = clustered()
    layer = onmf(X, 4, restarts=3).layers[0]
    H = layer.H
    assert np.all(np.count_nonzero(H, axis=0) == 1)
    assert H.min() >= 0 and layer.W.min() >= 0
    np.testing.assert_array_equal(np.argmax(H, axis=0), layer.assignments)
    HHt = H @ H.T
    assert np.allclose(HHt - np.diag(np.diag(HHt)), 0)
    direct = np.linalg.norm(X - layer.W @ H) / np.linalg.norm(X)
    assert layer.relative_error == pytest.approx(direct, rel=1e-9)
    # weights average 1 per cluster (W's columns are typical members)
    for k in range(4):
        members = layer.assignments == k
        assert H[k, members].mean() == pytest.approx(1.0)


def test_recovers_well_separated_clusters():
    X, labels = clustered(seed=3)
    found = onmf(X, 4, restarts=4).layers[0].assignments
    # same partition up to renumbering
    pairs = set(zip(labels.tolist(), found.tolist()))
    assert len(pairs) == 4


def test_loss_never_increases():
    X, _ = clustered(n=400, seed=5)
    for init in ("spa", "kmeans++", "random"):
        errors = onmf(X, 5, init=init, tol=0, max_iter=30, seed=2).layers[0].history["relative_error"]
        assert np.all(np.diff(errors) <= 1e-12)


def test_screening_on_a_subsample_is_seeded():
    X, _ = clustered(n=2000, seed=6)
    a = onmf(X, 4, restarts=4, screen_size=300, seed=11)
    b = onmf(X, 4, restarts=4, screen_size=300, seed=11)
    assert a.layers[0].attrs["screened"] is True
    np.testing.assert_array_equal(a.layers[0].assignments, b.layers[0].assignments)
    np.testing.assert_array_equal(a.layers[0].W, b.layers[0].W)
    assert np.all(np.count_nonzero(a.layers[0].H, axis=0) == 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept(dtype, survey_ratings):
    layer = onmf(survey_ratings.astype(dtype), 3, restarts=2).layers[0]
    assert layer.W.dtype == dtype and layer.H.dtype == dtype


def test_estimator_transform_assigns_by_cosine(survey_ratings):
    estimators = pytest.importorskip("mfcli.estimators", reason="mfcli.estimators needs scikit-learn")
    model = estimators.ONMF(4, random_state=0).fit(survey_ratings.T)  # samples x features
    H = model.transform(survey_ratings.T).T
    np.testing.assert_array_equal(np.argmax(H, axis=0), model.labels_)
    assert np.all(np.count_nonzero(H, axis=0) == 1)
    np.testing.assert_allclose(H, model.result_.layers[0].H, rtol=1e-9)


def test_empty_cluster_is_reseeded():
    X, _ = clustered(n=100, r=2, seed=1)
    W0 = np.zeros((20, 3))
    W0[:, 0] = 1.0
    W0[0, 1] = W0[0, 2] = 1e-9  # two nearly empty directions
    layer = onmf(X, 3, W=np.abs(W0) + 0, max_iter=50).layers[0]
    assert len(np.unique(layer.assignments)) == 3


# ----- AONMF -------------------------------------------------------------------------------------

def test_aonmf_penalty_trades_fit_for_orthogonality():
    rng = np.random.default_rng(0)
    X = rng.random((20, 4)) @ rng.dirichlet(np.ones(4) * 0.5, size=300).T  # mixtures, not clusters

    def off_diagonal_share(H):
        HHt = H @ H.T
        return (HHt.sum() - np.trace(HHt)) / HHt.sum()

    loose = aonmf(X, 4, penalty=0.0, max_iter=300).layers[0]
    tight = aonmf(X, 4, penalty=0.5, max_iter=300).layers[0]
    assert off_diagonal_share(tight.H) < 0.1 * off_diagonal_share(loose.H)
    assert tight.relative_error > loose.relative_error
    np.testing.assert_allclose(np.linalg.norm(tight.W, axis=0), 1.0, rtol=1e-6)


def test_aonmf_objective_never_increases():
    X, _ = clustered(n=200, seed=4)
    objective = aonmf(X, 4, penalty=1.0, max_iter=80, tol=0).layers[0].history["objective"]
    assert np.all(np.diff(objective) <= 1e-10 * objective[:-1])


def test_starts_that_end_equal_to_rounding_keep_the_first(monkeypatch):
    """Restarts that reach one clustering end with errors that differ in the last bits (on another
    engine, the data rounded otherwise): the first such start is kept, so every engine returns the
    clusters in the same order; a start better by more than the tie margin still wins."""
    import mfcli.models.onmf as onmf_module
    from mfcli.models.matrix import InMemoryMatrix
    from mfcli.models.stopping import Stopping

    errors = iter([0.25, 0.25 * (1 - 1e-14), 0.25 * (1 + 1e-14), 0.2, 0.2 * (1 - 1e-13)])
    monkeypatch.setattr(onmf_module, "_start", lambda kind, target, rank, rng: np.full((4, 2), float(len(seen))))
    seen = []

    def loop(target, W0, monitor):
        seen.append(W0[0, 0])
        return W0, None, None, next(errors)

    monkeypatch.setattr(onmf_module, "_onmf_loop", loop)
    data = InMemoryMatrix(np.random.default_rng(0).random((4, 30)))
    W, report, screened = onmf_module.best_of_starts(data, 2, restarts=5, stopping=Stopping(max_iter=5),
                                                     seed=0, screen_size=100)
    assert len(report) == 5 and not screened
    assert W[0, 0] == 3.0  # the fourth start (0.2), not the fifth (equal to it but for rounding)
