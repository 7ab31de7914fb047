"""evaluate_unmixing's overall scores against an independent computation, with every true
material matched and with fewer estimates than materials (the unmatched count as zero)."""

from __future__ import annotations

import numpy as np
import pytest

from mfcli.unmixing.evaluate import evaluate_unmixing


def _planted(seed=0, bands=12, materials=3, pixels=50):
    rng = np.random.default_rng(seed)
    E = rng.random((bands, materials)) + 0.1
    A = rng.dirichlet(np.ones(materials), size=pixels).T
    return E, A, rng


def _sre(truth, estimate):
    return 10 * np.log10(np.sum(truth**2) / np.sum((truth - estimate) ** 2))


def test_scores_of_permuted_noisy_estimates():
    E, A, rng = _planted()
    order = [2, 0, 1]
    E_est = E[:, order] * 3.0
    A_est = np.abs(A[order] + 0.01 * rng.standard_normal(A.shape))
    document = evaluate_unmixing(E_est, A_est, E, A)
    assert [entry["estimated"] for entry in document["matching"]] == [1, 2, 0]
    aligned = A_est[[1, 2, 0]]
    assert document["armse"] == pytest.approx(np.sqrt(np.mean((aligned - A) ** 2)), rel=1e-12)
    assert document["sre"] == pytest.approx(_sre(A, aligned), rel=1e-12)
    assert document["armse_per_material"] == pytest.approx(np.sqrt(np.mean((aligned - A) ** 2, axis=1)), rel=1e-9)
    assert document["mean_sad"] == pytest.approx(0.0, abs=1e-6)


def test_scores_with_fewer_estimates_than_materials():
    E, A, rng = _planted(seed=1)
    document = evaluate_unmixing(E[:, [2, 0]], A[[2, 0]], E, A)
    assert [entry["estimated"] for entry in document["matching"]] == [1, None, 0]
    aligned = np.vstack([A[0], np.zeros(A.shape[1]), A[2]])
    assert document["armse"] == pytest.approx(np.sqrt(np.mean((aligned - A) ** 2)), rel=1e-12)
    assert document["sre"] == pytest.approx(_sre(A, aligned), rel=1e-12)
    assert document["unmatched_estimates"] == []
