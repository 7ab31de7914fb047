"""Write arrays and datasets to files or stdout, atomically.

``write_array`` writes one array in any format; ``write_dataset`` writes a Dataset keeping its
image shape, pixel order and wavelengths where the format can hold them:

- ``.mat`` (v5, or v7.3 with ``mat73``): ``Y`` bands x pixels in MATLAB (Fortran) pixel order,
  ``nRow``, ``nCol``, ``wavelengths`` — the layout of Urban/Samson files.
- ``.h5``: dataset ``Y`` with attributes ``image_shape``, ``pixel_order``; datasets
  ``wavelengths`` and ``SlectBands`` (band numbers) where known.
- ENVI: the (rows, cols, bands) cube, BSQ, with wavelengths in the header, and ``map info``,
  ``coordinate system string``, ``band names`` and ``data ignore value`` where known.
- GeoTIFF (``.tif``, through rasterio): the image, one band per feature, with the CRS,
  transform, nodata value, band descriptions and wavelengths; ``.h5`` keeps the same as
  attributes of ``Y`` (``crs``, ``transform``, ``nodata``, ``band_names``).
- ``.npy``/``.csv``/``.tsv``: the bands x pixels matrix only.

Nodata pixels left out of a Dataset are put back with the nodata value (NaN where the file
declared none), so an image is always written whole.
"""

from __future__ import annotations

import datetime
import io
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mfcli.dataset import Dataset, image_to_pixels, matrix_to_cube, pixels_to_image
from mfcli.errors import DataError, OutputError
from mfcli.io.atomic import atomic_file, atomic_files
from mfcli.io.formats import format_from_path, write_text_matrix

MATLAB_CLASSES = {"f4": "single", "f8": "double", "i1": "int8", "i2": "int16", "i4": "int32", "i8": "int64",
                  "u1": "uint8", "u2": "uint16", "u4": "uint32", "u8": "uint64"}


def mat73_header(now: datetime.datetime | None = None) -> bytes:
    """The 512-byte user block MATLAB puts before the HDF5 data of a v7.3 MAT-file.

    116 bytes of text, 8 bytes of subsystem offset, version 0x0200 and the endian mark "IM"
    (as MATLAB and hdf5storage write it), then zeros.
    """
    now = now or datetime.datetime.now()
    text = (f"MATLAB 7.3 MAT-file, Platform: {sys.platform}, Created on: "
            f"{now.strftime('%a %b %d %H:%M:%S %Y')} HDF5 schema 1.00 .").encode("ascii")
    return (text[:116].ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM").ljust(512, b"\x00")


def _write_mat73(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """MATLAB v7.3: HDF5 with a 512-byte text user block, every array stored transposed (MATLAB
    is column-major) and tagged with its ``MATLAB_class``; strings as uint16 ``char``, booleans
    as uint8 ``logical``, empty arrays as their dimensions with ``MATLAB_empty``.
    """
    import h5py

    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in arrays.items():
            value = np.asarray(value)
            if value.dtype.kind in "US":
                text = "".join(str(v) for v in np.ravel(value))
                ds = f.create_dataset(name, data=np.array([[ord(c) for c in text]], dtype=np.uint16).T)
                ds.attrs["MATLAB_class"] = np.bytes_("char")
                ds.attrs["MATLAB_int_decode"] = np.int32(2)
                continue
            if value.ndim < 2:
                value = value.reshape(-1, 1) if value.ndim == 1 else value.reshape(1, 1)
            if value.size == 0:
                ds = f.create_dataset(name, data=np.array(value.shape, dtype=np.uint64))
                ds.attrs["MATLAB_class"] = np.bytes_("double")
                ds.attrs["MATLAB_empty"] = np.uint8(1)
                continue
            if value.dtype.kind == "b":
                matlab_class, value = "logical", value.astype(np.uint8)
            else:
                key = value.dtype.newbyteorder("=").str[1:] if value.dtype.kind in "iuf" else ""
                if key not in MATLAB_CLASSES:
                    raise DataError(f"MATLAB files cannot hold {value.dtype} arrays ('{name}'); "
                                    "convert with --dtype float32 or float64")
                matlab_class = MATLAB_CLASSES[key]
            kwargs = {"compression": "gzip", "shuffle": True, "chunks": True} if value.size > 4096 else {}
            ds = f.create_dataset(name, data=value.T, **kwargs)
            ds.attrs["MATLAB_class"] = np.bytes_(matlab_class)
            if matlab_class == "logical":
                ds.attrs["MATLAB_int_decode"] = np.int32(1)
    with open(path, "r+b") as fh:
        fh.write(mat73_header())


def _write_container(path: Path, fmt: str, arrays: dict[str, np.ndarray], attrs: dict[str, dict[str, Any]]) -> None:
    if fmt == "mat":
        import scipy.io

        scipy.io.savemat(path, arrays, do_compression=True, oned_as="column")
    elif fmt == "mat73":
        _write_mat73(path, arrays)
    elif fmt == "h5":
        import h5py

        from mfcli.io.result import set_text

        with h5py.File(path, "w") as f:
            for name, value in arrays.items():
                value = np.asarray(value)
                kwargs = {"compression": "gzip", "shuffle": True, "chunks": True} if value.size > 4096 else {}
                ds = f.create_dataset(name, data=value, **kwargs)
                for key, attr in attrs.get(name, {}).items():
                    if isinstance(attr, str):  # in the header, not the unchecked global heap
                        set_text(ds.attrs, key, attr)
                    else:
                        ds.attrs[key] = attr
    elif fmt == "npz":
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    else:
        raise DataError(f"format {fmt} holds one array")


def write_array(array: np.ndarray, path: str, fmt: str | None = None, force: bool = False,
                name: str = "X", attrs: dict[str, Any] | None = None) -> None:
    """Write one array to ``path`` (``-`` = stdout as CSV, or NPY with ``fmt='npy'``)."""
    array = np.asarray(array)
    if path == "-":
        _write_stdout(array, fmt or "csv")
        return
    fmt = format_from_path(path, fmt)
    if fmt in ("tif", "gdal"):
        raise DataError(f"'{path}': GeoTIFF holds images, not a plain {'x'.join(map(str, array.shape))} array; "
                        "write .csv, .npy, .mat or .h5")
    if fmt == "envi":
        if array.ndim == 2:
            array = array.T[None, :, :]  # one image row of n pixels with m bands
        write_envi_atomic(path, array, None, force)
        return
    with atomic_file(path, force=force) as tmp:
        if fmt in ("csv", "tsv"):
            with open(tmp, "w", encoding="utf-8") as fh:
                write_text_matrix(array, fh, "\t" if fmt == "tsv" else ",")
        elif fmt == "npy":
            with open(tmp, "wb") as fh:
                np.save(fh, array, allow_pickle=False)
        else:
            _write_container(tmp, fmt, {name: array}, {name: attrs or {}})


def _write_stdout(array: np.ndarray, fmt: str) -> None:
    if fmt == "npy":
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        write_stdout(buffer.getvalue())
    elif fmt in ("csv", "tsv"):
        text = io.StringIO()
        write_text_matrix(array, text, "\t" if fmt == "tsv" else ",")
        write_stdout(text.getvalue())
    else:
        raise DataError(f"standard output takes CSV, TSV or NPY, not {fmt}; write {fmt} to a file")


def write_stdout(data: str | bytes) -> None:
    """Write ``data`` to standard output and flush it. A failure (a full disk, /dev/full) is an
    OutputError ``cannot write to standard output: REASON``, after which stdout is pointed at
    /dev/null so that nothing complains again at exit; a reader that went away (BrokenPipeError)
    is left to the command line, which stops quietly."""
    try:
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            sys.stdout.write(data)
            sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise stdout_error(exc) from None


def stdout_error(exc: OSError) -> OutputError:
    """The error of a failed write to standard output (stdout is silenced: see :func:`write_stdout`)."""
    silence_stdout()
    reason = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
    return OutputError(f"cannot write to standard output: {reason}")


def silence_stdout() -> None:
    """Point file descriptor 1 at /dev/null (nothing more can be written, and Python's final
    flush has nowhere to fail)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass


def write_envi_atomic(path: str, cube: np.ndarray, wavelengths: np.ndarray | None, force: bool,
                      fields: dict[str, Any] | None = None) -> None:
    """ENVI writes a header and a data file; both appear together or not at all. ``fields``:
    further header fields (:func:`mfcli.io.envi.header_fields`)."""
    from mfcli.io.envi import envi_paths, write_envi

    header, data = envi_paths(path)
    with atomic_files([header, data], force=force) as folder:
        write_envi(str(folder / data.name), cube, wavelengths, fields)


def write_dataset(dataset: Dataset, path: str, fmt: str | None = None, force: bool = False) -> None:
    """Write ``dataset`` keeping its image shape, pixel order and wavelengths where possible, and
    its georeference, nodata value and band names in GeoTIFF, ENVI and HDF5. An image is written
    whole: the pixels left out as nodata hold the nodata value again (NaN where none was declared)."""
    X, nodata = dataset.image_matrix()
    if path == "-":
        _write_stdout(X, fmt or "csv")
        return
    fmt = format_from_path(path, fmt)
    if fmt == "gdal":
        raise DataError("mfcli writes rasters as GeoTIFF (.tif) or ENVI (.hdr); 'gdal' is an input format only")
    if fmt == "tif":
        from mfcli.io.geotiff import write_geotiff

        if dataset.image_shape is None:
            raise DataError(f"a GeoTIFF holds an image, and {dataset.source or 'the data'} has no image shape; "
                            "give one with --image-shape ROWSxCOLS, or write another format")
        images = pixels_to_image(X, dataset.image_shape, dataset.pixel_order or "C")
        write_geotiff(path, images, georeference=dataset.georeference, nodata=nodata, band_names=dataset.feature_names,
                      wavelengths=dataset.wavelengths, force=force)
        return
    if fmt == "envi":
        from mfcli.io.envi import header_fields

        if dataset.image_shape is None:
            cube = np.asarray(X).T[None, :, :]  # one image row of n pixels with m bands, as write_array
        else:
            cube = matrix_to_cube(X, dataset.image_shape, dataset.pixel_order or "C")
        header = header_fields(dataset.georeference if dataset.image_shape is not None else None,
                               dataset.feature_names, nodata)
        write_envi_atomic(path, cube, dataset.wavelengths, force, header)
        return
    if fmt in ("csv", "tsv", "npy"):
        write_array(X, path, fmt, force)
        return
    arrays: dict[str, np.ndarray] = {}
    attrs: dict[str, dict[str, Any]] = {}
    if fmt in ("mat", "mat73"):
        if dataset.image_shape is not None and dataset.pixel_order == "C":
            X = image_to_pixels(pixels_to_image(X, dataset.image_shape, "C"), "F")  # MATLAB order
        arrays["Y"] = X
        if dataset.image_shape is not None:
            arrays["nRow"] = np.array([[dataset.image_shape[0]]], dtype=np.float64)
            arrays["nCol"] = np.array([[dataset.image_shape[1]]], dtype=np.float64)
    elif fmt == "npz":
        arrays["Y"] = X
        if dataset.image_shape is not None:
            arrays["nRow"] = np.array(dataset.image_shape[0])
            arrays["nCol"] = np.array(dataset.image_shape[1])
            arrays["pixel_order"] = np.array(dataset.pixel_order or "C")
    else:
        arrays["Y"] = X
        if dataset.image_shape is not None:
            attrs["Y"] = {"image_shape": np.asarray(dataset.image_shape, dtype=np.int64),
                          "pixel_order": dataset.pixel_order or "C"}
            if dataset.georeference is not None:
                attrs["Y"]["transform"] = np.asarray(dataset.georeference.transform, dtype=np.float64)
                if dataset.georeference.crs:
                    attrs["Y"]["crs"] = dataset.georeference.crs
            if nodata is not None:
                attrs["Y"]["nodata"] = np.float64(nodata)
        if dataset.feature_names is not None:
            attrs["Y"] = {**attrs.get("Y", {}), "band_names": [str(name) for name in dataset.feature_names]}
    if dataset.wavelengths is not None:
        arrays["wavelengths"] = np.asarray(dataset.wavelengths, dtype=np.float64)
    if dataset.band_indices is not None:
        arrays["SlectBands"] = np.asarray(dataset.band_indices, dtype=np.float64).reshape(-1, 1)
    with atomic_file(path, force=force) as tmp:
        _write_container(tmp, fmt, arrays, attrs)
