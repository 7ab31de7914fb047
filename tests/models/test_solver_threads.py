"""BLAS threads in the solvers (mfcli.models.threads): one thread for the small products, the
threads the run was given for the passes over X, the blocks of a pass shared among threads
without changing any number, and the caller's setting restored afterwards."""

from __future__ import annotations

import numpy as np
import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")

import mfcli.models.matrix as matrix  # noqa: E402
from mfcli.models.matrix import InMemoryMatrix, project_update  # noqa: E402
from mfcli.models.nmf import nmf  # noqa: E402


def blas_threads() -> int:
    return max(info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas")


@pytest.fixture
def two_threads():
    """BLAS at two threads for the test (skipped where BLAS cannot have two)."""
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        if blas_threads() < 2:
            pytest.skip("BLAS runs one thread here")
        yield


def low_rank(m=30, n=3000, r=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((m, r)) @ rng.random((r, n)) + 0.01 * rng.random((m, n))


def watch_passes(monkeypatch, threaded_product_min: int = 0) -> list[int]:
    """The BLAS threads inside every pass over X (mfcli.models.threads.pass_threads) whose
    products have at least ``threaded_product_min`` multiply-adds (0: every pass)."""
    import contextlib

    import mfcli.models.threads as threads

    seen: list[int] = []
    original = threads.pass_threads

    @contextlib.contextmanager
    def watched():
        with original():
            seen.append(blas_threads())
            yield

    monkeypatch.setattr(threads, "pass_threads", watched)
    monkeypatch.setattr(threads, "THREADED_PRODUCT_MIN", threaded_product_min)
    return seen


def test_small_products_run_on_one_thread_and_passes_on_all(two_threads, monkeypatch):
    passes = watch_passes(monkeypatch)
    between = []
    nmf(low_rank(), 4, max_iter=5, tol=0, callback=lambda *args, **info: between.append(blas_threads()))
    assert between and set(between) == {1}  # between passes: the small products
    assert passes and set(passes) == {2}  # each pass over X: the threads the run was given
    assert blas_threads() == 2  # restored after the run


def test_passes_too_small_to_gain_from_threads_stay_on_one(two_threads, monkeypatch):
    import mfcli.models.threads as threads

    passes = watch_passes(monkeypatch, threads.THREADED_PRODUCT_MIN)
    X = low_rank()  # 30 x 3000 at rank 4: 360,000 multiply-adds per product
    nmf(X, 4, max_iter=5, tol=0, callback=lambda *args, **info: passes.append(blas_threads()))
    assert passes and set(passes) == {1}


def test_a_caller_limit_is_respected(monkeypatch):
    passes = watch_passes(monkeypatch)
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        nmf(low_rank(), 4, max_iter=3, tol=0)
        assert blas_threads() == 1
    assert passes and set(passes) == {1}


def test_restored_after_an_error(two_threads):
    def interrupt(iteration, *args, **info):
        assert blas_threads() == 1
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of a run

    with pytest.raises(KeyboardInterrupt):
        nmf(low_rank(), 4, max_iter=5, tol=0, callback=interrupt)
    assert blas_threads() == 2


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 256 columns, so a small matrix makes a pass of many blocks."""
    monkeypatch.setattr(matrix, "UPDATE_BLOCK_BYTES", 4096)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_number_of_threads_changes_no_number(small_blocks, two_threads, dtype):
    X = low_rank(n=5000).astype(dtype)
    assert matrix.update_block_size(InMemoryMatrix(X)) * 4 < X.shape[1]
    results = []
    for threads in (1, 2):
        with threadpoolctl.threadpool_limits(threads, user_api="blas"):
            results.append(nmf(X, 4, max_iter=30, tol=0).layers[0])
    assert np.array_equal(results[0].W, results[1].W)
    assert np.array_equal(results[0].H, results[1].H)
    assert results[0].relative_error == results[1].relative_error


@pytest.mark.parametrize("accurate", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blockwise_pass_is_the_two_products(small_blocks, dtype, accurate):
    """project_update in memory: update(W^T X_J, J) on every block J of the grid, in order of
    columns, and X H^T of the H it produced, as the two whole products give it."""
    rng = np.random.default_rng(1)
    X = rng.random((40, 3001)).astype(dtype)
    W = rng.random((40, 3)).astype(dtype)
    H = np.empty((3, X.shape[1]), dtype=dtype)
    calls = []

    def update(B, cols):
        calls.append((cols.start, cols.stop))
        H[:, cols] = 2.0 * B + 1.0
        return H[:, cols]

    XHt = project_update(InMemoryMatrix(X), W, update, accurate=accurate)
    size = matrix.update_block_size(InMemoryMatrix(X))
    assert sorted(calls) == [(s, min(s + size, X.shape[1])) for s in range(0, X.shape[1], size)]
    X64 = X.astype(np.float64)
    expected_H = 2.0 * (W.astype(np.float64).T @ X64) + 1.0
    np.testing.assert_allclose(H, expected_H, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert XHt.dtype == (np.float64 if accurate else dtype)
    np.testing.assert_allclose(XHt, X64 @ H.astype(np.float64).T,
                               rtol=1e-12 if accurate or dtype == np.float64 else 1e-5)


def test_a_blas_library_loaded_after_the_first_run_is_limited_too():
    """SciPy's wheels bring an OpenBLAS of their own; imported after a first solver run, its
    threads are still set to one between the passes of the next run."""
    import subprocess
    import sys

    script = """
import sys
import numpy as np
import threadpoolctl
from mfcli.models.nmf import nmf
X = np.random.default_rng(0).random((30, 300))
with threadpoolctl.threadpool_limits(2, user_api="blas"):
    nmf(X, 3, max_iter=2, tol=0)
    assert "scipy.linalg" not in sys.modules
    import scipy.linalg  # noqa: F401
    if min(i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas") < 2:
        print("SKIP")
        sys.exit(0)
    seen = []
    nmf(X, 3, max_iter=3, tol=0, callback=lambda *a, **k: seen.append(max(
        i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")))
    print(sorted(set(seen)))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    if out.stdout.strip() == "SKIP":
        pytest.skip("BLAS runs one thread here")
    assert out.stdout.strip() == "[1]"


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_products_of_a_pass_are_w_t_x_and_x_h_t_whatever_the_layout(order, dtype):
    """wt_x and x_ht pick the orientation of the BLAS call by X's layout (for speed): the same
    products, to rounding, in X's dtype."""
    from mfcli.models.threads import wt_x, x_ht

    rng = np.random.default_rng(4)
    X = np.asarray(rng.random((30, 500)), dtype=dtype, order=order)
    W, H = rng.random((30, 4)).astype(dtype), rng.random((4, 500)).astype(dtype)
    X64 = X.astype(np.float64)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    left, right = wt_x(np.ascontiguousarray(W.T), X), x_ht(X, H)
    assert left.dtype == dtype and right.dtype == dtype
    np.testing.assert_allclose(left, W.T.astype(np.float64) @ X64, rtol=tolerance)
    np.testing.assert_allclose(right, X64 @ H.T.astype(np.float64), rtol=tolerance)
    block = X[:, 100:300]  # a block of columns, as a pass takes them
    np.testing.assert_allclose(wt_x(np.ascontiguousarray(W.T), block), W.T.astype(np.float64) @ X64[:, 100:300],
                               rtol=tolerance)
    for k in (1, 4, 5, 7, 8, 14, 70):  # padded to a multiple of 8 rows where 1-3 rows do it (up to 64)
        Wk, Hk = rng.random((30, k)).astype(dtype), rng.random((k, 500)).astype(dtype)
        left, right = wt_x(np.ascontiguousarray(Wk.T), X), x_ht(X, Hk)
        assert left.shape == (k, 500) and right.shape == (30, k)
        np.testing.assert_allclose(left, Wk.T.astype(np.float64) @ X64, rtol=tolerance)
        np.testing.assert_allclose(right, X64 @ Hk.T.astype(np.float64), rtol=tolerance)
        reused = wt_x(np.ascontiguousarray(Wk.T), X, reuse=True)  # into this thread's work array
        np.testing.assert_array_equal(reused, left)


def test_rows_are_padded_where_few_zero_rows_make_a_multiple_of_eight():
    from mfcli.models.threads import padded_rows

    rng = np.random.default_rng(8)
    for k, rows in ((1, 1), (4, 4), (5, 8), (6, 8), (7, 8), (8, 8), (9, 9), (13, 16), (63, 64), (65, 65)):
        A = rng.random((k, 6))
        padded = padded_rows(A)
        assert padded.shape == (rows, 6)
        np.testing.assert_array_equal(padded[:k], A)
        assert not padded[k:].any()


def test_scratch_arrays_are_reused_by_a_thread_and_apart_between_threads():
    import threading

    from mfcli.models.threads import scratch

    first = scratch("test", (3, 4), np.float64)
    again = scratch("test", (2, 5), np.float64)  # fits: the same memory
    assert np.shares_memory(first, again) and again.shape == (2, 5)
    assert not np.shares_memory(scratch("test", (3, 4), np.float32), first)  # another dtype, another array
    larger = scratch("test", (10, 10), np.float64)
    assert larger.shape == (10, 10) and not np.shares_memory(larger, first)
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(scratch("test", (10, 10), np.float64)))
    thread.start()
    thread.join()
    assert not np.shares_memory(theirs[0], larger)


def test_a_block_of_columns_is_taken_in_its_arrays_layout():
    """A block of columns of a C-ordered X is not C-contiguous, but its rows are: x_ht takes it as
    row-major (X H^T), as the whole array, not in the column-major orientation."""
    import mfcli.models.threads as threads

    X = np.random.default_rng(5).random((20, 300)).astype(np.float32)
    H = np.random.default_rng(6).random((3, 100)).astype(np.float32)
    block = X[:, 100:200]
    assert not block.flags.c_contiguous and threads._row_major(block) and not threads._column_major(block)
    product = threads.x_ht(block, H)
    np.testing.assert_allclose(product, block.astype(np.float64) @ H.T.astype(np.float64), rtol=1e-5)
    assert product.flags.c_contiguous  # X H^T itself; (H X^T)^T would come back column-major
    assert threads._column_major(np.asfortranarray(X)[:, 100:200])
