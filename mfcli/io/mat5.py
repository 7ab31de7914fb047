"""MATLAB v5 MAT-files: a reader of the plain ones, and a structural check run before
scipy.io.loadmat reads any other.

:func:`read_plain_mat5` reads a file whose variables are all real, non-logical numeric arrays
(the data of a hyperspectral scene: ``Y``, ``nRow``, ``maxValue``, ...), rows of characters, or
cell arrays of those (a ground truth's material names) with NumPy alone, as
scipy.io.loadmat(path, mat_dtype=False) returns them: each numeric array in the data type it is
stored in, with its dimensions, in column-major order; a row of characters as a one-element
array of its string; a cell as an object array. Importing scipy.io costs a whole process
0.2-0.3 s (timed outside benchmarks/: it imports scipy.sparse, which imports numpy.testing and
numpy.f2py), longer than reading the file. A file holding anything else (structs, cells within
cells, character arrays of several rows, sparse, complex or logical arrays, big-endian files)
is left to scipy.

scipy's reader trusts the sizes written in a file: a damaged element (a data tag zeroed, a
dimension changed) can make it read past its buffer and crash the process with a
segmentation fault, where no Python exception can be caught. :func:`check_mat5` walks the
file's elements first (MathWorks, "MAT-File Format", R2023b, ch. 1) and raises an InputError
where a size does not add up: an element running past its parent, an unknown data type, an
array whose data hold another number of values than its dimensions say. The plain reader makes
the same checks on what it reads.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from mfcli.errors import InputError

# Data types (Table 1-1) and their sizes in bytes; miMATRIX and miCOMPRESSED hold elements.
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8, 16: 1, 17: 2, 18: 4}
MI_INT8, MI_UINT16, MI_INT32, MI_UINT32, MI_MATRIX, MI_COMPRESSED, MI_UTF8 = 1, 4, 5, 6, 14, 15, 16
# Array classes (Table 1-3).
MX_CELL, MX_STRUCT, MX_OBJECT, MX_CHAR, MX_SPARSE = 1, 2, 3, 4, 5
NUMERIC_CLASSES = range(6, 16)
COMPLEX_FLAG = 0x08
MAX_DEPTH = 32  # cells within cells within ...
MAX_INFLATED = 1 << 34  # bytes a compressed element may inflate to (16 GiB): beyond, a damaged size


# The numeric data types and their NumPy types (little-endian files only).
NUMERIC_TYPES = {1: "<i1", 2: "<u1", 3: "<i2", 4: "<u2", 5: "<i4", 6: "<u4", 7: "<f4", 9: "<f8", 12: "<i8",
                 13: "<u8"}
LOGICAL_FLAG = 0x02


class _Damaged(Exception):
    pass


class _NotPlain(Exception):
    """Something the plain reader leaves to scipy."""


def check_mat5(path: str, data: bytes | None = None) -> None:
    """Raise InputError if the MATLAB v5 file ``path`` (its bytes ``data``, read if not given)
    is not structurally sound."""
    if data is None:
        with open(path, "rb") as fh:
            data = fh.read()
    try:
        _check_file(data)
    except _Damaged as exc:
        raise _damaged_error(path, exc) from None


def _damaged_error(path: str, exc: Exception) -> InputError:
    return InputError(f"'{path}' is a damaged MATLAB file ({exc}); the file may be corrupt or truncated")


def read_plain_mat5(path: str, data) -> dict[str, np.ndarray] | None:
    """The variables of the v5 MAT-file ``path`` whose bytes are ``data`` (a writable buffer: a
    bytearray, or a memoryview of a NumPy array), if all of them are plain numeric arrays (see the
    module docstring), else None. Arrays of uncompressed elements are views of ``data`` (so they
    are writable); those of compressed ones own their memory. Raises InputError where the file is
    damaged."""
    try:
        if len(data) < 128 or data[124:128] != b"\x00\x01IM":
            return None  # big-endian, or not v5 at all (scipy says what it is)
        arrays: dict[str, np.ndarray] = {}
        _read_elements(data, 128, len(data), arrays, copy=False)
        return _own_memory_if_shared(arrays)
    except _NotPlain:
        return None
    except _Damaged as exc:
        raise _damaged_error(path, exc) from None


# Views of the file's bytes keep all of them alive while any one is: where the arrays beside the
# largest hold more than this, every array gets its own memory (as scipy's arrays have), so the
# ones a command does not use can be let go.
SHARED_BYTES_LIMIT = 8 << 20


def _own_memory_if_shared(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    views = [array for array in arrays.values() if array.base is not None]
    sizes = sorted((array.nbytes for array in views), reverse=True)
    if sum(sizes[1:]) <= SHARED_BYTES_LIMIT:
        return arrays
    return {name: array.copy(order="F") if array.base is not None else array for name, array in arrays.items()}


def _read_elements(data, position: int, end: int, arrays: dict, copy: bool) -> None:
    while position < end:
        if end - position < 8 and not any(data[position:end]):
            return  # zero padding at the end of the file
        kind, size, start, position = _tag(data, position, end, "<")
        if kind == MI_COMPRESSED and not copy:
            try:
                inflated = zlib.decompressobj().decompress(memoryview(data)[start:start + size], MAX_INFLATED)
            except zlib.error as exc:
                raise _Damaged(f"a compressed element does not inflate ({exc})") from None
            _read_elements(inflated, 0, len(inflated), arrays, copy=True)
        elif kind == MI_MATRIX:
            name, array = _read_matrix(data, start, start + size, copy)
            if not name or name in arrays:
                raise _NotPlain  # unnamed (subsystem data) or repeated: scipy decides
            arrays[name] = array
        else:
            raise _NotPlain


def _read_matrix(data, position: int, end: int, copy: bool, in_cell: bool = False) -> tuple[str, np.ndarray]:
    """(name, array) of a plain miMATRIX between ``position`` and ``end``: a real numeric array,
    a row of characters, or (not within a cell) a cell array of those."""
    if position == end:
        raise _NotPlain  # an empty cell element
    array_class, flag_bits, dims, count, name, position = _array_header(data, position, end, "<")
    if flag_bits & (COMPLEX_FLAG | LOGICAL_FLAG) or not (array_class in NUMERIC_CLASSES or array_class == MX_CHAR
                                                         or array_class == MX_CELL and not in_cell):
        raise _NotPlain
    try:
        name = bytes(name).decode("ascii")
    except UnicodeDecodeError:
        raise _NotPlain from None
    if array_class == MX_CELL:
        return name, _read_cell(data, position, end, dims, count)
    kind, size, start, position = _tag(data, position, end, "<")
    if array_class == MX_CHAR:
        if position < end:
            raise _NotPlain
        return name, _read_characters(data, start, size, kind, dims)
    if kind not in NUMERIC_TYPES:
        if kind in TYPE_SIZES:
            raise _NotPlain
        raise _Damaged(f"unknown data type {kind}")
    dtype = np.dtype(NUMERIC_TYPES[kind])
    if size != count * dtype.itemsize:
        raise _Damaged(f"the real part of a {'x'.join(map(str, dims))} array holds {size} bytes of type {kind}")
    if position < end:
        raise _NotPlain  # more parts than a real numeric array has
    array = np.frombuffer(data, dtype=dtype, count=count, offset=start).reshape(dims, order="F")
    if copy or not array.flags.writeable:
        array = array.copy(order="F")
    return name, array


def _read_characters(data, start: int, size: int, kind: int, dims: tuple) -> np.ndarray:
    """A 1 x N character array as scipy.io.loadmat returns it (``chars_as_strings``): a
    one-element array of the string. Other shapes (several rows, empty) are left to scipy, and so
    are characters outside the Basic Multilingual Plane."""
    if len(dims) != 2 or dims[0] != 1 or dims[1] < 1:
        raise _NotPlain
    if kind == MI_UINT16:
        if size != 2 * dims[1]:
            raise _Damaged(f"a 1x{dims[1]} character array holds {size} bytes of type {kind}")
        codes = np.frombuffer(data, dtype="<u2", count=dims[1], offset=start)
        if ((codes >= 0xD800) & (codes < 0xE000)).any():
            raise _NotPlain  # surrogates: scipy decides
        text = codes.astype("<u4").tobytes().decode("utf-32-le")
    elif kind == MI_UTF8:
        try:
            text = bytes(data[start:start + size]).decode("utf-8")
        except UnicodeDecodeError:
            raise _NotPlain from None
        if len(text) != dims[1]:
            raise _NotPlain
    else:
        raise _NotPlain
    return np.array([text])


def _read_cell(data, position: int, end: int, dims: tuple, count: int) -> np.ndarray:
    """A cell array of numeric arrays and character rows, as scipy.io.loadmat returns it: an
    object array of ``dims`` (column-major), each element an array of its own memory."""
    elements = np.empty(count, dtype=object)
    for index in range(count):
        kind, size, start, position = _tag(data, position, end, "<")
        if kind != MI_MATRIX:
            raise _Damaged(f"a cell holding type {kind}")
        elements[index] = _read_matrix(data, start, start + size, copy=True, in_cell=True)[1]
    if position < end:
        raise _NotPlain
    return elements.reshape(dims, order="F")


def _check_file(data: bytes) -> None:
    if len(data) < 128:
        raise _Damaged("shorter than the 128-byte header")
    mark = data[126:128]
    if mark == b"IM":
        order = "<"
    elif mark == b"MI":
        order = ">"
    else:
        raise _Damaged("no endian mark in the header")
    _check_elements(data, 128, len(data), order, 0, top=True)


def _tag(data: bytes, position: int, end: int, order: str) -> tuple[int, int, int, int]:
    """(type, number of bytes, start of the data, start of the next element)."""
    if position + 8 > end:
        raise _Damaged(f"an element tag at byte {position} runs past the end of its container")
    first, second = struct.unpack_from(order + "II", data, position)
    if first >> 16:  # small data element: size in the upper half, data in the next four bytes
        kind, size = first & 0xFFFF, first >> 16
        if size > 4:
            raise _Damaged(f"a small element at byte {position} claims {size} bytes")
        return kind, size, position + 4, position + 8
    kind, size = first, second
    start = position + 8
    if start + size > end:
        raise _Damaged(f"an element at byte {position} claims {size} bytes, more than its container holds")
    padded = size if kind == MI_COMPRESSED else (size + 7) // 8 * 8
    return kind, size, start, min(start + padded, end)


def _check_elements(data: bytes, position: int, end: int, order: str, depth: int, top: bool = False) -> None:
    while position < end:
        if top and end - position < 8 and not any(data[position:end]):
            return  # zero padding at the end of the file
        kind, size, start, position = _tag(data, position, end, order)
        if kind == MI_COMPRESSED:
            if not top:
                raise _Damaged("a compressed element inside an array")
            try:
                inflated = zlib.decompressobj().decompress(data[start:start + size], MAX_INFLATED)
            except zlib.error as exc:
                raise _Damaged(f"a compressed element does not inflate ({exc})") from None
            _check_elements(inflated, 0, len(inflated), order, depth)
        elif kind == MI_MATRIX:
            _check_matrix(data, start, start + size, order, depth)
        elif kind not in TYPE_SIZES:
            raise _Damaged(f"unknown data type {kind}")


def _values(data: bytes, start: int, size: int, kind: int, order: str, what: str) -> tuple:
    if kind not in (MI_INT32, MI_UINT32, MI_INT8) or size % TYPE_SIZES[kind]:
        raise _Damaged(f"the {what} of an array are stored as type {kind} in {size} bytes")
    code = {MI_INT32: "i", MI_UINT32: "I", MI_INT8: "b"}[kind]
    return struct.unpack_from(f"{order}{size // TYPE_SIZES[kind]}{code}", data, start)


def _array_header(data, position: int, end: int, order: str):
    """The three elements every miMATRIX starts with: (class, flag bits, dimensions, number of
    values, the name's bytes, the start of what follows), checked for damage."""
    kind, size, start, position = _tag(data, position, end, order)
    flags = _values(data, start, size, kind, order, "flags")
    if len(flags) < 1:
        raise _Damaged("an array without flags")
    kind, size, start, position = _tag(data, position, end, order)
    dims = _values(data, start, size, kind, order, "dimensions")
    if len(dims) < 2 or min(dims) < 0:
        raise _Damaged(f"an array of dimensions {dims}")
    count = 1
    for dim in dims:
        count *= dim
    kind, size, start, position = _tag(data, position, end, order)  # the array's name
    if kind not in (MI_INT8, 2):
        raise _Damaged(f"an array name of type {kind}")
    return flags[0] & 0xFF, (flags[0] >> 8) & 0xFF, dims, count, data[start:start + size], position


def _check_matrix(data: bytes, position: int, end: int, order: str, depth: int) -> None:
    if position == end:
        return  # an empty miMATRIX (an empty cell element)
    if depth > MAX_DEPTH:
        raise _Damaged("arrays nested too deep")
    array_class, flag_bits, dims, count, _, position = _array_header(data, position, end, order)
    is_complex = bool(flag_bits & COMPLEX_FLAG)
    if array_class in NUMERIC_CLASSES or array_class == MX_CHAR:
        for part in ("real", "imaginary")[: 2 if is_complex else 1]:
            kind, size, start, position = _tag(data, position, end, order)
            utf8 = array_class == MX_CHAR and kind == 16  # variable width: at least a byte a character
            if kind not in TYPE_SIZES or (size < count if utf8 else size != count * TYPE_SIZES[kind]):
                raise _Damaged(f"the {part} part of a {'x'.join(map(str, dims))} array holds {size} bytes of "
                               f"type {kind}")
    elif array_class == MX_SPARSE:
        for _ in range(3 + is_complex):  # ir, jc, pr[, pi]: sizes within the array, checked above
            kind, size, start, position = _tag(data, position, end, order)
            if kind not in TYPE_SIZES:
                raise _Damaged(f"a sparse array part of type {kind}")
    elif array_class == MX_CELL:
        for _ in range(count):
            kind, size, start, position = _tag(data, position, end, order)
            if kind != MI_MATRIX:
                raise _Damaged(f"a cell holding type {kind}")
            _check_matrix(data, start, start + size, order, depth + 1)
    elif array_class in (MX_STRUCT, MX_OBJECT):
        if array_class == MX_OBJECT:
            kind, size, start, position = _tag(data, position, end, order)  # the class name
        kind, size, start, position = _tag(data, position, end, order)
        length = _values(data, start, size, kind, order, "field name length")
        kind, size, start, position = _tag(data, position, end, order)
        if not length or length[0] <= 0:
            raise _Damaged("a struct without a field name length")
        fields = size // length[0]
        for _ in range(count * fields):
            kind, size, start, position = _tag(data, position, end, order)
            if kind != MI_MATRIX:
                raise _Damaged(f"a struct field holding type {kind}")
            _check_matrix(data, start, start + size, order, depth + 1)
    elif array_class not in (16, 17):  # function handles and opaque objects (strings, tables): not walked
        raise _Damaged(f"an array of unknown class {array_class}")
