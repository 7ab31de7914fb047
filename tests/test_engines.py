"""The three engines implement the same DataMatrix products on the same data."""

from __future__ import annotations

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
    try:
        from mfcli.engines.dask import DaskMatrix
    except ImportError:  # pragma: no cover
        return
    pytest.importorskip("dask")
    yield DaskMatrix.from_hdf5(H5Source(str(path), "X"), chunk_size=chunk)
    yield DaskMatrix.from_hdf5(H5Source(str(path), "XT", transposed=True), chunk_size=chunk)


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
