"""Engines: where the data matrix X lives while a solver runs.

Every solver touches X only through :class:`mfcli.models.matrix.DataMatrix` (W^T X, X H^T,
norms, a few columns). An engine is an implementation of that interface:

- ``memory``: a NumPy array (:class:`mfcli.models.matrix.InMemoryMatrix`), or, with
  ``device="cuda"``, a torch tensor on a GPU (:class:`mfcli.engines.gpu.TorchMatrix`);
- ``stream``: a stored array (HDF5 dataset, MATLAB v7.3 variable, ``.npy``) read block by block
  of columns, in bounded memory (:class:`mfcli.engines.stream.StreamedMatrix`);
- ``dask``: a Dask array, on local threads or a dask.distributed cluster, held in memory where
  it is computed when it fits (:class:`mfcli.engines.dask.DaskMatrix`).

Both compute a solver's step (W^T X, the update, X H^T) in one pipelined pass over their chunks
(:func:`mfcli.engines.base.pipelined_project_update`).

So there is one copy of each algorithm, and the same seed gives the same result on every
engine up to floating-point summation order.
"""

from __future__ import annotations

from collections.abc import Iterator

ENGINES = ("memory", "stream", "dask")


def open_matrix(source, engine: str, dtype=None, chunk_size: int | None = None, client=None):
    """The DataMatrix of ``engine`` ("stream" or "dask") over a stored ``source``
    (:class:`~mfcli.engines.stream.H5Source`, :class:`~mfcli.engines.stream.NpySource`)."""
    from mfcli.engines.stream import StreamedMatrix
    from mfcli.errors import ParameterError

    if engine == "stream":
        return StreamedMatrix(source, dtype=dtype, chunk_size=chunk_size)
    if engine == "dask":
        from mfcli.engines.dask import DaskMatrix

        return DaskMatrix.from_source(source, dtype=dtype, chunk_size=chunk_size, client=client)
    raise ParameterError(f"engine '{engine}' does not read from a file; use stream or dask")


def map_columns(data, func, block_size: int | None = None) -> Iterator[tuple[int, int, object]]:
    """Yield ``(start, stop, func(X[:, start:stop]))`` over all columns of any engine, block by
    block (where the block is: a Dask worker), so results of the size of X are never held."""
    own = getattr(data, "map_column_blocks", None)
    if own is not None:
        yield from own(func)
        return
    from mfcli.models.matrix import column_blocks

    for start, stop, block in column_blocks(data, block_size):
        yield start, stop, func(block)
