"""Save and load a :class:`~mfcli.result.Result` as one self-describing HDF5 file.

Layout (all names are stable; scripts and other tools may read them with h5py)::

    /                      attrs: format="mfcli-result", format_version, model, mfcli_version,
                                  created, command_line, params (JSON), summary (JSON),
                                  seconds, converged, n_iter
    /input                 attrs: source, variable, sha256, shape, dtype, layout, image_shape,
                                  pixel_order, scale, notes (JSON)
    /input/wavelengths     (m,) nm, where known
    /input/band_indices    (m,) 1-based sensor band numbers, where known
    /input/valid_pixels    (rows*cols,) bool, where the image had nodata pixels (left out of the data)
    /input                 attrs crs (WKT) and transform (a, b, c, d, e, f), for a georeferenced image
    /layers/1 ... /layers/L
        W, H               the layer's own factors
        basis, coefficients   data-space view, only where different from W, H
        abundances         soft abundances (r x n), where computed
        assignments, assignment_weights   hard cluster of each input column (-1: none)
        history/<name>     per-iteration arrays (relative_error, seconds, ...)
        arrays/<name>      any other named arrays
        attrs: rank, relative_error, labels (JSON), attrs (JSON)
    /history/<name>        global histories (e.g. global_loss of a deep refinement)
    /arrays/<name...>      model-specific arrays, nested by "/"

Large factors are stored chunked and compressed with HDF5's shuffle and deflate filters; texts
(attributes, JSON) as fixed-length UTF-8 strings (:func:`set_text`; h5py reads them as bytes).
Layer arrays too large to hold (the abundance maps of streamed data) can be written block by
block of columns into the same file before it is renamed into place (:func:`result_writer`);
the layout is the same.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mfcli.errors import InputError
from mfcli.io.atomic import atomic_file
from mfcli.result import RESULT_FORMAT, RESULT_FORMAT_VERSION, Layer, Result

_COMPRESS_ABOVE = 1 << 16  # elements
# gzip level of the large arrays: the arrays of an Urban unmix result (18.5 MB) were written in
# 0.51 s at level 1 (9.9 MB) against 0.73 s at h5py's usual 4 (9.6 MB), timed once outside
# benchmarks/ on a busy machine: factors compress little more at higher levels, and the file is
# written at the end of every run.
GZIP_LEVEL = 1
CHUNK_ELEMENTS = 1 << 18
# HDF5's 1.10 file format: its object headers, heaps and chunk indexes carry checksums, so a
# damaged file is refused where the 1.8 format's unchecked structures could be read wrong or
# loop (tests/cli/test_faults_fuzz.py damages result files); read by HDF5 1.10 and later
# (h5py 2.8 and later; MATLAB where its HDF5 library is 1.10 or later).
LIBVER = ("v110", "v110")

_INPUT_ARRAYS = ("wavelengths", "band_indices", "valid_pixels")
_INPUT_GEOREFERENCE = "georeference"  # stored once, as the /input attributes crs and transform
_LAYER_ARRAYS = ("W", "H", "basis", "coefficients", "abundances", "assignments", "assignment_weights")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in a result file")


def to_json(value: Any) -> str:
    return json.dumps(value, default=_json_default)


def set_text(attrs, key: str, value: str) -> None:
    """``attrs[key] = value`` for a text, stored as a fixed-length UTF-8 string in the object's
    header. h5py stores a Python str as a variable-length string, which lives in HDF5's global
    heap: that heap has no checksum, and one damaged record (a free-space size of 0) sent HDF5
    into an endless loop when any such attribute of the file was read (found by
    tests/cli/test_faults_fuzz.py on a damaged result file), where a damaged header is refused."""
    import h5py

    data = value.encode("utf-8")
    attrs.create(key, data, dtype=h5py.string_dtype("utf-8", max(1, len(data))))


def text_of(value) -> str | None:
    """An attribute read back as text: a fixed-length string comes back as bytes from h5py (a
    variable-length one, in files of earlier versions, as str)."""
    if value is None:
        return None
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _write_array(group, name: str, array: np.ndarray) -> None:
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind == "U":  # text (ids, names), stored as UTF-8 bytes
        encoded = [str(value).encode("utf-8") for value in np.ravel(np.asarray(array, dtype=object))]
        group.create_dataset(name, data=np.array(encoded, dtype=bytes if encoded else "S1").reshape(array.shape))
        set_text(group[name].attrs, "mfcli_kind", "str")
        return
    if array.size > _COMPRESS_ABOVE and array.ndim in (1, 2) and array.shape[0] <= CHUNK_ELEMENTS:
        _write_compressed(group, name, array)
        return
    kwargs = {}
    if array.size > _COMPRESS_ABOVE and array.ndim >= 1:
        kwargs = {"compression": "gzip", "compression_opts": GZIP_LEVEL, "shuffle": True, "chunks": True}
    group.create_dataset(name, data=array, **kwargs)


def _write_compressed(group, name: str, array: np.ndarray) -> None:
    """A large 1-D or 2-D array stored with HDF5's shuffle and deflate filters, as h5py would
    store it, but each chunk shuffled and compressed here and written as it is (H5Dwrite_chunk),
    a standard deflate stream that any HDF5 reader inflates (:mod:`mfcli.io.deflate`: ISA-L's
    level 1, else zlib's run-length strategy at level 1, which made an unmix result's abundance
    maps 2.18x smaller instead of h5py's 1.93x, in 19 ms a map instead of 36; Urban, layer 1, timed
    outside benchmarks/). Chunks: every row and ``CHUNK_ELEMENTS`` elements, as
    :meth:`ResultFile.layer_array`'s."""
    from mfcli.io.deflate import deflate

    chunks = _chunk_shape(array.shape)
    dataset = group.create_dataset(name, shape=array.shape, dtype=array.dtype, chunks=chunks, compression="gzip",
                                   compression_opts=GZIP_LEVEL, shuffle=True)
    width = chunks[-1]
    for start in range(0, array.shape[-1], width):
        part = array[..., start:start + width]
        if part.shape[-1] == width:
            chunk = np.ascontiguousarray(part)
        else:  # an edge chunk is stored whole, padded
            chunk = np.zeros(chunks, dtype=array.dtype)
            chunk[..., :part.shape[-1]] = part
        shuffled = chunk.view(np.uint8).reshape(-1, array.itemsize).T.tobytes()  # HDF5's shuffle filter
        offsets = (0, start) if array.ndim == 2 else (start,)
        dataset.id.write_direct_chunk(offsets, deflate(shuffled, run_length=True))


def _chunk_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Chunks of a stored array: all its rows (2-D) and about ``CHUNK_ELEMENTS`` elements."""
    if len(shape) == 1:
        return (max(1, min(shape[0], CHUNK_ELEMENTS)),)
    rows, columns = (max(1, int(size)) for size in shape)
    return (rows, max(1, min(columns, CHUNK_ELEMENTS // rows)))


def _read_array(dataset) -> np.ndarray:
    data = dataset[()]
    if text_of(dataset.attrs.get("mfcli_kind")) == "str":
        return np.asarray([x.decode() if isinstance(x, bytes) else str(x) for x in np.ravel(data)]).reshape(
            np.shape(data)
        )
    return data


def _write_tree(group, arrays: dict[str, np.ndarray]) -> None:
    for name, array in arrays.items():
        if array is None:
            continue
        *parents, leaf = name.split("/")
        target = group
        for part in parents:
            target = target.require_group(part)
        _write_array(target, leaf, array)


def _read_tree(group, prefix: str = "") -> dict[str, np.ndarray]:
    import h5py

    out: dict[str, np.ndarray] = {}
    for key, item in group.items():
        name = f"{prefix}{key}"
        if isinstance(item, h5py.Group):
            out.update(_read_tree(item, name + "/"))
        else:
            out[name] = _read_array(item)
    return out


def write_result(result: Result, path: str | os.PathLike, force: bool = False) -> Path:
    """Write ``result`` to ``path`` atomically (temporary file, then rename)."""
    with result_writer(result, path, force=force):
        pass
    return Path(path)


class ResultFile:
    """A result file being written (inside :func:`result_writer`): layer arrays can be added
    block by block of columns."""

    def __init__(self, f):
        self.file = f

    def layer_array(self, layer: int, name: str, shape: tuple[int, int], dtype) -> ColumnWriter:
        """An empty (rows x columns) array ``name`` of layer ``layer`` (1-based), stored chunked
        and gzip-compressed like every large array, to be filled by :meth:`ColumnWriter.write`."""
        if name not in _LAYER_ARRAYS:
            raise ValueError(f"'{name}' is not a layer array of the result layout ({', '.join(_LAYER_ARRAYS)})")
        group = self.file["layers"][str(layer)]
        if name in group:
            raise ValueError(f"layer {layer} already has '{name}'")
        rows, columns = (int(s) for s in shape)
        chunks = _chunk_shape((rows, columns))
        dataset = group.create_dataset(name, shape=(rows, columns), dtype=np.dtype(dtype), chunks=chunks,
                                       compression="gzip", compression_opts=GZIP_LEVEL, shuffle=True)
        return ColumnWriter(dataset)


class ColumnWriter:
    """Fills a stored (rows x n) array block of columns by block."""

    def __init__(self, dataset):
        self.dataset = dataset

    def write(self, start: int, stop: int, values: np.ndarray) -> None:
        self.dataset[:, start:stop] = np.asarray(values, dtype=self.dataset.dtype)


@contextlib.contextmanager
def result_writer(result: Result, path: str | os.PathLike, force: bool = False) -> Iterator[ResultFile]:
    """Write ``result`` to a temporary file, let the caller add layer arrays block by block
    (``out.layer_array(1, "abundances", (r, n), dtype).write(start, stop, block)``), then rename
    it to ``path``: atomic like :func:`write_result`, so a failure leaves nothing behind."""
    import h5py

    with atomic_file(path, force=force) as tmp:
        with h5py.File(tmp, "w", libver=LIBVER) as f:
            _fill_file(f, result)
            yield ResultFile(f)


def _fill_file(f, result: Result) -> None:
    attrs = f.attrs
    set_text(attrs, "format", RESULT_FORMAT)
    attrs["format_version"] = RESULT_FORMAT_VERSION
    set_text(attrs, "model", result.model)
    set_text(attrs, "params", to_json(result.params))
    set_text(attrs, "summary", to_json(result.summary))
    set_text(attrs, "provenance", to_json(result.provenance))
    for key in ("mfcli_version", "created", "command_line"):
        if key in result.provenance:
            set_text(attrs, key, str(result.provenance[key]))
    for key in ("seconds", "converged", "n_iter"):
        value = getattr(result, key)
        if value is not None:
            attrs[key] = value

    inp = f.create_group("input")
    scalars = {k: v for k, v in result.input.items() if k not in _INPUT_ARRAYS and k != _INPUT_GEOREFERENCE}
    set_text(inp.attrs, "meta", to_json(scalars))
    for key, value in scalars.items():
        if value is None:
            continue
        if isinstance(value, (list, dict)):
            set_text(inp.attrs, key, to_json(value))
        elif isinstance(value, str):
            set_text(inp.attrs, key, value)
        else:
            inp.attrs[key] = value
    for key in _INPUT_ARRAYS:
        if result.input.get(key) is not None:
            _write_array(inp, key, np.asarray(result.input[key]))
    georeference = result.input.get(_INPUT_GEOREFERENCE)
    if georeference is not None:
        inp.attrs["transform"] = np.asarray(georeference["transform"], dtype=np.float64)
        if georeference.get("crs"):
            set_text(inp.attrs, "crs", str(georeference["crs"]))

    layers = f.create_group("layers")
    layers.attrs["count"] = len(result.layers)
    for index, layer in enumerate(result.layers, start=1):
        g = layers.create_group(str(index))
        written: dict[int, str] = {}  # id of an array already stored in this layer -> its name
        for name in _LAYER_ARRAYS:
            value = getattr(layer, name)
            if value is None:
                continue
            if id(value) in written:  # the same array under two names (a refined layer's coefficients
                g[name] = g[written[id(value)]]  # are its abundances): one dataset, two hard links
                continue
            _write_array(g, name, value)
            written[id(value)] = name
        g.attrs["rank"] = layer.rank
        if layer.relative_error is not None:
            g.attrs["relative_error"] = float(layer.relative_error)
        set_text(g.attrs, "labels", to_json(layer.labels))
        set_text(g.attrs, "attrs", to_json(layer.attrs))
        if layer.history:
            _write_tree(g.create_group("history"), layer.history)
        if layer.arrays:
            _write_tree(g.create_group("arrays"), layer.arrays)

    if result.history:
        _write_tree(f.create_group("history"), result.history)
    if result.arrays:
        _write_tree(f.create_group("arrays"), result.arrays)


def is_result_file(path: str | os.PathLike) -> bool:
    """True if ``path`` is an HDF5 file written by :func:`write_result`."""
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return text_of(f.attrs.get("format")) == RESULT_FORMAT
    except Exception:  # not HDF5, or damaged (h5py raises OSError, KeyError, RuntimeError...): not a result
        return False


def result_path_of(spec: str) -> str | None:
    """The path of the result file that an input spec (``FILE[:VAR]``) names, or None where it
    names data: standard input, a bundled sample, or a file that is not an mfcli result."""
    from mfcli.io.load import parse_spec

    path = parse_spec(spec)[0]
    return path if path != "-" and not path.startswith("sample:") and is_result_file(path) else None


def read_result(path: str | os.PathLike) -> Result:
    """Load a Result written by :func:`write_result`."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise InputError(f"result file '{path}' does not exist; check the path")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"'{path}' is not a readable HDF5 result file ({exc}); "
                         "give a file written by mfcli factorize/unmix/complete") from None
    with f:
        try:
            return _read_file(f, path)
        except InputError:
            raise
        except Exception as exc:  # h5py raises many types for damaged files
            raise InputError(f"result file '{path}' is damaged or incomplete ({' '.join(str(exc).split())}); "
                             "write it again") from None


def _read_file(f, path: Path) -> Result:
    if text_of(f.attrs.get("format")) != RESULT_FORMAT:
        raise InputError(f"'{path}' is an HDF5 file but not an mfcli result; "
                         "give a file written by mfcli factorize/unmix/complete")
    version = int(f.attrs.get("format_version", 0))
    if version > RESULT_FORMAT_VERSION:
        raise InputError(f"'{path}' was written by a newer mfcli (result format {version}); upgrade mfcli")
    attrs = f.attrs
    input_meta: dict[str, Any] = {}
    if "input" in f:
        input_meta = json.loads(f["input"].attrs.get("meta", "{}"))
        for key in _INPUT_ARRAYS:
            if key in f["input"]:
                input_meta[key] = f["input"][key][()]
        if "transform" in f["input"].attrs:
            input_meta[_INPUT_GEOREFERENCE] = {
                "crs": text_of(f["input"].attrs.get("crs")),
                "transform": [float(v) for v in np.ravel(f["input"].attrs["transform"])]}
    layers = []
    count = int(f["layers"].attrs.get("count", len(f["layers"])))
    for index in range(1, count + 1):
        g = f["layers"][str(index)]
        values = {name: _read_array(g[name]) for name in _LAYER_ARRAYS if name in g}
        missing = [name for name in ("W", "H") if name not in values]
        if missing:
            raise InputError(f"result file '{path}' is damaged or incomplete: layer {index} has no "
                             f"{' and no '.join(missing)}; write it again")
        layer = Layer(
            **values,
            relative_error=float(g.attrs["relative_error"]) if "relative_error" in g.attrs else None,
            history=_read_tree(g["history"]) if "history" in g else {},
            labels=json.loads(g.attrs.get("labels", "null")),
            arrays=_read_tree(g["arrays"]) if "arrays" in g else {},
            attrs=json.loads(g.attrs.get("attrs", "{}")),
        )
        layers.append(layer)
    return Result(
        model=text_of(attrs["model"]),
        layers=layers,
        params=json.loads(attrs.get("params", "{}")),
        summary=json.loads(attrs.get("summary", "{}")),
        provenance=json.loads(attrs.get("provenance", "{}")),
        history=_read_tree(f["history"]) if "history" in f else {},
        arrays=_read_tree(f["arrays"]) if "arrays" in f else {},
        input=input_meta,
        seconds=float(attrs["seconds"]) if "seconds" in attrs else None,
        converged=bool(attrs["converged"]) if "converged" in attrs else None,
        n_iter=int(attrs["n_iter"]) if "n_iter" in attrs else None,
    )
