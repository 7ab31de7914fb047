"""Semi-NMF, sparse NMF, nsNMF, archetypal analysis, truncated SVD and the model registry."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from checks import nonincreasing

from mfcli.errors import ParameterError
from mfcli.models import registry
from mfcli.models.archetypal import archetypal, project_columns_to_simplex
from mfcli.models.nmf import nmf
from mfcli.models.nsnmf import nsnmf, smoothing_matrix
from mfcli.models.semi import semi_nmf
from mfcli.models.sparse import sparse_nmf
from mfcli.models.svd import svd


def mixtures(m=25, n=200, r=4, seed=0, noise=0.01):
    rng = np.random.default_rng(seed)
    W = rng.random((m, r))
    H = rng.dirichlet(np.ones(r) * 0.5, size=n).T
    return np.maximum(W @ H + noise * rng.standard_normal((m, n)), 0), W, H


def test_semi_nmf_on_signed_data():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((15, 3))
    H = rng.random((3, 80))
    X = W @ H + 0.01 * rng.standard_normal((15, 80))
    layer = semi_nmf(X, 3, max_iter=300, tol=0).layers[0]
    assert layer.H.min() >= 0 and layer.W.min() < 0
    assert nonincreasing(layer.history["objective"], from_start=True)
    # W is the exact least-squares basis for the final H
    gradient = layer.W @ (layer.H @ layer.H.T) - X @ layer.H.T
    assert np.abs(gradient).max() < 1e-8 * np.abs(X @ layer.H.T).max()
    assert layer.relative_error < 0.02


def test_sparse_nmf_more_l1_more_zeros_and_monotone():
    X, _, _ = mixtures()
    results = [sparse_nmf(X, 4, l1=l1, max_iter=200, tol=0).layers[0] for l1 in (0.0, 0.05, 0.3)]
    zeros = [np.mean(layer.H == 0) for layer in results]
    assert zeros[0] < zeros[1] < zeros[2]
    for layer in results:
        assert nonincreasing(layer.history["objective"], from_start=True)
        np.testing.assert_allclose(np.linalg.norm(layer.W, axis=0), 1.0, rtol=1e-9)
    assert results[2].relative_error > results[0].relative_error


def test_nsnmf_objective_and_smoothing():
    X, _, _ = mixtures()
    S = smoothing_matrix(4, 0.5)
    np.testing.assert_allclose(S.sum(axis=0), 1.0)
    result = nsnmf(X, 4, theta=0.5, max_iter=200, tol=0)
    layer = result.layers[0]
    assert nonincreasing(layer.history["objective"], from_start=True)
    direct = np.linalg.norm(X - layer.W @ layer.arrays["S"] @ layer.H) / np.linalg.norm(X)
    assert layer.relative_error == pytest.approx(direct, rel=1e-9)
    np.testing.assert_allclose(layer.data_basis, layer.W @ layer.arrays["S"])
    # theta = 0 is plain NMF: the same fit quality
    plain = nmf(X, 4, max_iter=300, tol=0).layers[0].relative_error
    assert nsnmf(X, 4, theta=0.0, max_iter=300, tol=0).layers[0].relative_error == pytest.approx(plain, rel=0.05)
    with pytest.raises(ParameterError):
        nsnmf(X, 4, theta=1.5)


def test_simplex_projection_against_a_direct_solution():
    rng = np.random.default_rng(0)
    V = rng.standard_normal((6, 50)) * 2
    P = project_columns_to_simplex(V)
    np.testing.assert_allclose(P.sum(axis=0), 1.0)
    assert P.min() >= 0
    from scipy.optimize import minimize

    for j in range(3):  # compare with a generic constrained solver
        v = V[:, j]
        res = minimize(lambda p: np.sum((p - v) ** 2), np.full(6, 1 / 6), method="SLSQP",
                       bounds=[(0, None)] * 6, constraints=[{"type": "eq", "fun": lambda p: p.sum() - 1}],
                       options={"ftol": 1e-14, "maxiter": 500})
        np.testing.assert_allclose(P[:, j], res.x, atol=1e-6)


def test_archetypal_analysis_constraints_and_separable_recovery():
    rng = np.random.default_rng(2)
    W = rng.random((20, 3))
    H = np.hstack([np.eye(3), rng.dirichlet(np.ones(3), size=97).T])
    X = W @ H
    result = archetypal(X, 3, max_iter=100, tol=0)
    layer = result.layers[0]
    A = layer.arrays["A"]
    np.testing.assert_allclose(A.sum(axis=0), 1.0, atol=1e-12)
    np.testing.assert_allclose(layer.H.sum(axis=0), 1.0, atol=1e-12)
    assert A.min() >= 0 and layer.H.min() >= 0
    np.testing.assert_allclose(layer.W, X @ A, atol=1e-12)
    assert nonincreasing(layer.history["objective"], from_start=True)
    assert layer.relative_error < 1e-6  # the pure columns are the archetypes


def test_archetypal_monotone_on_mixed_data():
    X, _, _ = mixtures(noise=0.05)
    history = archetypal(X, 4, init="kmeans++", max_iter=60, tol=0).layers[0].history
    assert nonincreasing(history["objective"], from_start=True)


def test_svd_agrees_with_numpy():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 5)) @ rng.standard_normal((5, 400)) + 0.01 * rng.standard_normal((30, 400))
    result = svd(X, 4)
    s_numpy = np.linalg.svd(X, compute_uv=False)
    np.testing.assert_allclose(result.layers[0].arrays["singular_values"], s_numpy[:4], rtol=1e-9)
    expected_error = np.sqrt(np.sum(s_numpy[4:] ** 2) / np.sum(s_numpy**2))
    assert result.layers[0].relative_error == pytest.approx(expected_error, rel=1e-6)
    layer = result.layers[0]
    assert np.linalg.norm(X - layer.W @ layer.H) / np.linalg.norm(X) == pytest.approx(expected_error, rel=1e-6)
    estimators = pytest.importorskip("mfcli.estimators", reason="mfcli.estimators needs scikit-learn")
    model = estimators.TruncatedSVD(4).fit(X.T)  # samples x features
    np.testing.assert_allclose(model.transform(X.T), model.result_.layers[0].H.T, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_gram_iteration_gives_the_iterates_of_the_passes(dtype, monkeypatch):
    """In memory with few rows, subspace_svd iterates on X X^T (formed once) instead of one pass
    over X per iteration: the same singular triplets, to rounding."""
    import mfcli.models.svd as svd_module
    from mfcli.models.matrix import InMemoryMatrix
    from mfcli.models.stopping import Stopping

    rng = np.random.default_rng(1)
    X = (rng.random((40, 6)) @ rng.random((6, 3000)) + 0.05 * rng.random((40, 3000))).astype(dtype)
    data = InMemoryMatrix(X)
    assert svd_module._gram_pays(data, 15, 4)
    runs = []
    for gram in (True, False):
        monkeypatch.setattr(svd_module, "_gram_pays", lambda *args, gram=gram: gram)
        runs.append(svd_module.subspace_svd(data, 5, stopping=Stopping(max_iter=4, tol=0.0), seed=3))
    (U1, s1, V1, e1), (U2, s2, V2, e2) = runs
    tight = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(s1, s2, rtol=tight)
    np.testing.assert_allclose(np.abs(U1), np.abs(U2), atol=tight)
    np.testing.assert_allclose(np.abs(V1), np.abs(V2), atol=tight)
    assert e1 == pytest.approx(e2, rel=tight)
    assert not svd_module._gram_pays(InMemoryMatrix(np.zeros((300, 50))), 15, 4)  # rows: the passes are cheaper


def test_svd_float32():
    X, _, _ = mixtures()
    layer = svd(X.astype(np.float32), 3).layers[0]
    assert layer.W.dtype == np.float32 and layer.H.dtype == np.float32


@pytest.mark.parametrize("name", registry.model_names("single"))
def test_every_registered_model_runs_and_keeps_dtype(name):
    X, _, _ = mixtures(m=12, n=60, r=3)
    spec = registry.get_model(name)
    for dtype in (np.float32, np.float64):
        result = spec.run(X.astype(dtype), 3, max_iter=5, seed=0)
        layer = result.layers[0]
        assert layer.W.dtype == dtype and layer.H.dtype == dtype, name
        assert layer.history["relative_error"].size == result.n_iter
        assert np.isfinite(layer.relative_error)
    if spec.estimator and importlib.util.find_spec("sklearn") is not None:
        estimator = spec.load_estimator()(3, max_iter=5)
        Z = estimator.fit_transform(X.T)  # scikit-learn's orientation: samples x features
        assert Z.shape == (60, 3) and estimator.transform(X[:, :5].T).shape == (5, 3)
        # the registry's estimator is that model's (so it solves new data the model's way, as
        # `mfcli transform --method auto` does)
        assert estimator._spec() is spec, name


def test_registry_params_and_lookup():
    spec = registry.get_model("nsnmf")
    assert spec.parse_params(["theta=0.25"]) == {"theta": 0.25}
    with pytest.raises(ParameterError, match="no parameter"):
        spec.parse_params(["alpha=1"])
    with pytest.raises(ParameterError, match="NAME=VALUE"):
        spec.parse_params(["theta"])
    with pytest.raises(ParameterError, match="unknown model"):
        registry.get_model("nope")
    assert registry.get_model("nmf").check_loss("beta=0.5") == "beta=0.5"
    with pytest.raises(ParameterError, match="supports --loss"):
        registry.get_model("onmf").check_loss("kl")


@pytest.mark.parametrize("long_name, short_name", sorted(registry.LOSS_ALIASES.items()))
def test_a_loss_by_its_long_name_is_the_same_loss(long_name, short_name):
    from mfcli.models.beta import loss_name
    from mfcli.models.nmf import parse_loss

    assert registry.get_model("nmf").check_loss(long_name.title()) == long_name
    assert parse_loss(long_name.title()) == parse_loss(short_name) == registry.NAMED_LOSSES[short_name]
    assert loss_name(parse_loss(long_name)) == short_name


def test_registering_a_model(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    spec = registry.register(registry.ModelSpec("tiny", "mfcli.models.nmf:nmf", "test model"))
    assert "tiny" in registry.model_names() and registry.get_model("tiny") is spec
    with pytest.raises(ValueError):
        registry.register(spec)
