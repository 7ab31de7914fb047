"""The three engines implement the same DataMatrix products on the same data."""

from __future__ import annotations

import importlib.util
import os

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


@pytest.mark.parametrize("sizes", [[517], [1] * 517, [100, 3, 250, 164], [37] * 13 + [36], [128, 389]])
def test_fused_pass_hands_the_grid_blocks_in_order_whatever_the_engine_blocks(sizes):
    """Blocks of any widths: the update sees exactly the grid blocks, in column order, with
    B = W^T X_J, and the pass returns X H^T of the blocks it returned."""
    from mfcli.models.matrix import fused_pass

    rng = np.random.default_rng(7)
    X, W = rng.random((3, 517)), rng.random((3, 2))
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    blocks = ((int(a), int(b), X[:, a:b]) for a, b in zip(bounds[:-1], bounds[1:]))
    seen, H = [], np.empty((2, 517))

    def update(B, cols):
        seen.append((cols.start, cols.stop))
        np.testing.assert_allclose(B, W.T @ X[:, cols], rtol=1e-12)
        H[:, cols] = 2 * B + cols.start
        return H[:, cols]

    out = fused_pass(blocks, W, update, 128, X.shape, X.dtype)
    assert seen == [(0, 128), (128, 256), (256, 384), (384, 512), (512, 517)]
    np.testing.assert_allclose(out, X @ H.T, rtol=1e-12)


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


# --------------------------------------------------------------------------- direct reads of HDF5 slabs

LAYOUTS = {  # name: (dataset keywords, stored transposed, whether DirectReader reads it)
    "contiguous": ({}, False, True),
    "contiguous transposed": ({}, True, True),
    "chunks across all rows": ({"chunks": (23, 64)}, False, True),
    "one chunk": ({"chunks": (23, 517)}, False, True),
    "chunks across all columns, transposed": ({"chunks": (64, 23)}, True, True),
    "uint16": ({"chunks": (23, 100), "dtype": np.uint16}, False, True),
    "big-endian": ({"dtype": ">f4"}, False, True),
    "gzip": ({"chunks": (23, 64), "compression": "gzip"}, False, False),
    "chunks cut the rows": ({"chunks": (5, 64)}, False, False),
}


@pytest.mark.parametrize("userblock", [0, 512])  # MATLAB v7.3 files have a 512-byte user block
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_direct_reader_reads_what_h5py_reads(tmp_path, layout, userblock):
    from mfcli.engines.stream import DirectReader

    options, transposed, direct = LAYOUTS[layout]
    rng = np.random.default_rng(8)
    X = (1000 * rng.random((23, 517))).astype(options.get("dtype", np.float64))
    stored = np.ascontiguousarray(X.T) if transposed else X
    with h5py.File(tmp_path / "x.h5", "w", userblock_size=userblock) as f:
        f.create_dataset("X", data=stored, **options)
    axis = 0 if transposed else 1
    with h5py.File(tmp_path / "x.h5", "r") as f:
        reader = DirectReader.of(f["X"], axis)
    assert (reader is not None) == direct
    engine = StreamedMatrix(H5Source(str(tmp_path / "x.h5"), "X", transposed=transposed), chunk_size=50)
    if reader is not None:
        for start, stop in [(0, 517), (0, 1), (516, 517), (63, 129), (64, 128), (100, 450), (500, 517)]:
            expected = stored[start:stop] if transposed else stored[:, start:stop]
            np.testing.assert_array_equal(reader.read(start, stop), expected)
            assert reader.slab(np.s_[start:stop, :] if transposed else np.s_[:, start:stop]) == (start, stop)
        assert reader.slab(np.s_[:, 2:5] if transposed else np.s_[2:5, :]) is None  # not a whole slab
    # the engine reads X exactly, directly or through h5py
    np.testing.assert_array_equal(engine.columns(np.arange(517)), X.astype(engine.dtype))
    np.testing.assert_array_equal(np.concatenate([b for _, _, b in engine.blocks()], axis=1), X.astype(engine.dtype))


def test_direct_reader_leaves_unwritten_chunks_to_h5py(tmp_path):
    from mfcli.engines.stream import DirectReader

    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("X", shape=(4, 300), dtype=np.float32, chunks=(4, 64), fillvalue=7)[:, :64] = 1
    with h5py.File(tmp_path / "x.h5", "r") as f:
        assert DirectReader.of(f["X"], 1) is None
    engine = StreamedMatrix(H5Source(str(tmp_path / "x.h5"), "X"))
    assert engine.sq_norm() == pytest.approx(4 * 64 + 49 * 4 * 236)


def test_a_truncated_file_is_a_one_line_error_from_the_pool_threads(tmp_path):
    """A read failing on a pool thread surfaces in the solver's thread with its own error."""
    from mfcli.errors import DataError
    from mfcli.models.matrix import project_update

    X = np.random.default_rng(9).random((23, 4000))
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("X", data=X, chunks=(23, 512))
    engine = StreamedMatrix(H5Source(str(tmp_path / "x.h5"), "X"), chunk_size=1000)
    size = (tmp_path / "x.h5").stat().st_size
    with open(tmp_path / "x.h5", "r+b") as fh:
        fh.truncate(size - 20000)
    with pytest.raises(DataError, match="ends before its data"):
        project_update(engine, np.ones((23, 2)), lambda B, cols: B)


# --------------------------------------------------------------------------- the solver step on every engine

def step_engines(path, chunk):
    yield StreamedMatrix(H5Source(str(path), "X"), chunk_size=chunk)
    yield StreamedMatrix(H5Source(str(path), "XT", transposed=True), chunk_size=chunk, prefetch=False)
    if importlib.util.find_spec("dask") is None:  # the dask extra is optional: the stream checks still ran
        return
    from mfcli.engines.dask import DaskMatrix

    yield DaskMatrix.from_source(H5Source(str(path), "X"), chunk_size=chunk, persist=True)
    yield DaskMatrix.from_source(H5Source(str(path), "XT", transposed=True), chunk_size=chunk, persist=False)


@pytest.mark.parametrize("chunk", [1, 50, 256, 300, 4096])
@pytest.mark.slow
def test_project_update_hands_every_engine_the_same_grid_blocks(stored, monkeypatch, chunk):
    """Whatever an engine's chunks (smaller, equal to, larger than or across the update grid of
    256 columns), the update sees each grid block once with B = W^T X_J (in any order: the
    stream engine's pool threads update blocks at once, as the memory engine's pass threads
    do), and the step returns X H^T of the blocks it returned."""
    from mfcli.models import matrix

    monkeypatch.setattr(matrix, "UPDATE_BLOCK_BYTES", 1)  # the grid: blocks of at most 256 columns
    path, X = stored
    size = matrix.update_block_size(InMemoryMatrix(X))
    grid = [(start, min(start + size, X.shape[1])) for start in range(0, X.shape[1], size)]
    assert len(grid) == 3 and size <= 256
    rng = np.random.default_rng(10)
    W = rng.random((23, 3))
    for engine in [InMemoryMatrix(X), *step_engines(path, chunk)]:
        seen, H = [], np.empty((2, 517))

        def update(B, cols):
            seen.append((cols.start, cols.stop))
            np.testing.assert_allclose(B, W.T @ X[:, cols], rtol=1e-12)
            H[:, cols] = B[:2] * 2 + cols.start
            return H[:, cols]

        out = matrix.project_update(engine, W, update)
        assert sorted(seen) == grid, type(engine).__name__
        np.testing.assert_allclose(out, X @ H.T, rtol=1e-12)


def test_a_step_leaves_blas_threads_as_they_were(stored):
    """The pool's passes run BLAS on one thread per call and give the threads back after."""
    from threadpoolctl import threadpool_info

    from mfcli.models.matrix import project_update

    path, _ = stored
    before = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    inside = []

    def update(B, cols):
        inside.extend(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")
        return B

    for engine in step_engines(path, 100):
        inside.clear()
        project_update(engine, np.ones((23, 2)), update)
        assert [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"] == before
        pooled = getattr(engine, "prefetch", True)  # without prefetch, one thread and BLAS's own
        assert set(inside) == ({1} if pooled else set(before))


# --------------------------------------------------------------------------- Dask: X held where it is computed

def counting_reads(monkeypatch):
    """Count the chunk reads of H5Source (what the Dask tasks call; not Dask's empty probe)."""
    reads = []
    original = H5Source.read

    def read(self, key):
        if all(k.stop != k.start for k in key):
            reads.append(key)
        return original(self, key)

    monkeypatch.setattr(H5Source, "read", read)
    return reads


@pytest.mark.parametrize("persist", [True, False])
def test_dask_reads_the_file_once_when_held_and_once_per_iteration_when_not(stored, monkeypatch, persist):
    pytest.importorskip("dask")
    from mfcli.engines.dask import DaskMatrix
    from mfcli.models.nmf import nmf

    path, X = stored
    reads = counting_reads(monkeypatch)
    counts = []
    for iterations in (3, 6):
        reads.clear()
        engine = DaskMatrix.from_source(H5Source(str(path), "X"), chunk_size=100, persist=persist)
        layer = nmf(engine, 3, init="random", max_iter=iterations, tol=0).layers[0]
        counts.append(len(reads))
        assert engine.persisted is persist
    expected = nmf(X, 3, init="random", max_iter=6, tol=0).layers[0]
    np.testing.assert_allclose(layer.W, expected.W, rtol=1e-8, atol=1e-12)
    chunks = 6  # 517 columns, 100 a chunk
    if persist:
        assert counts == [chunks, chunks]  # read once, whatever the iterations
    else:
        assert counts[1] - counts[0] == 3 * chunks  # one read of each chunk per iteration


def test_dask_holds_x_only_when_it_fits_the_memory_share(stored, monkeypatch):
    pytest.importorskip("dask")
    from mfcli.engines import dask as dask_engine

    path, X = stored
    engine = dask_engine.DaskMatrix.from_source(H5Source(str(path), "X"), chunk_size=100)
    monkeypatch.setattr(dask_engine, "available_memory", lambda: 2 * engine.nbytes - 1)
    assert engine.persisted is None
    engine.col_sq_norms()
    assert engine.persisted is False  # X takes more than half of what is available
    engine = dask_engine.DaskMatrix.from_source(H5Source(str(path), "X"), chunk_size=100)
    monkeypatch.setattr(dask_engine, "available_memory", lambda: 2 * engine.nbytes)
    np.testing.assert_allclose(engine.col_sq_norms(), (X ** 2).sum(axis=0), rtol=1e-12)
    assert engine.persisted is True
    engine.clip_negative = True  # the held chunks were X as the solvers saw it: made again
    assert engine._held is None
    np.testing.assert_allclose(engine.WtX(np.ones((23, 1))), X.sum(axis=0, keepdims=True), rtol=1e-12)


def test_dask_chunks_on_a_cluster_are_whole_update_blocks_about_four_per_thread():
    pytest.importorskip("dask")
    from mfcli.engines.dask import MAX_CLUSTER_CHUNK_BYTES, default_chunk_columns
    from mfcli.models.matrix import grid_columns

    class Cluster:  # what default_chunk_columns asks of a Client
        def __init__(self, threads):
            self.threads = threads

        def nthreads(self):
            return {"tcp://worker": self.threads}

    grid = grid_columns(162, 10**6, np.float32)
    assert default_chunk_columns(162, 10**6, np.float32) == grid  # local threads: the update blocks
    chunk = default_chunk_columns(162, 10**6, np.float32, Cluster(2))
    assert chunk % grid == 0 and 7 <= -(-10**6 // chunk) <= 8
    assert default_chunk_columns(162, 1000, np.float32, Cluster(2)) == grid_columns(162, 1000, np.float32)  # never below an update block
    widest = default_chunk_columns(162, 10**9, np.float32, Cluster(2))
    assert widest % grid_columns(162, 10**9, np.float32) == 0 and widest * 162 * 4 <= MAX_CLUSTER_CHUNK_BYTES


# --------------------------------------------------------------------------- a step over the mapped file

@pytest.mark.parametrize("userblock", [0, 512])
@pytest.mark.parametrize("layout", ["chunks across all rows", "contiguous transposed",
                                    "chunks across all columns, transposed"])
def test_a_step_over_the_mapped_file_is_the_step_over_read_blocks(tmp_path, layout, userblock):
    """The stream engine's solver step takes its blocks as views of the mapped file (no copy)
    where the layout allows: X H^T and the blocks the update sees are those of the step that
    reads (copies) every block."""
    from mfcli.models.matrix import project_update

    options, transposed, _ = LAYOUTS[layout]
    rng = np.random.default_rng(13)
    X = rng.random((23, 517)).astype(np.float32)
    with h5py.File(tmp_path / "x.h5", "w", userblock_size=userblock) as f:
        f.create_dataset("X", data=np.ascontiguousarray(X.T) if transposed else X, **options)
    W = rng.random((23, 3)).astype(np.float32)
    results = []
    for views in (True, False):
        engine = StreamedMatrix(H5Source(str(tmp_path / "x.h5"), "X", transposed=transposed), chunk_size=100)
        engine.map_views = views
        assert engine._viewable() == views
        seen = []

        def update(B, cols, seen=seen):
            seen.append((cols.start, B.copy()))
            return 0.5 * B

        results.append((project_update(engine, W, update), seen))
    (mapped, mapped_seen), (read, read_seen) = results
    np.testing.assert_allclose(mapped, read, rtol=1e-6)
    np.testing.assert_allclose(mapped, X @ (0.5 * (W.T @ X)).T, rtol=1e-5)
    mapped_seen.sort(key=lambda entry: entry[0])
    read_seen.sort(key=lambda entry: entry[0])
    assert [start for start, _ in mapped_seen] == [start for start, _ in read_seen]
    for (_, a), (_, b) in zip(mapped_seen, read_seen):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the resident set from /proc")
def test_a_step_over_the_mapped_file_lets_its_pages_go(tmp_path):
    """After a step, the mapped blocks' pages are no longer in the process's resident set (the
    stream engine's memory stays bounded whatever the file's size)."""
    from mfcli.models.matrix import project_update

    X = np.random.default_rng(14).random((64, 65536)).astype(np.float32)  # 16 MiB
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("X", data=X, chunks=(64, 2048))
    engine = StreamedMatrix(H5Source(str(tmp_path / "x.h5"), "X"))
    assert engine._viewable()

    def mapped_file_kib() -> int:
        status = open("/proc/self/status").read()
        return int(status.split("RssFile:")[1].split()[0])

    before = mapped_file_kib()
    project_update(engine, np.ones((64, 2), dtype=np.float32), lambda B, cols: B)
    assert mapped_file_kib() - before < X.nbytes / 1024 / 4, "the file's pages stayed mapped after the step"
    engine._direct.release(0, 2048)  # letting go twice is harmless
    np.testing.assert_array_equal(engine._direct.view(0, 2048), X[:, :2048])


@pytest.mark.parametrize("chunk", [7, 64, 130])
def test_updates_run_by_the_pool_give_the_step_of_updates_run_here(chunk):
    """With a pool of several threads the grid blocks' updates are tasks of the pool: every block
    updated once, the same X H^T as with one thread (updates on the calling thread), to the bit;
    an update that fails fails the step."""
    from mfcli.engines.base import ThreadRunner, pipelined_project_update

    rng = np.random.default_rng(7)
    X, W = rng.random((9, 300)), rng.random((9, 3))
    bounds = np.array([*range(0, 300, chunk), 300])

    def step(threads: int, update):
        runner = ThreadRunner(threads)
        try:
            return pipelined_project_update(runner, bounds, lambda i: X[:, bounds[i]:bounds[i + 1]], W, update,
                                            50, X.dtype, ahead=2, window=2)
        finally:
            runner.close()

    seen = {1: [], 2: []}

    def recorder(threads):
        def update(B, cols):
            seen[threads].append((cols.start, cols.stop))
            return np.maximum(B, 0.5) * (cols.start + 1)
        return update

    one, two = step(1, recorder(1)), step(2, recorder(2))
    np.testing.assert_array_equal(two, one)
    assert sorted(seen[2]) == seen[1] == [(start, min(start + 50, 300)) for start in range(0, 300, 50)]

    def failing(B, cols):
        if cols.start == 100:
            raise FloatingPointError("boom")
        return B

    with pytest.raises(FloatingPointError, match="boom"):
        step(2, failing)


@pytest.mark.parametrize("chunk", [7, 50, 64, 130, 300])
def test_the_blockwise_pass_over_views_is_the_step_of_every_engine(chunk):
    """The stream engine's pass over mapped chunks (a task per grid block, its parts taken from
    the chunks it spans): each grid block updated once with B = W^T X_J, the same X H^T with one
    thread or two, to the bit, and as the memory engine's pass; each chunk let go once, in order,
    only after every grid block over it was done; an update that fails fails the step."""
    from mfcli.engines.base import ThreadRunner, blockwise_view_pass
    from mfcli.models.threads import blockwise_update_pass

    rng = np.random.default_rng(8)
    X, W = rng.random((9, 300)), rng.random((9, 3))
    bounds = np.array([*range(0, 300, chunk), 300])
    grid = [(start, min(start + 50, 300)) for start in range(0, 300, 50)]

    def view(start, stop):
        j = int(np.searchsorted(bounds, start, side="right")) - 1
        assert stop <= bounds[j + 1], "a view across two chunks"
        return X[:, start:stop]

    def step(threads: int):
        seen, done, released = [], set(), []

        def update(B, cols):
            np.testing.assert_allclose(B, W.T @ X[:, cols], rtol=1e-12)
            seen.append((cols.start, cols.stop))
            H = np.maximum(B, 0.5) * (cols.start + 1)
            done.add(cols.start)
            return H

        def release(i):
            covering = {start for start, stop in grid if start < bounds[i + 1] and stop > bounds[i]}
            assert covering <= done, f"chunk {i} let go before its grid blocks were done"
            released.append(i)

        runner = ThreadRunner(threads)
        try:
            out = blockwise_view_pass(runner, bounds, view, W, update, 50, X.dtype, release=release)
        finally:
            runner.close()
        assert sorted(seen) == grid
        assert released == list(range(len(bounds) - 1))
        return out

    one, two = step(1), step(2)
    np.testing.assert_array_equal(two, one)
    reference = blockwise_update_pass(X, W, lambda B, cols: np.maximum(B, 0.5) * (cols.start + 1), 50)
    np.testing.assert_allclose(one, reference, rtol=1e-12)

    def failing(B, cols):
        if cols.start == 100:
            raise RuntimeError("update failed")
        return B

    runner = ThreadRunner(2)
    try:
        with pytest.raises(RuntimeError, match="update failed"):
            blockwise_view_pass(runner, bounds, view, W, failing, 50, X.dtype)
    finally:
        runner.close()
