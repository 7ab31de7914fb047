"""The three engines implement the same DataMatrix products on the same data."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from mfcli.engines.stream import H5Source, StreamedMatrix
from mfcli.models.matrix import InMemoryMatrix

h5py = pytest.importorskip("h5py")


@pytest.fixture
def stored(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.random((23, 517))
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("X", data=X, chunks=(23, 64))
        f.create_dataset("XT", data=X.T)
        f.create_dataset("scaled", data=X * 1000.0)
    return path, X


def engines(path, chunk):
    yield StreamedMatrix(H5Source(str(path), "X"), chunk_size=chunk)
    yield StreamedMatrix(H5Source(str(path), "XT", transposed=True), chunk_size=chunk)
    yield StreamedMatrix(H5Source(str(path), "scaled", scale=1000.0), chunk_size=chunk, prefetch=False)
    if importlib.util.find_spec("dask") is None:  # the dask extra is optional: the stream checks still ran
        return
    from mfcli.engines.dask import DaskMatrix

    yield DaskMatrix.from_source(H5Source(str(path), "X"), chunk_size=chunk)
    yield DaskMatrix.from_source(H5Source(str(path), "XT", transposed=True), chunk_size=chunk)


@pytest.mark.parametrize("chunk", [1, 50, 517, 4096])
def test_engines_agree_with_memory(stored, chunk):
    path, X = stored
    rng = np.random.default_rng(2)
    W, H = rng.random((23, 4)), rng.random((4, 517))
    reference = InMemoryMatrix(X)
    idx = np.array([516, 0, 77, 77, 300])
    for engine in engines(path, chunk):
        assert engine.shape == (23, 517)
        np.testing.assert_allclose(engine.WtX(W), reference.WtX(W), rtol=1e-12)
        np.testing.assert_allclose(engine.XHt(H), reference.XHt(H), rtol=1e-12)
        np.testing.assert_allclose(engine.sq_norm(), reference.sq_norm(), rtol=1e-12)
        np.testing.assert_allclose(engine.col_sq_norms(), reference.col_sq_norms(), rtol=1e-12)
        np.testing.assert_allclose(engine.columns(idx), X[:, idx], rtol=1e-14)


def test_streamed_keeps_requested_dtype(stored):
    path, X = stored
    engine = StreamedMatrix(H5Source(str(path), "X"), dtype="float32", chunk_size=100)
    W = np.ones((23, 2), dtype=np.float32)
    assert engine.WtX(W).dtype == np.float32
    assert engine.XHt(np.ones((2, 517), dtype=np.float32)).dtype == np.float32
    np.testing.assert_allclose(engine.WtX(W), W.T @ X.astype(np.float32), rtol=1e-5)


# --------------------------------------------------------------------------- blocks, sources, scans

def test_streamed_blocks_take_a_block_size(stored):
    path, X = stored
    engine = StreamedMatrix(H5Source(str(path), "X"), chunk_size=100)
    for size, expected in ((None, 6), (64, 9), (1000, 1)):
        blocks = list(engine.blocks(size)) if size else list(engine.blocks())
        assert len(blocks) == expected
        np.testing.assert_array_equal(np.concatenate([b for _, _, b in blocks], axis=1), X)
    from mfcli.models.matrix import column_blocks

    assert [stop - start for start, stop, _ in column_blocks(engine, 200)] == [200, 200, 117]


@pytest.mark.parametrize("sizes", [[517], [1] * 517, [100, 3, 250, 164], [37] * 13 + [36]])
def test_aligned_blocks_regroup_any_blocks_onto_the_grid(sizes):
    from mfcli.models.matrix import aligned_blocks

    X = np.arange(3 * 517, dtype=float).reshape(3, 517)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    blocks = ((int(a), int(b), X[:, a:b]) for a, b in zip(bounds[:-1], bounds[1:]))
    out = list(aligned_blocks(blocks, 128, 517))
    assert [(a, b) for a, b, _ in out] == [(0, 128), (128, 256), (256, 384), (384, 512), (512, 517)]
    for start, stop, block in out:
        np.testing.assert_array_equal(block, X[:, start:stop])


@pytest.mark.parametrize("fortran, transposed", [(False, False), (True, False), (False, True)])
def test_npy_source_streams_a_memory_mapped_file(tmp_path, fortran, transposed):
    from mfcli.engines.stream import NpySource

    rng = np.random.default_rng(4)
    X = rng.random((11, 300)).astype(np.float32)
    stored = X.T if transposed else X
    np.save(tmp_path / "x.npy", np.asfortranarray(stored) if fortran else stored)
    engine = StreamedMatrix(NpySource(str(tmp_path / "x.npy"), transposed=transposed), chunk_size=64)
    W = rng.random((11, 3)).astype(np.float32)
    assert engine.shape == (11, 300) and engine.dtype == np.float32
    np.testing.assert_allclose(engine.WtX(W), W.T @ X, rtol=1e-5)
    np.testing.assert_array_equal(engine.columns(np.array([299, 3, 64])), X[:, [299, 3, 64]])


def dirty_matrix():
    X = np.random.default_rng(5).random((7, 200))
    X[1, 3], X[2, 150] = -0.5, -0.25
    return X


@pytest.mark.parametrize("engine_name", ["stream", "dask"])
def test_scan_counts_like_the_in_memory_checks_and_clips_on_read(tmp_path, engine_name):
    from mfcli.engines import open_matrix
    from mfcli.validation import clip_negative

    if engine_name == "dask":
        pytest.importorskip("dask")
    X = dirty_matrix()
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["X"] = X
        bad = X.copy()
        bad[0, 0], bad[0, 1], bad[3, 199] = np.nan, np.inf, -np.inf
        f["bad"] = bad
    engine = open_matrix(H5Source(str(tmp_path / "d.h5"), "X"), engine_name, chunk_size=64)
    assert engine.scan() == {"nan": 0, "inf": 0, "negative": 2, "minimum": -0.5, "maximum": float(X.max())}
    engine.clip_negative = True
    clipped, _ = clip_negative(X)
    # the norms kept by the first scan are forgotten when the clipping changes
    np.testing.assert_allclose(engine.col_sq_norms(), (clipped ** 2).sum(axis=0), rtol=1e-12)
    counts = engine.scan()
    assert counts["negative"] == 2  # counted as stored; the solvers see them clipped
    np.testing.assert_allclose(engine.col_sq_norms(), (clipped ** 2).sum(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(engine.columns(np.array([3, 150])), clipped[:, [3, 150]])
    bad_engine = open_matrix(H5Source(str(tmp_path / "d.h5"), "bad"), engine_name, chunk_size=64)
    counts = bad_engine.scan()
    assert (counts["nan"], counts["inf"]) == (1, 2)


def test_map_columns_on_every_engine(stored):
    from mfcli.engines import map_columns

    path, X = stored
    reference = InMemoryMatrix(X)
    for engine in [reference, *engines(path, 100)]:
        pieces = list(map_columns(engine, lambda block: [block.sum(axis=0), block[:2] * 2]))
        assert pieces[0][0] == 0 and pieces[-1][1] == 517
        np.testing.assert_allclose(np.concatenate([p[2][0] for p in pieces]), X.sum(axis=0), rtol=1e-12)
        np.testing.assert_allclose(np.concatenate([p[2][1] for p in pieces], axis=1), 2 * X[:2], rtol=1e-12)


def test_torch_matrix_on_cpu_gives_the_numpy_products_and_solutions(stored):
    pytest.importorskip("torch")
    from mfcli.engines.gpu import TorchMatrix
    from mfcli.models.nmf import nmf

    _, X = stored
    rng = np.random.default_rng(6)
    W, H = rng.random((23, 4)), rng.random((4, 517))
    engine, reference = TorchMatrix(X, device="cpu"), InMemoryMatrix(X)
    np.testing.assert_allclose(engine.WtX(W), reference.WtX(W), rtol=1e-12)
    np.testing.assert_allclose(engine.XHt(H), reference.XHt(H), rtol=1e-12)
    np.testing.assert_allclose(engine.col_sq_norms(), reference.col_sq_norms(), rtol=1e-12)
    np.testing.assert_array_equal(engine.columns(np.array([5, 1])), X[:, [5, 1]])
    fitted = nmf(engine, 4, max_iter=20, tol=0).layers[0]
    expected = nmf(X, 4, max_iter=20, tol=0).layers[0]
    np.testing.assert_allclose(fitted.W, expected.W, rtol=1e-8, atol=1e-12)


def test_device_cuda_without_a_gpu_says_so():
    torch = pytest.importorskip("torch")
    from mfcli.engines.gpu import check_device
    from mfcli.errors import ParameterError

    if torch.cuda.is_available():  # pragma: no cover - no GPU where these tests run
        assert check_device("cuda") == "cuda"
        return
    with pytest.raises(ParameterError, match="no CUDA GPU"):
        check_device("cuda")
    with pytest.raises(ParameterError, match="unknown device"):
        check_device("tpu")
