"""Engines: where the data matrix X lives while a solver runs.

Every solver touches X only through :class:`mfcli.models.matrix.DataMatrix` (W^T X, X H^T,
norms, a few columns). An engine is an implementation of that interface:

- ``memory``: a NumPy array (:class:`mfcli.models.matrix.InMemoryMatrix`);
- ``stream``: a chunked HDF5 dataset read block by block of columns with h5py, in bounded
  memory (:class:`mfcli.engines.stream.StreamedMatrix`);
- ``dask``: a Dask array, on local threads or a dask.distributed cluster
  (:class:`mfcli.engines.dask.DaskMatrix`).

So there is one copy of each algorithm, and the same seed gives the same result on every
engine up to floating-point summation order.
"""

ENGINES = ("memory", "stream", "dask")
