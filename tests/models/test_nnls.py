"""Batched NNLS / FCLS against SciPy's column-by-column Lawson-Hanson solver and the KKT conditions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import nnls as scipy_nnls

from mfcli.errors import DataError, ParameterError
from mfcli.models.matrix import InMemoryMatrix
from mfcli.models.nnls import fcls, nnls, nnls_from_grams


def column_by_column(W, X):
    return np.column_stack([scipy_nnls(W, X[:, j])[0] for j in range(X.shape[1])])


def random_problem(rng, signed: bool):
    r = int(rng.integers(1, 8))
    m = int(rng.integers(r, 25))
    n = int(rng.integers(1, 40))
    if signed:
        return rng.standard_normal((m, r)), rng.standard_normal((m, n))
    W = np.abs(rng.standard_normal((m, r)))
    H = np.abs(rng.standard_normal((r, n))) * (rng.random((r, n)) > 0.5)
    return W, W @ H + 0.05 * rng.standard_normal((m, n))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("signed", [True, False])
def test_nnls_agrees_with_scipy_column_by_column(seed, signed):
    rng = np.random.default_rng(seed)
    for _ in range(10):
        W, X = random_problem(rng, signed)
        H = nnls(W, X)
        expected = column_by_column(W, X)
        np.testing.assert_allclose(H, expected, atol=1e-9 * max(1.0, np.abs(expected).max()))


def test_nnls_satisfies_kkt_conditions():
    rng = np.random.default_rng(7)
    W = rng.standard_normal((30, 6))
    X = rng.standard_normal((30, 500))
    H = nnls(W, X)
    gradient = W.T @ (W @ H - X)  # dual variable Y = C H - B
    scale = np.abs(W.T @ X).max()
    assert H.min() >= 0
    assert gradient.min() >= -1e-10 * scale
    assert np.abs(H * gradient).max() <= 1e-10 * scale * max(1.0, H.max())
    assert (H == 0).any() and (H > 0).any()  # both constraints active and inactive somewhere


def test_nnls_rank_deficient_basis_reaches_scipys_objective():
    rng = np.random.default_rng(3)
    W = np.abs(rng.standard_normal((5, 8)))  # more columns than rows, solutions not unique
    W[:, 1] = W[:, 0]
    X = rng.standard_normal((5, 60))
    H = nnls(W, X)
    expected = column_by_column(W, X)
    ours = ((X - W @ H) ** 2).sum(axis=0)
    reference = ((X - W @ expected) ** 2).sum(axis=0)
    assert H.min() >= 0
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12)


def test_nnls_recovers_planted_sparse_coefficients_exactly():
    rng = np.random.default_rng(4)
    W = np.abs(rng.standard_normal((50, 5)))
    H_true = np.abs(rng.standard_normal((5, 2000))) * (rng.random((5, 2000)) > 0.4)
    H = nnls(W, W @ H_true)
    np.testing.assert_allclose(H, H_true, atol=1e-10)


def test_nnls_keeps_float32_and_accepts_data_matrix_and_grams():
    rng = np.random.default_rng(5)
    W = np.abs(rng.standard_normal((20, 4)))
    X = (W @ np.abs(rng.standard_normal((4, 100)))).astype(np.float32)
    H32 = nnls(W, X)
    assert H32.dtype == np.float32
    H64 = nnls(W, X.astype(np.float64))
    assert H64.dtype == np.float64
    np.testing.assert_allclose(H32, H64, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(nnls(W, InMemoryMatrix(X.astype(np.float64))), H64, atol=1e-12)
    np.testing.assert_allclose(nnls_from_grams(W.T @ W, W.T @ X.astype(np.float64)), H64, atol=1e-12)


def test_nnls_warm_start_gives_the_same_solution():
    rng = np.random.default_rng(6)
    W, X = rng.standard_normal((15, 5)), rng.standard_normal((15, 80))
    cold = nnls(W, X)
    warm = nnls(W, X, init=cold + (rng.random(cold.shape) > 0.7))
    np.testing.assert_allclose(warm, cold, atol=1e-12)


def test_nnls_rejects_mismatched_basis():
    with pytest.raises(DataError, match="rows"):
        nnls(np.ones((4, 2)), np.ones((5, 3)))


@pytest.mark.parametrize("seed", range(4))
def test_fcls_with_given_delta_is_exactly_the_augmented_nnls(seed):
    rng = np.random.default_rng(seed)
    delta = 3.0
    for _ in range(8):
        W, X = random_problem(rng, signed=False)
        r = W.shape[1]
        augmented = column_by_column(np.vstack([W, delta * np.ones((1, r))]),
                                     np.vstack([X, delta * np.ones((1, X.shape[1]))]))
        np.testing.assert_allclose(fcls(W, X, delta=delta), augmented, atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_fcls_exact_sums_to_one_and_matches_a_huge_delta(seed):
    rng = np.random.default_rng(seed + 10)
    for _ in range(8):
        W, X = random_problem(rng, signed=False)
        H = fcls(W, X)
        assert H.min() >= 0
        np.testing.assert_allclose(H.sum(axis=0), 1.0, atol=1e-12)
        r, delta = W.shape[1], 1e5
        augmented = column_by_column(np.vstack([W, delta * np.ones((1, r))]),
                                     np.vstack([X, delta * np.ones((1, X.shape[1]))]))
        np.testing.assert_allclose(H, augmented, atol=1e-6)


def test_fcls_kkt_conditions_with_sum_to_one():
    rng = np.random.default_rng(11)
    W = np.abs(rng.standard_normal((25, 5)))
    X = np.abs(rng.standard_normal((25, 300)))
    H = fcls(W, X)
    gradient = W.T @ (W @ H - X)
    # Stationarity: gradient + mu 1 = y with y >= 0 and y_i h_i = 0; mu is minus the gradient
    # on the support, the same for every positive entry of a column.
    scale = np.abs(W.T @ X).max()
    for j in range(H.shape[1]):
        support = H[:, j] > 1e-12
        mu = -gradient[support, j].mean()
        np.testing.assert_allclose(gradient[support, j] + mu, 0.0, atol=1e-9 * scale)
        assert np.all(gradient[~support, j] + mu >= -1e-9 * scale)


def test_fcls_recovers_planted_simplex_abundances_and_keeps_float32():
    rng = np.random.default_rng(12)
    W = np.abs(rng.standard_normal((40, 4)))
    A = rng.dirichlet(np.full(4, 0.5), size=1000).T
    X = W @ A
    H32 = fcls(W, X.astype(np.float32))
    assert H32.dtype == np.float32
    np.testing.assert_allclose(H32, A, atol=2e-4)
    np.testing.assert_allclose(fcls(W, X), A, atol=1e-10)


def test_fcls_rejects_bad_delta():
    with pytest.raises(ParameterError, match="delta"):
        fcls(np.ones((3, 2)), np.ones((3, 2)), delta=-1.0)


@pytest.mark.parametrize("solver", ["nnls", "fcls"])
def test_columns_in_small_chunks_give_the_same_solution(monkeypatch, solver):
    """The pivoting handles the columns (of a passive set, of the columns still to settle) in
    chunks to bound its work arrays: chunks of 7 columns give the solution of one chunk of all."""
    import mfcli.models.nnls as nnls_module

    rng = np.random.default_rng(11)
    W = np.abs(rng.standard_normal((20, 5)))
    X = W @ rng.dirichlet(np.full(5, 0.4), 300).T + 0.05 * rng.standard_normal((20, 300))
    solve = fcls if solver == "fcls" else nnls
    whole = solve(W, X)
    monkeypatch.setattr(nnls_module, "COLUMN_CHUNK", 7)
    np.testing.assert_allclose(solve(W, X), whole, rtol=0, atol=1e-12)
    expected = column_by_column(W, X) if solver == "nnls" else whole
    np.testing.assert_allclose(whole, expected, atol=1e-9)


def test_operators_shared_by_blocks_give_the_same_solution():
    """Blocks of columns of one basis solved with one cache of passive-set operators (as a
    layer's abundances are): each block's solution exactly as solved alone, and fewer operators
    formed than one set per block."""
    import mfcli.models.nnls as nnls_module

    rng = np.random.default_rng(13)
    W = np.abs(rng.standard_normal((30, 6)))
    X = np.abs(rng.standard_normal((30, 900))) * (rng.random((1, 900)) > 0.3)
    C, B = W.T @ W, W.T @ X
    blocks = [slice(0, 300), slice(300, 600), slice(600, 900)]
    alone = [nnls_from_grams(C, B[:, block]) for block in blocks]
    formed = []
    original = nnls_module._passive_operator

    def counting(*args):
        formed.append(args[1].tobytes())
        return original(*args)

    nnls_module._passive_operator = counting
    try:
        operators: dict = {}
        shared = [nnls_from_grams(C, B[:, block], operators=operators) for block in blocks]
    finally:
        nnls_module._passive_operator = original
    for ours, theirs in zip(shared, alone):
        np.testing.assert_array_equal(ours, theirs)
    assert len(formed) == len(set(formed)) == len(operators)  # each passive set's operator formed once


def test_float32_grams_give_the_float64_solution():
    """nnls_from_grams takes a float32 W^T X as it is (its values are exact in float64)."""
    rng = np.random.default_rng(12)
    W = np.abs(rng.standard_normal((30, 6))).astype(np.float32)
    X = np.abs(rng.standard_normal((30, 400))).astype(np.float32)
    C, B = W.T.astype(np.float64) @ W.astype(np.float64), W.T @ X
    assert B.dtype == np.float32
    np.testing.assert_array_equal(nnls_from_grams(C, B), nnls_from_grams(C, B.astype(np.float64)))


@pytest.mark.parametrize("solver", ["nnls", "fcls"])
def test_more_than_62_endmembers_solve_exactly(solver):
    """Beyond 62 endmembers the passive sets are told apart by their bytes (not a 64-bit key):
    the systems cached across pivoting sweeps must be those of the same sets."""
    rng = np.random.default_rng(13)
    W = np.abs(rng.standard_normal((90, 70)))
    X = W @ (np.abs(rng.standard_normal((70, 60))) * (rng.random((70, 60)) > 0.6)) + 0.3 * rng.standard_normal((90, 60))
    if solver == "nnls":
        np.testing.assert_allclose(nnls(W, X), column_by_column(W, X), atol=1e-8)
    else:
        H = fcls(W, X)
        np.testing.assert_allclose(H.sum(axis=0), 1.0, atol=1e-9)
        assert H.min() >= 0
        gradient = W.T @ (W @ H - X)  # KKT with the sum-to-one multiplier: equal on the support, larger off it
        for j in range(X.shape[1]):
            support = H[:, j] > 1e-12
            mu = gradient[support, j].mean()
            np.testing.assert_allclose(gradient[support, j], mu, atol=1e-6 * max(1.0, abs(mu)))
            assert np.all(gradient[~support, j] >= mu - 1e-6 * max(1.0, abs(mu)))
