"""HySime's correlations from one pass over the data (mfcli.models.rank)."""

from __future__ import annotations

import numpy as np
import pytest

from mfcli.models.rank import correlations, estimate_noise, hysime


def test_one_pass_correlations_equal_those_of_the_explicit_noise_and_signal():
    rng = np.random.default_rng(11)
    m, n = 12, 400
    Y = rng.random((m, 4)) @ rng.random((4, n)) + 0.01 * rng.standard_normal((m, n))
    noise = estimate_noise(Y)
    signal = Y - noise
    Ry, Rn, Rx = correlations(Y)
    np.testing.assert_allclose(Ry, Y @ Y.T / n, rtol=1e-12)
    np.testing.assert_allclose(Rn, noise @ noise.T / n, rtol=1e-8, atol=1e-12 * np.abs(Rn).max())
    np.testing.assert_allclose(Rx, signal @ signal.T / n, rtol=1e-8, atol=1e-12 * np.abs(Rx).max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_hysime_takes_any_float_type_and_gives_the_same_rank(dtype):
    rng = np.random.default_rng(12)
    m, n, rank = 30, 2000, 4
    X = rng.random((m, rank)) @ rng.dirichlet(np.ones(rank), size=n).T + 0.01 * rng.standard_normal((m, n))
    estimate = hysime(X.astype(dtype))
    assert estimate["rank"] == rank
    assert np.all(np.diff(estimate["eigenvalues"]) <= 0)
