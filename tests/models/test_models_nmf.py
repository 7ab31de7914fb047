"""NMF by accelerated HALS and MU, beta-divergence MU, initializations: properties, not stored numbers."""

from __future__ import annotations

import numpy as np
import pytest

from checks import nonincreasing

from mfcli.metrics import beta_divergence, relative_error, relative_error_from_residual, residual_sq_from_grams
from mfcli.models.beta import beta_nmf
from mfcli.models.init import INIT_METHODS, initialize
from mfcli.models.matrix import InMemoryMatrix, project_update
from mfcli.models.nmf import nmf


def low_rank(m=30, n=120, r=4, seed=0, noise=0.0):
    rng = np.random.default_rng(seed)
    W = rng.random((m, r))
    H = rng.random((r, n))
    X = W @ H
    if noise:
        X = np.maximum(X + noise * rng.standard_normal(X.shape), 0)
    return X, W, H


def separable(m=40, n=200, r=5, seed=1):
    """X = W [I, H'] Pi with the columns of H' on the simplex: pure columns exist."""
    rng = np.random.default_rng(seed)
    W = rng.random((m, r)) + 0.1
    H = np.hstack([np.eye(r), rng.dirichlet(np.ones(r), size=n - r).T])
    order = rng.permutation(n)
    return W @ H[:, order], W, H[:, order]


@pytest.mark.parametrize("solver,accelerate,extrapolate", [
    ("hals", True, True), ("hals", True, False), ("hals", False, False), ("hals", False, True), ("mu", False, False)])
def test_objective_never_increases(solver, accelerate, extrapolate):
    X, _, _ = low_rank(noise=0.05)
    result = nmf(X, 4, solver=solver, init="random", max_iter=150, tol=0, accelerate=accelerate,
                 extrapolate=extrapolate, seed=3)
    history = result.layers[0].history
    assert history["relative_error"].size == 150
    assert nonincreasing(history["objective"])
    assert nonincreasing(history["relative_error"])


def test_kkt_conditions_at_convergence():
    X, _, _ = low_rank(m=20, n=60, r=3, noise=0.1, seed=3)
    layer = nmf(X, 3, init="nndsvda", max_iter=1000, tol=0).layers[0]
    W, H = layer.W, layer.H
    grad_W = W @ (H @ H.T) - X @ H.T
    grad_H = (W.T @ W) @ H - W.T @ X
    for F, G in ((W, grad_W), (H, grad_H)):
        scale = np.abs(G).max() + np.abs(F).max()
        assert G.min() > -1e-9 * scale                    # dual feasibility
        assert np.abs(np.minimum(F, G)).max() < 1e-9 * scale  # complementarity (F >= 0 holds exactly)
        assert F.min() >= 0


def test_recovers_planted_separable_factorization():
    X, W_true, H_true = separable()
    layer = nmf(X, 5, init="spa", max_iter=50).layers[0]
    # the error from Gram matrices bottoms out near sqrt(machine epsilon); the direct one does not
    assert layer.relative_error < 1e-7
    assert np.linalg.norm(X - layer.W @ layer.H) / np.linalg.norm(X) < 1e-10
    cosines = (W_true / np.linalg.norm(W_true, axis=0)).T @ (layer.W / np.linalg.norm(layer.W, axis=0))
    match = cosines.argmax(axis=1)
    assert sorted(match) == list(range(5))
    assert np.allclose(cosines.max(axis=1), 1.0, atol=1e-9)
    scale = (layer.W[:, match] / W_true).mean(axis=0)
    np.testing.assert_allclose(layer.H[match] * scale[:, None], H_true, atol=1e-7)


def test_extrapolation_reaches_a_lower_error_in_fewer_iterations():
    X, _, _ = low_rank(m=20, n=60, r=3, noise=0.1, seed=2)
    plain = nmf(X, 3, max_iter=150, tol=0, extrapolate=False).layers[0].relative_error
    faster = nmf(X, 3, max_iter=150, tol=0, extrapolate=True).layers[0].relative_error
    assert faster < plain


def test_relative_error_matches_direct_computation():
    X, _, _ = low_rank(noise=0.1)
    layer = nmf(X, 3, max_iter=20).layers[0]
    direct = np.linalg.norm(X - layer.W @ layer.H) / np.linalg.norm(X)
    assert layer.relative_error == pytest.approx(direct, rel=1e-9)
    assert relative_error(X, layer.W, layer.H) == pytest.approx(direct, rel=1e-9)
    # the pieces every solver uses: the squared residual from Gram matrices, the ratio from it
    residual = residual_sq_from_grams(float(np.sum(X * X)), np.sum((layer.W.T @ X) * layer.H),
                                      layer.W.T @ layer.W, layer.H @ layer.H.T)
    assert residual == pytest.approx(np.sum((X - layer.W @ layer.H) ** 2), rel=1e-9)
    assert relative_error_from_residual(float(np.sum(X * X)), residual) == pytest.approx(direct, rel=1e-9)
    assert relative_error_from_residual(0.0, 1.0) == 0.0 and relative_error_from_residual(4.0, -1e-12) == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver", ["hals", "mu"])
def test_dtype_is_kept(dtype, solver):
    X, _, _ = low_rank(noise=0.05)
    layer = nmf(X.astype(dtype), 4, solver=solver, max_iter=10).layers[0]
    assert layer.W.dtype == dtype and layer.H.dtype == dtype


@pytest.mark.parametrize("init", INIT_METHODS)
def test_same_seed_same_result(init):
    X, _, _ = low_rank(noise=0.05)
    a = nmf(X, 4, init=init, seed=7, max_iter=15).layers[0]
    b = nmf(X, 4, init=init, seed=7, max_iter=15).layers[0]
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.H, b.H)


def test_random_seed_changes_result():
    X, _, _ = low_rank(noise=0.05)
    a = nmf(X, 4, init="random", seed=1, max_iter=5).layers[0]
    b = nmf(X, 4, init="random", seed=2, max_iter=5).layers[0]
    assert not np.array_equal(a.W, b.W)


@pytest.mark.parametrize("init", INIT_METHODS)
def test_initializations_are_nonnegative_and_shaped(init):
    X, _, _ = low_rank()
    W, H = initialize(InMemoryMatrix(X), 4, init, seed=0)
    assert W.shape == (30, 4) and W.min() >= 0
    assert H is None or (H.shape == (4, 120) and H.min() >= 0)


def test_nndsvd_zero_pattern_and_fills():
    X, _, _ = low_rank(noise=0.05)
    data = InMemoryMatrix(X)
    W, H = initialize(data, 4, "nndsvd")
    Wa, Ha = initialize(data, 4, "nndsvda")
    assert np.any(W == 0) and not np.any(Wa == 0)
    np.testing.assert_allclose(Wa[W > 0], W[W > 0])
    np.testing.assert_allclose(Wa[W == 0], X.mean())


def test_user_given_factors_are_used_and_checked():
    X, W, H = low_rank()
    from mfcli.errors import DataError

    layer = nmf(X, 4, W=W, H=H, max_iter=1).layers[0]
    assert layer.relative_error < 1e-6
    with pytest.raises(DataError, match="transposed"):
        nmf(X, 4, W=W.T)
    with pytest.raises(DataError, match="negative"):
        nmf(X, 4, W=-W)


def test_stopping_rules():
    X, _, _ = low_rank(noise=0.05)
    result = nmf(X, 4, max_iter=500, tol=0, target_error=0.2)
    assert result.converged and result.summary["stop_reason"] == "target_error"
    assert result.layers[0].relative_error <= 0.2
    result = nmf(X, 4, max_iter=500, tol=1e-3)
    assert result.summary["stop_reason"] == "tol" and result.n_iter < 500
    result = nmf(X, 4, max_iter=7, tol=0)
    assert result.n_iter == 7 and not result.converged
    result = nmf(X, 4, max_iter=100000, tol=0, max_time=0.2)
    assert result.summary["stop_reason"] == "max_time"


def test_callback_reports_each_iteration():
    X, _, _ = low_rank()
    seen = []
    nmf(X, 4, max_iter=5, tol=0, callback=lambda it, err, **info: seen.append((it, err, info["total"])))
    assert [s[0] for s in seen] == [1, 2, 3, 4, 5] and all(s[2] == 5 for s in seen)
    assert all(b[1] <= a[1] for a, b in zip(seen, seen[1:]))


def test_estimator_fit_transform_and_transform():
    X, _, _ = low_rank(noise=0.01)
    estimators = pytest.importorskip("mfcli.estimators", reason="mfcli.estimators needs scikit-learn")
    model = estimators.NMF(4, max_iter=200, random_state=0)
    model.fit(X.T)  # samples x features
    W, H = model.result_.layers[0].W, model.result_.layers[0].H  # the fit's own factors
    assert model.components_.shape == (4, 30) and H.shape == (4, 120) and model.n_iter_ >= 1
    np.testing.assert_allclose(model.components_, W.T)
    H_new = model.transform(X[:, :10].T).T
    assert H_new.min() >= 0
    # transform solves NNLS exactly: no worse than the fitted coefficients on the same columns
    assert np.linalg.norm(X[:, :10] - W @ H_new) <= np.linalg.norm(X[:, :10] - W @ H[:, :10]) + 1e-9


def test_project_update_equals_two_products():
    rng = np.random.default_rng(0)
    X = rng.random((7, 1000))
    W = rng.random((7, 3))
    data = InMemoryMatrix(X)
    H = np.empty((3, 1000))

    def update(B, cols):
        H[:, cols] = B * 2.0
        return H[:, cols]

    XHt = project_update(data, W, update)
    np.testing.assert_allclose(H, 2 * W.T @ X)
    np.testing.assert_allclose(XHt, X @ H.T)


def test_float32_norm_is_accurate():
    rng = np.random.default_rng(0)
    X = rng.random((50, 40000)).astype(np.float32)
    exact = float(np.sum(X.astype(np.float64) ** 2))
    assert InMemoryMatrix(X).sq_norm() == pytest.approx(exact, rel=1e-9)


# ----- beta-divergences -------------------------------------------------------------------------

@pytest.mark.parametrize("beta", [2, 1, 0, 0.5, 1.5, 3])
def test_divergence_agrees_with_scikit_learn(beta):
    sklearn_nmf = pytest.importorskip("sklearn.decomposition._nmf")
    rng = np.random.default_rng(beta_seed := 4)
    X = rng.random((12, 30)) + 0.01
    X[0, :3] = 0.0  # zeros are excluded from the terms in x, as in scikit-learn
    W, H = rng.random((12, 3)), rng.random((3, 30))
    expected = sklearn_nmf._beta_divergence(X, W, H, float(beta))
    assert beta_divergence(X, W @ H, beta) == pytest.approx(expected, rel=1e-10)
    assert beta_seed == 4


@pytest.mark.parametrize("loss,beta", [("kl", 1.0), ("is", 0.0), ("beta=0.5", 0.5), ("beta=3", 3.0)])
def test_beta_mu_monotone_and_objective_correct(loss, beta):
    sklearn_nmf = pytest.importorskip("sklearn.decomposition._nmf")
    X, _, _ = low_rank(m=15, n=50, r=3, noise=0.05)
    X += 0.05
    result = nmf(X, 3, loss=loss, max_iter=60, tol=0, seed=1)
    layer = result.layers[0]
    assert nonincreasing(layer.history["objective"], rtol=1e-9)
    assert result.params["loss"] == ("kl" if beta == 1 else "is" if beta == 0 else f"beta={beta:g}")
    # the stored divergence is that of the returned factors
    assert result.summary["divergence"] == pytest.approx(
        sklearn_nmf._beta_divergence(X, layer.W, layer.H, beta), rel=1e-9)
    assert layer.relative_error == pytest.approx(np.linalg.norm(X - layer.W @ layer.H) / np.linalg.norm(X))


def test_beta_blocks_match_single_block(monkeypatch):
    X, _, _ = low_rank(m=10, n=700, r=3, noise=0.05)
    X += 0.01
    whole = beta_nmf(X, 3, beta=1, max_iter=5, tol=0).layers[0]
    import mfcli.models.beta as beta_module

    original = beta_module.column_blocks
    monkeypatch.setattr(beta_module, "column_blocks", lambda data: original(data, 97))
    blocked = beta_nmf(X, 3, beta=1, max_iter=5, tol=0).layers[0]
    np.testing.assert_allclose(blocked.W, whole.W, rtol=1e-10)
    np.testing.assert_allclose(blocked.H, whole.H, rtol=1e-10)


def test_beta_kl_float32_kept():
    X, _, _ = low_rank(m=10, n=40, r=2, noise=0.05)
    layer = beta_nmf(X.astype(np.float32) + 0.01, 2, beta=1, max_iter=5).layers[0]
    assert layer.W.dtype == np.float32 and layer.H.dtype == np.float32


def test_rank_and_input_errors():
    from mfcli.errors import DataError, ParameterError

    X, _, _ = low_rank()
    with pytest.raises(ParameterError, match="larger than min"):
        nmf(X, 31)
    with pytest.raises(DataError, match="--clip-negative"):
        nmf(X - 1, 3)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        nmf(bad, 3)
    with pytest.raises(ParameterError, match="loss"):
        nmf(X, 3, loss="hellinger")
