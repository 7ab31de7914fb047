"""The Dask engine: X as a Dask array chunked by columns, on local threads or a cluster.

Each product the solvers need is one Dask graph: ``W^T X`` is a map over column blocks,
``X H^T`` a sum over them. With a ``dask.distributed`` Client (``--scheduler ADDRESS``), the
graph runs on its workers; files are opened on the workers through a picklable source
(:class:`~mfcli.engines.stream.H5Source`, :class:`~mfcli.engines.stream.NpySource`), so nothing
but the small factors crosses the network (the workers must see the file at the same path).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from mfcli.engines.stream import DEFAULT_CHUNK, working_dtype
from mfcli.errors import MissingDependencyError


def import_dask():
    try:
        import dask
        import dask.array as da
    except ImportError:
        raise MissingDependencyError("dask", "dask", "--engine dask") from None
    return dask, da


def connect(address: str):
    """A ``dask.distributed`` Client for the scheduler at ``address`` (e.g. tcp://host:8786)."""
    import_dask()
    try:
        from distributed import Client
    except ImportError:
        raise MissingDependencyError("distributed", "dask", "--scheduler") from None
    from mfcli.errors import InputError

    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(f"cannot reach the Dask scheduler at '{address}' ({reason}); "
                         "start one with `dask scheduler` or check the address") from None


class _SourceProxy:
    """Array-like over a stored array that opens the file where it is read (worker side)."""

    def __init__(self, source):
        self.source = source
        shape, dtype = source.shape_dtype()
        self.shape = tuple(shape[::-1] if source.transposed else shape)  # as stored
        self.dtype = dtype
        self.ndim = 2

    def __getitem__(self, key):
        return self.source.read(key)


class DaskMatrix:
    """:class:`~mfcli.models.matrix.DataMatrix` over a Dask array (m x n, chunked by columns).

    ``client``: a ``dask.distributed`` Client (None: Dask's local threads).
    ``clip_negative``: negative values count as 0 (the stored data are not changed).
    """

    engine = "dask"

    def __init__(self, array, dtype=None, client=None, clip_negative: bool = False):
        _, da = import_dask()
        if not isinstance(array, da.Array):
            array = da.from_array(np.asarray(array), chunks=(-1, DEFAULT_CHUNK))
        self.dtype = working_dtype(array.dtype, dtype)
        raw = array.astype(self.dtype) if array.dtype != self.dtype else array
        if raw.chunks[0] != (raw.shape[0],):
            raw = raw.rechunk({0: -1})
        self._raw = raw
        self.shape = tuple(int(s) for s in raw.shape)
        self.chunk_size = int(max(raw.chunks[1])) if raw.chunks[1] else 0
        self.client = client
        self.clip_negative = clip_negative

    @property
    def clip_negative(self) -> bool:
        return self._clip

    @clip_negative.setter
    def clip_negative(self, value: bool) -> None:
        _, da = import_dask()
        self._clip = bool(value)
        self.X = da.maximum(self._raw, 0) if self._clip else self._raw
        self._sq_norm: float | None = None
        self._col_sq_norms: np.ndarray | None = None

    @classmethod
    def from_source(cls, source, dtype=None, chunk_size: int = DEFAULT_CHUNK, client=None,
                    clip_negative: bool = False) -> DaskMatrix:
        """X read from a file source, ``chunk_size`` columns per Dask chunk, divided by the
        source's scale in the working dtype."""
        _, da = import_dask()
        proxy = _SourceProxy(source)
        chunk_size = max(1, int(chunk_size))
        if source.transposed:
            array = da.from_array(proxy, chunks=(chunk_size, -1), asarray=True, fancy=False, name=False,
                                  inline_array=True).T
        else:
            array = da.from_array(proxy, chunks=(-1, chunk_size), asarray=True, fancy=False, name=False,
                                  inline_array=True)
        work = working_dtype(proxy.dtype, dtype)
        array = array.astype(work)
        if source.scale != 1.0:
            array = array / work.type(source.scale)
        return cls(array, dtype=work, client=client, clip_negative=clip_negative)

    from_hdf5 = from_source

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

    def scan(self) -> dict:
        """One pass (one graph): NaN, Inf and negative counts of X as stored and its minimum, for
        the input checks; the column norms of X as the solvers see it are kept."""
        _, da = import_dask()
        raw = self._raw
        nan, inf, negative, minimum, col = self._compute(
            da.isnan(raw).sum(), da.isinf(raw).sum(), (raw < 0).sum(), da.nanmin(raw), (self.X * self.X).sum(axis=0))
        self._col_sq_norms = np.asarray(col, dtype=self.dtype)
        self._sq_norm = float(self._col_sq_norms.sum(dtype=np.float64))
        return {"nan": int(nan), "inf": int(inf), "negative": int(negative), "minimum": float(minimum)}

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

    def map_column_blocks(self, func, window: int = 4) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(start, stop, func(X[:, start:stop]))`` chunk by chunk, in column order: ``func``
        runs where the chunk is (a worker), ``window`` chunks at a time, so only small results
        travel and at most ``window`` of them are held."""
        pieces = self.X.to_delayed().ravel()
        widths = self.X.chunks[1]
        bounds = np.concatenate([[0], np.cumsum(widths)]).astype(int)
        dask, _ = import_dask()
        for first in range(0, len(pieces), window):
            tasks = [dask.delayed(func)(piece) for piece in pieces[first:first + window]]
            for offset, value in enumerate(self._compute(*tasks)):
                index = first + offset
                yield int(bounds[index]), int(bounds[index + 1]), value
