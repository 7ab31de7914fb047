"""The Dask engine: X as a Dask array chunked by columns, on local threads or a cluster.

Each product the solvers need is one Dask graph: ``W^T X`` is a map over column blocks,
``X H^T`` a sum over them. With a ``dask.distributed`` Client (``--scheduler ADDRESS``), the
graph runs on its workers; HDF5 files are opened on the workers through a picklable
:class:`~mfcli.engines.stream.H5Source`, so nothing but the small factors crosses the network.
"""

from __future__ import annotations

import numpy as np

from mfcli.engines.stream import DEFAULT_CHUNK, H5Source
from mfcli.errors import MissingDependencyError


def import_dask():
    try:
        import dask
        import dask.array as da
    except ImportError:
        raise MissingDependencyError("dask", "dask", "--engine dask") from None
    return dask, da


class _H5Proxy:
    """Array-like over an HDF5 dataset that opens the file where it is read (worker side)."""

    def __init__(self, source: H5Source):
        self.source = source
        (shape, dtype) = source.shape_dtype()
        stored = shape[::-1] if source.transposed else shape
        self.shape = tuple(stored)
        self.dtype = dtype
        self.ndim = 2

    def __getitem__(self, key):
        import h5py

        with h5py.File(self.source.path, "r") as f:
            return f[self.source.dataset][key]


class DaskMatrix:
    """:class:`~mfcli.models.matrix.DataMatrix` over a Dask array (m x n, chunked by columns)."""

    engine = "dask"

    def __init__(self, array, dtype=None, client=None):
        _, da = import_dask()
        if not isinstance(array, da.Array):
            array = da.from_array(np.asarray(array), chunks=(-1, DEFAULT_CHUNK))
        if dtype is None:
            dtype = array.dtype if array.dtype in (np.float32, np.float64) else np.float64
        self.dtype = np.dtype(dtype)
        self.X = array.astype(self.dtype) if array.dtype != self.dtype else array
        if self.X.chunks[0] != (self.X.shape[0],):
            self.X = self.X.rechunk({0: -1})
        self.shape = tuple(int(s) for s in self.X.shape)
        self.client = client
        self._sq_norm: float | None = None
        self._col_sq_norms: np.ndarray | None = None

    @classmethod
    def from_hdf5(cls, source: H5Source, dtype=None, chunk_size: int = DEFAULT_CHUNK, client=None) -> DaskMatrix:
        _, da = import_dask()
        proxy = _H5Proxy(source)
        if source.transposed:
            stored = da.from_array(proxy, chunks=(chunk_size, -1), asarray=True, fancy=False)
            array = stored.T
        else:
            array = da.from_array(proxy, chunks=(-1, chunk_size), asarray=True, fancy=False)
        work = np.dtype(dtype) if dtype is not None else (
            proxy.dtype if proxy.dtype in (np.float32, np.float64) else np.dtype(np.float64))
        array = array.astype(work)
        if source.scale != 1.0:
            array = array * work.type(1.0 / source.scale)
        return cls(array, dtype=work, client=client)

    def _compute(self, *arrays):
        if self.client is not None:
            return tuple(self.client.compute(list(arrays), sync=True))
        dask, _ = import_dask()
        return dask.compute(*arrays)

    def WtX(self, W: np.ndarray) -> np.ndarray:
        Wt = np.ascontiguousarray(W.T, dtype=self.dtype)
        product = self.X.map_blocks(lambda block: Wt @ block, chunks=((Wt.shape[0],), self.X.chunks[1]),
                                    dtype=self.dtype)
        return np.asarray(self._compute(product)[0])

    def XHt(self, H: np.ndarray) -> np.ndarray:
        _, da = import_dask()
        Ht = da.from_array(np.ascontiguousarray(H.T, dtype=self.dtype), chunks=(self.X.chunks[1], -1))
        return np.asarray(self._compute(self.X @ Ht)[0])

    def _norms(self) -> None:
        col = (self.X * self.X).sum(axis=0)
        (values,) = self._compute(col)
        self._col_sq_norms = np.asarray(values, dtype=self.dtype)
        self._sq_norm = float(self._col_sq_norms.sum(dtype=np.float64))

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
        order = np.argsort(idx, kind="stable")
        (picked,) = self._compute(self.X[:, idx[order]])
        out = np.empty((self.shape[0], idx.size), dtype=self.dtype)
        out[:, order] = picked
        return out

    def map_blocks(self, func, out_rows: int, dtype=None) -> np.ndarray:
        result = self.X.map_blocks(func, chunks=((out_rows,), self.X.chunks[1]), dtype=dtype or self.dtype)
        return np.asarray(self._compute(result)[0])
