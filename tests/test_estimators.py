"""mfcli.estimators: scikit-learn's estimator checks, its orientation, and sparse input."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="mfcli.estimators needs scikit-learn (pip install 'mfcli[sklearn]')")

import scipy.sparse as sp  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from mfcli import estimators  # noqa: E402

MINVOL = {
    "check_estimators_dtypes": "minvol's abundances sum to one: an all-zero sample cannot be represented",
    "check_fit2d_1feature": "as check_estimators_dtypes (the one-feature data has zero samples)",
    "check_estimator_sparse_tag": "as check_estimators_dtypes (the random sparse data have all-zero samples)",
    "check_estimator_sparse_array": "as check_estimator_sparse_tag",
    "check_estimator_sparse_matrix": "as check_estimator_sparse_tag",
}
EDAA = {
    "check_estimators_dtypes": "edaa normalizes each sample to unit l2 norm and its coefficients sum to one: "
                               "an all-zero sample cannot be represented",
    "check_estimator_sparse_tag": "as check_estimators_dtypes (the random sparse data have all-zero samples)",
    "check_estimator_sparse_array": "as check_estimator_sparse_tag",
    "check_estimator_sparse_matrix": "as check_estimator_sparse_tag",
}
EXPECTED_FAILURES = {"MinVolNMF": MINVOL, "EDAA": EDAA}


def _instances():
    for name in estimators.__all__:
        cls = getattr(estimators, name)
        yield cls() if name == "DeepFactorization" else cls(n_components=2)


@parametrize_with_checks(list(_instances()),
                         expected_failed_checks=lambda est: EXPECTED_FAILURES.get(type(est).__name__, {}))
def test_scikit_learn_checks(estimator, check):
    check(estimator)


def _image_like(n_samples=300, n_features=20, rank=3, seed=0):
    """Samples x features = pixels x bands: Dirichlet abundances times nonnegative spectra."""
    rng = np.random.default_rng(seed)
    spectra = rng.random((rank, n_features)) + 0.1
    abundances = rng.dirichlet(np.full(rank, 0.5), size=n_samples)
    return abundances @ spectra, abundances, spectra


def test_orientation_components_are_features_and_transform_gives_samples():
    X, _, _ = _image_like()
    model = estimators.NMF(n_components=3, random_state=0)
    Z = model.fit_transform(X)
    assert Z.shape == (300, 3)
    assert model.components_.shape == (3, 20)
    assert model.n_features_in_ == 20 and model.n_components_ == 3
    relative = np.linalg.norm(X - Z @ model.components_) / np.linalg.norm(X)
    assert relative == pytest.approx(model.relative_error_, rel=1e-6, abs=1e-9)
    assert model.reconstruction_err_ == pytest.approx(np.linalg.norm(X - Z @ model.components_), rel=1e-6, abs=1e-9)
    assert model.relative_error_ <= model.result_.relative_error + 1e-12  # exact coefficients never fit worse
    np.testing.assert_allclose(model.transform(X), Z)
    np.testing.assert_allclose(model.inverse_transform(Z), Z @ model.components_)


def test_pipeline_with_a_classifier_and_grid_search():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    X, abundances, _ = _image_like()
    y = abundances.argmax(axis=1)
    pipeline = make_pipeline(estimators.NMF(random_state=0), LogisticRegression(max_iter=500))
    search = GridSearchCV(pipeline, {"nmf__n_components": [2, 3]}, cv=3).fit(X, y)
    assert search.best_params_["nmf__n_components"] in (2, 3)
    assert search.score(X, y) > 0.5


def test_clone_keeps_parameters_and_drops_fitted_state():
    model = estimators.MinVolNMF(n_components=3, lam=0.01, random_state=1).fit(_image_like()[0])
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "components_")


def test_transform_before_fit_and_bad_data_raise_scikit_learn_errors():
    model = estimators.NMF(n_components=2)
    with pytest.raises(NotFittedError):
        model.transform(np.ones((3, 4)))
    with pytest.raises(ValueError, match="Negative values"):
        model.fit(-np.ones((5, 4)))
    fitted = estimators.NMF(n_components=2, random_state=0).fit(_image_like()[0])
    bad = _image_like()[0][:4].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        fitted.transform(bad)
    bad[0, 0] = -1.0
    with pytest.raises(ValueError, match="Negative values"):
        fitted.transform(bad)
    with pytest.raises(ValueError):
        fitted.transform(np.ones((3, 7)))  # wrong number of features


def test_penalized_models_transform_with_their_penalty():
    """SparseNMF's and AONMF's coefficients of new data solve the model's own problem: KKT of
    1/2||x - W h||^2 + l1 1^T h (+ orthogonality sum_{j<k} h_j h_k) with h >= 0, not plain NNLS."""
    from mfcli.models.nnls import nnls

    X, _, _ = _image_like(rank=3)
    sparse = estimators.SparseNMF(n_components=3, l1=0.3, random_state=0).fit(X)
    Z = sparse.transform(X)
    W = sparse.components_.T
    lam = sparse.result_.layers[0].attrs["l1_absolute"]
    gradient = (W.T @ W) @ Z.T - W.T @ X.T + lam
    assert np.abs(gradient[Z.T > 1e-9]).max() < 1e-6 * np.abs(W.T @ X.T).max()
    assert gradient[Z.T <= 1e-9].min() > -1e-6 * np.abs(W.T @ X.T).max()
    plain = nnls(W, X.T)
    assert np.count_nonzero(Z) < np.count_nonzero(plain > 1e-12)  # the penalty makes zeros

    ortho = estimators.AONMF(n_components=3, penalty=0.2, random_state=0).fit(X)
    Z = ortho.transform(X)
    W = ortho.components_.T
    G = W.T @ W + 0.2 * (np.ones((3, 3)) - np.eye(3))
    gradient = G @ Z.T - W.T @ X.T
    assert np.abs(gradient[Z.T > 1e-9]).max() < 1e-5 * np.abs(W.T @ X.T).max()
    assert gradient[Z.T <= 1e-9].min() > -1e-5 * np.abs(W.T @ X.T).max()


def test_kullback_leibler_transform_minimizes_the_divergence():
    from mfcli.metrics import beta_divergence
    from mfcli.models.nnls import nnls

    X, _, _ = _image_like(rank=3)
    model = estimators.NMF(n_components=3, beta_loss="kullback-leibler", random_state=0).fit(X)
    Z = model.transform(X)
    C = model.components_
    plain = np.maximum(nnls(C.T, X.T).T, 1e-12)
    assert beta_divergence(X, Z @ C, 1.0) < beta_divergence(X, plain @ C, 1.0)
    assert model.reconstruction_err_ == pytest.approx(np.sqrt(2 * beta_divergence(X, Z @ C, 1.0)), rel=1e-9)


def test_archetypal_components_are_convex_combinations_of_samples():
    X, _, _ = _image_like()
    model = estimators.ArchetypalAnalysis(n_components=3, random_state=0).fit(X)
    np.testing.assert_allclose(model.A_ @ X, model.components_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(model.A_.sum(axis=1), 1.0, atol=1e-8)
    abundances = model.transform(X)
    np.testing.assert_allclose(abundances.sum(axis=1), 1.0, atol=1e-6)


def test_onmf_labels_are_hard_clusters():
    X, abundances, _ = _image_like(rank=3)
    model = estimators.ONMF(n_components=3, random_state=0).fit(X)
    Z = model.transform(X)
    assert np.all((Z > 0).sum(axis=1) <= 1)
    assert model.labels_.shape == (X.shape[0],)


def test_deep_factorization_layers():
    X, _, _ = _image_like(n_features=12, rank=4)
    model = estimators.DeepFactorization(ranks=[4, 2], random_state=0).fit(X)
    assert [c.shape for c in model.layer_components_] == [(4, 12), (2, 12)]
    assert model.transform(X, layer=1).shape == (300, 4)
    assert model.transform(X).shape == (300, 2)
    assert model.labels_.shape == (300,)


def test_deep_factorization_takes_the_deep_models_parameters():
    """What models.deep's own estimator took (**params) before it was removed for this one."""
    from mfcli.errors import ParameterError

    X, _, _ = _image_like(n_features=12, rank=4)
    model = estimators.DeepFactorization(ranks=[4, 2], model_params={"restarts": 2}, random_state=0).fit(X)
    assert model.result_.params["restarts"] == 2
    aonmf = estimators.DeepFactorization(ranks=[4, 2], model="deep-aonmf", model_params={"penalty": 0.5},
                                         max_iter=3, random_state=0).fit(X)
    assert aonmf.result_.params["penalty"] == 0.5
    with pytest.raises(ParameterError, match=r"no parameter 'restrats' \(its parameters: restarts"):
        estimators.DeepFactorization(ranks=[4, 2], model_params={"restrats": 2}).fit(X)


# -- sparse input -------------------------------------------------------------------------------


def _sparse_counts(n=400, m=150, density=0.05, seed=0):
    rng = np.random.default_rng(seed)
    dense = rng.random((n, 4)) @ rng.random((4, m))
    mask = rng.random((n, m)) < density
    return sp.csr_matrix(np.where(mask, dense, 0.0))


@pytest.mark.parametrize("name", ["NMF", "ONMF", "AONMF", "SparseNMF", "NsNMF", "SemiNMF", "TruncatedSVD"])
def test_sparse_and_dense_inputs_give_the_same_factorization(name):
    X = _sparse_counts()
    make = getattr(estimators, name)
    kwargs = {"n_components": 4, "random_state": 0, "tol": 0, "max_iter": 15}
    if name == "ONMF":
        kwargs["restarts"] = 3
    sparse_model = make(**kwargs).fit(X)
    dense_model = make(**kwargs).fit(X.toarray())
    np.testing.assert_allclose(sparse_model.components_, dense_model.components_, rtol=1e-6, atol=1e-9)
    assert sparse_model.reconstruction_err_ == pytest.approx(dense_model.reconstruction_err_, rel=1e-6)
    np.testing.assert_allclose(sparse_model.transform(X), dense_model.transform(X.toarray()), rtol=1e-5, atol=1e-8)
    assert sp.csc_matrix(X).format == "csc"  # the input is untouched (no in-place conversion)


def test_a_sparse_matrix_too_large_to_densify_is_factorized():
    """10^5 x 10^5 with 2 x 10^5 nonzeros: 80 GB as a dense float64 array, a few MB sparse."""
    rng = np.random.default_rng(0)
    n = 100_000
    rows = rng.integers(0, n, 200_000)
    cols = rng.integers(0, n, 200_000)
    X = sp.csr_matrix((rng.random(200_000), (rows, cols)), shape=(n, n))
    model = estimators.NMF(n_components=3, init="random", random_state=0, max_iter=3).fit(X)
    assert model.components_.shape == (3, n)
    assert np.isfinite(model.reconstruction_err_)


def test_sparse_input_is_not_modified():
    X = sp.csr_matrix(([1.0, 2.0, 3.0], ([0, 0, 2], [1, 1, 0])), shape=(3, 3))  # a duplicate entry
    before = (X.data.copy(), X.indices.copy(), X.indptr.copy())
    estimators.NMF(n_components=1, random_state=0, max_iter=2).fit(X)
    for array, kept in zip((X.data, X.indices, X.indptr), before):
        np.testing.assert_array_equal(array, kept)
