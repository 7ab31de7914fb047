"""The streaming engine: X in a file (a chunked HDF5 dataset, a MATLAB v7.3 variable, a ``.npy``
array mapped from disk), read block by block of columns.

Memory stays bounded by a couple of blocks of ``m x chunk_size`` values plus the solver's own
factors (r x n and m x r), whatever the size of X. While one block is multiplied, the next one
is read by a background thread (NumPy's BLAS releases the GIL, so reading and computing
overlap).

The array may be stored as X (m x n, features x samples) or transposed (n x m, e.g. a MATLAB
v7.3 file, whose arrays h5py sees transposed). A scale (``maxValue``) divides each block as it
is read, as the in-memory loader divides the whole matrix, and negative values can be set to 0
on the fly (``clip_negative``, the ``--clip-negative`` of the commands): the file is never
modified.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from mfcli.engines.base import ColumnNorms

DEFAULT_CHUNK = 32768


def _check_matrix(shape: tuple[int, ...], name: str, path: str) -> None:
    if len(shape) != 2:
        from mfcli.errors import DataError

        raise DataError(
            f"the streaming engines read 2-D bands x pixels matrices; '{name}' in '{path}' has shape {shape}; "
            "convert it first with `mfcli convert IN OUT.h5`, or use --engine memory"
        )


@dataclass(frozen=True)
class H5Source:
    """Where X is: an HDF5 file, a dataset path inside it, whether it is stored transposed, and
    the scale X is divided by.

    Picklable (holds names, not open handles), so Dask workers can open it themselves.
    """

    path: str
    dataset: str
    transposed: bool = False
    scale: float = 1.0

    def open(self):
        import h5py

        return h5py.File(self.path, "r")[self.dataset]

    def read(self, key) -> np.ndarray:
        """``stored[key]`` with the file opened and closed here (for Dask workers)."""
        import h5py

        with h5py.File(self.path, "r") as f:
            return f[self.dataset][key]

    def shape_dtype(self) -> tuple[tuple[int, int], np.dtype]:
        """Shape of X (m x n, after the transposition) and the stored dtype."""
        import h5py

        with h5py.File(self.path, "r") as f:
            ds = f[self.dataset]
            shape = tuple(ds.shape)
            dtype = ds.dtype
        _check_matrix(shape, self.dataset, self.path)
        return (shape[::-1] if self.transposed else shape), dtype  # type: ignore[return-value]


@dataclass(frozen=True)
class NpySource:
    """X in a ``.npy`` file, mapped from disk (``np.load(mmap_mode="r")``); picklable."""

    path: str
    transposed: bool = False
    scale: float = 1.0
    dataset: str = "data"

    def open(self):
        return np.load(self.path, mmap_mode="r", allow_pickle=False)

    def read(self, key) -> np.ndarray:
        return np.array(self.open()[key])

    def shape_dtype(self) -> tuple[tuple[int, int], np.dtype]:
        array = self.open()
        shape = tuple(array.shape)
        _check_matrix(shape, self.dataset, self.path)
        return (shape[::-1] if self.transposed else shape), array.dtype  # type: ignore[return-value]


class _ThreadLocalArray:
    """One open stored array per thread (h5py handles are not safe to share across threads)."""

    def __init__(self, source):
        self.source = source
        self.local = threading.local()

    def get(self):
        array = getattr(self.local, "array", None)
        if array is None:
            array = self.source.open()
            self.local.array = array
        return array


def working_dtype(stored: np.dtype, dtype=None) -> np.dtype:
    """The dtype X is worked in: ``dtype`` if given, else the stored float type (float64 for
    integers), as the in-memory loader does."""
    if dtype is not None:
        return np.dtype(dtype)
    return np.dtype(stored) if np.dtype(stored) in (np.float32, np.float64) else np.dtype(np.float64)


class StreamedMatrix(ColumnNorms):
    """:class:`~mfcli.models.matrix.DataMatrix` over a stored array, block by block of columns.

    ``source``: an :class:`H5Source` or :class:`NpySource`. ``chunk_size``: columns per block
    read. Setting the ``clip_negative`` property makes negative values read as 0.
    """

    engine = "stream"

    def __init__(self, source, dtype: str | np.dtype | None = None, chunk_size: int = DEFAULT_CHUNK,
                 prefetch: bool = True):
        self.source = source
        shape, stored_dtype = source.shape_dtype()
        self.shape = shape
        self.dtype = working_dtype(stored_dtype, dtype)
        self.chunk_size = max(1, int(chunk_size))
        self.prefetch = prefetch
        self.clip_negative = False
        self._arrays = _ThreadLocalArray(source)
        self.passes = 0  # how many full passes over X were made (tests count them per iteration)

    # ------------------------------------------------------------------ reading

    def _read(self, start: int, stop: int, raw: bool = False) -> np.ndarray:
        """X[:, start:stop] in the working dtype, scaled (and clipped unless ``raw``)."""
        array = self._arrays.get()
        m = self.shape[0]
        if self.source.transposed:
            key, buffer = np.s_[start:stop, :], np.empty((stop - start, m), dtype=self.dtype)
        else:
            key, buffer = np.s_[:, start:stop], np.empty((m, stop - start), dtype=self.dtype)
        if hasattr(array, "read_direct"):
            array.read_direct(buffer, key)
        else:
            buffer[...] = array[key]
        block = buffer.T if self.source.transposed else buffer
        if self.source.scale != 1.0:
            block /= self.dtype.type(self.source.scale)
        if self._clip and not raw:
            np.maximum(block, 0, out=block)
        return block

    def _blocks(self, block_size: int | None = None, raw: bool = False) -> Iterator[tuple[int, int, np.ndarray]]:
        n = self.shape[1]
        size = max(1, int(block_size)) if block_size else self.chunk_size
        bounds = [(s, min(s + size, n)) for s in range(0, n, size)]
        self.passes += 1
        if not self.prefetch or len(bounds) == 1:
            for start, stop in bounds:
                yield start, stop, self._read(start, stop, raw)
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self._read, *bounds[0], raw)
            for index, (start, stop) in enumerate(bounds):
                block = pending.result()
                if index + 1 < len(bounds):
                    pending = pool.submit(self._read, *bounds[index + 1], raw)
                yield start, stop, block

    def blocks(self, block_size: int | None = None) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield (start, stop, X[:, start:stop]) over all columns, reading one block ahead;
        blocks of ``block_size`` columns (default: the engine's ``chunk_size``)."""
        return self._blocks(block_size)

    def _map_raw_blocks(self, func) -> Iterator[tuple[int, int, object]]:
        for start, stop, block in self._blocks(raw=True):
            yield start, stop, func(block)

    # ------------------------------------------------------------------ DataMatrix

    def WtX(self, W: np.ndarray) -> np.ndarray:
        Wt = np.ascontiguousarray(W.T, dtype=self.dtype)
        out = np.empty((W.shape[1], self.shape[1]), dtype=self.dtype)
        for start, stop, block in self.blocks():
            np.matmul(Wt, block, out=out[:, start:stop])
        return out

    def XHt(self, H: np.ndarray) -> np.ndarray:
        H = np.asarray(H, dtype=self.dtype)
        out = np.zeros((self.shape[0], H.shape[0]), dtype=np.float64)
        for start, stop, block in self.blocks():
            out += block @ H[:, start:stop].T
        return out.astype(self.dtype, copy=False)

    def columns(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64).ravel()
        out = np.empty((self.shape[0], idx.size), dtype=self.dtype)
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        block_of = sorted_idx // self.chunk_size
        for b in np.unique(block_of):
            start = int(b) * self.chunk_size
            positions = np.flatnonzero(block_of == b)
            wanted = sorted_idx[positions] - start
            lo, hi = int(wanted.min()), int(wanted.max()) + 1
            block = self._read(start + lo, start + hi)
            out[:, order[positions]] = block[:, wanted - lo]
        return out

    def map_column_blocks(self, func) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(start, stop, func(X[:, start:stop]))`` block by block (nothing is kept)."""
        for start, stop, block in self.blocks():
            yield start, stop, func(block)
