"""The Dask engine: X as a Dask array chunked by columns, on local threads or a cluster.

Each product the solvers need is a map over the column chunks of X: ``W^T X`` fills its
columns chunk by chunk, ``X H^T`` is a sum of per-chunk products (each task gets its slice of H).
The chunks are computed a window at a time (twice the threads), in column order, so the memory
held is a few chunks and the small per-chunk results, however many chunks there are. With a
``dask.distributed`` Client (``--scheduler ADDRESS``) the tasks run on its workers; files are
opened on the workers through a picklable source (:class:`~mfcli.engines.stream.H5Source`,
:class:`~mfcli.engines.stream.NpySource`), so nothing but the small factors crosses the network
(the workers must see the file at the same path).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from mfcli.engines.base import ColumnNorms
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


class DaskMatrix(ColumnNorms):
    """:class:`~mfcli.models.matrix.DataMatrix` over a Dask array (m x n, chunked by columns).

    ``client``: a ``dask.distributed`` Client (None: Dask's local threads).
    Setting the ``clip_negative`` property makes negative values count as 0 (the stored data are
    not changed).
    """

    engine = "dask"

    def __init__(self, array, dtype=None, client=None):
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
        self._window: int | None = None
        self.clip_negative = False  # builds self.X

    def _clipping_changed(self) -> None:
        _, da = import_dask()
        self.X = da.maximum(self._raw, 0) if self._clip else self._raw
        self._chunks: dict = {}

    @classmethod
    def from_source(cls, source, dtype=None, chunk_size: int | None = None, client=None) -> DaskMatrix:
        """X read from a file source, ``chunk_size`` columns per Dask chunk (default: about
        8 MiB, the solvers' update blocks), divided by the source's scale in the working dtype."""
        from mfcli.models.matrix import block_columns

        _, da = import_dask()
        proxy = _SourceProxy(source)
        work = working_dtype(proxy.dtype, dtype)
        if chunk_size is None:
            chunk_size = block_columns(proxy.shape[1] if source.transposed else proxy.shape[0], work)
        chunk_size = max(1, int(chunk_size))
        if source.transposed:
            array = da.from_array(proxy, chunks=(chunk_size, -1), asarray=True, fancy=False, name=False,
                                  inline_array=True).T
        else:
            array = da.from_array(proxy, chunks=(-1, chunk_size), asarray=True, fancy=False, name=False,
                                  inline_array=True)
        array = array.astype(work)
        if source.scale != 1.0:
            array = array / work.type(source.scale)
        return cls(array, dtype=work, client=client)

    def _compute(self, *arrays):
        if self.client is not None:
            return tuple(self.client.compute(list(arrays), sync=True))
        dask, _ = import_dask()
        return dask.compute(*arrays)

    @property
    def window(self) -> int:
        """Chunks computed at a time: twice the threads that compute them (counted once)."""
        if self._window is None:
            import os

            threads = sum(self.client.nthreads().values()) if self.client is not None else os.cpu_count() or 1
            self._window = max(2, 2 * threads)
        return self._window

    def column_windows(self, multiple: int) -> Iterator[tuple[int, int]]:
        """Consecutive column ranges of about ``window`` chunks, each a multiple of ``multiple``
        columns wide (the last one excepted), for :func:`mfcli.models.matrix.project_update`."""
        n = self.shape[1]
        width = max(1, -(-self.window * self.chunk_size // multiple)) * multiple
        for start in range(0, n, width):
            yield start, min(start + width, n)

    def _pieces(self, raw: bool, columns: slice | None = None):
        """(delayed chunks, their column bounds) of X (``raw``: before clipping) or of
        X[:, columns]; the whole array's are made once and reused for ranges on chunk bounds."""
        key = "raw" if raw else "X"
        if key not in self._chunks:
            array = self._raw if raw else self.X
            self._chunks[key] = (array.to_delayed().ravel(),
                                 np.concatenate([[0], np.cumsum(array.chunks[1])]).astype(int))
        pieces, bounds = self._chunks[key]
        if columns is None:
            return pieces, bounds
        start, stop, _ = columns.indices(self.shape[1])
        first, last = np.searchsorted(bounds, [start, stop])
        if first < bounds.size and last < bounds.size and bounds[first] == start and bounds[last] == stop:
            return pieces[first:last], bounds[first:last + 1] - start
        array = (self._raw if raw else self.X)[:, start:stop]
        return array.to_delayed().ravel(), np.concatenate([[0], np.cumsum(array.chunks[1])]).astype(int)

    def _chunk_results(self, func, columns_of=(), raw: bool = False,
                       columns: slice | None = None) -> Iterator[tuple[int, int, object]]:
        """``(start, stop, func(X[:, start:stop], *[A[:, start:stop] for A in columns_of]))`` for
        every chunk, in column order, a window of chunks at a time (``raw``: X before clipping;
        ``columns``: only these columns of X, positions then counted from their start)."""
        dask, _ = import_dask()
        pieces, bounds = self._pieces(raw, columns)
        window = self.window
        for first in range(0, len(pieces), window):
            indices = range(first, min(first + window, len(pieces)))
            tasks = [dask.delayed(func)(pieces[i], *[np.ascontiguousarray(A[:, bounds[i]:bounds[i + 1]])
                                                     for A in columns_of]) for i in indices]
            for i, value in zip(indices, self._compute(*tasks)):
                yield int(bounds[i]), int(bounds[i + 1]), value

    def WtX(self, W: np.ndarray, columns: slice | None = None) -> np.ndarray:
        """W^T X (or W^T X[:, columns])."""
        Wt = np.ascontiguousarray(W.T, dtype=self.dtype)
        width = len(range(*columns.indices(self.shape[1]))) if columns is not None else self.shape[1]
        out = np.empty((Wt.shape[0], width), dtype=self.dtype)
        for start, stop, value in self._chunk_results(lambda block: Wt @ block, columns=columns):
            out[:, start:stop] = value
        return out

    def XHt(self, H: np.ndarray, columns: slice | None = None, accurate: bool = False) -> np.ndarray:
        """X H^T (or X[:, columns] H^T, H having as many columns), summed in float64 (``accurate``:
        every product in float64 too, and the float64 sum returned, as the in-memory engine's)."""
        total = np.zeros((self.shape[0], H.shape[0]))
        if accurate:
            H = np.asarray(H, dtype=np.float64)
            product = lambda block, h: np.asarray(block, dtype=np.float64) @ h.T  # noqa: E731
        else:
            H = np.asarray(H, dtype=self.dtype)
            product = lambda block, h: block @ h.T  # noqa: E731
        for _, _, value in self._chunk_results(product, columns_of=[H], columns=columns):
            total += value
        return total if accurate else total.astype(self.dtype, copy=False)

    def _map_raw_blocks(self, func) -> Iterator[tuple[int, int, object]]:
        return self._chunk_results(func, raw=True)

    def columns(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64).ravel()
        order = np.argsort(idx, kind="stable")
        (picked,) = self._compute(self.X[:, idx[order]])
        out = np.empty((self.shape[0], idx.size), dtype=self.dtype)
        out[:, order] = picked
        return out

    def map_column_blocks(self, func) -> Iterator[tuple[int, int, object]]:
        """Yield ``(start, stop, func(X[:, start:stop]))`` chunk by chunk, in column order: ``func``
        runs where the chunk is (a worker), so only its (small) results travel."""
        return self._chunk_results(func)
