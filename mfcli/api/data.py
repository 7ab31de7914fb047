"""Reading data as the CLI reads it (:func:`open_data`), any data as a Dataset of its own
(:func:`as_dataset`), and the checks and conversions every factorization makes before it runs."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from mfcli.api.common import READING_RULES, SILENT, Reporter, refuse_unknown

# A sparse matrix given to a model that needs dense data is densified up to this size, refused beyond.
DENSIFY_MAX_BYTES = 2 << 30
# Models that read X as a NumPy array (no DataMatrix path), so a sparse matrix is densified for them.
DENSE_MODELS = ("minvol", "edaa")


def parse_image_shape(value) -> tuple[int, int] | None:
    """``"307x307"``, ``"307,307"`` or ``(307, 307)`` as (rows, cols); a ParameterError otherwise."""
    from mfcli.errors import ParameterError

    if value is None:
        return None
    if isinstance(value, str):
        try:
            rows, cols = (int(v) for v in value.lower().replace(",", "x").split("x"))
        except ValueError:
            raise ParameterError(f"image_shape '{value}' is not ROWSxCOLS, e.g. 307x307") from None
    else:
        try:
            rows, cols = (int(v) for v in value)
        except (TypeError, ValueError):
            raise ParameterError(f"image_shape {value!r} is not (rows, cols), e.g. (307, 307)") from None
    if rows < 1 or cols < 1:
        raise ParameterError(f"image_shape {value!r}: rows and columns must be positive")
    return rows, cols


def open_data(spec: str | os.PathLike, *, reporter: Reporter | None = None, keep_sparse: bool = True,
              **reading_rules: Any):
    """Read ``spec`` into a :class:`~mfcli.dataset.Dataset` (features x samples) by the CLI's rules.

    ``spec``: ``FILE``, ``FILE:VAR``, ``FILE:FORMAT``, ``sample:NAME`` or ``-:FORMAT`` (stdin).
    Reading rules (the CLI's options): ``variable``, ``format``, ``layout`` (auto, matrix, cube,
    cube-bands-first, bands-x-pixels, pixels-x-bands), ``order`` (pixel order F or C),
    ``image_shape`` ("ROWSxCOLS" or a pair), ``transpose``, ``dtype`` (float32/float64),
    ``wavelengths`` (a file of one wavelength per band), ``engine`` (memory, stream, dask:
    X then stays in the file, read block by block), ``chunk_size``, ``scheduler``, ``device``
    (cpu, cuda), ``keep_nodata``. A scipy.sparse ``.npz`` file read as a plain matrix stays
    sparse unless ``keep_sparse=False``. ``reporter``: where notes go (default: nowhere).
    """
    refuse_unknown(reading_rules, READING_RULES, "open_data")
    from mfcli.errors import ParameterError
    from mfcli.io.load import load_dataset

    reporter = reporter or SILENT
    rules = dict(reading_rules)
    engine = rules.get("engine") or "memory"
    device = rules.get("device") or "cpu"
    scheduler, chunk_size = rules.get("scheduler"), rules.get("chunk_size")
    if scheduler and engine != "dask":
        raise ParameterError("--scheduler applies to --engine dask")
    if chunk_size and engine == "memory":
        raise ParameterError("--chunk-size applies to --engine stream or dask")
    if device != "cpu" and engine != "memory":
        raise ParameterError(f"--device {device} applies to --engine memory (the stream and dask engines run on CPUs)")
    options = {"variable": rules.get("variable"), "fmt": rules.get("format"), "layout": rules.get("layout") or "auto",
               "order": rules.get("order"), "transpose": bool(rules.get("transpose")),
               "image_shape": parse_image_shape(rules.get("image_shape")), "dtype": rules.get("dtype")}
    spec = os.fspath(spec)
    if engine == "memory":
        if device != "cpu":
            from mfcli.engines.gpu import check_device

            check_device(device)
        dataset = load_dataset(spec, keep_nodata=bool(rules.get("keep_nodata")), keep_sparse=keep_sparse, **options)
        verb = "Read"
        if device != "cpu":
            from mfcli.engines.gpu import TorchMatrix

            dataset.X = TorchMatrix(densify(dataset.X, reporter), device)
            verb = f"Read (X on {device})"
    else:
        dataset = _open_out_of_core(spec, engine, chunk_size, scheduler, options, reporter)
        where = f", scheduler {scheduler}" if scheduler else ""
        verb = f"Opened (--engine {engine}, blocks of {dataset.X.chunk_size} columns{where})"
    if rules.get("wavelengths"):
        from mfcli.io.wavelengths import apply_wavelengths_file

        apply_wavelengths_file(dataset, os.fspath(rules["wavelengths"]))
    shape = f"{dataset.n_features} x {dataset.n_samples}"
    image = f", image {dataset.image_shape[0]}x{dataset.image_shape[1]} ({dataset.pixel_order} order)" \
        if dataset.image_shape else ""
    if dataset.n_nodata_pixels:
        image += f", {dataset.n_nodata_pixels} nodata pixels left out"
    reporter.info(f"{verb} {dataset.source}: {shape} {dataset.X.dtype}{image}")
    if dataset.georeference is not None:
        reporter.info(f"Georeference: {dataset.georeference.summary()}")
    for note in dataset.notes:
        reporter.detail(f"  {note}")
    return dataset


def _open_out_of_core(spec: str, engine: str, chunk_size, scheduler, options: dict, reporter: Reporter):
    """The Dataset of ``spec`` with X the stream/dask engine's DataMatrix over the file (not read)."""
    from mfcli.engines import open_matrix
    from mfcli.io.load import open_lazy

    if engine == "dask":
        from mfcli.engines.dask import import_dask

        import_dask()  # says how to install it before anything else
    dataset, source = open_lazy(spec, **options)
    client = None
    if scheduler:
        from mfcli.engines.dask import connect

        client = connect(scheduler)
        reporter.on_client(client)
    dataset.X = open_matrix(source, engine, dtype=options["dtype"], chunk_size=chunk_size, client=client)
    return dataset


def as_dataset(data, *, reporter: Reporter | None = None, **reading_rules: Any):
    """``data`` as a Dataset of its own (never the caller's object): a spec string or path is
    read with :func:`open_data`; a Dataset is copied (shallow: X is shared until something
    would change it); a NumPy array or scipy.sparse matrix (features x samples) is wrapped,
    integers as float64 and ``dtype`` applied. Reading rules apply to spec strings only."""
    import numpy as np

    from mfcli.dataset import Dataset
    from mfcli.errors import DataError, ParameterError
    from mfcli.models.matrix import is_sparse

    if isinstance(data, (str, os.PathLike)):
        return open_data(data, reporter=reporter, **reading_rules)
    dtype = reading_rules.pop("dtype", None)
    given = {name for name, value in reading_rules.items() if value not in (None, False, "auto", "memory", "cpu")}
    if given:
        raise ParameterError(f"{', '.join(sorted(given))} apply to data read from a file; give a spec string "
                             "(or read it with mfcli.open_data)")
    if isinstance(data, Dataset):
        dataset = dataclasses.replace(data, notes=list(data.notes), extras=dict(data.extras))
    elif is_sparse(data) or isinstance(data, np.ndarray) or hasattr(data, "__array__"):
        X = data if is_sparse(data) else np.asarray(data)
        if X.ndim != 2:
            raise DataError(f"the data must be a 2-D matrix (features x samples), got shape {X.shape}")
        if X.dtype.kind not in "biuf":
            raise DataError(f"the data must be numeric, got dtype {X.dtype}")
        dataset = Dataset(X=X, source="", layout="matrix")
    else:
        raise ParameterError(f"data must be a spec string, a Dataset, a NumPy array or a scipy.sparse matrix, "
                             f"not {type(data).__name__}")
    X = dataset.X
    if hasattr(X, "dtype") and (dtype is not None or np.dtype(X.dtype).kind in "biu"):
        target = np.dtype(dtype or "float64")
        if target != X.dtype:
            if is_sparse(X) or isinstance(X, np.ndarray):
                dataset.X = X.astype(target)
            elif dtype is not None:
                raise ParameterError(f"dtype applies to data in memory; open the file with dtype={dtype}")
    return dataset


def densify(X, reporter: Reporter, why: str = ""):
    """X as a NumPy array: a sparse matrix densified (with a note), up to DENSIFY_MAX_BYTES."""
    import numpy as np

    from mfcli.errors import DataError
    from mfcli.models.matrix import is_sparse

    if not is_sparse(X):
        return X
    size = X.shape[0] * X.shape[1] * np.dtype(X.dtype).itemsize
    if size > DENSIFY_MAX_BYTES:
        raise DataError(f"{why or 'this step'} needs dense data, and this {X.shape[0]} x {X.shape[1]} sparse matrix "
                        f"would take {size / 2 ** 30:.1f} GiB dense; factorize it with a model of the NMF family "
                        "(nmf, onmf, aonmf, semi-nmf, sparse-nmf, nsnmf, aa, svd), which read it sparse")
    reporter.info(f"Densified the {X.shape[0]} x {X.shape[1]} sparse matrix ({size / 2 ** 20:.0f} MiB): "
                  f"{why or 'this step'} needs dense data")
    return X.toarray()


def check_input(dataset, model: str, nonnegative: bool = True, clip_negative: bool = False,
                reporter: Reporter | None = None):
    """Refuse empty data, NaN/Inf, (for nonnegative models) negative values and unworkable
    magnitudes with one-line errors; with ``clip_negative`` set negatives to 0 (on a copy) and
    say how many. Returns the dataset."""
    from mfcli.validation import check_factorization_input

    reporter = reporter or SILENT
    what = f"the data of {dataset.source}" if dataset.source else "the data"
    if hasattr(dataset.X, "scan"):  # an engine: one pass where the data are, clipping as they are read
        from mfcli.validation import check_value_counts

        dataset.X.clip_negative = bool(nonnegative and clip_negative)
        n_clipped = check_value_counts(dataset.X.scan(), model, nonnegative=nonnegative,
                                       clip_negative=clip_negative, what=what, dtype=dataset.X.dtype,
                                       size=dataset.X.shape[0] * dataset.X.shape[1])
    else:
        dataset.X, n_clipped = check_factorization_input(dataset.X, model, nonnegative=nonnegative,
                                                         clip_negative=clip_negative, what=what)
    if n_clipped:
        message = f"set {n_clipped} negative values to 0 (--clip-negative)"
        dataset.notes.append(message)
        reporter.warn(message)
    return dataset


def checked_matrix(dataset, spec):
    """After :func:`check_input`: the data as the model's solver takes them. A NumPy array goes
    to a model that reads X through :class:`~mfcli.models.matrix.DataMatrix` already wrapped
    (the solver trusts a DataMatrix as checked, instead of checking X again, two more passes
    over it), and the wrapper keeps the column norms for what follows (unmix's finishing)."""
    import numpy as np

    from mfcli.models.matrix import as_data_matrix

    if spec.any_engine and isinstance(dataset.X, np.ndarray):
        return as_data_matrix(dataset.X)
    return dataset.X


def check_engine(spec, data, rules: dict) -> None:
    """Refuse a model that needs X in memory as a NumPy array on another engine (before reading)."""
    from mfcli.dataset import Dataset
    from mfcli.errors import ParameterError

    if isinstance(data, Dataset):
        on_engine = hasattr(data.X, "scan") or type(data.X).__name__ == "TorchMatrix"
    else:
        on_engine = (rules.get("engine") or "memory") != "memory" or (rules.get("device") or "cpu") != "cpu"
    if not spec.any_engine and on_engine:
        raise ParameterError(f"model {spec.name} needs the data in memory as a NumPy array; "
                             "use --engine memory --device cpu")


def model_params(spec, given: dict[str, Any]) -> dict[str, Any]:
    """The model's own parameters of ``given`` checked and converted as ``--param NAME=VALUE``
    is (the same names, ranges and choices)."""
    pairs = []
    for name, value in given.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, float) and value.is_integer() and name in spec.params \
                and spec.params[name].type is int:
            value = int(value)
        pairs.append(f"{name}={value}")
    return spec.parse_params(pairs)


def read_matrix(spec, factor: str):
    """A start ``W``/``H``: an array as given, a data file (as stored, no layout guessing) or the
    factor ``factor`` ("W" or "H") of a result file's first layer."""
    import numpy as np

    from mfcli.io import load_dataset
    from mfcli.io.result import read_result, result_path_of

    if not isinstance(spec, (str, os.PathLike)):
        return np.asarray(spec)
    spec = os.fspath(spec)
    path = result_path_of(spec)
    if path is not None:
        chosen = read_result(path).layer(1)
        return np.asarray(chosen.W if factor == "W" else chosen.H)
    return load_dataset(spec, layout="matrix").X


def as_working_dtype(matrix, dtype):
    """A matrix read from a file (any numeric type) as ``dtype``; other values as they are (the
    core then says what is wrong with them)."""
    import numpy as np

    matrix = np.asarray(matrix)
    if matrix.dtype.kind in "biuf":
        return matrix.astype(dtype, copy=False)
    return matrix


def finish_result(result, dataset, model: str, extra_params: dict[str, Any], command_line: list[str] | None = None):
    """Attach input metadata, provenance and the run's parameters to a Result."""
    from mfcli.result import input_metadata, make_provenance

    result.model = model
    result.input = input_metadata(dataset)
    result.provenance = make_provenance(command_line)
    result.params = {**result.params, **extra_params}
    return result
