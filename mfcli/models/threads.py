"""BLAS threads for the solvers: all of them for a pass over X, one for everything else.

An iteration of an alternating solver is two kinds of work: the passes over X (``W^T X`` and
``X H^T``, m n r flops, bound by memory bandwidth: several threads help) and many small
products (r x r Gram matrices, k x n blocks of coefficients, inner sweeps: short calls that a
BLAS splits among threads which then spend longer starting, synchronizing and spinning than
computing). OpenBLAS threads each call as it sees fit; on a machine whose cores are busy with
other processes, one descheduled thread holds up the whole call, and the small products become
up to a hundred times slower (a 17 x 65536 Gram matrix: 0.9 s instead of 6 ms, measured with
``benchmarks/bench_nmf.py``'s data under a load average of 15 on 2 cores).

So a solver runs inside :func:`solver_threads`, which sets BLAS to one thread, and each pass
over the data runs inside :func:`pass_threads`, which gives back the threads BLAS had when the
solver began (the user's own limits, e.g. ``OPENBLAS_NUM_THREADS`` or threadpoolctl, are
respected: a solver never uses more threads than it was given). Nested solvers (a deep model's
layers, an initialization inside a solver) share the outermost setting.

The thread counts are process-wide (BLAS has no per-thread setting): two solvers run at once
from two Python threads would share them. Without threadpoolctl (a dependency of mfcli, but
optional here) both are no-ops.
"""

from __future__ import annotations

import functools
import math
import threading
from contextlib import contextmanager, nullcontext

import numpy as np

_state = {"depth": 0, "full": None, "in_pass": False, "libraries": None, "loaded": None, "pool": None,
          "avx512": None}


# Modules that bring a BLAS library of their own (SciPy's wheels bundle another OpenBLAS than
# NumPy's): the libraries are found again once one of them has been imported since the last scan.
BLAS_MODULES = ("scipy.linalg", "scipy.sparse.linalg", "sklearn", "torch")


def _blas_libraries():
    """threadpoolctl's controllers of the BLAS libraries loaded in this process (cached: finding
    them scans the loaded shared objects, about 30 ms; scanned again when a module of
    ``BLAS_MODULES`` has been imported since); [] without threadpoolctl."""
    import sys

    loaded = tuple(name in sys.modules for name in BLAS_MODULES)
    if _state["libraries"] is None or _state["loaded"] != loaded:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            _state["libraries"] = []
        else:
            _state["libraries"] = list(ThreadpoolController().select(user_api="blas").lib_controllers)
        _state["loaded"] = loaded
    return _state["libraries"]


def _set_threads(counts) -> None:
    """The thread counts of the libraries found when the outermost solver began (in that order)."""
    for library, count in zip(_state["libraries"] or [], counts):
        library.set_num_threads(count)


@contextmanager
def solver_threads():
    """Run a solver with BLAS at one thread (see the module docstring); passes over X inside
    :func:`pass_threads` get the threads BLAS had on entry. Re-entrant."""
    if _state["depth"] > 0:
        _state["depth"] += 1
        try:
            yield
        finally:
            _state["depth"] -= 1
        return
    libraries = _blas_libraries()
    full = [library.get_num_threads() for library in libraries]
    _state["full"], _state["depth"] = full, 1
    _set_threads([1] * len(libraries))
    try:
        yield
    finally:
        pool, _state["pool"] = _state["pool"], None
        if pool is not None:
            pool[1].shutdown(wait=True)
        _state["depth"], _state["full"] = 0, None
        _set_threads(full)


@contextmanager
def pass_threads():
    """Inside :func:`solver_threads`: a pass over X with all the threads the solver was given.
    Elsewhere: nothing changes."""
    full = _state["full"]
    if full is None or _state["in_pass"] or all(count == 1 for count in full):
        yield
        return
    _set_threads(full)
    _state["in_pass"] = True
    try:
        yield
    finally:
        _state["in_pass"] = False
        _set_threads([1] * len(full))


# A product of fewer multiply-adds than this runs on one BLAS thread even in a pass over X: a
# multithreaded call waits for its slowest thread, and on a busy machine (load 5 on 2 cores) the
# passes of a 20000 x 20 matrix at rank 5 (2e6 multiply-adds each) took 17-33 s in all instead
# of 3 s (benchmarks/bench_defaults.py's "tall" matrix).
THREADED_PRODUCT_MIN = 50_000_000


def pass_threads_for(multiply_adds: int):
    """:func:`pass_threads` for a product of at least ``THREADED_PRODUCT_MIN`` multiply-adds,
    else one thread (a context manager either way)."""
    return pass_threads() if multiply_adds >= THREADED_PRODUCT_MIN else nullcontext()


def single_threaded_small_products(function):
    """Decorator: run ``function`` inside :func:`solver_threads`."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with solver_threads():
            return function(*args, **kwargs)

    return wrapper


@contextmanager
def pass_pool(workers: int):
    """A pool of ``workers`` Python threads for the blocks of a pass over X. Inside
    :func:`solver_threads` one pool serves every pass of the run (starting threads for each pass
    showed as about 4 ms an iteration in a profile of NMF on Urban), kept with its size in
    ``_state["pool"]`` and shut down when the solver returns; elsewhere a pool lives for one pass."""
    from concurrent.futures import ThreadPoolExecutor

    if _state["depth"] == 0:
        with ThreadPoolExecutor(workers, thread_name_prefix="mfcli-pass") as pool:
            yield pool
        return
    if _state["pool"] is None or _state["pool"][0] != workers:
        if _state["pool"] is not None:
            _state["pool"][1].shutdown(wait=True)
        _state["pool"] = (workers, ThreadPoolExecutor(workers, thread_name_prefix="mfcli-pass"))
    yield _state["pool"][1]


def solver_thread_count() -> int:
    """The BLAS threads the running solver was given (1 outside :func:`solver_threads`)."""
    full = _state["full"]
    return max(full) if full else 1


def wt_x(Wt: np.ndarray, X: np.ndarray, reuse: bool = False) -> np.ndarray:
    """W^T X (k x n) from ``Wt`` = W^T (k x m, X's dtype) for X of either layout, k padded by
    zero rows (:func:`padded_rows`): W^T X itself, except for a float32 column-major X (a MATLAB
    file's layout) with OpenBLAS's AVX-512 kernels, which goes through (X^T W)^T. Figures above
    ``AVX512_KERNELS``; bench_nmf prints both products of a pass in each layout, plain and as
    taken here. ``reuse``: the product is written into this thread's :func:`scratch` array, which
    the thread's next ``wt_x(..., reuse=True)`` overwrites (a pass's blocks, one after the other)."""
    k = Wt.shape[0]
    padded = padded_rows(Wt)
    if X.dtype == np.float32 and _column_major(X) and not _row_major(X) and _avx512_kernels():
        out = scratch("wt_x", (X.shape[1], padded.shape[0]), X.dtype) if reuse else None
        return np.matmul(X.T, padded.T, out=out)[:, :k].T
    out = scratch("wt_x", (padded.shape[0], X.shape[1]), X.dtype) if reuse else None
    return np.matmul(padded, X, out=out)[:k]


def x_ht(X: np.ndarray, H: np.ndarray) -> np.ndarray:
    """X H^T (m x k) for X of either layout and H (k x n) in X's dtype, with k padded as in
    :func:`wt_x`: (H X^T)^T, except for a float32 C-ordered X, which takes X H^T itself."""
    k = H.shape[0]
    if X.dtype == np.float32 and _row_major(X) and not _column_major(X):
        return (X @ padded_rows(H).T)[:, :k]
    return (padded_rows(H) @ X.T)[:k].T


def _row_major(X: np.ndarray) -> bool:
    """Each row of X contiguous (a C-ordered array or a block of its columns, which is not
    C-contiguous itself)."""
    return X.strides[1] == X.itemsize


def _column_major(X: np.ndarray) -> bool:
    """Each column of X contiguous (a Fortran-ordered array or a block of its columns)."""
    return X.strides[0] == X.itemsize


# OpenBLAS's kernels take the rows of the small operand 4 or 8 at a time. The orientations and
# the padding were chosen from the products of a pass (Urban-sized data, rank 7, blocks of the
# update grid, one thread; timed outside benchmarks/, ms, the plain W^T X and X H^T -> as taken
# here) on an AMD Zen 5 with OpenBLAS's Haswell (AVX2) and SkylakeX (AVX-512) kernels, which
# OPENBLAS_CORETYPE names:
#   Haswell    W^T X  float64 C 15.1 -> 11.6, F 17.9 -> 13.7; float32 C 7.7 -> 5.8, F 7.0 -> 5.5
#              X H^T  float64 C 14.6 -> 13.0, F 16.3 -> 12.9; float32 C 9.6 -> 6.7, F 10.5 -> 6.1
#   SkylakeX   W^T X  float64 C 9.8 -> 9.3, F 12.7 -> 12.8; float32 C 6.4 -> 5.3, F 10.4 -> 6.9
#              X H^T  float64 C 21.0 -> 9.2, F 22.3 -> 10.7; float32 C 8.7 -> 6.5, F 11.0 -> 6.0
# The kernels differ on one product: W^T X of a float32 column-major X, taken as (X^T W)^T with
# the AVX-512 kernels (6.9 ms; 8.9 with the Haswell ones, which take W^T X in 5.5).
AVX512_KERNELS = ("SkylakeX", "Cooperlake", "SapphireRapids")


def _avx512_kernels() -> bool:
    """Whether NumPy's BLAS (the library in NumPy's folder, else the first found) is OpenBLAS
    running its AVX-512 kernels (threadpoolctl's ``architecture``; found once)."""
    if _state["avx512"] is None:
        libraries = sorted(_blas_libraries(), key=lambda library: "numpy" not in str(library.filepath))
        _state["avx512"] = bool(libraries) and getattr(libraries[0], "architecture", None) in AVX512_KERNELS
    return _state["avx512"]


PAD_ROWS = 8
# W^T X of a float32 Urban (both layouts, one thread, timed outside benchmarks/, ms plain ->
# padded): k = 1 1.8 -> 5.8, 2 5.1 -> 5.8, 4 4.6 -> 5.7, 5 6.1 -> 5.7, 7 7.7 -> 5.7, 9 7.3 -> 8.0,
# 12 6.7 -> 8.1, 14 8.4 -> 8.0: padding pays where it adds few rows.
MAX_PADDING = 3


def padded_rows(A: np.ndarray) -> np.ndarray:
    """A (k x p) with zero rows appended up to a multiple of PAD_ROWS where at most
    ``MAX_PADDING`` rows do it (k = 5, 6, 7, 13, ...; A itself otherwise, and beyond 64 rows,
    where the share gained is small)."""
    k = A.shape[0]
    extra = -k % PAD_ROWS
    if extra == 0 or extra > MAX_PADDING or k > 64:
        return A
    out = np.zeros((k + extra, A.shape[1]), dtype=A.dtype)
    out[:k] = A
    return out


_scratch = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A work array of this thread for ``name``, reused from one block of a pass to the next
    (its contents are left over: write before reading, and be done with it before the thread
    asks for ``name`` again).
    A block's temporaries freshly allocated cost their pages' first touch, every block: glibc
    hands freed memory back to the system and takes it again, and the per-block step of deep
    ONMF (1.3 MB of temporaries, a block of Urban) took 2.5 ms that way instead of 0.7 ms (timed
    outside benchmarks/). Kept for the life of the thread (the pass threads end with the solver)."""
    arrays = _scratch.__dict__.setdefault("arrays", {})
    dtype = np.dtype(dtype)
    size = math.prod(shape)  # np.prod of a tuple costs 8 us: called for every block
    array = arrays.get((name, dtype))
    if array is None or array.size < size:
        array = arrays[(name, dtype)] = np.empty(size, dtype=dtype)
    return array[:size].reshape(shape)


# Float32 blocks of X are converted to float64 this many columns at a time for accurate sums:
# a converted piece (m x 2048 doubles) stays in the cache for its product.
ACCURATE_PIECE = 2048


def block_product(block: np.ndarray, H_block: np.ndarray, accurate: bool = False) -> np.ndarray:
    """X_J H_J^T (m x k) in float64; ``accurate`` with float32 X: X_J converted to float64
    ``ACCURATE_PIECE`` columns at a time, so every product and sum is in float64."""
    dtype = block.dtype
    if not accurate or dtype == np.float64:
        return np.asarray(x_ht(block, np.asarray(H_block, dtype=dtype)), dtype=np.float64)
    m = block.shape[0]
    H64 = np.asarray(H_block, dtype=np.float64)
    total = np.zeros((m, H64.shape[0]))
    piece = np.empty((m, min(ACCURATE_PIECE, block.shape[1])))
    for start in range(0, block.shape[1], ACCURATE_PIECE):
        stop = min(start + ACCURATE_PIECE, block.shape[1])
        converted = piece[:, :stop - start]
        np.copyto(converted, block[:, start:stop])
        total += x_ht(converted, H64[:, start:stop])
    return total


def blockwise_update_pass(X: np.ndarray, W: np.ndarray, update, size: int, accurate: bool = False) -> np.ndarray:
    """:func:`~mfcli.models.matrix.project_update` on X held in memory, one block of columns at a
    time: ``B = W^T X_J``, ``H_J = update(B, J)``, ``X_J H_J^T`` while X_J is still in the cache, so
    X is read from memory about once per iteration instead of twice.

    The blocks J are the grid of ``size`` columns. With several threads (:func:`solver_thread_count`)
    they are shared among that many Python threads, each taking the next block as it finishes one
    (BLAS, at one thread, and NumPy release the GIL): the inner sweeps run in parallel too, and a
    thread that the system deschedules only does fewer blocks instead of holding up the others
    (a multithreaded BLAS call waits for its slowest thread). With one block,
    the products use all the threads instead, where they are large enough to gain from them
    (``THREADED_PRODUCT_MIN``). The sum of the X_J H_J^T is taken in block order, in float64, so
    the result does not depend on the number of threads. ``accurate``: float32 blocks converted to
    float64 piece by piece (every product and sum in float64). Returns X H^T (m x k), float64 when
    ``accurate``, else X's dtype.
    """
    dtype = X.dtype
    m, n = X.shape
    Wt = np.ascontiguousarray(W.T, dtype=dtype)
    starts = list(range(0, n, size))
    workers = min(solver_thread_count(), len(starts))
    if workers <= 1:
        multiply_adds = m * min(size, n) * Wt.shape[0]
        parts = []
        for start in starts:
            columns = slice(start, min(start + size, n))
            block = X[:, columns]
            with pass_threads_for(multiply_adds):
                B = wt_x(Wt, block, reuse=True)
            H_block = update(B, columns)
            with pass_threads_for(multiply_adds):
                parts.append(block_product(block, H_block, accurate))
    else:
        def task(start: int) -> np.ndarray:
            columns = slice(start, min(start + size, n))
            block = X[:, columns]
            return block_product(block, update(wt_x(Wt, block, reuse=True), columns), accurate)

        with pass_pool(workers) as pool:
            parts = list(pool.map(task, starts))
    total = parts[0]
    for part in parts[1:]:
        total += part
    return total if accurate else total.astype(dtype, copy=False)
