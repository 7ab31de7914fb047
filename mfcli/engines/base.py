"""What the out-of-core engines share: column norms made in one pass and kept (and forgotten
when ``clip_negative`` changes), the scan of the input checks (NaN, Inf and negative values
counted where the data are), and the pipelined step of an alternating solver over chunks of
columns computed by a pool of threads or a Dask cluster (:func:`pipelined_project_update`), or
over chunks mapped from a file, a grid block per task (:func:`blockwise_view_pass`)."""

from __future__ import annotations

import os
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

import numpy as np

from mfcli.models.threads import block_product, wt_x, x_ht


def column_sq_norms(block: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->j", block, block)


def count_values(block: np.ndarray, clip: bool = False):
    """(NaN count, Inf count, negative count, minimum, maximum, column norms) of one block as
    stored; the norms of the block as the solvers see it (negatives set to 0 when ``clip``)."""
    norms = column_sq_norms(block)
    nan = inf = negative = 0
    if not np.isfinite(norms).all():  # NaN/Inf somewhere (or a float32 overflow): count them
        nan, inf = int(np.count_nonzero(np.isnan(block))), int(np.count_nonzero(np.isinf(block)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN block
        minimum = float(np.nanmin(block)) if block.size else np.inf
        maximum = float(np.nanmax(block)) if block.size else -np.inf
    if minimum < 0:
        negative = int(np.count_nonzero(block < 0))
        if clip:
            norms = column_sq_norms(np.maximum(block, 0))
    return nan, inf, negative, minimum, maximum, norms


class ColumnNorms:
    """``sq_norm``/``col_sq_norms`` from one pass of ``map_column_blocks`` (kept), and ``scan``
    from one pass of ``_map_raw_blocks`` over X as stored; both engines define those two."""

    _sq_norm: float | None = None
    _col_sq_norms: np.ndarray | None = None
    _clip = False

    @property
    def clip_negative(self) -> bool:
        """Negative values count as 0 (the stored data are not changed)."""
        return self._clip

    @clip_negative.setter
    def clip_negative(self, value: bool) -> None:
        self._clip = bool(value)
        self._sq_norm = self._col_sq_norms = None  # the norms change with clipping
        self._clipping_changed()

    def _clipping_changed(self) -> None:
        """Hook for an engine that derives more than the norms from the clipping."""

    def _keep_norms(self, col: np.ndarray) -> None:
        self._col_sq_norms = col
        self._sq_norm = float(col.sum(dtype=np.float64))

    def _norms(self) -> None:
        col = np.empty(self.shape[1], dtype=self.dtype)
        for start, stop, norms in self.map_column_blocks(column_sq_norms):
            col[start:stop] = norms
        self._keep_norms(col)

    def sq_norm(self) -> float:
        if self._sq_norm is None:
            self._norms()
        return self._sq_norm  # type: ignore[return-value]

    def col_sq_norms(self) -> np.ndarray:
        if self._col_sq_norms is None:
            self._norms()
        return self._col_sq_norms  # type: ignore[return-value]

    def scan(self) -> dict:
        """One pass over X: the number of NaN, Inf and negative values as stored (before any
        clipping), the minimum and the maximum, for the input checks; the column norms of X as the
        solvers see it are kept, which saves the solvers' first pass."""
        counts = {"nan": 0, "inf": 0, "negative": 0, "minimum": np.inf, "maximum": -np.inf}
        col = np.empty(self.shape[1], dtype=self.dtype)
        for start, stop, (nan, inf, negative, minimum, maximum, norms) in self._map_raw_blocks(
                partial(count_values, clip=self.clip_negative)):
            counts["nan"] += nan
            counts["inf"] += inf
            counts["negative"] += negative
            counts["minimum"] = min(counts["minimum"], minimum)
            counts["maximum"] = max(counts["maximum"], maximum)
            col[start:stop] = norms
        self._keep_norms(col)
        return counts


# ---------------------------------------------------------------------- chunks computed in parallel

def left_product(block: np.ndarray, Wt: np.ndarray) -> np.ndarray:
    """W^T X_c (a task where the chunk is)."""
    return wt_x(Wt, block)


def right_product(block: np.ndarray, H: np.ndarray) -> np.ndarray:
    """X_c H_c^T (a task where the chunk is)."""
    return x_ht(block, H)


def right_product64(block: np.ndarray, H: np.ndarray) -> np.ndarray:
    """X_c H_c^T in float64 whatever the chunk's dtype (``accurate`` sums, see project_update)."""
    return x_ht(np.asarray(block, dtype=np.float64), np.asarray(H, dtype=np.float64))


class ThreadRunner:
    """Tasks on a pool of threads of this process, one per core, each started when the futures
    among its arguments are done (so no thread waits for another's task).

    During a pass (:meth:`pass_context`) BLAS runs on one thread per call, as in Dask's worker
    processes: the pool's threads are the parallelism, and BLAS's own threads on top of them
    would oversubscribe the cores (and spin when other processes compete for them).
    """

    def __init__(self, threads: int | None = None):
        self.threads = max(1, threads or os.cpu_count() or 1)
        self._pool: ThreadPoolExecutor | None = None
        self._controller = None

    def pass_context(self):
        if self._controller is None:
            from threadpoolctl import ThreadpoolController

            self._controller = ThreadpoolController()
        return self._controller.limit(limits=1, user_api="blas")

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="mfcli-engine")
        return self._pool

    @staticmethod
    def done(value) -> Future:
        future: Future = Future()
        future.set_result(value)
        return future

    def submit(self, func: Callable, *args) -> Future:
        """``func(*args)`` on the pool, futures among ``args`` replaced by their results, once
        they are done."""
        held = [func, args]

        def run():
            # let go of the arguments once used: the dependencies keep this function among their
            # callbacks, and a chunk must be freed when its last task is done, not at the next GC
            call, values = held
            held.clear()
            return call(*[a.result() if isinstance(a, Future) else a for a in values])

        pending = [a for a in args if isinstance(a, Future) and not a.done()]
        if not pending:
            return self._executor().submit(run)
        result: Future = Future()
        lock, remaining = threading.Lock(), [len(pending)]

        def relay(inner: Future) -> None:
            error = inner.exception()
            if error is not None:
                result.set_exception(error)
            else:
                result.set_result(inner.result())

        def dependency_done(_) -> None:
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                self._executor().submit(run).add_done_callback(relay)

        for dependency in pending:
            dependency.add_done_callback(dependency_done)
        return result

    @staticmethod
    def ready(future) -> bool:
        return future.done()

    @staticmethod
    def gather(futures) -> list:
        return [future.result() for future in futures]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def in_order(runner, order: list[int], launch: Callable, ahead: int, window: int) -> Iterator[tuple]:
    """``(i, chunk, result)`` for i in ``order``, in that order, ``launch(i)`` giving (chunk,
    future of the result) with at most ``ahead`` launched and not yet returned; results that
    are ready together are fetched together (one round trip to a cluster, not one each; at most
    ``window``)."""
    queue: deque = deque()
    launched = 0
    ahead = max(1, ahead)
    while launched < min(ahead, len(order)):
        queue.append((order[launched], *launch(order[launched])))
        launched += 1
    while queue:
        group = [queue.popleft()]
        while queue and len(group) < window and runner.ready(queue[0][2]):
            group.append(queue.popleft())
        while launched < len(order) and len(queue) < ahead:
            queue.append((order[launched], *launch(order[launched])))
            launched += 1
        for (i, chunk, _), value in zip(group, runner.gather([future for _, _, future in group])):
            yield i, chunk, value


def _updated_block(update, B: np.ndarray, start: int, stop: int, h_dtype) -> np.ndarray:
    """``update`` on one grid block (a task of the pool, or run here)."""
    return np.asarray(update(B, slice(start, stop)), dtype=h_dtype)


def _chunk_h(width: int, spans: list[tuple[int, int, int]], H_blocks) -> np.ndarray:
    """H_c of a chunk put together from the grid blocks that cover it: ``spans[i]`` = (first,
    last, offset): columns first..last of H_c are those from ``offset`` on of ``H_blocks[i]``."""
    H = np.empty((H_blocks[0].shape[0], width), dtype=H_blocks[0].dtype)
    for (first, last, offset), block in zip(spans, H_blocks):
        H[:, first:last] = block[:, offset:offset + last - first]
    return H


def _chunk_product(product, chunk: np.ndarray, width: int, spans: list[tuple[int, int, int]], *H_blocks):
    """X_c H_c^T with H_c from its grid blocks (:func:`_chunk_h`): a task of the pool, which
    starts once the blocks' updates are done."""
    return product(chunk, _chunk_h(width, spans, H_blocks))


def pipelined_project_update(runner, bounds: np.ndarray, load: Callable, W: np.ndarray, update, size: int,
                             dtype, ahead: int, window: int, accurate: bool = False,
                             release: Callable | None = None) -> np.ndarray:
    """:func:`mfcli.models.matrix.project_update` in one pass over chunks of columns
    ``[bounds[i], bounds[i+1])`` that ``runner`` computes in parallel (``load(i)``: chunk i, a
    future or a held chunk).

    Each chunk's ``W^T X_c`` is submitted (``ahead`` at a time); as they come back, in column
    order, ``update`` runs on the grid blocks of ``size`` columns they complete (so it is called
    exactly as on every other engine), and ``X_c H_c^T`` is submitted to a chunk as soon as its
    columns of H are known, while the other chunks are being computed. With a :class:`ThreadRunner`
    of several threads each update is a task of the pool too, as the memory engine's pass threads
    run them: with the updates on this thread, the stream engine's steps waited on them
    (bench_scale: 0.067 of a 0.164 s step at 10^6 pixels, the pool's two threads mapping and
    multiplying meanwhile); with a cluster they run here. The partial products are summed in
    float64 in column order: the same result whatever the timing and wherever the updates ran
    (``accurate``: each product in float64 too, and the float64 sum returned). ``release(i)``, if
    given, is called once chunk i's last product is done (e.g. to unmap its pages).
    """
    dtype = np.dtype(dtype)
    h_dtype = np.float64 if accurate else dtype
    product = right_product64 if accurate and dtype != np.float64 else right_product
    n = int(bounds[-1])
    Wt = np.ascontiguousarray(W.T, dtype=dtype)
    pooled = isinstance(runner, ThreadRunner) and runner.threads > 1

    def launch(i: int):
        chunk = load(i)
        return chunk, runner.submit(left_product, chunk, Wt)

    partials = []
    waiting: dict[int, list] = {}  # chunk -> [its handle, [(first, last, offset)], [H blocks], columns missing]
    parts: list[np.ndarray] = []  # W^T X of the grid block in progress, from one chunk or more
    for i, chunk, B_chunk in in_order(runner, list(range(len(bounds) - 1)), launch, ahead, window):
        start, stop = int(bounds[i]), int(bounds[i + 1])
        waiting[i] = [chunk, [], [], stop - start]
        position = start
        while position < stop:
            cell_start = (position // size) * size
            cell_stop = min(cell_start + size, n)
            part_stop = min(stop, cell_stop)
            parts.append(B_chunk[:, position - start:part_stop - start])
            position = part_stop
            if part_stop < cell_stop:
                continue
            B = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
            parts = []
            arguments = (update, B, cell_start, cell_stop, h_dtype)
            H = runner.submit(_updated_block, *arguments) if pooled else _updated_block(*arguments)
            for j in sorted(waiting):  # the chunks this grid block covers
                left, right = max(cell_start, int(bounds[j])), min(cell_stop, int(bounds[j + 1]))
                if left >= right:
                    continue
                entry = waiting[j]
                entry[1].append((left - int(bounds[j]), right - int(bounds[j]), left - cell_start))
                entry[2].append(H)
                entry[3] -= right - left
                if entry[3] == 0:
                    width = int(bounds[j + 1] - bounds[j])
                    if pooled:
                        partials.append(runner.submit(_chunk_product, product, entry[0], width, entry[1], *entry[2]))
                    else:  # a cluster's worker gets the chunk's H_c only
                        partials.append(runner.submit(product, entry[0], _chunk_h(width, entry[1], entry[2])))
                    if release is not None:
                        partials[-1].add_done_callback(lambda _, j=j: release(j))
                    del waiting[j]
    total = None
    for value in runner.gather(partials):  # in column order
        if total is None:
            total = np.zeros(value.shape, dtype=np.float64)
        total += value
    if total is None:  # no columns
        raise ValueError("no columns to update")
    return total if accurate else total.astype(dtype, copy=False)


def blockwise_view_pass(runner: ThreadRunner, bounds: np.ndarray, view: Callable, W: np.ndarray, update,
                        size: int, dtype, accurate: bool = False, release: Callable | None = None) -> np.ndarray:
    """:func:`mfcli.models.matrix.project_update` over chunks ``[bounds[i], bounds[i+1])`` of X
    that cost nothing to look at (``view(start, stop)``: X[:, start:stop] within one chunk, e.g.
    a view of a file mapped into memory), as the memory engine makes its pass
    (:func:`mfcli.models.threads.blockwise_update_pass`): each grid block J of ``size``
    columns is one task of the pool, which takes W^T of its parts, ``H_J = update(W^T X_J, J)``
    and X_J H_J^T from the same parts while they are still in the cache.

    Compared with :func:`pipelined_project_update` (a task per chunk and product, and the chunks
    joined up into grid blocks on this thread): a third of the tasks, no work on this thread but
    the sum, and each part read from memory once instead of twice (between a chunk's two
    products the pool had moved on to others). At most twice as many grid blocks as threads are
    in flight; ``release(i)`` is called once every grid block over chunk i is done, in column
    order (e.g. to unmap its pages). The X_J H_J^T are summed in float64 in column order, so the
    result does not depend on the timing (``accurate``: each product in float64 too, and the
    float64 sum returned)."""
    dtype = np.dtype(dtype)
    n = int(bounds[-1])
    Wt = np.ascontiguousarray(W.T, dtype=dtype)
    k = Wt.shape[0]

    def task(start: int, stop: int) -> np.ndarray:
        first = int(np.searchsorted(bounds, start, side="right")) - 1
        parts = []
        for j in range(first, len(bounds) - 1):
            low, high = max(start, int(bounds[j])), min(stop, int(bounds[j + 1]))
            if low >= high:
                break
            parts.append((low - start, high - start, view(low, high)))
        if len(parts) == 1:
            B = wt_x(Wt, parts[0][2], reuse=True)
        else:
            B = np.empty((k, stop - start), dtype=dtype)
            for low, high, part in parts:
                B[:, low:high] = wt_x(Wt, part)
        H = update(B, slice(start, stop))
        total = block_product(parts[0][2], H[:, :parts[0][1]], accurate)
        for low, high, part in parts[1:]:
            total += block_product(part, H[:, low:high], accurate)
        return total

    ahead = 2 * runner.threads
    pending: deque = deque()  # (future of a grid block's X_J H_J^T, the block's end), in column order
    total, released = None, 0

    def collect() -> None:
        nonlocal total, released
        future, stop = pending.popleft()
        value = future.result()
        if total is None:
            total = np.zeros(value.shape, dtype=np.float64)
        total += value
        while release is not None and released < len(bounds) - 1 and int(bounds[released + 1]) <= stop:
            release(released)
            released += 1

    for start in range(0, n, size):
        stop = min(start + size, n)
        future = runner.submit(task, start, stop) if runner.threads > 1 else runner.done(task(start, stop))
        pending.append((future, stop))
        if len(pending) >= ahead:
            collect()
    while pending:
        collect()
    if total is None:  # no columns
        raise ValueError("no columns to update")
    return total if accurate else total.astype(dtype, copy=False)
