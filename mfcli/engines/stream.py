"""The streaming engine: X in a file (a chunked HDF5 dataset, a MATLAB v7.3 variable, a ``.npy``
array mapped from disk), read block by block of columns.

Memory stays bounded by a few blocks of ``m x chunk_size`` values plus the solver's own factors
(r x n and m x r), whatever the size of X. A solver's step (:meth:`StreamedMatrix.project_update`)
is one pass in which a pool of threads, one per core, reads the blocks, multiplies them and
runs the solver's update of each grid block (NumPy's BLAS and ``preadv`` release the GIL, so
reading, multiplying and updating overlap); other passes (norms, the input checks, ``blocks()``)
read the next block in a background thread while the current one is used. HDF5 datasets stored
without filters are read straight from the file (:class:`DirectReader`), others through h5py.
Where a block is one run of bytes in such a file (a chunk spanning all rows, rows of a
transposed array) and needs no conversion, scaling or clipping, the solver's step does not copy
it at all: it multiplies a view of the file mapped into memory and then unmaps the block's
pages, which stay in the system's page cache (so a pass over a file in the page cache costs
about what a pass over memory does, and the resident set stays a few blocks).

The array may be stored as X (m x n, features x samples) or transposed (n x m, e.g. a MATLAB
v7.3 file, whose arrays h5py sees transposed). A scale (``maxValue``) divides each block as it
is read, as the in-memory loader divides the whole matrix, and negative values can be set to 0
on the fly (``clip_negative``, the ``--clip-negative`` of the commands): the file is never
modified.
"""

from __future__ import annotations

import mmap
import os
import threading
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from mfcli.engines.base import ColumnNorms, ThreadRunner, blockwise_view_pass, pipelined_project_update
from mfcli.models.threads import x_ht



def _check_matrix(shape: tuple[int, ...], name: str, path: str) -> None:
    if len(shape) != 2:
        from mfcli.errors import DataError

        raise DataError(
            f"the streaming engines read 2-D bands x pixels matrices; '{name}' in '{path}' has shape {shape}; "
            "convert it first with `mfcli convert IN OUT.h5`, or use --engine memory"
        )


class DirectReader:
    """Reads full slabs of an HDF5 dataset stored without filters straight from its file.

    A dataset stored contiguously, or in chunks that span one of its axes whole, holds each
    chunk as one C-ordered run of bytes at an address HDF5 reports (userblock included); the
    slab ``stored[:, a:b]`` (chunks spanning axis 0) or ``stored[a:b, :]`` (chunks spanning
    axis 1, or contiguous) is read with ``preadv`` straight into the result, one system call
    per file chunk (its rows scattered to their places), rather than through HDF5's selection
    machinery, which copies row segment by row segment. That is what makes a pass over a
    file in the page cache cost little more than a pass over memory. Any other layout
    (filters, external or virtual storage, chunks unallocated, a non-default file driver,
    non-numeric types) is read by h5py (:meth:`of` returns None); so is anything on systems
    without ``os.preadv``.
    """

    def __init__(self, path: str, fd: int, shape: tuple[int, int], dtype: np.dtype, axis: int,
                 width: int, offsets: np.ndarray):
        self.path, self.fd, self.shape, self.dtype = path, fd, shape, dtype
        self.axis = axis  # slabs are taken along this axis: 1 for stored[:, a:b], 0 for stored[a:b, :]
        self.width = width  # the chunks' extent along that axis (the whole axis if contiguous)
        self.offsets = offsets  # byte address of each chunk, in order along the axis
        self.chunked = width < shape[axis] or len(offsets) > 1
        self.iov_max = max(16, os.sysconf("SC_IOV_MAX")) if hasattr(os, "sysconf") else 1024
        self._map: mmap.mmap | None = None  # the file mapped into memory, for views
        self._closer = weakref.finalize(self, os.close, fd)  # when no engine holds it any more

    @classmethod
    def of(cls, dataset, axis: int) -> DirectReader | None:
        """A reader of ``dataset`` (an open h5py Dataset, 2-D) by slabs along ``axis``, or None."""
        import h5py

        if not hasattr(os, "preadv") or dataset.file.driver != "sec2" or dataset.ndim != 2:
            return None
        dtype = dataset.dtype
        if dtype.kind not in "fiu" or dtype.fields is not None or dtype.subdtype is not None:
            return None
        plist = dataset.id.get_create_plist()
        if plist.get_external_count() or plist.get_nfilters():
            return None
        shape = tuple(int(s) for s in dataset.shape)
        layout = plist.get_layout()
        if layout == h5py.h5d.CONTIGUOUS:
            offset = dataset.id.get_offset()
            if offset is None:
                return None
            width, offsets = shape[axis], np.array([offset], dtype=np.int64)
        elif layout == h5py.h5d.CHUNKED:
            chunks = dataset.chunks
            if chunks[1 - axis] != shape[1 - axis] or shape[axis] == 0:
                return None  # a slab along axis would cut through chunks
            width = int(chunks[axis])
            count = -(-shape[axis] // width)
            if dataset.id.get_num_chunks() != count or count > 1 << 20:
                return None  # some chunks never written (fill values), or absurdly many
            offsets = np.empty(count, dtype=np.int64)
            for index in range(count):
                info = dataset.id.get_chunk_info(index)
                if info.byte_offset is None or info.filter_mask:
                    return None
                offsets[info.chunk_offset[axis] // width] = info.byte_offset
        else:
            return None
        reader = cls(dataset.file.filename, os.open(dataset.file.filename, os.O_RDONLY), shape, dtype, axis,
                     width, offsets)
        try:  # check the addresses on the first and last values before trusting them
            last = shape[axis] - 1
            for position in (0, last):
                expected = dataset[:, position:position + 1] if axis == 1 else dataset[position:position + 1, :]
                if not np.array_equal(reader.read(position, position + 1), expected, equal_nan=dtype.kind == "f"):
                    raise OSError("mismatch")
        except (OSError, ValueError):
            reader.close()
            return None
        return reader

    def slab(self, key: tuple[slice, slice]) -> tuple[int, int] | None:
        """(start, stop) when ``stored[key]`` is a slab along the axis (step 1, whole across)."""
        across, along = key[1 - self.axis].indices(self.shape[1 - self.axis]), key[self.axis]
        if across != (0, self.shape[1 - self.axis], 1):
            return None
        start, stop, step = along.indices(self.shape[self.axis])
        return (start, max(start, stop)) if step == 1 else None

    def read(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """``stored[:, start:stop]`` (axis 1) or ``stored[start:stop, :]`` (axis 0), in the stored
        dtype, into ``out`` if given (C-contiguous, that shape and dtype)."""
        rows, cols = self.shape
        shape = (rows, stop - start) if self.axis == 1 else (stop - start, cols)
        if out is None:
            out = np.empty(shape, dtype=self.dtype)
        size = self.dtype.itemsize
        width = self.width
        for index in range(start // width, -(-stop // width) if stop > start else start // width):
            first, last = max(start, index * width), min(stop, (index + 1) * width)
            base, within = int(self.offsets[index]), first - index * width
            if self.axis == 0:  # rows first..last of the stored array: one run of bytes
                self._read_into([out[first - start:last - start]], base + within * cols * size)
            elif within == 0 and last - first == width:  # a whole chunk: its rows, scattered in one call
                self._read_into([out[row, first - start:last - start] for row in range(rows)], base)
            elif self.chunked and 4 * (last - first) >= width:  # much of a chunk: the chunk, then the part
                chunk = np.empty((rows, width), dtype=self.dtype)
                self._read_into([chunk], base)
                out[:, first - start:last - start] = chunk[:, within:within + last - first]
            else:  # a little of a chunk, or of a contiguous array (rows of ``width`` values): row by row
                for row in range(rows):
                    self._read_into([out[row, first - start:last - start]], base + (row * width + within) * size)
        return out

    def can_view(self) -> bool:
        """Whether :meth:`view` gives zero-copy views: a slab along the axis lies in one run of
        bytes per chunk (chunks spanning the other axis, or rows of a contiguous array), and
        the system can map the file and let go of mapped pages (``madvise``)."""
        return hasattr(mmap, "MADV_DONTNEED") and (self.axis == 0 or self.chunked)

    def view_width(self, size: int) -> int:
        """Slabs of about ``size`` along the axis that :meth:`view` can give (one chunk each when
        the array is chunked)."""
        return self.width if self.chunked else size

    def view(self, start: int, stop: int) -> np.ndarray:
        """``stored[:, start:stop]`` (axis 1) or ``stored[start:stop, :]`` (axis 0), read-only, as a
        view of the file mapped into memory: no copy. [start, stop) must lie within one chunk
        (:meth:`view_width`). Its pages stay mapped (and count in the resident set) until
        :meth:`release`."""
        rows, cols = self.shape
        index = start // self.width
        if stop > start and (stop - 1) // self.width != index:
            raise ValueError(f"columns {start}..{stop} cross a chunk of {self.width}")
        extent = (rows, self.width) if self.axis == 1 else (self.width, cols)
        if not self.chunked:
            extent = self.shape
        mapped, offset, count = self._mapped(), int(self.offsets[index]), extent[0] * extent[1]
        end = offset + count * self.dtype.itemsize
        if end > len(mapped) or end > os.fstat(self.fd).st_size:  # reading past the end would be a SIGBUS
            from mfcli.errors import DataError

            raise DataError(f"'{self.path}' ends before its data do (truncated?); check the file")
        chunk = np.frombuffer(mapped, dtype=self.dtype, count=count, offset=offset).reshape(extent)
        within = start - index * self.width
        return chunk[:, within:within + stop - start] if self.axis == 1 else chunk[within:within + stop - start]

    def release(self, start: int, stop: int) -> None:
        """Unmap the whole pages of the file holding :meth:`view` (start, stop): they stay in the
        system's page cache, and a later view maps them again (a minor fault per few pages)."""
        rows, cols = self.shape
        size = self.dtype.itemsize
        index = start // self.width
        if self.axis == 1:  # the whole chunk (its columns interleave with the others')
            low = int(self.offsets[index])
            high = low + rows * self.width * size
        else:  # rows start..stop: one run of bytes
            low = int(self.offsets[index]) + (start - index * self.width) * cols * size
            high = low + (stop - start) * cols * size
        page = mmap.PAGESIZE
        low, high = -(-low // page) * page, (high // page) * page
        if high > low:
            self._mapped().madvise(mmap.MADV_DONTNEED, low, high - low)

    def _mapped(self) -> mmap.mmap:
        if self._map is None:
            self._map = mmap.mmap(self.fd, 0, access=mmap.ACCESS_READ)
        return self._map

    def _read_into(self, buffers: list[np.ndarray], position: int) -> None:
        for group in range(0, len(buffers), self.iov_max):
            views = buffers[group:group + self.iov_max]
            expected = sum(view.nbytes for view in views)
            if os.preadv(self.fd, views, position) != expected:
                from mfcli.errors import DataError

                raise DataError(f"'{self.path}' ends before its data do (truncated?); check the file")
            position += expected

    def close(self) -> None:
        self._closer()


_READERS: dict = {}  # (path, dataset, axis) -> (file signature, reader or None); a few per process


def direct_reader(path: str, dataset_name: str, axis: int) -> DirectReader | None:
    """The :class:`DirectReader` of a dataset (None: read it with h5py), made once per process
    and file version (a rewritten file gets a new one); the cache keeps the last few (a reader
    closes its file when nothing holds it any more)."""
    import h5py

    try:
        stat = os.stat(path)
    except OSError:
        return None
    signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    key = (os.path.abspath(path), dataset_name, axis)
    known = _READERS.get(key)
    if known is not None and known[0] == signature:
        return known[1]
    with h5py.File(path, "r") as f:
        reader = DirectReader.of(f[dataset_name], axis)
    _READERS[key] = (signature, reader)
    while len(_READERS) > 8:
        _READERS.pop(next(iter(_READERS)))
    return reader


@dataclass(frozen=True)
class H5Source:
    """Where X is: an HDF5 file, a dataset path inside it, whether it is stored transposed, and
    the scale X is divided by.

    Picklable (holds names, not open handles), so Dask workers can open it themselves.
    """

    path: str
    dataset: str
    transposed: bool = False
    scale: float = 1.0

    def open(self):
        import h5py

        return h5py.File(self.path, "r")[self.dataset]

    def read(self, key) -> np.ndarray:
        """``stored[key]`` (for Dask workers): a slab of whole stored rows (transposed) or columns
        by :func:`direct_reader` where the layout allows, else with the file opened and closed."""
        if isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, slice) for k in key):
            reader = direct_reader(self.path, self.dataset, 0 if self.transposed else 1)
            slab = reader.slab(key) if reader is not None else None
            if slab is not None:
                return reader.read(*slab)
        import h5py

        with h5py.File(self.path, "r") as f:
            return f[self.dataset][key]

    def shape_dtype(self) -> tuple[tuple[int, int], np.dtype]:
        """Shape of X (m x n, after the transposition) and the stored dtype."""
        import h5py

        with h5py.File(self.path, "r") as f:
            ds = f[self.dataset]
            shape = tuple(ds.shape)
            dtype = ds.dtype
        _check_matrix(shape, self.dataset, self.path)
        return (shape[::-1] if self.transposed else shape), dtype  # type: ignore[return-value]


@dataclass(frozen=True)
class NpySource:
    """X in a ``.npy`` file, mapped from disk (``np.load(mmap_mode="r")``); picklable."""

    path: str
    transposed: bool = False
    scale: float = 1.0
    dataset: str = "data"

    def open(self):
        return np.load(self.path, mmap_mode="r", allow_pickle=False)

    def read(self, key) -> np.ndarray:
        return np.array(self.open()[key])

    def shape_dtype(self) -> tuple[tuple[int, int], np.dtype]:
        array = self.open()
        shape = tuple(array.shape)
        _check_matrix(shape, self.dataset, self.path)
        return (shape[::-1] if self.transposed else shape), array.dtype  # type: ignore[return-value]


class _ThreadLocalArray:
    """One open stored array per thread (h5py handles are not safe to share across threads)."""

    def __init__(self, source):
        self.source = source
        self.local = threading.local()

    def get(self):
        array = getattr(self.local, "array", None)
        if array is None:
            array = self.source.open()
            self.local.array = array
        return array


def working_dtype(stored: np.dtype, dtype=None) -> np.dtype:
    """The dtype X is worked in: ``dtype`` if given, else the stored float type (float64 for
    integers), as the in-memory loader does."""
    if dtype is not None:
        return np.dtype(dtype)
    return np.dtype(stored) if np.dtype(stored) in (np.float32, np.float64) else np.dtype(np.float64)


class StreamedMatrix(ColumnNorms):
    """:class:`~mfcli.models.matrix.DataMatrix` over a stored array, block by block of columns.

    ``source``: an :class:`H5Source` or :class:`NpySource`. ``chunk_size``: columns per block
    read (default: about 8 MiB of X, the solvers' update blocks, rounded to whole chunks of the
    file, so each block is updated soon after it is read and memory holds a few of them). Setting the ``clip_negative`` property
    makes negative values read as 0.
    """

    engine = "stream"

    def __init__(self, source, dtype: str | np.dtype | None = None, chunk_size: int | None = None,
                 prefetch: bool = True):
        self.source = source
        shape, stored_dtype = source.shape_dtype()
        self.shape = shape
        self.dtype = working_dtype(stored_dtype, dtype)
        self._direct = direct_reader(source.path, source.dataset, 0 if source.transposed else 1) \
            if isinstance(source, H5Source) else None
        if chunk_size is None:
            from mfcli.models.matrix import grid_columns

            chunk_size = grid_columns(shape[0], shape[1], self.dtype)
            if self._direct is not None and self._direct.chunked:  # whole chunks of the file
                chunk_size = max(1, round(chunk_size / self._direct.width)) * self._direct.width
        self.chunk_size = max(1, int(chunk_size))
        self.prefetch = prefetch
        self.map_views = True  # a solver's step maps the file's blocks where it can (see project_update)
        self.clip_negative = False
        self._arrays = _ThreadLocalArray(source)
        self.passes = 0  # how many full passes over X were made (tests count them per iteration)
        self._runner: ThreadRunner | None = None

    # ------------------------------------------------------------------ reading

    def _read(self, start: int, stop: int, raw: bool = False) -> np.ndarray:
        """X[:, start:stop] in the working dtype, scaled (and clipped unless ``raw``)."""
        m = self.shape[0]
        if self.source.transposed:
            key, buffer = np.s_[start:stop, :], np.empty((stop - start, m), dtype=self.dtype)
        else:
            key, buffer = np.s_[:, start:stop], np.empty((m, stop - start), dtype=self.dtype)
        if self._direct is not None:
            if self._direct.dtype == self.dtype:
                self._direct.read(start, stop, out=buffer)
            else:
                buffer[...] = self._direct.read(start, stop)
        else:
            array = self._arrays.get()
            if hasattr(array, "read_direct"):
                array.read_direct(buffer, key)
            else:
                buffer[...] = array[key]
        block = buffer.T if self.source.transposed else buffer
        if self.source.scale != 1.0:
            block /= self.dtype.type(self.source.scale)
        if self._clip and not raw:
            np.maximum(block, 0, out=block)
        return block

    def _blocks(self, block_size: int | None = None, raw: bool = False) -> Iterator[tuple[int, int, np.ndarray]]:
        n = self.shape[1]
        size = max(1, int(block_size)) if block_size else self.chunk_size
        bounds = [(s, min(s + size, n)) for s in range(0, n, size)]
        self.passes += 1
        if not self.prefetch or len(bounds) == 1:
            for start, stop in bounds:
                yield start, stop, self._read(start, stop, raw)
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self._read, *bounds[0], raw)
            for index, (start, stop) in enumerate(bounds):
                block = pending.result()
                if index + 1 < len(bounds):
                    pending = pool.submit(self._read, *bounds[index + 1], raw)
                yield start, stop, block

    def blocks(self, block_size: int | None = None) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield (start, stop, X[:, start:stop]) over all columns, reading one block ahead;
        blocks of ``block_size`` columns (default: the engine's ``chunk_size``)."""
        return self._blocks(block_size)

    def _map_raw_blocks(self, func) -> Iterator[tuple[int, int, object]]:
        for start, stop, block in self._blocks(raw=True):
            yield start, stop, func(block)

    # ------------------------------------------------------------------ DataMatrix

    def WtX(self, W: np.ndarray) -> np.ndarray:
        Wt = np.ascontiguousarray(W.T, dtype=self.dtype)
        out = np.empty((W.shape[1], self.shape[1]), dtype=self.dtype)
        for start, stop, block in self.blocks():
            np.matmul(Wt, block, out=out[:, start:stop])
        return out

    def project_update(self, W: np.ndarray, update, size: int, accurate: bool = False) -> np.ndarray:
        """:func:`mfcli.models.matrix.project_update` in one pass over the file by a pool of
        threads, one per core. Where the blocks can be mapped (:meth:`_viewable`), each grid
        block is a task, as in the memory engine's pass: W^T X_J, the update and X_J H_J^T from
        the mapped pages (:func:`~mfcli.engines.base.blockwise_view_pass`; bench_scale at 10^6
        pixels: 0.374 s an iteration, 1.15x memory's, against 0.394 s and 1.18x with a task
        per chunk and product). Otherwise blocks are read and multiplied a few ahead and
        updated as their W^T X comes back (:func:`~mfcli.engines.base.pipelined_project_update`);
        without ``prefetch``, block after block on this thread (:func:`~mfcli.models.matrix.fused_pass`)."""
        if not self.prefetch:
            from mfcli.models.matrix import fused_pass

            return fused_pass(self.blocks(), W, update, size, self.shape, self.dtype, accurate=accurate)
        n = self.shape[1]
        runner = self._pool()
        self.passes += 1
        direct = self._direct
        if self._viewable():  # blocks mapped from the file, not copied, each grid block a task
            width = direct.view_width(self.chunk_size)
            bounds = np.array([*range(0, n, width), n])

            def view(start: int, stop: int) -> np.ndarray:
                block = direct.view(start, stop)
                return block.T if self.source.transposed else block

            def release(i: int) -> None:
                direct.release(int(bounds[i]), int(bounds[i + 1]))

            with runner.pass_context():
                return blockwise_view_pass(runner, bounds, view, W, update, size, self.dtype, accurate=accurate,
                                           release=release)
        bounds = np.array([*range(0, n, self.chunk_size), n])

        def load(i: int):
            return runner.submit(self._read, int(bounds[i]), int(bounds[i + 1]))

        with runner.pass_context():
            return pipelined_project_update(runner, bounds, load, W, update, size, self.dtype, ahead=runner.threads,
                                            window=runner.threads, accurate=accurate)

    def _viewable(self) -> bool:
        """Whether a solver's step reads X as views of the mapped file: read directly, stored in
        the working dtype, neither scaled nor clipped on the way (those need a copy)."""
        direct = self._direct
        return (direct is not None and self.map_views and direct.can_view() and direct.dtype == self.dtype
                and self.source.scale == 1.0 and not self._clip)

    def _pool(self) -> ThreadRunner:
        if self._runner is None:
            self._runner = ThreadRunner()
        return self._runner

    def XHt(self, H: np.ndarray) -> np.ndarray:
        H = np.asarray(H, dtype=self.dtype)
        out = np.zeros((self.shape[0], H.shape[0]), dtype=np.float64)
        for start, stop, block in self.blocks():
            out += x_ht(block, H[:, start:stop])
        return out.astype(self.dtype, copy=False)

    def columns(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64).ravel()
        out = np.empty((self.shape[0], idx.size), dtype=self.dtype)
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        block_of = sorted_idx // self.chunk_size
        for b in np.unique(block_of):
            start = int(b) * self.chunk_size
            positions = np.flatnonzero(block_of == b)
            wanted = sorted_idx[positions] - start
            lo, hi = int(wanted.min()), int(wanted.max()) + 1
            block = self._read(start + lo, start + hi)
            out[:, order[positions]] = block[:, wanted - lo]
        return out

    def map_column_blocks(self, func) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(start, stop, func(X[:, start:stop]))`` block by block (nothing is kept)."""
        for start, stop, block in self.blocks():
            yield start, stop, func(block)
