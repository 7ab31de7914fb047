"""DMF's fold-in of unseen rows: a ridge solve toward the network's embedding, checked row by row."""

from __future__ import annotations

import numpy as np
import pytest

from mfcli.completion.dmf import fold_in_embeddings


def example(seed=0, n_rows=12, n_cols=15, d=4):
    rng = np.random.default_rng(seed)
    start = rng.normal(size=(n_rows, d))
    start /= np.linalg.norm(start, axis=1, keepdims=True)
    other = rng.normal(size=(n_cols, d))
    other /= np.linalg.norm(other, axis=1, keepdims=True)
    rows, cols = np.nonzero(rng.random((n_rows, n_cols)) < 0.5)
    values = rng.uniform(-1, 1, len(rows))
    new = rng.random(n_rows) < 0.5
    new[0], new[1] = True, False
    rows, cols, values = rows[rows != 0], cols[rows != 0], values[rows != 0]  # new row 0 has no ratings
    other_seen = np.ones(n_cols, dtype=bool)
    other_seen[-2:] = False  # ratings of unseen columns are not used
    return start, other, new, rows, cols, values, other_seen


@pytest.mark.parametrize("lam", [0.5, 3.0, 10.0])
def test_fold_in_is_the_ridge_solve_toward_the_network_embedding(lam):
    start, other, new, rows, cols, values, other_seen = example()
    got = fold_in_embeddings(start, other, new, rows, cols, values, other_seen, lam)
    d = start.shape[1]
    for row in range(len(start)):
        mine = (rows == row) & other_seen[cols]
        if not new[row] or not mine.any():
            np.testing.assert_array_equal(got[row], start[row])  # seen rows and rows without ratings
            continue
        C, s = other[cols[mine]], values[mine]
        expected = np.linalg.solve(C.T @ C + lam * np.eye(d), C.T @ s + lam * start[row])
        np.testing.assert_allclose(got[row], expected, rtol=1e-4, atol=1e-5)


def test_a_huge_lambda_keeps_the_network_output_and_a_tiny_one_fits_the_ratings():
    start, other, new, rows, cols, values, other_seen = example(seed=1, n_cols=40, d=3)
    kept = fold_in_embeddings(start, other, new, rows, cols, values, other_seen, 1e9)
    np.testing.assert_allclose(kept, start, atol=1e-6)
    fitted = fold_in_embeddings(start, other, new, rows, cols, values, other_seen, 1e-9)
    row = np.flatnonzero(new & (np.bincount(rows, minlength=len(new)) >= 3))[0]
    mine = (rows == row) & other_seen[cols]
    C, s = other[cols[mine]], values[mine]
    np.testing.assert_allclose(fitted[row], np.linalg.lstsq(C, s, rcond=None)[0], rtol=1e-3, atol=1e-4)
