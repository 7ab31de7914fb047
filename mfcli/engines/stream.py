"""The streaming engine: X in a (chunked) HDF5 dataset, read block by block of columns.

Memory stays bounded by a couple of blocks of ``m x chunk_size`` values plus the solver's own
factors (r x n and m x r), whatever the size of X. While one block is multiplied, the next one
is read by a background thread (NumPy's BLAS releases the GIL, so reading and computing
overlap).

The dataset may be stored as X (m x n, features x samples) or transposed (n x m, e.g. a
MATLAB v7.3 file, whose arrays h5py sees transposed). A scale (``maxValue``) is applied to
each block as it is read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

DEFAULT_CHUNK = 32768


@dataclass(frozen=True)
class H5Source:
    """Where X is: an HDF5 file, a dataset path inside it, and whether it is stored transposed.

    Picklable (holds names, not open handles), so Dask workers can open it themselves.
    """

    path: str
    dataset: str
    transposed: bool = False
    scale: float = 1.0

    def open(self):
        import h5py

        return h5py.File(self.path, "r")[self.dataset]

    def shape_dtype(self) -> tuple[tuple[int, int], np.dtype]:
        import h5py

        with h5py.File(self.path, "r") as f:
            ds = f[self.dataset]
            shape = tuple(ds.shape)
            dtype = ds.dtype
        if len(shape) != 2:
            from mfcli.errors import DataError

            raise DataError(
                f"the streaming engine reads 2-D bands x pixels matrices; '{self.dataset}' in '{self.path}' "
                f"has shape {shape}; convert it first with `mfcli convert IN OUT.h5`"
            )
        return (shape[::-1] if self.transposed else shape), dtype  # type: ignore[return-value]


class _ThreadLocalDataset:
    """One open h5py dataset per thread (h5py handles are not safe to share across threads)."""

    def __init__(self, source: H5Source):
        self.source = source
        self.local = threading.local()

    def get(self):
        ds = getattr(self.local, "ds", None)
        if ds is None:
            ds = self.source.open()
            self.local.ds = ds
        return ds


class StreamedMatrix:
    """:class:`~mfcli.models.matrix.DataMatrix` over an HDF5 dataset, block by block of columns."""

    engine = "stream"

    def __init__(self, source: H5Source, dtype: str | np.dtype | None = None, chunk_size: int = DEFAULT_CHUNK,
                 prefetch: bool = True):
        self.source = source
        shape, stored_dtype = source.shape_dtype()
        self.shape = shape
        if dtype is None:
            dtype = stored_dtype if stored_dtype in (np.float32, np.float64) else np.float64
        self.dtype = np.dtype(dtype)
        self.chunk_size = max(1, int(chunk_size))
        self.prefetch = prefetch
        self._datasets = _ThreadLocalDataset(source)
        self._sq_norm: float | None = None
        self._col_sq_norms: np.ndarray | None = None
        self.passes = 0  # how many full passes over X were made (for benchmarks)

    # ------------------------------------------------------------------ reading

    def _read(self, start: int, stop: int) -> np.ndarray:
        ds = self._datasets.get()
        m = self.shape[0]
        if self.source.transposed:
            buffer = np.empty((stop - start, m), dtype=self.dtype)
            ds.read_direct(buffer, np.s_[start:stop, :])
            block = buffer.T
        else:
            buffer = np.empty((m, stop - start), dtype=self.dtype)
            ds.read_direct(buffer, np.s_[:, start:stop])
            block = buffer
        if self.source.scale != 1.0:
            block *= self.dtype.type(1.0 / self.source.scale)
        return block

    def blocks(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield (start, stop, X[:, start:stop]) over all columns, reading one block ahead."""
        n = self.shape[1]
        bounds = [(s, min(s + self.chunk_size, n)) for s in range(0, n, self.chunk_size)]
        self.passes += 1
        if not self.prefetch or len(bounds) == 1:
            for start, stop in bounds:
                yield start, stop, self._read(start, stop)
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self._read, *bounds[0])
            for index, (start, stop) in enumerate(bounds):
                block = pending.result()
                if index + 1 < len(bounds):
                    pending = pool.submit(self._read, *bounds[index + 1])
                yield start, stop, block

    # ------------------------------------------------------------------ DataMatrix

    def WtX(self, W: np.ndarray) -> np.ndarray:
        Wt = np.ascontiguousarray(W.T, dtype=self.dtype)
        out = np.empty((W.shape[1], self.shape[1]), dtype=self.dtype)
        for start, stop, block in self.blocks():
            np.matmul(Wt, block, out=out[:, start:stop])
        return out

    def XHt(self, H: np.ndarray) -> np.ndarray:
        H = np.asarray(H, dtype=self.dtype)
        out = np.zeros((self.shape[0], H.shape[0]), dtype=self.dtype)
        for start, stop, block in self.blocks():
            out += block @ H[:, start:stop].T
        return out

    def _norms(self) -> None:
        col = np.empty(self.shape[1], dtype=self.dtype)
        for start, stop, block in self.blocks():
            col[start:stop] = np.einsum("ij,ij->j", block, block)
        self._col_sq_norms = col
        self._sq_norm = float(col.sum(dtype=np.float64))

    def sq_norm(self) -> float:
        if self._sq_norm is None:
            self._norms()
        return self._sq_norm  # type: ignore[return-value]

    def col_sq_norms(self) -> np.ndarray:
        if self._col_sq_norms is None:
            self._norms()
        return self._col_sq_norms  # type: ignore[return-value]

    def columns(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64).ravel()
        out = np.empty((self.shape[0], idx.size), dtype=self.dtype)
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        block_of = sorted_idx // self.chunk_size
        for b in np.unique(block_of):
            start = int(b) * self.chunk_size
            stop = min(start + self.chunk_size, self.shape[1])
            positions = np.flatnonzero(block_of == b)
            wanted = sorted_idx[positions] - start
            lo, hi = int(wanted.min()), int(wanted.max()) + 1
            block = self._read(start + lo, start + hi)
            out[:, order[positions]] = block[:, wanted - lo]
        return out

    def map_blocks(self, func, out_rows: int, dtype=None) -> np.ndarray:
        """Apply ``func(block) -> (out_rows, block_columns)`` to every block; concatenate."""
        out = np.empty((out_rows, self.shape[1]), dtype=dtype or self.dtype)
        for start, stop, block in self.blocks():
            out[:, start:stop] = func(block)
        return out
