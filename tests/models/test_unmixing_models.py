"""Endmember extraction, minimum-volume NMF and HySime on planted mixtures."""

from __future__ import annotations

import numpy as np
import pytest

from mfcli.errors import ParameterError
from mfcli.metrics import match_endmembers, spectral_angles
from mfcli.models.endmembers import endmember_indices, extract_endmembers, nfindr, vca
from mfcli.models.minvol import minvol, simplex_logdet
from mfcli.models.rank import estimate_noise, estimate_rank, hysime, simplex_rank


def planted_mixture(seed: int, m: int = 40, r: int = 4, n: int = 600, alpha: float = 1.0, pure: bool = True,
                    noise: float = 0.0):
    """X = E A (+ noise) with A on the simplex; with ``pure`` the first r pixels are the endmembers."""
    rng = np.random.default_rng(seed)
    E = np.abs(rng.standard_normal((m, r))) + 0.1
    A = rng.dirichlet(np.full(r, alpha), size=n).T
    if pure:
        A[:, :r] = np.eye(r)
    X = E @ A + noise * rng.standard_normal((m, n))
    return np.maximum(X, 0), E, A


@pytest.mark.parametrize("method", ["spa", "vca", "nfindr", "snpa"])
def test_pixel_methods_find_the_planted_pure_pixels(method):
    X, E, _ = planted_mixture(0)
    indices = endmember_indices(X, 4, method, seed=1)
    assert sorted(indices.tolist()) == [0, 1, 2, 3]
    spectra, same = extract_endmembers(X, 4, method, seed=1)
    np.testing.assert_array_equal(same, indices)
    np.testing.assert_array_equal(spectra, X[:, indices])


def test_vca_low_snr_branch_and_seed_reproducibility():
    X, _, _ = planted_mixture(1, noise=0.0)
    first = vca(X, 4, seed=3, snr_db=0.0)  # forces the PCA (low-SNR) projection
    assert sorted(first.tolist()) == [0, 1, 2, 3]
    np.testing.assert_array_equal(vca(X, 4, seed=3), vca(X, 4, seed=3))


def test_nfindr_from_random_start_reaches_the_largest_simplex():
    X, _, _ = planted_mixture(2)
    assert sorted(nfindr(X, 4, init="random", seed=5).tolist()) == [0, 1, 2, 3]


def test_unknown_method_is_a_parameter_error():
    X, _, _ = planted_mixture(3)
    with pytest.raises(ParameterError, match="unknown endmember method"):
        endmember_indices(X, 3, "atgp")


def test_minvol_objective_never_increases_and_abundances_are_on_the_simplex():
    X, E, A = planted_mixture(4, alpha=0.7, noise=0.01)
    result = minvol(X, 4, lam=0.004, delta=0.5, max_iter=60, tol=0)
    layer = result.layers[0]
    objective = layer.history["objective"]
    assert np.all(np.diff(objective) <= 1e-9 * np.abs(objective[:-1]))
    assert layer.H.min() >= 0
    np.testing.assert_allclose(layer.H.sum(axis=0), 1.0, atol=1e-6)
    assert layer.attrs["coefficients"] == "fcls"


@pytest.mark.parametrize("normalize", ["l1", "l2", "none"])
def test_minvol_recovers_endmembers_without_pure_pixels(normalize):
    # No pixel has more than ~80% of any material: the pure-pixel methods cannot reach the
    # vertices, minimum volume can.
    rng = np.random.default_rng(5)
    m, r, n = 30, 3, 800
    E = np.abs(rng.standard_normal((m, r))) + 0.1
    A = rng.dirichlet(np.full(r, 1.0), size=4 * n).T
    A = A[:, A.max(axis=0) < 0.8][:, :n]
    X = E @ A
    result = minvol(X, r, init="spa", lam=1e-5, delta=0.5, normalize=normalize, max_iter=300, tol=1e-9)
    W = result.layers[0].W
    minvol_sad = spectral_angles(W[:, match_endmembers(W, E)], E).mean()
    pixels = X[:, endmember_indices(X, r, "nfindr")]
    pixel_sad = spectral_angles(pixels[:, match_endmembers(pixels, E)], E).mean()
    assert minvol_sad < 0.35 * pixel_sad
    assert minvol_sad < 2.5


def test_minvol_through_the_registry_and_estimator():
    from mfcli.models.registry import get_model

    X, _, _ = planted_mixture(6, r=3, n=300)
    spec = get_model("minvol")
    result = spec.run(X, 3, max_iter=20, seed=0, init="vca", lam=0.004)
    assert result.model == "minvol" and result.layers[0].W.shape == (40, 3)
    estimators = pytest.importorskip("mfcli.estimators", reason="mfcli.estimators needs scikit-learn")
    estimator = estimators.MinVolNMF(3, max_iter=20)
    Z = estimator.fit_transform(X.T)  # samples x features
    np.testing.assert_allclose(estimator.transform(X.T), Z, atol=1e-6)
    with pytest.raises(ParameterError, match="volume"):
        minvol(X, 3, volume="box")
    with pytest.raises(ParameterError, match="delta"):
        minvol(X, 3, delta=0)


def test_affine_logdet_ignores_translation_and_origin_logdet_does_not():
    rng = np.random.default_rng(7)
    W = rng.random((10, 3))
    shift = rng.random((10, 1))
    assert simplex_logdet(W + shift, 1e-3, "affine") == pytest.approx(simplex_logdet(W, 1e-3, "affine"))
    assert simplex_logdet(W + shift, 1e-3, "origin") != pytest.approx(simplex_logdet(W, 1e-3, "origin"))


def test_noise_regression_is_the_residual_of_each_band_on_the_others():
    rng = np.random.default_rng(8)
    Y = rng.random((6, 200))
    noise = estimate_noise(Y)
    for band in (0, 3):
        others = np.delete(Y, band, axis=0)
        beta = np.linalg.lstsq(others.T, Y[band], rcond=None)[0]
        np.testing.assert_allclose(noise[band], Y[band] - beta @ others, atol=1e-8)


@pytest.mark.parametrize("rank", [3, 6])
@pytest.mark.parametrize("colored", [False, True])
def test_hysime_finds_the_planted_rank(rank, colored):
    rng = np.random.default_rng(rank)
    m, n = 60, 3000
    E = np.abs(rng.standard_normal((m, rank)))
    A = rng.dirichlet(np.ones(rank), size=n).T
    sigma = 0.01 * (np.linspace(0.3, 3.0, m) if colored else np.ones(m))
    X = E @ A + sigma[:, None] * rng.standard_normal((m, n))
    estimate = hysime(X)
    assert estimate["rank"] == rank
    # The regression residual also carries some noise of the other bands: close, not exact.
    assert 0.8 < np.median(estimate["noise_std"] / sigma) < 1.3
    assert hysime(X, max_rank=2)["rank"] == 2


def test_minvol_keeps_the_start_of_smallest_objective():
    X, _, _ = planted_mixture(9, r=3, n=400, alpha=0.6, noise=0.01)
    several = minvol(X, 3, starts="spa,vca,nfindr,snpa", max_iter=40, seed=1)
    layer = several.layers[0]
    objectives = layer.arrays["start_objectives"]
    assert layer.attrs["starts"] == ["spa", "vca", "nfindr", "snpa"] and len(objectives) == 4
    assert layer.attrs["start"] == layer.attrs["starts"][int(np.argmin(objectives))]
    assert layer.history["objective"][-1] == pytest.approx(objectives.min())
    # every start shares lambda and delta (set from the first start), so the objectives compare:
    # the first start alone ends where it ended among the others
    alone = minvol(X, 3, starts="spa", max_iter=40, seed=1).layers[0]
    assert alone.arrays["start_objectives"][0] == pytest.approx(objectives[0], rel=1e-10)
    np.testing.assert_allclose(layer.H.sum(axis=0), 1.0, atol=1e-6)
    with pytest.raises(ParameterError, match="unknown minvol start"):
        minvol(X, 3, starts="spa,atgp")


def test_simplex_rank_counts_materials_where_hysime_counts_directions():
    # four materials whose spectra vary from pixel to pixel (a smooth random distortion per
    # pixel): the variability adds signal directions, not materials
    rng = np.random.default_rng(11)
    m, r, n = 50, 4, 3000
    E = np.abs(rng.standard_normal((m, r))) + 0.2
    A = rng.dirichlet(np.full(r, 0.5), size=n).T
    bands = np.linspace(0, 1, m)[:, None]
    warp = 1 + 0.03 * rng.standard_normal((3, n))
    X = (E @ A) * (warp[0] + (warp[1] - 1) * bands + (warp[2] - 1) * bands**2) + 0.002 * rng.standard_normal((m, n))
    X = np.maximum(X, 0)
    bound = hysime(X)["rank"]
    estimate = estimate_rank(X)
    assert estimate["rank"] == 4 and estimate["upper_bound"] == bound > 4  # HySime: 9
    assert len(estimate["gains"]) == min(bound, 15) - 1 and estimate["gains"][2] >= 2.0
    assert np.all(estimate["gains"][3:] < 2.0)
    assert simplex_rank(X, 2)["rank"] == 2  # never above the count it is given


@pytest.mark.slow
@pytest.mark.parametrize("name", ["samson", "moffett"])
def test_estimate_rank_counts_three_materials_on_samson_and_moffett(name):
    from mfcli.io import load_dataset

    X = load_dataset(f"sample:{name}").X
    estimate = estimate_rank(X)
    assert estimate["rank"] == 3
    assert estimate["upper_bound"] > 3  # HySime over-counts (73 and 15)


def test_minvol_lam_auto_follows_the_fit_and_large_scenes_are_screened():
    X, E, _ = planted_mixture(10, r=3, n=600, alpha=0.6, noise=0.005)
    result = minvol(X, 3, screen_size=250, max_iter=60, seed=2)
    layer = result.layers[0]
    path = layer.arrays["lam_path"]  # (lam, relative error) per run of the path, largest lam first
    assert np.all(np.diff(path[:, 0]) < 0) and layer.attrs["screened"] is True
    chosen = layer.attrs["lam_chosen"]
    errors = dict(zip(path[:, 0], path[:, 1]))
    position = list(path[:, 0]).index(chosen)
    if position + 1 < len(path):  # the next lam no longer improved the squared error by 25%
        assert (errors[chosen] / path[position + 1, 1]) ** 2 < 1.25
    assert all((path[k - 1, 1] / path[k, 1]) ** 2 >= 1.25 for k in range(1, position + 1))
    assert result.params["lam"] == "auto"
    np.testing.assert_allclose(layer.H.sum(axis=0), 1.0, atol=1e-6)
    assert spectral_angles(layer.W[:, match_endmembers(layer.W, E)], E).mean() < 3.0
