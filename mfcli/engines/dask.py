"""The Dask engine: X as a Dask array chunked by columns, on local threads or a cluster.

X is read once into the memory of whoever computes (the workers of a ``dask.distributed``
cluster, or this process on local threads) and held there, chunk by chunk, for the whole run,
when it takes at most :data:`PERSIST_SHARE` of the memory available there (``persist=None``;
``persist=True``/``False`` decides it); otherwise every pass reads the chunks again from the
file, a window of them at a time, in column order, so the memory held is a few chunks.

Each product is a map over the chunks, each task running where its chunk is, so only the small
factors travel: ``W^T X`` sends W (m x r) to every chunk and brings back r x |chunk|, ``X H^T``
sends each chunk its columns of H and brings back m x r. The step of an alternating solver
(:meth:`DaskMatrix.project_update`) is one pass: every chunk's ``W^T X_c`` is computed at
once; as each comes back, in column order, the solver's update runs on this process on the
grid blocks it completes, and the chunk's ``X_c H_c^T`` is sent to the chunk as soon as its
columns of H are known, while the workers compute the other chunks' products. The partial
``X_c H_c^T`` are summed in float64 in column order (the same result whatever the timing).
Nothing is rebuilt per iteration: the chunks are futures (or arrays) made once, and each pass
submits two small tasks per chunk.

With a ``dask.distributed`` Client (``--scheduler ADDRESS``) the tasks run on its workers; files
are opened on the workers through a picklable source (:class:`~mfcli.engines.stream.H5Source`,
:class:`~mfcli.engines.stream.NpySource`) (the workers must see the file at the same path).
Without one, the chunks are read by Dask's local scheduler and the tasks run on a pool of
threads of this process (:class:`~mfcli.engines.base.ThreadRunner`), not on a local cluster of
processes: NumPy's BLAS releases the GIL, so threads compute in parallel, and they share X and
the factors, whereas processes pay at every step for the scheduler's messages and for moving
W^T X and H between processes. Measured with ``benchmarks/bench_scale.py`` (2 cores, 162 x 10^6
float32, rank 7, X held): 1.8 s per iteration on threads, 4.3 s on a ``LocalCluster`` of two
single-threaded worker processes, the memory engine 2.0 s (a busy machine, load 14).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future

import numpy as np

from mfcli.engines.base import (ColumnNorms, ThreadRunner, in_order, left_product, pipelined_project_update,
                                right_product, right_product64)
from mfcli.engines.stream import working_dtype
from mfcli.errors import MissingDependencyError

PERSIST_SHARE = 0.5
"""X is held in memory when it takes at most this share of the memory available where it is
computed (the workers' memory limits less what they use; locally, MemAvailable): Dask's workers
start spilling to disk at 60% of their limit, and the solvers' own arrays need room too."""


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
    from mfcli.errors import InputError, ParameterError

    try:  # the address first: a Client made for a bad one lingers with a thread of its own
        from distributed.comm.addressing import parse_address
        from distributed.comm.registry import get_backend

        get_backend(parse_address(address)[0])
    except (ValueError, TypeError) as exc:  # not an address: "unknown address scheme 'garbage'"
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ParameterError(f"--scheduler '{address}' is not a Dask scheduler address ({reason}); give one "
                             "such as tcp://host:8786") from None
    try:
        return Client(address, timeout="10s")
    except (ValueError, TypeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ParameterError(f"--scheduler '{address}' is not a Dask scheduler address ({reason}); give one "
                             "such as tcp://host:8786") from None
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


# ---------------------------------------------------------------------- tasks (run where the chunk is)

def _itself(block: np.ndarray) -> np.ndarray:
    return block


def _take(block: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return block[:, idx]


def _compute(piece):
    dask, _ = import_dask()
    return dask.compute(piece, scheduler="sync", optimize_graph=False)[0]


def available_memory() -> int:
    """Bytes of memory available on this machine (Linux MemAvailable; else free pages)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    try:  # pragma: no cover - not Linux
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 0


def default_chunk_columns(m: int, n: int, dtype, client=None) -> int:
    """Columns per Dask chunk: on local threads, the solvers' update blocks (about 8 MiB, so a
    chunk stays in cache between its two products); on a cluster, where each task costs a
    round of messages through the scheduler, a whole number of update blocks making about
    four chunks per worker thread, each at most :data:`MAX_CLUSTER_CHUNK_BYTES`."""
    from mfcli.models.matrix import grid_columns

    grid = grid_columns(m, n, dtype)
    if client is None:
        return grid
    threads = sum(client.nthreads().values()) or 1
    widest = max(grid, MAX_CLUSTER_CHUNK_BYTES // max(1, m * np.dtype(dtype).itemsize) // grid * grid)
    wanted = -(-n // (4 * threads))
    return int(min(widest, max(grid, -(-wanted // grid) * grid)))


MAX_CLUSTER_CHUNK_BYTES = 128 << 20


# ---------------------------------------------------------------------- where the tasks run

class _DaskThreads(ThreadRunner):
    """A :class:`~mfcli.engines.base.ThreadRunner` whose chunks Dask's local scheduler reads."""

    def hold(self, pieces) -> list:
        dask, _ = import_dask()
        return [self.done(array) for array in dask.compute(*pieces, scheduler="threads", optimize_graph=False)]

    def load(self, piece) -> Future:
        return self.submit(_compute, piece)

    @staticmethod
    def memory_available() -> int:
        return available_memory()


class _ClientRunner:
    """Tasks on the workers of a ``dask.distributed`` Client; held chunks are futures there."""

    def __init__(self, client):
        self.client = client
        self.threads = sum(client.nthreads().values()) or 1

    def hold(self, pieces) -> list:
        return self.client.compute(list(pieces), optimize_graph=False)

    def load(self, piece):
        return self.client.compute(piece, optimize_graph=False)

    def submit(self, func: Callable, *args):
        return self.client.submit(func, *args, pure=False)

    @staticmethod
    def ready(future) -> bool:
        return future.done()

    def gather(self, futures) -> list:
        return self.client.gather(list(futures))

    def memory_available(self) -> int:
        """The workers' memory limits less what they use (a worker without a limit: the memory
        available on its machine)."""
        try:
            workers = self.client.scheduler_info(n_workers=-1)["workers"]  # all (some versions give 5)
        except TypeError:  # pragma: no cover - versions without n_workers give all
            workers = self.client.scheduler_info()["workers"]
        unlimited = [address for address, info in workers.items() if not info.get("memory_limit")]
        free = self.client.run(available_memory, workers=unlimited) if unlimited else {}
        total = 0
        for address, info in workers.items():
            if address in free:
                total += free[address]
            else:
                total += max(0, int(info["memory_limit"]) - int(info.get("metrics", {}).get("memory", 0)))
        return total

    def close(self) -> None:
        pass

    @staticmethod
    def pass_context():
        return contextlib.nullcontext()


class DaskMatrix(ColumnNorms):
    """:class:`~mfcli.models.matrix.DataMatrix` over a Dask array (m x n, chunked by columns).

    ``client``: a ``dask.distributed`` Client (None: threads of this process).
    ``persist``: hold X where it is computed (None: when it takes at most :data:`PERSIST_SHARE`
    of the memory available there, decided at the first pass; :attr:`persisted` says what was
    decided). Setting the ``clip_negative`` property makes negative values count as 0 (the
    stored data are not changed).
    """

    engine = "dask"

    def __init__(self, array, dtype=None, client=None, persist: bool | None = None):
        _, da = import_dask()
        if not isinstance(array, da.Array):
            from mfcli.models.matrix import grid_columns

            array = np.asarray(array)
            array = da.from_array(array, chunks=(-1, grid_columns(*array.shape, working_dtype(array.dtype, dtype))))
        self.dtype = working_dtype(array.dtype, dtype)
        raw = array.astype(self.dtype) if array.dtype != self.dtype else array
        if raw.chunks[0] != (raw.shape[0],):
            raw = raw.rechunk({0: -1})
        self._raw = raw
        self.shape = tuple(int(s) for s in raw.shape)
        self.chunk_size = int(max(raw.chunks[1])) if raw.chunks[1] else 0
        self.client = client
        self._runner = _ClientRunner(client) if client is not None else _DaskThreads()
        self.persist = persist
        self.persisted: bool | None = None  # decided at the first pass
        self._held: list | None = None
        self.passes = 0  # full passes over X (as in the stream engine)
        self.clip_negative = False  # builds self.X

    def _clipping_changed(self) -> None:
        _, da = import_dask()
        self.X = da.maximum(self._raw, 0) if self._clip else self._raw
        self._pieces_of: dict = {}
        self._held = None  # held chunks were clipped (or not) as the solvers saw them

    @classmethod
    def from_source(cls, source, dtype=None, chunk_size: int | None = None, client=None,
                    persist: bool | None = None) -> DaskMatrix:
        """X read from a file source, ``chunk_size`` columns per Dask chunk (default:
        :func:`default_chunk_columns`), divided by the source's scale in the working dtype."""
        _, da = import_dask()
        proxy = _SourceProxy(source)
        work = working_dtype(proxy.dtype, dtype)
        m, n = proxy.shape[::-1] if source.transposed else proxy.shape
        if chunk_size is None:
            chunk_size = default_chunk_columns(m, n, work, client)
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
        return cls(array, dtype=work, client=client, persist=persist)

    def close(self) -> None:
        """Release the held chunks and the local threads (the client, if any, is the caller's)."""
        self._held = None
        self._runner.close()

    @property
    def window(self) -> int:
        """Chunks in flight at a time (in a solver step, when X is not held): twice the threads
        that compute them."""
        return max(2, 2 * self._runner.threads)

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.shape[1] * self.dtype.itemsize

    # ------------------------------------------------------------------ chunks

    def _pieces(self, raw: bool = False):
        """(delayed chunks, their column bounds) of X (``raw``: before clipping), made once."""
        key = "raw" if raw else "X"
        if key not in self._pieces_of:
            dask, _ = import_dask()
            array = self._raw if raw else self.X
            # each piece with its own culled graph, made once (else every compute culls the whole graph)
            pieces = dask.optimize(*array.to_delayed().ravel())
            self._pieces_of[key] = (list(pieces), np.concatenate([[0], np.cumsum(array.chunks[1])]).astype(int))
        return self._pieces_of[key]

    def _held_chunks(self, raw: bool = False) -> list | None:
        """The chunks of X held where they are computed (read from the file on the first call),
        or None when X is not held (``persist``; ``raw`` when clipping: never held)."""
        if raw and self._clip:
            return None
        if self.persisted is None:
            self.persisted = bool(self.persist) if self.persist is not None else \
                self.nbytes <= PERSIST_SHARE * self._runner.memory_available()
        if not self.persisted:
            return None
        if self._held is None:
            self._held = self._runner.hold(self._pieces()[0])
        return self._held

    def _map(self, task: Callable, args_of: Callable | None = None, raw: bool = False,
             indices=None) -> Iterator[tuple[int, int, object]]:
        """``(start, stop, task(X[:, start:stop], *args_of(start, stop)))`` for every chunk (or
        the chunks ``indices``), in column order, each task where its chunk is (``raw``: X
        before clipping), a window of chunks at a time."""
        pieces, bounds = self._pieces(raw)
        held = self._held_chunks(raw)
        runner = self._runner
        order = [int(i) for i in (range(len(pieces)) if indices is None else indices)]
        if indices is None:
            self.passes += 1

        def launch(i: int):
            chunk = held[i] if held is not None else runner.load(pieces[i])
            args = args_of(int(bounds[i]), int(bounds[i + 1])) if args_of is not None else ()
            return chunk, runner.submit(task, chunk, *args)

        with runner.pass_context():  # a window ahead: the results may be large (abundances of a chunk)
            for i, _, value in in_order(runner, order, launch, self.window, self.window):
                yield int(bounds[i]), int(bounds[i + 1]), value

    # ------------------------------------------------------------------ DataMatrix

    def WtX(self, W: np.ndarray) -> np.ndarray:
        """W^T X."""
        Wt = np.ascontiguousarray(W.T, dtype=self.dtype)
        out = np.empty((Wt.shape[0], self.shape[1]), dtype=self.dtype)
        for start, stop, value in self._map(left_product, lambda a, b: (Wt,)):
            out[:, start:stop] = value
        return out

    def XHt(self, H: np.ndarray, accurate: bool = False) -> np.ndarray:
        """X H^T, summed in float64 in column order (``accurate``: every product in float64 too,
        and the float64 sum returned, as the in-memory engine's)."""
        task = right_product64 if accurate else right_product
        H = np.asarray(H, dtype=np.float64 if accurate else self.dtype)
        total = np.zeros((self.shape[0], H.shape[0]))
        for _, _, value in self._map(task, lambda a, b: (np.ascontiguousarray(H[:, a:b]),)):
            total += value
        return total if accurate else total.astype(self.dtype, copy=False)

    def project_update(self, W: np.ndarray, update, size: int, accurate: bool = False) -> np.ndarray:
        """:func:`mfcli.models.matrix.project_update` in one pass over the chunks
        (:func:`~mfcli.engines.base.pipelined_project_update`): all chunks' ``W^T X_c`` at once
        when X is held, else a window of them at a time."""
        pieces, bounds = self._pieces()
        held = self._held_chunks()
        runner = self._runner
        self.passes += 1

        def load(i: int):
            return held[i] if held is not None else runner.load(pieces[i])

        with runner.pass_context():
            return pipelined_project_update(runner, bounds, load, W, update, size, self.dtype,
                                            ahead=len(pieces) if held is not None else self.window,
                                            window=self.window, accurate=accurate)

    def _map_raw_blocks(self, func) -> Iterator[tuple[int, int, object]]:
        return self._map(func, raw=True)

    def columns(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64).ravel()
        out = np.empty((self.shape[0], idx.size), dtype=self.dtype)
        if idx.size == 0:
            return out
        _, bounds = self._pieces()
        chunk_of = np.searchsorted(bounds, idx, side="right") - 1
        wanted = np.unique(chunk_of)
        for start, stop, picked in self._map(_take, lambda a, b: (idx[(idx >= a) & (idx < b)] - a,),
                                             indices=wanted):
            out[:, (idx >= start) & (idx < stop)] = picked
        return out

    def blocks(self, block_size: int | None = None) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(start, stop, X[:, start:stop])`` brought here chunk by chunk (or in ranges of
        ``block_size`` columns), in column order: for the solvers that work on X's values
        themselves (beta-divergences), not only on its products."""
        if block_size is None:
            yield from self._map(_itself)
            return
        self.passes += 1
        for start in range(0, self.shape[1], block_size):
            stop = min(start + block_size, self.shape[1])
            yield start, stop, self.columns(np.arange(start, stop))

    def map_column_blocks(self, func) -> Iterator[tuple[int, int, object]]:
        """Yield ``(start, stop, func(X[:, start:stop]))`` chunk by chunk, in column order: ``func``
        runs where the chunk is (a worker), so only its (small) results travel."""
        return self._map(func)
