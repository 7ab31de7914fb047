"""The NumPy CSR pattern of the solvers and the ranking (mfcli.completion.data.Pattern) against
scipy.sparse, and the sort-based set helpers against NumPy's."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import scipy.sparse as sp

from mfcli.completion.data import Pattern, is_member, sorted_unique


def _random_pairs(rng, n, shape):
    rows = rng.integers(-1, shape[0], n)  # -1: unknown, left out
    cols = rng.integers(-1, shape[1], n)
    return rows, cols


def test_pattern_from_pairs_equals_scipys_csr_of_the_known_pairs():
    rng = np.random.default_rng(0)
    shape = (17, 23)
    rows, cols = _random_pairs(rng, 300, shape)  # with repeats
    pattern = Pattern.from_pairs(rows, cols, shape)
    keep = (rows >= 0) & (cols >= 0)
    expected = sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=shape)
    expected.sum_duplicates()
    expected.sort_indices()
    np.testing.assert_array_equal(pattern.indptr, expected.indptr)
    np.testing.assert_array_equal(pattern.indices, expected.indices)
    assert pattern.nnz == expected.nnz
    np.testing.assert_array_equal(pattern.toarray(), (expected.toarray() > 0).astype(np.int8))


def test_pattern_rows_and_difference_equal_the_dense_computation():
    rng = np.random.default_rng(1)
    shape = (12, 9)
    a = Pattern.from_pairs(*_random_pairs(rng, 60, shape), shape)
    b = Pattern.from_pairs(*_random_pairs(rng, 60, shape), shape)
    picked = np.array([5, 0, 11, 5, 3])
    np.testing.assert_array_equal(a[picked].toarray(), a.toarray()[picked])
    np.testing.assert_array_equal(a.minus(b).toarray(), a.toarray() & (1 - b.toarray()))
    # scipy's CSR matrices are taken as the other operand too
    np.testing.assert_array_equal(a.minus(sp.csr_matrix(b.toarray())).toarray(), a.toarray() & (1 - b.toarray()))


def test_sorted_unique_and_is_member_equal_numpys():
    rng = np.random.default_rng(2)
    values = rng.integers(0, 1000, 5000)
    np.testing.assert_array_equal(sorted_unique(values), np.unique(values))
    members = sorted_unique(rng.integers(0, 1000, 300))
    np.testing.assert_array_equal(is_member(values, members), np.isin(values, members))
    assert not is_member(values, np.array([], dtype=np.int64)).any()


def test_complete_imports_neither_scipy_nor_h5py_nor_matplotlib_without_output(tmp_path):
    """`mfcli complete` of a ratings file (ALS, the default) starts without SciPy, h5py or
    matplotlib: each costs a noticeable part of a small run's whole time."""
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    rng = np.random.default_rng(0)
    lines = {(u, i): rng.integers(1, 6) for u, i in zip(rng.integers(0, 30, 600), rng.integers(0, 40, 600))}
    items = list(lines.items())
    train.write_text("".join(f"{u},{i},{r}\n" for (u, i), r in items[:-40]))
    test.write_text("".join(f"{u},{i},{r}\n" for (u, i), r in items[-40:]))
    code = ("import sys\nfrom mfcli.cli.main import main\n"
            f"sys.argv = ['mfcli', '-q', 'complete', {str(train)!r}, '--test', {str(test)!r}, '--json']\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
            "loaded = sorted(m for m in ('scipy', 'h5py', 'matplotlib', 'torch', 'sklearn') if m in sys.modules)\n"
            "print('LOADED', loaded, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stderr, done.stderr


def test_blockwise_row_solves_equal_each_rows_normal_equations():
    """solve_rows with unit weights (one product [F t]^T [F t] per row gives its Gram matrix and
    right-hand side) and with weights, over many small blocks (rows of 1 to 70 entries), equals
    np.linalg.solve of each row's normal equations (F^T W F + diag(reg)) x = F^T W t."""
    from mfcli.completion.factors import RowPlan, solve_rows

    rng = np.random.default_rng(3)
    n_rows, n_cols, k = 40, 90, 5
    counts = rng.integers(0, 71, n_rows)
    counts[:3] = [0, 1, 70]
    cols = [np.sort(rng.choice(n_cols, c, replace=False)) for c in counts]
    pattern = Pattern(np.concatenate([[0], np.cumsum(counts)]), np.concatenate(cols), (n_rows, n_cols))
    targets = rng.normal(size=pattern.nnz)
    features = np.hstack([rng.normal(size=(n_cols, k - 1)), np.ones((n_cols, 1))])
    reg = rng.uniform(0.1, 2.0, size=(n_rows, k))
    for weights in (None, rng.uniform(0.2, 3.0, size=pattern.nnz)):
        plan = RowPlan(pattern, weights, 0.0, max_cells=64)  # many blocks
        assert len(plan.blocks) > 10
        got, rhs = solve_rows(pattern, targets, features, reg, weights, plan=plan, return_rhs=True)
        w = np.ones(pattern.nnz) if weights is None else weights
        for i in range(n_rows):
            entries = slice(pattern.indptr[i], pattern.indptr[i + 1])
            F = features[pattern.indices[entries]]
            A = F.T @ (w[entries, None] * F) + np.diag(reg[i])
            b = F.T @ (w[entries] * targets[entries])
            np.testing.assert_allclose(rhs[i], b, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(got[i], np.linalg.solve(A, b), rtol=1e-4, atol=1e-5)
