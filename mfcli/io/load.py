"""Load a data file into a :class:`~mfcli.dataset.Dataset` (bands x pixels).

Rules, in order (all documented in ``docs/data.md``):

1. **Spec.** ``FILE``, ``FILE:VAR`` (a variable or HDF5 dataset path), ``FILE:FORMAT``
   (e.g. ``-:csv``), ``sample:NAME[:VAR]`` for a bundled sample, ``-`` for stdin (CSV/NPY).
2. **Which array.** ``VAR`` if given; else the first present of ``Y, X, data, V, M_data,
   image, cube, hsi, img`` (any case) that is a 2-D/3-D numeric array; else the largest
   2-D/3-D numeric array; a file holding a single numeric array gives that array. The choice
   is logged in ``Dataset.notes``.
3. **Layout.** ``--transpose`` first flips a 2-D matrix (samples x features input). Then a
   3-D array is a cube ``(rows, cols, bands)`` (``--layout cube-bands-first`` for
   ``(bands, rows, cols)``). A 2-D array with an image shape stored beside it (``nRow/nCol``,
   ``lines/cols``, ``rows/cols``, ``height/width``, an ``image_shape`` attribute) or given
   with ``--image-shape`` is bands x pixels, transposed if it is pixels x bands. Anything
   else is a plain matrix taken as it is (features x samples).
4. **Pixel order.** ``--order``; else a ``pixel_order`` attribute/variable; else ``F`` for
   MATLAB files (pixels run down the columns), ``C`` otherwise. A cube is flattened in ``C``
   order unless ``--order F`` is given.
5. **Scale.** If ``maxValue`` is stored beside the data (HYDICE ``Urban_R162`` layout), or an
   ENVI header gives a ``reflectance scale factor``, the data are divided by it and the scale
   is recorded (not for ground-truth arrays).
6. **Wavelengths.** From ENVI headers, a ``wavelengths``/``wavelength`` variable or
   attribute (micrometres converted to nm), with their source recorded; never derived from
   band numbers (:mod:`mfcli.io.wavelengths`). ``SlectBands`` gives 1-based band indices.
7. **Georeference and nodata** (images only). The CRS and transform of a GeoTIFF, an ENVI
   ``map info`` or the ``crs``/``transform`` attributes of an HDF5 array written by mfcli go
   to ``Dataset.georeference``. Pixels without data (GDAL's masks of a GeoTIFF; else every
   pixel where some band holds the declared nodata value: ENVI ``data ignore value``, HDF5
   attribute ``nodata``) are left out of X; ``Dataset.valid_pixels`` says which pixels X holds.

The rules are applied once, by :func:`describe_data`, from the shape and dtype of the stored
array and the small variables beside it, without reading the data matrix; the result is a
Dataset without X and an :class:`ArrayPlan` saying how the stored array becomes X.
:func:`load_dataset` then reads the array and applies the plan (:func:`apply_plan`);
:func:`open_lazy` (``--engine stream|dask``) turns the plan into a source that the streaming
engines read block by block (:mod:`mfcli.engines`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from mfcli.dataset import Dataset, cube_to_matrix
from mfcli.errors import DataError, InputError, ParameterError
from mfcli.io.formats import (ABUNDANCE_NAMES, ENDMEMBER_NAMES, FORMATS, FORMAT_ALIASES, MATERIAL_NAME_VARIABLES,
                              Container, SingleArrayContainer, VariableInfo, format_from_path, open_container,
                              sha256_of, sniff_format, unknown_variable)

PREFERRED_NAMES = ("Y", "X", "data", "V", "M_data", "image", "cube", "hsi", "img")
SHAPE_PAIRS = (("nRow", "nCol"), ("nrow", "ncol"), ("lines", "cols"), ("rows", "cols"),
               ("nrows", "ncols"), ("height", "width"), ("nr", "nc"))
GROUND_TRUTH_NAMES = ENDMEMBER_NAMES + ABUNDANCE_NAMES + MATERIAL_NAME_VARIABLES
LAYOUTS = ("auto", "matrix", "cube", "cube-bands-first", "bands-x-pixels", "pixels-x-bands")
EXTRAS_MAX_SIZE = 50_000_000  # elements: ground truth read beside the data up to this size
LAZY_EXTRAS_MAX_SIZE = 1_000_000  # elements: the same beside data that are streamed, not loaded
DESCRIBE_MAX_SIZE = 25_000_000  # elements: `info` computes ranges of arrays up to this size

def parse_spec(spec: str) -> tuple[str, str | None, str | None]:
    """Split ``FILE[:VAR|:FORMAT]`` into (path, variable, format).

    A whole spec that names an existing file is a path. Otherwise the part after the last
    ``:`` is a format if it is one of the known format names, else a variable name.
    ``sample:NAME[:VAR]`` is returned whole (see :func:`open_spec`).
    """
    if spec.startswith("sample:"):
        return spec, None, None
    if spec == "-" or os.path.exists(spec):
        return spec, None, None
    if ":" in spec:
        head, tail = spec.rsplit(":", 1)
        if tail.lower() in FORMATS or tail.lower() in FORMAT_ALIASES:
            return head, None, tail.lower()
        if head and tail:
            return head, tail, None
    return spec, None, None


def open_spec(spec: str, fmt: str | None = None, digest: bool = True) -> tuple[Container, str, str | None, Any]:
    """Open what ``spec`` names. Returns (container, source, variable from the spec, sha256).

    ``source`` is the path (``sample:NAME`` for samples, ``-`` for stdin); the sha256 is of the
    file's bytes (of the bundled file for samples, of the bytes read for stdin). For a file it is
    a function giving the digest, which a second thread computes meanwhile (hand it to
    :attr:`Dataset.sha256 <mfcli.dataset.Dataset>`, which calls it when the digest is first
    needed); None without ``digest``.
    """
    if spec.startswith("sample:"):
        from mfcli.io.samples import open_sample

        name, _, sample_var = spec[len("sample:"):].partition(":")
        container, digest = open_sample(name)
        return container, f"sample:{name}", sample_var or None, digest
    path, spec_var, spec_fmt = parse_spec(spec)
    if path == "-":
        container = open_container(path, fmt or spec_fmt)
        return container, path, spec_var, container.metadata.get("sha256")
    # the file's sha256 on a second thread while the data are read and factorized (hashlib releases
    # the GIL on large blocks): Urban as a 61 MB .mat took 0.04 s to hash, 0.01 s to read
    hashing = _background(sha256_of, path) if digest else None
    container = open_container(path, fmt or spec_fmt)
    return container, path, spec_var, hashing


def _background(function, *args):
    """Run ``function(*args)`` on a daemon thread; returns a function that waits for its result
    (or raises its exception). In a process forked before the thread was done (the thread does
    not exist there), the waiting function runs ``function(*args)`` itself."""
    import threading

    outcome: dict[str, Any] = {}

    def run():
        try:
            outcome["value"] = function(*args)
        except BaseException as exc:  # handed to the caller by wait()
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def wait():
        thread.join()  # returns at once in a forked copy
        if not outcome:
            run()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    return wait


def _is_data_candidate(info: VariableInfo) -> bool:
    return info.numeric and info.size > 0 and len(info.shape) in (2, 3) and \
        len([s for s in info.shape if s > 1]) >= 2


def choose_variable(infos: dict[str, VariableInfo]) -> tuple[str, str]:
    """Pick the data array by the documented rule. Returns (name, reason)."""
    candidates = {n: i for n, i in infos.items() if _is_data_candidate(i)}
    if not candidates:
        numeric = [n for n, i in infos.items() if i.numeric]
        if len(numeric) == 1:  # let the checks that follow say what is wrong with it
            return numeric[0], "the only numeric array"
        found = ", ".join(f"{n} {tuple(i.shape)} {i.dtype}" for n, i in infos.items()) or "nothing"
        raise DataError(f"found no non-empty 2-D or 3-D numeric array (found: {found}); "
                        "give the variable as FILE:VAR")
    by_leaf = {n.rsplit("/", 1)[-1].lower(): n for n in candidates}
    for name in PREFERRED_NAMES:
        if name in candidates:
            return name, f"known name '{name}'"
        if name.lower() in by_leaf:
            return by_leaf[name.lower()], f"known name '{by_leaf[name.lower()]}'"
    name = max(candidates, key=lambda n: candidates[n].size)
    return name, "largest 2-D/3-D numeric array"


def _scalar(container: Container, name: str) -> float | None:
    if name not in container.variables():
        return None
    value = container.read_small(name, max_size=4)
    if value is None:
        return None
    value = np.asarray(value).ravel()
    if value.size != 1 or value.dtype.kind not in "biuf":
        return None
    return float(value[0])


def _text(value: Any) -> str | None:
    """A short string stored as an attribute, a str/bytes array or MATLAB char codes."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, str):
        return value
    array = np.asarray(value)
    if array.dtype.kind in "US":
        return "".join(v.decode() if isinstance(v, bytes) else str(v) for v in np.ravel(array))
    if array.dtype.kind in "iu" and array.size <= 16:
        return "".join(chr(int(c)) for c in np.ravel(array))
    return None


def _stored_image_shape(container: Container, variable: str) -> tuple[tuple[int, int] | None, str | None]:
    attrs = container.variables()[variable].attrs
    if "image_shape" in attrs:
        shape = tuple(int(s) for s in np.ravel(attrs["image_shape"]))
        if len(shape) == 2:
            return shape, "attribute image_shape"  # type: ignore[return-value]
    for rows_name, cols_name in SHAPE_PAIRS:
        rows, cols = _scalar(container, rows_name), _scalar(container, cols_name)
        if rows and cols and rows == int(rows) and cols == int(cols):
            return (int(rows), int(cols)), f"'{rows_name}', '{cols_name}'"
    return None, None


def _stored_pixel_order(container: Container, variable: str) -> str | None:
    infos = container.variables()
    value = infos[variable].attrs.get("pixel_order", container.metadata.get("pixel_order"))
    for name in ("pixel_order", "pixelOrder"):
        if value is None and name in infos:
            value = container.read_small(name, max_size=16)
    text = _text(value) if value is not None else None
    if text is not None and text.strip().upper() in ("F", "C"):
        return text.strip().upper()
    return None


def _stored_wavelengths(container: Container, source: str, variable: str,
                        n_bands: int) -> tuple[np.ndarray | None, str | None, str | None]:
    """(wavelengths in nm, where they come from, a note on units) of the bands, from the file only."""
    from mfcli.io.wavelengths import to_nanometres

    wl = container.metadata.get("wavelengths")
    where = container.metadata.get("wavelengths_source") or "the ENVI header of " + source
    infos = container.variables()
    attrs = infos[variable].attrs
    if wl is None and "wavelengths" in attrs:
        wl, where = np.ravel(attrs["wavelengths"]), f"the 'wavelengths' attribute of {variable} in {source}"
    for name in ("wavelengths", "wavelength", "wl", "lambda"):
        if wl is None and name in infos and infos[name].numeric:
            wl, where = container.read_small(name), f"the '{name}' variable of {source}"
    if wl is None:
        return None, None, None
    wl = np.asarray(wl, dtype=np.float64).ravel()
    if wl.size != n_bands or not np.all(np.isfinite(wl)):
        return None, None, None
    nm, note = to_nanometres(wl, where)
    return nm, where, note


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
    keep_nodata: bool = False,
    keep_sparse: bool = False,
) -> Dataset:
    """Load ``spec`` into a Dataset in bands x pixels (features x samples) orientation.

    ``variable`` (or ``FILE:VAR``) picks the array, ``fmt`` (or ``FILE:FORMAT``) the format;
    ``layout``, ``order``, ``transpose`` and ``image_shape`` override detection (see the module
    docstring); ``dtype`` converts to float32/float64; ``apply_scale=False`` keeps the stored
    values even where a ``maxValue`` is stored; ``keep_nodata=True`` keeps the nodata pixels in X
    as stored (``nodata`` still says their value), for writing the data elsewhere unchanged.
    ``keep_sparse=True`` keeps a scipy.sparse matrix (``.npz`` of ``save_npz``) sparse when it is
    read as a plain matrix (no image layout or shape asked for); otherwise it is densified.
    """
    _check_options(layout, order, dtype)
    container, source, spec_var, digest = open_spec(spec, fmt)
    with container:
        if keep_sparse and getattr(container, "sparse", False) and layout in ("auto", "matrix") \
                and image_shape is None:
            dataset = _sparse_dataset(container, source, variable or spec_var, transpose, dtype)
            dataset.sha256 = digest
            return dataset
        dataset = dataset_from_container(container, source, variable or spec_var, layout=layout, order=order,
                                         transpose=transpose, image_shape=image_shape, dtype=dtype,
                                         apply_scale=apply_scale, keep_nodata=keep_nodata)
    dataset.sha256 = digest
    return dataset


def _sparse_dataset(container, source: str, variable: str | None, transpose: bool, dtype: str | None) -> Dataset:
    """The Dataset of a sparse container with X a CSR/CSC matrix, never densified (integers as
    float64, ``dtype`` applied)."""
    name = container.NAME
    if variable not in (None, name):
        container.read(variable)  # the container's own error: it holds one array
    X = container.read_sparse(name)
    if X.format not in ("csr", "csc"):
        X = X.tocsr()
    notes = []
    if transpose:
        X = X.T
        notes.append("transposed (--transpose)")
    target = np.dtype(dtype) if dtype else (X.dtype if X.dtype.kind == "f" else np.dtype(np.float64))
    if X.dtype != target:
        X = X.astype(target)
    size = X.shape[0] * X.shape[1]
    density = X.nnz / size if size else 0.0
    notes.append(f"sparse {X.format.upper()} matrix, {X.nnz} stored values ({100 * density:.3g}% dense), "
                 "kept sparse")
    return Dataset(X=X, source=source, variable=name, layout="matrix", notes=notes)


def _check_options(layout: str, order: str | None, dtype: str | None) -> None:
    if layout not in LAYOUTS:
        raise ParameterError(f"unknown layout '{layout}'; use one of {', '.join(LAYOUTS)}")
    if order is not None and order.upper() not in ("F", "C"):
        raise ParameterError(f"pixel order must be F or C, not '{order}'")
    if dtype is not None and dtype not in ("float32", "float64"):
        raise ParameterError(f"dtype must be float32 or float64, not {dtype}")


@dataclass
class ArrayPlan:
    """How the stored array ``variable`` becomes X (features x samples), decided by
    :func:`describe_data` from its shape alone: ``transposed`` (X is the stored 2-D array
    transposed), ``cube`` ("cube" for (rows, cols, bands), "cube-bands-first" for (bands, rows,
    cols), flattened in ``pixel_order``), then divided by ``scale`` and converted to ``dtype``.
    Shapes and transposition are as the container reports the array (a MATLAB v7.3 container
    has already undone MATLAB's column-major storage)."""

    variable: str
    shape: tuple[int, ...]
    stored_dtype: np.dtype
    transposed: bool = False
    cube: str | None = None
    pixel_order: str | None = None
    scale: float = 1.0
    dtype: str | None = None
    nodata: float | None = None
    valid_pixels: np.ndarray | None = None


def apply_plan(raw: np.ndarray, plan: ArrayPlan, in_place: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """X from the stored array as read, by ``plan``, without its nodata pixels, and the flags of
    the pixels it holds (None: every pixel; see :func:`valid_pixels_of`).

    ``in_place``: ``raw`` was read for this call alone (nothing else holds it), so the scale is
    divided out in place instead of in a copy: the same values, without a second array of the
    data's size at the peak of loading."""
    X = raw if raw.dtype.kind == "f" else raw.astype(np.float64)
    private = in_place or X is not raw
    if plan.cube is not None:
        cube = X if plan.cube == "cube" else np.moveaxis(X, 0, 2)
        X = cube_to_matrix(cube, plan.pixel_order or "C")
    elif plan.transposed:
        X = X.T
    valid = valid_pixels_of(X, plan)  # on the stored values, before any scale
    if valid is not None:
        X, private = X[:, valid], True
    if plan.scale != 1.0 and private and X.flags.writeable:
        X /= X.dtype.type(plan.scale)
    elif plan.scale != 1.0:
        X = X / X.dtype.type(plan.scale)
    if plan.dtype is not None:
        X = np.ascontiguousarray(X, dtype=plan.dtype)
    return X, valid


def valid_pixels_of(X: np.ndarray, plan: ArrayPlan) -> np.ndarray | None:
    """Which pixels (columns of the bands x pixels ``X`` as stored) hold data: the file's own
    mask where it has one (GeoTIFF), else the pixels where no band holds ``plan.nodata`` (NaN
    matches NaN). None when every pixel holds data; a DataError when none does."""
    valid = plan.valid_pixels
    if valid is None and plan.nodata is not None:
        missing = np.isnan(X).any(axis=0) if np.isnan(plan.nodata) else (X == plan.nodata).any(axis=0)
        valid = ~missing if missing.any() else None
    if valid is not None and not valid.any():
        raise DataError(f"every pixel of '{plan.variable}' is nodata"
                        + (f" (value {plan.nodata:g})" if plan.nodata is not None else "")
                        + "; check the file and its nodata value")
    return valid


def dataset_from_container(container: Container, source: str, variable: str | None = None, *,
                           layout: str = "auto", order: str | None = None, transpose: bool = False,
                           image_shape: tuple[int, int] | None = None, dtype: str | None = None,
                           apply_scale: bool = True, keep_nodata: bool = False) -> Dataset:
    """The Dataset held by an open container, by the rules of the module docstring."""
    dataset, plan = describe_data(container, source, variable, layout=layout, order=order, transpose=transpose,
                                  image_shape=image_shape, dtype=dtype, apply_scale=apply_scale,
                                  keep_nodata=keep_nodata)
    # the array read is X's own: load_dataset closes the container without reading it again
    dataset.X, dataset.valid_pixels = apply_plan(np.asarray(container.read(plan.variable)), plan, in_place=True)
    if dataset.valid_pixels is not None:
        dataset.notes.append(f"{dataset.n_nodata_pixels} nodata pixels left out of the data "
                             f"({dataset.n_samples} pixels with data)")
    return dataset


def describe_data(container: Container, source: str, variable: str | None = None, *,
                  layout: str = "auto", order: str | None = None, transpose: bool = False,
                  image_shape: tuple[int, int] | None = None, dtype: str | None = None,
                  apply_scale: bool = True, extras_max_size: int = EXTRAS_MAX_SIZE,
                  keep_nodata: bool = False) -> tuple[Dataset, ArrayPlan]:
    """Everything the rules of the module docstring decide, without reading the data array:
    a Dataset whose ``X`` is None, and the plan that turns the stored array into X."""
    _check_options(layout, order, dtype)
    order = order.upper() if order else None
    notes: list[str] = []
    infos = container.variables()
    if variable is None:
        variable, reason = choose_variable(infos)
        if len(infos) > 1:
            notes.append(f"using variable '{variable}' ({reason}); choose another with FILE:VAR or --var")
    else:
        name = variable if variable in infos else variable.lstrip("/")
        if name not in infos:
            raise unknown_variable(source, variable, infos)
        variable = name
    info = infos[variable]
    shape, stored_dtype = tuple(int(s) for s in info.shape), np.dtype(info.dtype)
    where = f"'{variable}' of '{source}'" if len(infos) > 1 or variable != "data" else f"'{source}'"
    if stored_dtype.kind not in "biuf":
        raise DataError(f"{where} is not numeric (dtype {stored_dtype}); choose another variable with FILE:VAR")
    if info.size == 0:
        raise DataError(f"{where} is empty (shape {shape}); check the file and the variable")
    if len(shape) not in (2, 3):
        raise DataError(f"{where} has {len(shape)} dimension(s) (shape {shape}); mfcli needs a 2-D "
                        "matrix (features x samples) or a 3-D image cube (rows, cols, bands)")
    plan = ArrayPlan(variable=variable, shape=shape, stored_dtype=stored_dtype, dtype=dtype)
    current = shape  # the shape of X as the rules below transform it
    flipped = False
    if transpose:
        if len(shape) != 2:
            raise ParameterError(f"--transpose applies to a 2-D matrix, but {where} has shape {shape}; "
                                 "for a (bands, rows, cols) cube use --layout cube-bands-first")
        current = shape[::-1]
        flipped = True
        notes.append("transposed (--transpose)")

    found_shape, shape_reason = (None, None) if flipped else _stored_image_shape(container, variable)
    if image_shape is not None:
        found_shape, shape_reason = (int(image_shape[0]), int(image_shape[1])), "--image-shape"

    if layout == "auto":
        if len(current) == 3:
            layout = "cube"
        elif found_shape is not None and current[1] == found_shape[0] * found_shape[1]:
            layout = "bands-x-pixels"
        elif found_shape is not None and current[0] == found_shape[0] * found_shape[1]:
            layout = "pixels-x-bands"
        else:
            if found_shape is not None:
                if shape_reason == "--image-shape":
                    raise DataError(f"--image-shape {found_shape[0]}x{found_shape[1]} ({found_shape[0] * found_shape[1]} "
                                    f"pixels) matches neither side of the {current[0]}x{current[1]} matrix")
                notes.append(f"image shape {found_shape[0]}x{found_shape[1]} ({shape_reason}) does not "
                             f"match the {current[0]}x{current[1]} matrix; reading it as a plain matrix")
            layout = "matrix"

    pixel_order: str | None = None
    if layout in ("cube", "cube-bands-first"):
        if len(current) != 3:
            raise DataError(f"--layout {layout} needs a 3-D array, but {where} has shape {current}")
        cube_shape = current if layout == "cube" else (current[1], current[2], current[0])
        if image_shape is not None and (int(image_shape[0]), int(image_shape[1])) != cube_shape[:2]:
            raise ParameterError(f"--image-shape {image_shape[0]}x{image_shape[1]} does not match the "
                                 f"{cube_shape[0]}x{cube_shape[1]} image of the cube {where} {shape}; drop "
                                 "--image-shape (a cube carries its shape), or check --layout")
        pixel_order = order or "C"
        plan.cube, plan.pixel_order = layout, pixel_order
        current = (cube_shape[2], cube_shape[0] * cube_shape[1])
        found_shape, shape_reason = (int(cube_shape[0]), int(cube_shape[1])), "the cube"
        layout = "cube"
    else:
        if len(current) != 2:
            raise DataError(f"--layout {layout} needs a 2-D matrix, but {where} has shape {current}; "
                            "use --layout cube or cube-bands-first")
        if layout in ("bands-x-pixels", "pixels-x-bands"):
            if found_shape is None:
                raise DataError(f"--layout {layout} needs an image shape and none is stored in '{source}'; "
                                "give --image-shape ROWSxCOLS")
            if layout == "pixels-x-bands":
                current = current[::-1]
                flipped = not flipped
                notes.append("the matrix is pixels x bands; transposed to bands x pixels")
                layout = "bands-x-pixels"
            if found_shape[0] * found_shape[1] != current[1]:
                raise DataError(f"image shape {found_shape[0]}x{found_shape[1]} ({shape_reason}) does not match "
                                f"the {current[1]} pixels of the {current[0]}x{current[1]} matrix")
            pixel_order = order or _stored_pixel_order(container, variable) or ("F" if container.matlab else "C")
        else:
            found_shape = None
        plan.transposed = flipped
    if found_shape is not None:
        notes.append(f"image {found_shape[0]}x{found_shape[1]} from {shape_reason}, pixel order {pixel_order}")

    scale = 1.0
    if apply_scale and variable.rsplit("/", 1)[-1] not in GROUND_TRUTH_NAMES:
        max_value, scale_name = _scalar(container, "maxValue"), "maxValue"
        if max_value is None and container.metadata.get("scale_factor"):
            max_value = float(container.metadata["scale_factor"])
            scale_name = container.metadata.get("scale_name", "the reflectance scale factor")
        if max_value is not None and not (np.isfinite(max_value) and max_value > 0):
            raise DataError(f"'{source}' stores {scale_name} = {max_value:g}, the value the data are divided by; "
                            "it must be a positive number: fix or remove it")
        if max_value and max_value != 1.0:
            scale = float(max_value)
            notes.append(f"divided by {scale_name} = {max_value:g} (scale applied)")
    plan.scale = scale

    n_bands = current[0]
    band_indices = None
    if "SlectBands" in infos and infos["SlectBands"].numeric:
        selected = container.read_small("SlectBands")
        if selected is not None and np.asarray(selected).size == n_bands:
            band_indices = np.asarray(selected).astype(np.int64).ravel()
    wavelengths, wavelengths_source, units_note = _stored_wavelengths(container, source, variable, n_bands)
    if wavelengths is not None:
        notes.append(f"wavelengths {wavelengths.min():.0f}-{wavelengths.max():.0f} nm from {wavelengths_source}")
        if units_note:
            notes.append(units_note)
    elif band_indices is not None:
        notes.append("band numbers from SlectBands; no wavelengths in the file (give --wavelengths FILE for "
                     "the sensor's band centres)")

    georeference = nodata = None
    if found_shape is not None:
        georeference, nodata, plan.valid_pixels = _stored_georeference(container, variable, found_shape,
                                                                       pixel_order or "C")
        plan.nodata = nodata
        if georeference is not None:
            notes.append(f"georeferenced: {georeference.summary()}")
        if keep_nodata:
            if plan.valid_pixels is not None and nodata is None:
                notes.append("the file's mask of pixels without data is not kept (no nodata value marks them)")
            plan.nodata = plan.valid_pixels = None
        elif nodata is not None:
            notes.append(f"nodata value {nodata:g}: pixels where any band holds it are left out")
    notes.extend(container.metadata.get("notes") or [])

    extras: dict[str, Any] = {}
    for name in GROUND_TRUTH_NAMES:
        if name in infos and name != variable and infos[name].size <= extras_max_size:
            extras[name] = container.read(name)
    column_names = container.metadata.get("column_names")
    band_names = _stored_band_names(container, variable, n_bands)
    dataset = Dataset(
        X=None,  # type: ignore[arg-type]
        image_shape=found_shape,
        pixel_order=pixel_order,
        wavelengths=wavelengths,
        band_indices=band_indices,
        wavelengths_source=wavelengths_source,
        scale=scale,
        source=source,
        variable=variable,
        layout=layout,
        notes=notes,
        extras=extras,
        feature_names=band_names or (column_names if flipped else None),
        sample_names=None if flipped else column_names,
        georeference=georeference,
        nodata=nodata,
    )
    return dataset, plan


def _stored_georeference(container: Container, variable: str, image_shape: tuple[int, int], order: str):
    """(Georeference or None, nodata value or None, precomputed flags of the pixels with data or
    None) of an image: from the container's metadata (GeoTIFF, ENVI) or the array's attributes
    ``crs``, ``transform``, ``nodata`` (HDF5 written by mfcli)."""
    from mfcli.dataset import image_to_pixels
    from mfcli.georeference import Georeference

    attrs = container.variables()[variable].attrs
    georeference = container.metadata.get("georeference")
    if georeference is None and "transform" in attrs:
        crs = _text(attrs["crs"]) if "crs" in attrs else None
        georeference = Georeference(crs, tuple(float(v) for v in np.ravel(attrs["transform"])))
    nodata = container.metadata.get("nodata", attrs.get("nodata"))
    nodata = None if nodata is None else float(np.ravel(nodata)[0])
    valid = container.metadata.get("valid_pixels")
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != tuple(image_shape):
            raise DataError(f"the mask of '{container.path}' is {valid.shape[0]}x{valid.shape[1]} but the image "
                            f"{image_shape[0]}x{image_shape[1]}; check --layout")
        valid = image_to_pixels(valid, order)
    return georeference, nodata, valid


def _stored_band_names(container: Container, variable: str, n_bands: int) -> list[str] | None:
    """Band names of an image (GeoTIFF band descriptions, ENVI ``band names``, HDF5 attribute
    ``band_names``), one per band, else None."""
    names = container.metadata.get("band_names")
    attrs = container.variables()[variable].attrs
    if names is None and "band_names" in attrs:
        names = [v.decode() if isinstance(v, bytes) else str(v) for v in np.ravel(attrs["band_names"])]
    return list(names) if names is not None and len(names) == n_bands else None


STREAMABLE_FORMATS = ("h5", "mat73", "npy")


def open_lazy(spec: str, variable: str | None = None, fmt: str | None = None, layout: str = "auto",
              order: str | None = None, transpose: bool = False, image_shape: tuple[int, int] | None = None,
              dtype: str | None = None, apply_scale: bool = True):
    """``spec`` described by the same rules as :func:`load_dataset`, without reading its data
    matrix: returns (Dataset whose ``X`` is None, source), the source being an
    :class:`~mfcli.engines.stream.H5Source` (HDF5, MATLAB v7.3) or
    :class:`~mfcli.engines.stream.NpySource` (``.npy``, mapped from disk) that the streaming
    engines read block by block. Other inputs are refused with a one-line InputError. The
    sha256 is computed reading the file in chunks."""
    from mfcli.engines.stream import H5Source, NpySource

    _check_options(layout, order, dtype)
    if spec == "-" or spec.startswith("sample:"):
        what = "standard input" if spec == "-" else f"'{spec}' (a bundled sample, held in memory)"
        raise InputError(f"the stream and dask engines read a file on disk, not {what}; use --engine memory")
    path, spec_var, spec_fmt = parse_spec(spec)
    container = _open_streamable(path, fmt or spec_fmt)
    with container:
        dataset, plan = describe_data(container, path, variable or spec_var, layout=layout, order=order,
                                      transpose=transpose, image_shape=image_shape, dtype=dtype,
                                      apply_scale=apply_scale, extras_max_size=LAZY_EXTRAS_MAX_SIZE)
        if plan.cube is not None:
            raise DataError(f"'{plan.variable}' of '{path}' is an image cube {plan.shape}; the stream and dask "
                            "engines read a 2-D bands x pixels (or pixels x bands) matrix: write one with "
                            "`mfcli convert`, or use --engine memory")
        if plan.nodata is not None:
            raise DataError(f"'{plan.variable}' of '{path}' declares nodata pixels (value {plan.nodata:g}); the "
                            "stream and dask engines factorize every pixel and cannot leave them out: use "
                            "--engine memory")
        if isinstance(container, SingleArrayContainer):
            source = NpySource(path, transposed=plan.transposed, scale=plan.scale)
        else:  # h5py sees a MATLAB v7.3 array transposed
            source = H5Source(path, plan.variable, transposed=plan.transposed != container.matlab, scale=plan.scale)
    dataset.sha256 = sha256_of(path)
    return dataset, source


def _open_streamable(path: str, fmt: str | None) -> Container:
    """A container of ``path`` that reads nothing until asked: HDF5 (MATLAB v7.3 included), or a
    ``.npy`` mapped from disk. Any other format: an InputError saying what to do."""
    if not os.path.isfile(path):
        return open_container(path, fmt)  # its one-line error for missing, folder, unreadable
    kind = format_from_path(path, fmt)
    if kind == "mat" and sniff_format(path) in ("mat73", "h5"):
        kind = "mat73"
    if kind not in STREAMABLE_FORMATS:
        raise InputError(f"the stream and dask engines read HDF5, MATLAB v7.3 and .npy files, not {kind} "
                         f"('{path}'); use --engine memory, or convert it first: mfcli convert {path} OUT.h5")
    if kind != "npy":
        return open_container(path, kind)
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(f"cannot read '{path}' as npy ({reason}); the file may be corrupt or truncated") from None
    return SingleArrayContainer(path, array, "npy")


def describe_container(container: Container, source: str, already_read: dict[str, Any] | None = None
                       ) -> dict[str, Any]:
    """Every array of an open container with shape, dtype, and (up to a size) range and counts of
    NaN, Inf and negative values. ``already_read``: arrays the caller has read, by name (not
    read again)."""
    already_read = already_read or {}
    out = []
    for name, info in container.variables().items():
        entry: dict[str, Any] = {"name": name, "shape": list(info.shape), "dtype": str(info.dtype)}
        if getattr(container, "sparse", False):
            entry.update(sparse_counts(container.read_sparse(name)))
        elif info.numeric and 0 < info.size <= DESCRIBE_MAX_SIZE:
            values = already_read[name] if name in already_read else container.read(name)
            entry.update(value_counts(np.asarray(values)))
        out.append(entry)
    return {"source": source, "format": container.format, "variables": out}


def value_counts(values: np.ndarray) -> dict[str, Any]:
    """min/max of the finite values and the number of NaN, Inf and negative values."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        n_nan = int(np.count_nonzero(np.isnan(values)))
        n_inf = int(np.count_nonzero(np.isinf(values)))
        finite = values[np.isfinite(values)] if n_nan or n_inf else values
    else:
        n_nan = n_inf = 0
        finite = values
    return {
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
        "nan": n_nan,
        "inf": n_inf,
        "nonfinite": n_nan + n_inf,
        "negative": int(np.count_nonzero(finite < 0)) if finite.dtype.kind != "b" else 0,
    }


def sparse_counts(matrix) -> dict[str, Any]:
    """:func:`value_counts` of a scipy.sparse matrix from its stored values (the others are
    zeros), with its storage: ``sparse`` (csr, csc, coo...), ``nnz`` and ``density``."""
    counts = value_counts(matrix.data)
    size = matrix.shape[0] * matrix.shape[1]
    if matrix.nnz < size:  # implicit zeros
        counts["min"] = 0.0 if counts["min"] is None else min(counts["min"], 0.0)
        counts["max"] = 0.0 if counts["max"] is None else max(counts["max"], 0.0)
    return {**counts, "sparse": matrix.format, "nnz": int(matrix.nnz), "density": matrix.nnz / size if size else 0.0}


def describe_file(spec: str, fmt: str | None = None) -> dict[str, Any]:
    """Every array of a file with shape, dtype, range and NaN/Inf counts (for ``mfcli info``)."""
    container, source, _, _ = open_spec(spec, fmt, digest=False)
    with container:
        return describe_container(container, source)
