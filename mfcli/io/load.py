"""Load a data file into a :class:`~mfcli.dataset.Dataset` (bands x pixels).

Rules, in order (all documented in ``docs/data.md``):

1. **Spec.** ``FILE``, ``FILE:VAR`` (a variable or HDF5 dataset path), ``FILE:FORMAT``
   (e.g. ``-:csv``), ``sample:NAME[:VAR]`` for a bundled sample, ``-`` for stdin (CSV/NPY).
2. **Which array.** ``VAR`` if given; else the first present of ``Y, X, data, V, M_data,
   image, cube, hsi`` (any case) that is a 2-D/3-D numeric array; else the largest 2-D/3-D
   numeric array. The choice is logged in ``Dataset.notes``.
3. **Layout.** A 3-D array is a cube ``(rows, cols, bands)`` (``--layout cube-bands-first``
   for ``(bands, rows, cols)``). A 2-D array with an image shape stored beside it
   (``nRow/nCol``, ``lines/cols``, ``rows/cols``, ``height/width``, an ``image_shape``
   attribute, or ``--image-shape``) is bands x pixels, transposed if it is pixels x bands.
   Anything else is a plain matrix taken as it is (features x samples). ``--transpose``
   flips the matrix.
4. **Pixel order.** ``--order``; else a ``pixel_order`` attribute/variable; else ``F`` for
   MATLAB files (pixels run down the columns), ``C`` otherwise (and always ``C`` for cubes
   after flattening).
5. **Scale.** If ``maxValue`` is stored beside the data (HYDICE ``Urban_R162`` layout), the
   data are divided by it and the scale is recorded.
6. **Wavelengths.** From ENVI headers, a ``wavelengths``/``wavelength`` variable or
   attribute; ``SlectBands`` gives 1-based band indices and, for HYDICE (<= 210 bands,
   400-2500 nm), the wavelengths of the kept bands.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np

from mfcli.dataset import Dataset, cube_to_matrix, image_to_pixels
from mfcli.errors import DataError, InputError, ParameterError
from mfcli.io.formats import FORMATS, Container, HDF5Container, VariableInfo, open_container

PREFERRED_NAMES = ("Y", "X", "data", "V", "M_data", "image", "cube", "hsi", "img")
SHAPE_PAIRS = (("nRow", "nCol"), ("nrow", "ncol"), ("lines", "cols"), ("rows", "cols"),
               ("nrows", "ncols"), ("height", "width"), ("nr", "nc"))
GROUND_TRUTH_NAMES = ("GT", "S_GT", "M", "A", "E", "endmembers", "abundances", "cood", "names",
                      "M1", "A1", "gt_endmembers", "gt_abundances")
LAYOUTS = ("auto", "matrix", "cube", "cube-bands-first", "bands-x-pixels", "pixels-x-bands")

# HYDICE: 210 bands from 400 to 2500 nm (about 10 nm apart); Urban keeps 162 of them.
HYDICE_BANDS = 210
HYDICE_RANGE_NM = (400.0, 2500.0)


def hydice_wavelengths(band_indices: np.ndarray) -> np.ndarray:
    """Nominal wavelengths (nm) of 1-based HYDICE band numbers."""
    lo, hi = HYDICE_RANGE_NM
    return lo + (np.asarray(band_indices, dtype=np.float64) - 1) * (hi - lo) / (HYDICE_BANDS - 1)


def parse_spec(spec: str) -> tuple[str, str | None, str | None]:
    """Split ``FILE[:VAR|:FORMAT]`` into (path, variable, format).

    A whole spec that names an existing file is a path. Otherwise the part after the last
    ``:`` is a format if it is one of the known format names, else a variable name.
    """
    if spec.startswith("sample:"):
        return spec, None, None
    if spec == "-" or os.path.exists(spec):
        return spec, None, None
    if ":" in spec:
        head, tail = spec.rsplit(":", 1)
        if tail.lower() in FORMATS or tail.lower() in ("hdf5", "txt"):
            return head, None, tail.lower()
        if head:
            return head, tail, None
    return spec, None, None


def sha256_of(path: str, chunk: int = 1 << 22) -> str | None:
    if path == "-" or not os.path.isfile(path):
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def choose_variable(infos: dict[str, VariableInfo]) -> tuple[str, str]:
    """Pick the data array by the documented rule. Returns (name, reason)."""
    candidates = {n: i for n, i in infos.items() if i.numeric and len([s for s in i.shape if s > 1]) >= 2
                  and len(i.shape) in (2, 3)}
    if not candidates:
        found = ", ".join(f"{n} {tuple(i.shape)}" for n, i in infos.items()) or "nothing"
        raise DataError(f"found no 2-D or 3-D numeric array (found: {found}); "
                        "give the variable as FILE:VAR")
    lower = {n.lower().rsplit("/", 1)[-1]: n for n in candidates}
    for name in PREFERRED_NAMES:
        if name in candidates:
            return name, f"known name '{name}'"
        if name.lower() in lower:
            return lower[name.lower()], f"known name '{lower[name.lower()]}'"
    name = max(candidates, key=lambda n: candidates[n].size)
    return name, "largest 2-D/3-D numeric array"


def _scalar(container: Container, name: str) -> float | None:
    value = container.read_small(name, max_size=4)
    if value is None:
        return None
    value = np.asarray(value).ravel()
    if value.size != 1 or value.dtype.kind not in "biuf":
        return None
    return float(value[0])


def _image_shape_beside(container: Container, variable: str) -> tuple[tuple[int, int] | None, str | None]:
    infos = container.variables()
    attrs = infos[variable].attrs if variable in infos else {}
    if "image_shape" in attrs:
        shape = tuple(int(s) for s in np.ravel(attrs["image_shape"]))
        if len(shape) == 2:
            return shape, "attribute image_shape"  # type: ignore[return-value]
    meta_shape = container.metadata.get("image_shape")
    if meta_shape is not None:
        return tuple(int(s) for s in meta_shape), "file metadata"  # type: ignore[return-value]
    for rows_name, cols_name in SHAPE_PAIRS:
        rows, cols = _scalar(container, rows_name), _scalar(container, cols_name)
        if rows and cols:
            return (int(rows), int(cols)), f"'{rows_name}', '{cols_name}'"
    return None, None


def _pixel_order_beside(container: Container, variable: str) -> str | None:
    infos = container.variables()
    attrs = infos[variable].attrs if variable in infos else {}
    value = attrs.get("pixel_order", container.metadata.get("pixel_order"))
    if value is None:
        for name in ("pixel_order", "pixelOrder"):
            raw = container.read_small(name, max_size=16) if name in infos else None
            if raw is not None:
                value = "".join(np.ravel(raw).astype(str)) if np.asarray(raw).dtype.kind in "US" else None
                if value is None and np.asarray(raw).dtype.kind in "iu":
                    value = "".join(chr(int(c)) for c in np.ravel(raw))
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value.strip().upper() in ("F", "C"):
        return value.strip().upper()
    return None


def _wavelengths_beside(container: Container, variable: str, n_bands: int) -> np.ndarray | None:
    wl = container.metadata.get("wavelengths")
    infos = container.variables()
    attrs = infos[variable].attrs if variable in infos else {}
    if wl is None and "wavelengths" in attrs:
        wl = np.ravel(attrs["wavelengths"])
    for name in ("wavelengths", "wavelength", "wl", "lambda"):
        if wl is None and name in infos:
            wl = container.read_small(name)
    if wl is None:
        return None
    wl = np.asarray(wl, dtype=np.float64).ravel()
    return wl if wl.size == n_bands else None


def load_dataset(
    spec: str,
    variable: str | None = None,
    fmt: str | None = None,
    layout: str = "auto",
    order: str | None = None,
    transpose: bool = False,
    image_shape: tuple[int, int] | None = None,
    dtype: str | None = None,
    apply_scale: bool = True,
) -> Dataset:
    """Load ``spec`` into a Dataset in bands x pixels (features x samples) orientation."""
    if layout not in LAYOUTS:
        raise ParameterError(f"unknown layout '{layout}'; use one of {', '.join(LAYOUTS)}")
    if order is not None and order.upper() not in ("F", "C"):
        raise ParameterError(f"pixel order must be F or C, not '{order}'")
    if spec.startswith("sample:"):
        from mfcli.io.samples import open_sample

        name, _, sample_var = spec[len("sample:"):].partition(":")
        container, source_hash = open_sample(name)
        variable = variable or sample_var or None
        path = spec
    else:
        path, spec_var, spec_fmt = parse_spec(spec)
        variable = variable or spec_var
        container = open_container(path, fmt or spec_fmt)
        source_hash = None
    with container:
        dataset = _dataset_from_container(container, path, variable, layout, order, transpose,
                                          image_shape, apply_scale)
        dataset.sha256 = source_hash or sha256_of(path)
    if dtype is not None:
        if dtype not in ("float32", "float64"):
            raise ParameterError(f"dtype must be float32 or float64, not {dtype}")
        dataset.X = np.ascontiguousarray(dataset.X, dtype=dtype)
    return dataset


def _dataset_from_container(container: Container, path: str, variable: str | None, layout: str,
                            order: str | None, transpose: bool, image_shape: tuple[int, int] | None,
                            apply_scale: bool) -> Dataset:
    notes: list[str] = []
    infos = container.variables()
    if variable is None:
        variable, reason = choose_variable(infos)
        if len(infos) > 1:
            notes.append(f"using variable '{variable}' ({reason}); choose another with FILE:VAR or --var")
    elif variable.lstrip("/") not in infos and variable not in infos:
        available = ", ".join(sorted(infos)) or "none"
        raise InputError(f"'{path}' has no variable '{variable}'; available: {available}")
    variable = variable if variable in infos else variable.lstrip("/")
    raw = container.read(variable)
    if raw.dtype.kind not in "biuf":
        raise DataError(f"variable '{variable}' of '{path}' is not numeric (dtype {raw.dtype}); choose another with FILE:VAR")
    if raw.size == 0:
        raise DataError(f"variable '{variable}' of '{path}' is empty (shape {raw.shape}); check the file")
    X = raw if raw.dtype.kind == "f" else raw.astype(np.float64)
    meta = container.metadata
    wavelengths = None
    detected_order: str | None = None
    found_shape, shape_reason = _image_shape_beside(container, variable)
    if image_shape is not None:
        found_shape, shape_reason = tuple(image_shape), "--image-shape"  # type: ignore[assignment]

    if layout == "auto":
        if X.ndim == 3:
            layout = "cube"
        elif X.ndim == 2 and found_shape is not None:
            n_pixels = found_shape[0] * found_shape[1]
            if X.shape[1] == n_pixels:
                layout = "bands-x-pixels"
            elif X.shape[0] == n_pixels:
                layout = "pixels-x-bands"
            else:
                notes.append(f"image shape {found_shape[0]}x{found_shape[1]} ({shape_reason}) does not "
                             f"match the {X.shape[0]}x{X.shape[1]} matrix; treating it as a plain matrix")
                found_shape = None
                layout = "matrix"
        elif X.ndim == 2:
            layout = "matrix"
        else:
            raise DataError(f"variable '{variable}' of '{path}' has {X.ndim} dimensions (shape {X.shape}); "
                            "mfcli needs a 2-D matrix or a 3-D image cube")
    if layout in ("cube", "cube-bands-first"):
        if X.ndim != 3:
            raise DataError(f"--layout {layout} needs a 3-D array, but '{variable}' has shape {X.shape}")
        cube = X if layout == "cube" else np.moveaxis(X, 0, 2)
        rows, cols, _bands = cube.shape
        # A MATLAB cube indexes like NumPy after loading; flatten row by row (C order).
        X = cube_to_matrix(cube, "C")
        found_shape = (rows, cols)
        detected_order = "C"
        layout = "cube"
        if order is not None and order.upper() == "F":
            X = image_to_pixels(np.moveaxis(cube, 2, 0), "F")
            detected_order = "F"
    else:
        if X.ndim != 2:
            raise DataError(f"--layout {layout} needs a 2-D matrix, but '{variable}' has shape {X.shape}")
        if layout == "pixels-x-bands":
            X = X.T
            layout = "bands-x-pixels"
            notes.append("the matrix was pixels x bands; transposed to bands x pixels")
        if layout == "bands-x-pixels" and found_shape is None:
            raise DataError(f"--layout bands-x-pixels needs an image shape; none is stored in '{path}', "
                            "give --image-shape ROWSxCOLS")
        if layout == "bands-x-pixels" and found_shape[0] * found_shape[1] != X.shape[1]:
            raise DataError(f"image shape {found_shape[0]}x{found_shape[1]} does not match {X.shape[1]} pixels")
        if layout == "matrix":
            found_shape = None
        detected_order = (order.upper() if order else None) or _pixel_order_beside(container, variable) or (
            "F" if container.matlab else "C")
    if transpose:
        X = X.T
        notes.append("transposed (--transpose)")
        if found_shape is not None:
            notes.append("--transpose drops the image shape")
            found_shape = None
    if found_shape is None:
        detected_order = None
        layout = "matrix" if layout != "cube" or transpose else layout
    elif shape_reason:
        notes.append(f"image {found_shape[0]}x{found_shape[1]} from {shape_reason}, pixel order {detected_order}")

    scale = 1.0
    if apply_scale:
        max_value = _scalar(container, "maxValue")
        if max_value and max_value > 0 and max_value != 1.0:
            X = X / X.dtype.type(max_value)
            scale = float(max_value)
            notes.append(f"divided by maxValue = {max_value:g} (scale applied)")

    band_indices = None
    sel = container.read_small("SlectBands") if "SlectBands" in container.variables() else None
    if sel is not None and np.asarray(sel).size == X.shape[0]:
        band_indices = np.asarray(sel).astype(np.int64).ravel()
    wavelengths = _wavelengths_beside(container, variable, X.shape[0])
    if wavelengths is None and band_indices is not None and band_indices.max() <= HYDICE_BANDS:
        wavelengths = hydice_wavelengths(band_indices)
        notes.append("wavelengths from SlectBands on the HYDICE grid (210 bands, 400-2500 nm)")

    extras: dict[str, Any] = {}
    for name in GROUND_TRUTH_NAMES:
        if name in container.variables() and name != variable:
            info = container.variables()[name]
            if info.size <= 50_000_000:
                extras[name] = container.read(name)
    return Dataset(
        X=X,
        image_shape=tuple(int(s) for s in found_shape) if found_shape else None,  # type: ignore[arg-type]
        pixel_order=detected_order,
        wavelengths=wavelengths,
        band_indices=band_indices,
        scale=scale,
        source=path,
        variable=variable,
        layout=layout,
        notes=notes,
        extras=extras,
        feature_names=None,
        sample_names=meta.get("column_names"),
    )


def describe_file(spec: str, fmt: str | None = None) -> dict[str, Any]:
    """Every array of a file with shape, dtype, range and non-finite count (for ``mfcli info``)."""
    if spec.startswith("sample:"):
        from mfcli.io.samples import open_sample

        container, _ = open_sample(spec[len("sample:"):].partition(":")[0])
        path = spec
    else:
        path, _, spec_fmt = parse_spec(spec)
        container = open_container(path, fmt or spec_fmt)
    out = []
    with container:
        for name, info in container.variables().items():
            entry: dict[str, Any] = {"name": name, "shape": list(info.shape), "dtype": str(info.dtype)}
            if info.numeric and info.size <= 200_000_000:
                values = container.read(name)
                if isinstance(container, HDF5Container) or values.size:
                    finite = np.isfinite(values) if values.dtype.kind == "f" else None
                    entry["nonfinite"] = int(values.size - np.count_nonzero(finite)) if finite is not None else 0
                    good = values[finite] if finite is not None else values
                    if good.size:
                        entry["min"] = float(good.min())
                        entry["max"] = float(good.max())
            out.append(entry)
        fmt_name = container.format
    return {"source": path, "format": fmt_name, "variables": out}
