"""File formats: how a path or spec names a format, and containers of named arrays.

A *container* exposes the arrays of one file by name without loading them all: MATLAB .mat
(v5 through scipy.io, v7.3 through h5py), HDF5, .npz, and single-array formats (.npy, CSV/TSV,
ENVI) that hold one array called ``data``. Readers raise :class:`~mfcli.errors.InputError`
with a message that says what to do.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mfcli.errors import DataError, InputError, MfcliError
from mfcli.io.envi import find_header

# Variables that hold a ground truth (read by :mod:`mfcli.io.truth`), which the data reader never
# takes for the data.
ENDMEMBER_NAMES = ("M", "GT", "E", "endmembers", "gt_endmembers", "M1")
ABUNDANCE_NAMES = ("A", "S_GT", "abundances", "gt_abundances", "A1", "S")
MATERIAL_NAME_VARIABLES = ("cood", "names", "materials", "material_names")

FORMATS = ("csv", "tsv", "npy", "npz", "mat", "mat73", "h5", "envi", "tif", "gdal")
FORMAT_ALIASES = {"hdf5": "h5", "txt": "csv", "mat5": "mat", "matlab": "mat", "tiff": "tif", "geotiff": "tif",
                  "gtiff": "tif"}

EXTENSIONS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".npy": "npy",
    ".npz": "npz",
    ".mat": "mat",
    ".h5": "h5",
    ".hdf5": "h5",
    ".hdf": "h5",
    ".he5": "h5",
    ".hdr": "envi",
    ".img": "envi",
    ".dat": "envi",
    ".bsq": "envi",
    ".bil": "envi",
    ".bip": "envi",
    ".raw": "envi",
    ".tif": "tif",
    ".tiff": "tif",
    ".vrt": "gdal",
    ".jp2": "gdal",
}

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
MAT5_MAGIC = b"MATLAB 5.0"
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # TIFF and BigTIFF, either byte order


@dataclass
class VariableInfo:
    """Shape and dtype of one array in a container (read without loading it)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def numeric(self) -> bool:
        return self.dtype.kind in "biuf"

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1


class Container:
    """Named arrays of one file. Subclasses implement :meth:`variables` and :meth:`read`."""

    format = "?"
    matlab = False  # arrays follow MATLAB conventions (Fortran pixel order)

    def __init__(self, path: str):
        self.path = path
        self.metadata: dict[str, Any] = {}

    def variables(self) -> dict[str, VariableInfo]:
        raise NotImplementedError

    def read(self, name: str) -> np.ndarray:
        raise NotImplementedError

    def read_small(self, name: str, max_size: int = 1 << 16) -> np.ndarray | None:
        """Read ``name`` if it exists and is small (metadata such as nRow, SlectBands)."""
        info = self.variables().get(name)
        if info is None or info.size > max_size:
            return None
        return self.read(name)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class DictContainer(Container):
    """Arrays already in memory (scipy.io.loadmat, np.load of .npz, built samples)."""

    def __init__(self, path: str, arrays: dict[str, Any], format: str, matlab: bool = False):
        super().__init__(path)
        self.arrays = {k: v for k, v in arrays.items() if not k.startswith("__")}
        self.format = format
        self.matlab = matlab
        self._infos = {}
        for name, value in self.arrays.items():
            arr = np.asarray(value)
            self._infos[name] = VariableInfo(name, tuple(arr.shape), arr.dtype)

    def variables(self) -> dict[str, VariableInfo]:
        return self._infos

    def read(self, name: str) -> np.ndarray:
        try:
            return np.asarray(self.arrays[name])
        except KeyError:
            raise unknown_variable(self.path, name, self.variables()) from None


class HDF5Container(Container):
    """HDF5 files, including MATLAB v7.3 .mat files (whose arrays are stored transposed)."""

    def __init__(self, path: str, matlab: bool | None = None):
        super().__init__(path)
        import h5py

        try:
            self.file = h5py.File(path, "r")
        except OSError as exc:
            raise InputError(f"cannot read '{path}' as HDF5 ({exc}); the file may be corrupt or truncated") from None
        if matlab is None:
            matlab = _is_matlab73(path, self.file)
        self.matlab = matlab
        self.format = "mat73" if matlab else "h5"
        self._infos: dict[str, VariableInfo] | None = None

    def variables(self) -> dict[str, VariableInfo]:
        if self._infos is None:
            import h5py

            infos: dict[str, VariableInfo] = {}

            def visit(name, obj):
                if isinstance(obj, h5py.Dataset) and not name.startswith("#refs#"):
                    attrs = dict(obj.attrs)
                    shape, dtype = tuple(obj.shape), obj.dtype
                    if self.matlab:
                        shape = shape[::-1]
                        matlab_class = _matlab_class(attrs)
                        if attrs.get("MATLAB_empty"):
                            shape = tuple(int(s) for s in np.ravel(obj[()])) if obj.size else (0, 0)
                        if matlab_class == "char":
                            dtype = np.dtype(str)
                        elif matlab_class == "logical":
                            dtype = np.dtype(bool)
                    infos[name] = VariableInfo(name, shape, dtype, attrs)

            try:
                self.file.visititems(visit)
            except Exception as exc:  # a damaged object header: h5py raises RuntimeError, KeyError...
                raise self._damaged(exc) from None
            self._infos = infos
        return self._infos

    def _damaged(self, exc: Exception) -> InputError:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        kind = "MATLAB v7.3" if self.matlab else "HDF5"
        return InputError(f"cannot read '{self.path}' as {kind} ({reason}); the file is damaged or truncated")

    def read(self, name: str) -> np.ndarray:
        key = name.lstrip("/")
        if key not in self.variables():
            raise unknown_variable(self.path, name, self.variables())
        try:
            return self._read(key)
        except (InputError, DataError):
            raise
        except Exception as exc:
            raise self._damaged(exc) from None

    def _read(self, key: str) -> np.ndarray:
        dataset = self.file[key]
        if not self.matlab:
            return np.asarray(dataset[()])
        # MATLAB v7.3 stores column-major arrays, so h5py sees every array transposed.
        info = self.variables()[key]
        matlab_class = _matlab_class(info.attrs)
        if info.attrs.get("MATLAB_empty"):
            return np.zeros(info.shape, dtype=np.float64)
        data = np.asarray(dataset[()]).T
        if matlab_class == "char":
            return np.asarray("".join(map(chr, np.ravel(data, order="F"))))
        if matlab_class == "logical":
            return data.astype(bool)
        return data

    def close(self) -> None:
        self.file.close()


class SingleArrayContainer(Container):
    """A format that holds one array (npy, CSV/TSV, ENVI), exposed as ``data``."""

    NAME = "data"

    def __init__(self, path: str, array: np.ndarray, format: str, metadata: dict[str, Any] | None = None):
        super().__init__(path)
        self.array = array
        self.format = format
        self.metadata = metadata or {}

    def variables(self) -> dict[str, VariableInfo]:
        return {self.NAME: VariableInfo(self.NAME, tuple(self.array.shape), self.array.dtype)}

    def read(self, name: str) -> np.ndarray:
        if name != self.NAME:
            raise InputError(
                f"'{self.path}' is a {self.format} file holding one array; it has no variable '{name}' "
                "(drop the :VAR part)"
            )
        return self.array


class SparseContainer(SingleArrayContainer):
    """A scipy.sparse matrix (``scipy.sparse.save_npz``), exposed as ``data``. :meth:`read`
    densifies it (every reader of arrays can take it); :meth:`read_sparse` does not, for the
    readers that keep it sparse (:func:`mfcli.io.load.load_dataset` with ``keep_sparse``)."""

    sparse = True

    @property
    def nnz(self) -> int:
        return int(self.array.nnz)

    def read(self, name: str) -> np.ndarray:
        return super().read(name).toarray()

    def read_sparse(self, name: str):
        return super().read(name)


def sha256_of(path: str, chunk: int = 1 << 22) -> str | None:
    """Hex sha256 of a file's bytes (None for stdin or a missing file)."""
    if path == "-" or not os.path.isfile(path):
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _matlab_class(attrs: dict[str, Any]) -> str:
    value = attrs.get("MATLAB_class", b"")
    return value.decode() if isinstance(value, bytes) else str(value)


def unknown_variable(path: str, name: str, infos: dict[str, VariableInfo]) -> InputError:
    """The error for a FILE:VAR (or --var) that names no variable of the file."""
    available = ", ".join(sorted(infos)) or "none"
    return InputError(f"'{path}' has no variable '{name}'; available: {available}")


def _is_matlab73(path: str, h5file) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(128)
    if head.startswith(b"MATLAB 7.3"):
        return True
    return any("MATLAB_class" in obj.attrs for obj in h5file.values())


def sniff_format(path: str) -> str | None:
    """Format from the file's first bytes, or None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1024)
    except OSError:
        return None
    if head.startswith(NPY_MAGIC):
        return "npy"
    if head.startswith(ZIP_MAGIC):
        return "npz"
    if head.startswith(b"MATLAB 7.3"):
        return "mat73"
    if head.startswith(b"MATLAB"):
        return "mat"
    if head.startswith(HDF5_SIGNATURE) or HDF5_SIGNATURE in head[:1024]:
        return "h5"
    if head.startswith(b"ENVI"):
        return "envi"
    if head.startswith(TIFF_MAGICS):
        return "tif"
    return None


def format_from_path(path: str, explicit: str | None = None) -> str:
    """The format to read or write ``path`` with: explicit, else extension, else content."""
    if explicit:
        explicit = explicit.lower().lstrip(".")
        explicit = FORMAT_ALIASES.get(explicit, explicit)
        if explicit not in FORMATS:
            raise InputError(f"unknown format '{explicit}'; use one of {', '.join(FORMATS)}")
        return explicit
    suffix = Path(path).suffix.lower()
    if suffix == ".dat" and os.path.isfile(path) and find_header(path) is None:
        return sniff_format(path) or "csv"  # a .dat without an ENVI header is usually a text table
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    sniffed = sniff_format(path) if os.path.isfile(path) else None
    if sniffed:
        return sniffed
    if os.path.isfile(path) and find_header(path) is not None:
        return "envi"
    raise InputError(
        f"cannot tell the format of '{path}' from its name; give it as PATH:FORMAT or --format "
        f"(one of {', '.join(FORMATS)})"
    )


# --------------------------------------------------------------------------- text

def _detect_delimiter(line: str) -> str | None:
    for candidate in ("\t", ",", ";"):
        if candidate in line:
            return candidate
    return None  # whitespace


def _is_numeric_row(fields: list[str]) -> bool:
    try:
        for f in fields:
            if f.strip():
                float(f)
        return True
    except ValueError:
        return False


def _split(line: str, delimiter: str) -> list[str]:
    return line.split() if delimiter == " " else line.split(delimiter)


def read_text_matrix(text: str, source: str, delimiter: str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Parse a dense numeric table (CSV, TSV, or whitespace-separated).

    Blank lines and lines starting with ``#`` are skipped. If the first remaining line is not
    numeric it is a header, and its fields become ``column_names``. The delimiter is the first
    of tab, comma, semicolon found in that line, else whitespace. A table of integers gives an
    int64 array, anything else float64; empty fields and ``nan`` are NaN, ``inf`` is Inf.
    """
    meta: dict[str, Any] = {}
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")), None)
    if first is None:
        raise DataError(f"'{source}' holds no numeric rows (only comments or blank lines); check the file")
    if delimiter is None:
        delimiter = _detect_delimiter(lines[first].strip()) or " "
    fields = _split(lines[first].strip(), delimiter)
    skip = 0
    if not _is_numeric_row(fields):
        meta["column_names"] = [f.strip().strip('"') for f in fields]
        skip = first + 1
    body = lines[skip:]
    if not any(line.strip() and not line.lstrip().startswith("#") for line in body):
        raise DataError(f"'{source}' holds a header but no numeric rows; check the file")
    loadtxt_delimiter = None if delimiter == " " else delimiter
    for dtype in (np.int64, np.float64):  # the C parser first; fall back for NaN fields and errors
        try:
            array = np.loadtxt(body, delimiter=loadtxt_delimiter, comments="#", dtype=dtype, ndmin=2)
            return array, meta
        except (ValueError, OverflowError):
            continue
    return _read_text_slowly(body, skip, source, delimiter), meta


def _read_text_slowly(body: list[str], first_number: int, source: str, delimiter: str) -> np.ndarray:
    """Row by row, with empty fields as NaN and a precise message for the first bad line."""
    rows: list[list[float]] = []
    width = None
    for number, line in enumerate(body, start=first_number + 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = _split(stripped, delimiter)
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            raise InputError(
                f"'{source}' line {number} has {len(fields)} fields but the first data row has {width}; "
                "every row must have the same number of values"
            )
        try:
            rows.append([float(f) if f.strip() else np.nan for f in fields])
        except ValueError:
            bad = next(f for f in fields if f.strip() and not _is_numeric_row([f]))
            raise InputError(
                f"'{source}' line {number}: '{bad.strip()}' is not a number; the file must be a numeric table"
            ) from None
    return np.asarray(rows, dtype=np.float64)


def write_text_matrix(array: np.ndarray, stream, delimiter: str = ",") -> None:
    """Write a 2-D array as a plain table that :func:`read_text_matrix` reads back exactly.

    Floats are written with enough digits to round-trip (9 for float32, 17 for float64);
    integers and booleans as integers. No header and no comment lines, so any CSV reader
    takes the output as it is.
    """
    array = np.asarray(array)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise DataError(f"a text table holds a 2-D matrix, not an array of shape {array.shape}; "
                        "write a cube as .h5, .npy, .mat or ENVI")
    if array.dtype.kind == "f":
        fmt = "%.9g" if array.dtype.itemsize <= 4 else "%.17g"
    elif array.dtype.kind in "iub":
        fmt = "%d"
        array = array.astype(np.int64) if array.dtype.kind == "b" else array
    else:
        raise DataError(f"cannot write an array of {array.dtype} as text; only numbers")
    np.savetxt(stream, array, fmt=fmt, delimiter=delimiter)


# --------------------------------------------------------------------------- open

def open_container(path: str, fmt: str | None = None) -> Container:
    """Open ``path`` (``-`` for stdin) as a container of named arrays."""
    if path == "-":
        return _open_stdin(fmt)
    if not os.path.exists(path):
        raise InputError(f"file '{path}' does not exist; check the path (bundled samples: mfcli samples)")
    if os.path.isdir(path):
        raise InputError(f"'{path}' is a folder; give a data file")
    if not os.access(path, os.R_OK):
        raise InputError(f"file '{path}' is not readable (permission denied); check its permissions")
    fmt = format_from_path(path, fmt)
    if os.path.getsize(path) == 0:
        raise DataError(f"file '{path}' is empty (0 bytes)")
    try:
        if fmt in ("csv", "tsv"):
            with open(path, encoding="utf-8", errors="strict") as fh:
                text = fh.read()
            array, meta = read_text_matrix(text, path, "\t" if fmt == "tsv" else None)
            return SingleArrayContainer(path, array, fmt, meta)
        if fmt == "npy":
            _require_magic(path, NPY_MAGIC, "an NPY file (numpy.save)")
            array = np.load(path, allow_pickle=False)
            if not isinstance(array, np.ndarray):
                raise InputError(f"'{path}' is not a .npy file (it holds several arrays); name it .npz")
            return SingleArrayContainer(path, array, "npy")
        if fmt == "npz":
            return _open_npz(path)
        if fmt in ("mat", "mat73"):
            return _open_mat(path)
        if fmt == "h5":
            return HDF5Container(path)
        if fmt == "envi":
            from mfcli.io.envi import read_envi

            array, meta = read_envi(path)
            return SingleArrayContainer(path, array, "envi", meta)
        if fmt in ("tif", "gdal"):
            from mfcli.io.geotiff import read_raster

            array, meta = read_raster(path, fmt)
            return SingleArrayContainer(path, array, fmt, meta)
    except MfcliError:  # our own one-line errors (a missing optional package included)
        raise
    except UnicodeDecodeError:
        raise InputError(f"'{path}' is not a text file; give its real format as PATH:FORMAT") from None
    except Exception as exc:  # corrupt files raise anything from the libraries below
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if "allow_pickle" in reason:
            reason = "it holds Python objects (pickled data), which mfcli does not load; save numeric arrays"
        raise InputError(f"cannot read '{path}' as {fmt} ({reason}); the file may be corrupt, truncated "
                         "or in another format (give it as PATH:FORMAT)") from None
    raise InputError(f"unknown format '{fmt}'")


def _require_magic(path: str, magic: bytes, what: str) -> None:
    with open(path, "rb") as fh:
        head = fh.read(len(magic))
    if head != magic:
        raise InputError(f"'{path}' is not {what}: it does not start as one; the file is damaged, or in "
                         "another format (give it as PATH:FORMAT)")


def _open_npz(path: str) -> Container:
    _require_magic(path, ZIP_MAGIC, "an .npz file (numpy.savez, a zip of .npy files)")
    with np.load(path, allow_pickle=False) as npz:
        keys = set(npz.files)
        if {"format", "shape", "data", "indices", "indptr"} <= keys or {"format", "shape", "row", "col", "data"} <= keys:
            import scipy.sparse

            return SparseContainer(path, scipy.sparse.load_npz(path), "npz")
        arrays = {k: npz[k] for k in npz.files}
    return DictContainer(path, arrays, "npz")


def _open_mat(path: str) -> Container:
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head.startswith(b"MATLAB 7.3") or HDF5_SIGNATURE in head:
        return HDF5Container(path, matlab=True)
    from mfcli.io.mat5 import check_mat5, read_plain_mat5

    if head.startswith(b"MATLAB 5.0") or (len(head) >= 128 and head[126:128] in (b"IM", b"MI")):
        with open(path, "rb", buffering=0) as fh:  # into memory NumPy allocates (a bytearray is zeroed first)
            data = memoryview(np.empty(os.fstat(fh.fileno()).st_size, dtype=np.uint8))
            fh.readinto(data)
        arrays = read_plain_mat5(path, data)
        if arrays is not None:
            return DictContainer(path, arrays, "mat", matlab=True)
        check_mat5(path, data)  # a damaged file can crash scipy's reader (a segmentation fault)
        del data
    import scipy.io

    try:
        arrays = scipy.io.loadmat(path, squeeze_me=False, mat_dtype=False)
    except NotImplementedError:  # v7.3 without the text header
        return HDF5Container(path, matlab=True)
    except ValueError as exc:
        raise InputError(f"cannot read '{path}' as a MATLAB file ({exc}); the file may be corrupt") from None
    return DictContainer(path, arrays, "mat", matlab=True)


def _open_stdin(fmt: str | None) -> Container:
    data = sys.stdin.buffer.read()
    if not data:
        raise DataError("standard input is empty; pipe CSV or NPY data into mfcli")
    if fmt not in (None, "csv", "tsv", "npy"):
        raise InputError(f"standard input can be CSV, TSV or NPY, not {fmt}; save the data to a file")
    if data.startswith(NPY_MAGIC) and fmt in (None, "npy"):
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:
            raise InputError(f"standard input is not valid NPY data ({exc}); the stream may be truncated") from None
        return SingleArrayContainer("-", array, "npy", {"sha256": hashlib.sha256(data).hexdigest()})
    if fmt == "npy":
        raise InputError("standard input is not NPY data (no NPY header); drop the :npy to read CSV")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("standard input is neither NPY nor UTF-8 text; pipe CSV or NPY data") from None
    array, meta = read_text_matrix(text, "-", "\t" if fmt == "tsv" else None)
    meta["sha256"] = hashlib.sha256(data).hexdigest()
    return SingleArrayContainer("-", array, fmt or "csv", meta)
