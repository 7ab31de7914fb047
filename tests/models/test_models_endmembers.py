"""VCA's SNR estimate (mfcli.models.endmembers) against the energies computed directly."""

from __future__ import annotations

import numpy as np
import pytest

from mfcli.models.endmembers import _second_moment, estimate_snr_db


@pytest.mark.parametrize("noise", [1e-3, 3e-2])
def test_snr_estimate_is_the_split_of_the_energy_around_the_signal_subspace(noise):
    rng = np.random.default_rng(5)
    m, n, rank = 20, 3000, 4
    X = rng.random((m, rank)) @ rng.dirichlet(np.ones(rank), size=n).T + noise * rng.standard_normal((m, n))
    mean = X.mean(axis=1)
    centred = X - mean[:, None]
    U = np.linalg.svd(centred, full_matrices=False)[0][:, :rank]
    power_total = np.sum(X * X) / n
    power_signal = np.sum((U.T @ centred) ** 2) / n + mean @ mean
    expected = 10 * np.log10((power_signal - rank / m * power_total) / (power_total - power_signal))
    assert estimate_snr_db(X, rank) == pytest.approx(expected, rel=1e-9)
    assert estimate_snr_db(X, rank, _second_moment(X), X.mean(axis=1)) == pytest.approx(expected, rel=1e-9)
