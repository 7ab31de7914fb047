"""Unmixing metrics against hand-made cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mfcli.metrics import (
    abundance_distance_matrix,
    abundance_rmse,
    abundance_rmse_per_material,
    match_abundances,
    match_endmembers,
    signal_to_reconstruction_error,
    spectral_angle_matrix,
    spectral_angles,
)


def rotation_pair(rng, m: int, degrees: float):
    """Two vectors in a random plane of R^m at exactly ``degrees`` to each other."""
    basis, _ = np.linalg.qr(rng.standard_normal((m, 2)))
    angle = math.radians(degrees)
    return basis[:, 0], math.cos(angle) * basis[:, 0] + math.sin(angle) * basis[:, 1]


@pytest.mark.parametrize("degrees", [0.0, 1e-4, 0.5, 3.0, 30.0, 89.0, 90.0, 135.0, 180.0])
def test_two_spectra_at_a_known_angle_give_that_angle(degrees):
    rng = np.random.default_rng(0)
    a, b = rotation_pair(rng, 50, degrees)
    angles = spectral_angle_matrix(3.0 * a, 0.2 * b)  # scale-free
    assert angles.shape == (1, 1)
    assert angles[0, 0] == pytest.approx(degrees, abs=1e-9)


def test_sad_agrees_with_the_arccos_formula():
    rng = np.random.default_rng(1)
    E, T = np.abs(rng.standard_normal((20, 4))), np.abs(rng.standard_normal((20, 5)))
    cosines = (E.T @ T) / np.outer(np.linalg.norm(E, axis=0), np.linalg.norm(T, axis=0))
    np.testing.assert_allclose(spectral_angle_matrix(E, T), np.degrees(np.arccos(cosines)), atol=1e-10)
    np.testing.assert_allclose(spectral_angles(E, T[:, :4]), np.diag(np.degrees(np.arccos(cosines[:, :4]))),
                               atol=1e-10)


def test_zero_spectrum_is_at_90_degrees():
    assert spectral_angle_matrix(np.zeros(3), np.ones(3))[0, 0] == 90.0


def test_matching_undoes_a_permutation_and_scaling():
    rng = np.random.default_rng(2)
    E_true = np.abs(rng.standard_normal((30, 5)))
    permutation = np.array([3, 0, 4, 1, 2])
    E_est = E_true[:, permutation] * np.array([0.5, 2.0, 1.0, 7.0, 0.1]) + 1e-3 * rng.random((30, 5))
    matched = match_endmembers(E_est, E_true)
    np.testing.assert_array_equal(permutation[matched], np.arange(5))
    assert spectral_angles(E_est[:, matched], E_true).max() < 0.5


def test_matching_with_more_and_fewer_estimates():
    rng = np.random.default_rng(3)
    E_true = np.abs(rng.standard_normal((30, 3)))
    extra = np.column_stack([rng.random(30), E_true[:, 2], E_true[:, 0], E_true[:, 1]])
    np.testing.assert_array_equal(match_endmembers(extra, E_true), [2, 3, 1])
    fewer = match_endmembers(E_true[:, [1]], E_true)
    np.testing.assert_array_equal(fewer, [-1, 0, -1])


def test_abundance_matching_and_rmse():
    rng = np.random.default_rng(4)
    A_true = rng.dirichlet(np.ones(4), size=200).T
    permutation = np.array([2, 3, 1, 0])
    A_est = A_true[permutation] + 0.01 * rng.standard_normal((4, 200))
    matched = match_abundances(A_est, A_true)
    np.testing.assert_array_equal(permutation[matched], np.arange(4))
    difference = A_est[matched] - A_true
    assert abundance_rmse(A_est[matched], A_true) == pytest.approx(math.sqrt((difference**2).sum() / difference.size))
    np.testing.assert_allclose(abundance_rmse_per_material(A_est[matched], A_true),
                               [math.sqrt((row**2).mean()) for row in difference])
    distances = abundance_distance_matrix(A_est, A_true)
    assert distances[matched[1], 1] == pytest.approx(math.sqrt((difference[1] ** 2).mean()))


def test_sre_of_a_known_perturbation():
    rng = np.random.default_rng(5)
    truth = rng.random((3, 100))
    noise = rng.standard_normal((3, 100))
    # Scale the perturbation to exactly 1/100 of the energy: SRE = 20 dB.
    noise *= math.sqrt((truth**2).sum() / 100.0 / (noise**2).sum())
    assert signal_to_reconstruction_error(truth, truth + noise) == pytest.approx(20.0, abs=1e-10)
    assert signal_to_reconstruction_error(truth, truth) == math.inf


def test_shape_mismatches_are_reported():
    with pytest.raises(ValueError, match="bands"):
        spectral_angle_matrix(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="differ"):
        abundance_rmse(np.ones((2, 3)), np.ones((3, 3)))
