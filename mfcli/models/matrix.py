"""How solvers touch the data matrix X (m x n, features x samples).

NMF, ONMF and deep ONMF need X only through a handful of products:

- ``WtX(W)``  = W^T X            (r x n; one pass over X)
- ``XHt(H)``  = X H^T            (m x r; one pass over X)
- ``sq_norm()`` = ||X||_F^2, ``col_sq_norms()`` = ||x_j||^2 for every column
- ``columns(idx)`` = X[:, idx]   (a few columns: initializations, restarts on a subsample)

Optional, where an engine reads X block by block anyway: ``blocks(block_size=None)`` yields
``(start, stop, X[:, start:stop])``. :func:`project_update` uses it to fuse the two products of
an alternating solver into ONE pass (``W^T X`` block, update that block of H, ``X H^T`` from
the same block while it is in memory), and :func:`column_blocks` to stream elementwise losses
(beta-divergences); engines without ``blocks`` fall back to ``WtX``/``XHt``/``columns``. An
engine may also do that whole step its own way (``project_update(W, update, size)``: the stream
and Dask engines).

Whatever the engine and its block size, :func:`project_update` hands the solver's update the
same column ranges, those of :func:`update_block_size` (an engine's blocks are regrouped onto
that grid), so an update whose rule looks at a whole block (the early stop of accelerated
HALS's inner sweeps) makes the same decisions on every engine, and the same seed gives the same
result up to floating-point summation order.

Solvers are written once against this interface. :class:`InMemoryMatrix` wraps a NumPy array;
out-of-core engines (a chunked HDF5 dataset streamed block by block, a Dask array) implement
the same methods, so every algorithm runs unchanged on every engine. The dtype of X is the
working dtype: products come back in it, never silently upcast.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from mfcli.models.threads import block_product, blockwise_update_pass, pass_threads_for, wt_x, x_ht


@runtime_checkable
class DataMatrix(Protocol):
    """The operations a solver may perform on X."""

    shape: tuple[int, int]
    dtype: np.dtype

    def WtX(self, W: np.ndarray) -> np.ndarray: ...

    def XHt(self, H: np.ndarray) -> np.ndarray: ...

    def sq_norm(self) -> float: ...

    def col_sq_norms(self) -> np.ndarray: ...

    def columns(self, idx: np.ndarray) -> np.ndarray: ...


# A product of X with a few vectors costs about what reading X costs, whatever their number:
# it counts as READ_ROWS vectors when choosing its threads (pass_threads_for). One vector, W^T X
# of Urban in float32 (each step of SPA): 8.4 ms on one thread, 4.1 ms on two (timed outside
# benchmarks/).
READ_ROWS = 8


class InMemoryMatrix:
    """X held in memory as a NumPy array (float32 or float64; C- or Fortran-contiguous, as MATLAB
    files load, so a column-major array is used as it is rather than copied)."""

    engine = "memory"
    fused_pass = False  # see project_update: in memory, two whole-matrix products are steadier

    def __init__(self, X: np.ndarray):
        X = np.asarray(X)
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        self.X = X if X.flags.c_contiguous or X.flags.f_contiguous else np.ascontiguousarray(X)
        self.shape = self.X.shape
        self.dtype = self.X.dtype
        self._sq_norm: float | None = None
        self._col_sq_norms: np.ndarray | None = None

    def WtX(self, W: np.ndarray) -> np.ndarray:
        with pass_threads_for(self.X.size * max(W.shape[1], READ_ROWS)):
            # W^T X itself, not wt_x's (X^T W)^T: OpenBLAS's threaded call for that one held 26 MB
            # more memory (Urban, float32, 2 threads; measured outside benchmarks/), which would set
            # unmix's peak
            return W.T.astype(self.dtype, copy=False) @ self.X

    def XHt(self, H: np.ndarray) -> np.ndarray:
        with pass_threads_for(self.X.size * max(H.shape[0], READ_ROWS)):
            return x_ht(self.X, np.asarray(H, dtype=self.dtype))

    def sq_norm(self) -> float:
        if self._sq_norm is None:
            # Summed in float64: a float32 dot product over millions of entries loses ~1e-4,
            # which is more than a relative error computed from Gram matrices can afford.
            self._sq_norm = float(self.col_sq_norms().sum(dtype=np.float64))
        return self._sq_norm

    def col_sq_norms(self) -> np.ndarray:
        if self._col_sq_norms is None:
            self._col_sq_norms = np.einsum("ij,ij->j", self.X, self.X)
        return self._col_sq_norms

    def columns(self, idx: np.ndarray) -> np.ndarray:
        return self.X[:, idx]

    def XHt64(self, H: np.ndarray) -> np.ndarray:
        """X H^T summed in float64 (m x k): float32 X converted to float64 a piece of columns at a
        time (:func:`~mfcli.models.threads.block_product`). About 2.5 times the cost of the float32
        product, whose float32 sums over n columns limit how well a relative error can be
        measured (see :func:`project_update`)."""
        return block_product(self.X, H, accurate=True)

    def update_pass(self, W: np.ndarray, update, size: int, accurate: bool = False) -> np.ndarray:
        """:func:`project_update` in memory: block by block, X read about once, the blocks shared
        among the solver's threads (:func:`mfcli.models.threads.blockwise_update_pass`)."""
        return blockwise_update_pass(self.X, W, update, size, accurate)

    def blocks(self, block_size: int | None = None):
        """Yield ``(start, stop, X[:, start:stop])`` (views) over all columns, in blocks of
        about 8 MiB (:func:`update_block_size`): small enough to stay in a last-level cache
        between two products, large enough that a pass makes few BLAS calls."""
        n = self.shape[1]
        if block_size is None:
            block_size = update_block_size(self)
        for start in range(0, n, block_size):
            stop = min(start + block_size, n)
            yield start, stop, self.X[:, start:stop]

    def to_array(self) -> np.ndarray:
        return self.X


class SparseMatrix:
    """X held in memory as a scipy.sparse matrix (CSR or CSC; other formats are converted to
    CSC), never densified: ``W^T X`` and ``X H^T`` are sparse-dense products that cost
    O(nnz r), and the norms come from the stored values. Every solver written against
    :class:`DataMatrix` runs on it unchanged; the relative error comes from Gram matrices, so no
    m x n dense product is ever formed. ``columns`` densifies only the few columns asked for
    (initializations, restarts)."""

    engine = "memory"

    def __init__(self, X):
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        # Both layouts (twice the nonzeros in memory, still O(nnz)): X H^T reads the rows of the
        # CSR copy and W^T X = (X^T W)^T the rows of X^T, i.e. the CSC copy; a product that
        # gathers along rows of its compressed layout is the fast one in scipy.
        self.X = X.tocsr(copy=True)
        self.X.sum_duplicates()
        self._csc = self.X.tocsc()
        self.shape = tuple(int(s) for s in X.shape)
        self.dtype = np.dtype(self.X.dtype)
        self._sq_norm: float | None = None
        self._col_sq_norms: np.ndarray | None = None

    @property
    def nnz(self) -> int:
        return int(self.X.nnz)

    def WtX(self, W: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray((self._csc.T @ W.astype(self.dtype, copy=False)).T)

    def XHt(self, H: np.ndarray) -> np.ndarray:
        return np.asarray(self.X @ np.ascontiguousarray(H.T, dtype=self.dtype))

    def sq_norm(self) -> float:
        if self._sq_norm is None:
            values = self.X.data
            self._sq_norm = float(np.dot(values.astype(np.float64), values.astype(np.float64)))
        return self._sq_norm

    def col_sq_norms(self) -> np.ndarray:
        if self._col_sq_norms is None:
            squares = self.X.copy()
            squares.data = squares.data * squares.data
            self._col_sq_norms = np.asarray(squares.sum(axis=0), dtype=self.dtype).ravel()
        return self._col_sq_norms

    def columns(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(self._csc[:, idx].toarray(), dtype=self.dtype)


def is_sparse(X) -> bool:
    """True for a scipy.sparse matrix or array (without importing scipy when X is not one)."""
    return type(X).__module__.startswith("scipy.sparse")


def as_data_matrix(X) -> DataMatrix:
    """Wrap X for the solvers: NumPy arrays in memory, scipy.sparse matrices as
    :class:`SparseMatrix`; objects already implementing :class:`DataMatrix` (streamed HDF5,
    Dask) are returned as they are."""
    if isinstance(X, np.ndarray):
        return InMemoryMatrix(X)
    if is_sparse(X):
        return SparseMatrix(X)
    if isinstance(X, DataMatrix):
        return X
    return InMemoryMatrix(np.asarray(X))


UPDATE_BLOCK_BYTES = 8 << 20


def update_block_size(data: DataMatrix) -> int:
    """Columns per block of the grid of column ranges on which :func:`project_update` runs a
    solver's update, the same for every engine (:func:`grid_columns`)."""
    return grid_columns(data.shape[0], data.shape[1], data.dtype)


def grid_columns(m: int, n: int, dtype) -> int:
    """Columns per block of the update grid of an m x n matrix: the fewest blocks of at most
    :func:`block_columns` columns (about 8 MiB each), all of the same width but the last, which
    is at most one column narrower per block. Blocks of equal width keep the threads of a pass
    equally busy: 8 MiB blocks and a remainder left one thread idle for 72% of a block at the
    end of each pass on Urban (162 x 94249, float32)."""
    blocks = max(1, -(-n // block_columns(m, dtype)))
    return max(1, -(-n // blocks))


def block_columns(m: int, dtype) -> int:
    """Columns of an m-row matrix of ``dtype`` in about 8 MiB (at least 256)."""
    return max(256, UPDATE_BLOCK_BYTES // max(1, m * np.dtype(dtype).itemsize))


def column_blocks(data: DataMatrix, block_size: int | None = None):
    """Yield ``(start, stop, X[:, start:stop])`` over all columns of any engine: its own
    ``blocks()`` where it has one, else ``columns()`` on consecutive ranges of
    :func:`update_block_size` columns."""
    blocks = getattr(data, "blocks", None)
    if blocks is not None:
        yield from (blocks(block_size) if block_size is not None else blocks())
        return
    n = data.shape[1]
    if block_size is None:
        block_size = update_block_size(data)
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        yield start, stop, data.columns(np.arange(start, stop))


def project_update(data: DataMatrix, W: np.ndarray, update, accurate: bool = False) -> np.ndarray:
    """One step of an alternating solver: ``X H^T`` for the H that ``update`` produces.

    For each block ``J`` of columns, ``update(W^T X[:, J], J)`` (J a slice) returns the new
    ``H[:, J]`` (k x |J|; k need not be W's number of columns), which may depend only on that
    block (true of HALS, MU and ONMF coefficient updates: the problem in H separates over
    columns). The result is ``X H^T`` (m x k) in X's dtype. On every engine the blocks J are the
    grid of :func:`update_block_size`, each visited once; engines with a pool of threads (the
    memory engine inside :func:`~mfcli.models.threads.solver_threads`, the stream engine)
    update several blocks at once, in no set order, so ``update`` writes only its own columns.

    - An engine with its own ``project_update(W, update, size, accurate)`` (the stream and Dask
      engines) does the whole step its way, with this contract: it reads X once, computing W^T X
      where the data are, and calls ``update`` on this process, block by block of ``size`` columns.
    - Engines that stream X (``blocks()`` and no ``fused_pass = False``) read it ONCE: each block
      gives W^T X_J, the update, and X_J H_J^T while it is in memory (:func:`fused_pass`).
    - In memory (``fused_pass = False``) the two products are two whole-matrix BLAS calls, which
      cost the same but make far fewer multithreaded calls (those stall when other processes
      compete for the cores), and ``update`` still runs block by block on slices of W^T X, so its
      small work stays in cache.
    - Other engines get ``WtX``, ``update`` block by block, then ``XHt``.

    ``accurate``: return X H^T in float64, every product and sum in float64 (float32 data: blocks
    of X converted, :meth:`InMemoryMatrix.XHt64`; streamed and Dask engines likewise block by
    block), so every engine gives the same float64 numbers. Float32 sums over many columns err by
    about 1e-7 relative, which a relative error computed from Gram matrices amplifies by 1/error^2.
    """
    dtype = np.dtype(data.dtype)
    n = data.shape[1]
    size = update_block_size(data)
    own = getattr(data, "project_update", None)  # the out-of-core engines' own pipelined pass
    if own is not None:
        return own(W, update, size, accurate=accurate)
    own_pass = getattr(data, "update_pass", None)  # in memory: a blockwise pass on the solver threads
    if own_pass is not None:
        return own_pass(W, update, size, accurate)
    blocks = getattr(data, "blocks", None)
    if blocks is None or not getattr(data, "fused_pass", True):
        B = data.WtX(W)
        H = None
        for start in range(0, n, size):
            stop = min(start + size, n)
            H_block = update(B[:, start:stop], slice(start, stop))
            if H is None:
                H = np.empty((H_block.shape[0], n), dtype=dtype)
            H[:, start:stop] = H_block
        if accurate and dtype != np.float64 and hasattr(data, "XHt64"):
            return data.XHt64(H)
        return np.asarray(data.XHt(H), dtype=np.float64 if accurate else dtype)
    return fused_pass(blocks(), W, update, size, data.shape, dtype, accurate=accurate)


def fused_pass(blocks, W: np.ndarray, update, size: int, shape: tuple[int, int], dtype,
               accurate: bool = False) -> np.ndarray:
    """:func:`project_update` in one pass over ``blocks`` (``(start, stop, X[:, start:stop])`` in
    column order, any widths): ``W^T`` of each block's part in a grid block J goes into B_J;
    when B_J is complete, ``H_J = update(B_J, J)`` and ``X_J H_J^T`` is added from the same parts
    (views, never copied: a grid block holds its parts until it is complete), summed in float64
    (``accurate``: each product in float64 too, and the float64 sum returned)."""
    dtype = np.dtype(dtype)
    m, n = shape
    wide = accurate and dtype != np.float64
    Wt = np.ascontiguousarray(W.T, dtype=dtype)
    total = None
    parts: list[tuple[int, int, np.ndarray]] = []  # (offset in the grid block, its end, X part)
    B = None
    for start, stop, block in blocks:
        position = start
        while position < stop:
            cell_start = (position // size) * size
            cell_stop = min(cell_start + size, n)
            part_stop = min(stop, cell_stop)
            part = block[:, position - start:part_stop - start]
            if position == cell_start and part_stop == cell_stop:  # the whole grid block in one part
                B = wt_x(Wt, part)
            else:
                if B is None:
                    B = np.empty((Wt.shape[0], cell_stop - cell_start), dtype=dtype)
                np.matmul(Wt, part, out=B[:, position - cell_start:part_stop - cell_start])
            parts.append((position - cell_start, part_stop - cell_start, part))
            if part_stop == cell_stop:
                H = np.asarray(update(B, slice(cell_start, cell_stop)), dtype=np.float64 if wide else dtype)
                if total is None:
                    total = np.zeros((m, H.shape[0]), dtype=np.float64)
                for offset, end, piece in parts:
                    total += x_ht(np.asarray(piece, dtype=np.float64) if wide else piece, H[:, offset:end])
                parts, B = [], None
            position = part_stop
    if total is None:  # no columns
        total = np.zeros((m, Wt.shape[0]), dtype=np.float64)
    return total if accurate else total.astype(dtype, copy=False)
