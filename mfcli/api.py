"""mfcli's Python API: every workflow of the command line, callable from a notebook.

Each ``mfcli`` command parses its options, calls one function here and prints; the function
does the work (read with the reading rules, validate, solve, derive abundances, write a
folder) and says nothing unless given a ``reporter``. Parameters have the command line's
names (``--max-iter`` is ``max_iter``, ``-p theta=0.3`` is ``theta=0.3``); an unknown name
is a :class:`~mfcli.errors.ParameterError` listing the valid ones.

>>> import mfcli
>>> result = mfcli.factorize("sample:samson", 3, model="nmf", init="spa", seed=0)
>>> result.save("samson.h5")                                      # doctest: +SKIP

``data`` is a spec string (``FILE``, ``FILE:VAR``, ``sample:NAME``), a
:class:`~mfcli.dataset.Dataset` (:func:`open_data`), a NumPy array (features x samples, as
the CLI reads a matrix: bands x pixels) or a scipy.sparse matrix, which the NMF family
factorizes without densifying it (:class:`~mfcli.models.matrix.SparseMatrix`). Nothing given
is modified: clipping, dtype conversion and densifying work on copies.

Heavy modules (h5py, matplotlib, the models) are imported inside the functions, so
``import mfcli`` stays light.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["Reporter", "open_data", "factorize", "unmix", "complete", "Completion", "evaluate", "load_result",
           "save_result", "write_unmix_folder", "save_pictures", "READING_RULES", "DENSIFY_MAX_BYTES"]

# The reading rules of open_data (the CLI's data and engine options, by their option names).
READING_RULES = ("variable", "format", "layout", "order", "image_shape", "transpose", "dtype", "wavelengths",
                 "engine", "chunk_size", "scheduler", "device", "keep_nodata")
# A sparse matrix given to a model that needs dense data is densified up to this size, refused beyond.
DENSIFY_MAX_BYTES = 2 << 30
# Stopping rules of the iterative models (only those given are passed on: models keep their defaults).
STOPPING = ("max_iter", "tol", "target_error", "max_time")
# Models that read X as a NumPy array (no DataMatrix path), so a sparse matrix is densified for them.
_DENSE_MODELS = ("minvol", "edaa")


class Reporter:
    """Where the API's notes and progress go. The default says nothing (warnings go through
    :mod:`warnings`); the CLI passes one that prints to its stderr console."""

    def info(self, message: str) -> None:
        """A line a user wants to see (what was read, what runs)."""

    def detail(self, message: str) -> None:
        """A line of detail (shown by the CLI with -v)."""

    def warn(self, message: str) -> None:
        warnings.warn(message, UserWarning, stacklevel=3)

    def progress(self, description: str, total: int | None):
        """A context manager that is also the core's ``callback(iteration, relative_error, **info)``."""
        return _NoProgress()

    def on_client(self, client) -> None:
        """A dask.distributed client was opened for a scheduler (the CLI closes it when the
        command ends; here it closes when no longer referenced)."""


class _NoProgress:
    def __enter__(self):
        return self

    def __call__(self, iteration: int, relative_error: float | None = None, **info: Any) -> None:
        pass

    def __exit__(self, *exc) -> None:
        pass


_SILENT = Reporter()


def _refuse_unknown(given: dict[str, Any], valid: Sequence[str], what: str, reading_rules: bool = False) -> None:
    """A ParameterError naming the unknown parameters of ``given`` and listing the valid ones
    (and, with ``reading_rules``, the reading rules of a spec string)."""
    unknown = sorted(set(given) - set(valid) - (set(READING_RULES) if reading_rules else set()))
    if unknown:
        from mfcli.errors import ParameterError

        names = ", ".join(repr(name) for name in unknown)
        rules = f"; and for a spec string the reading rules {', '.join(READING_RULES)}" if reading_rules else ""
        raise ParameterError(f"{what} takes no parameter {names}; its parameters: {', '.join(sorted(set(valid)))}"
                             + rules)


# -- reading -----------------------------------------------------------------------------------

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
    _refuse_unknown(reading_rules, READING_RULES, "open_data")
    from mfcli.errors import ParameterError
    from mfcli.io.load import load_dataset

    reporter = reporter or _SILENT
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

            dataset.X = TorchMatrix(_dense(dataset.X, reporter), device)
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


def _dense(X, reporter: Reporter, why: str = ""):
    """X as a NumPy array: a sparse matrix densified (with a note), up to DENSIFY_MAX_BYTES."""
    import numpy as np

    from mfcli.errors import DataError
    from mfcli.models.matrix import is_sparse

    if not is_sparse(X):
        return X
    size = X.shape[0] * X.shape[1] * np.dtype(X.dtype).itemsize
    if size > DENSIFY_MAX_BYTES:
        raise DataError(f"{why or 'this step'} needs dense data, and this {X.shape[0]} x {X.shape[1]} sparse matrix "
                        f"would take {size / 2 ** 30:.1f} GiB dense; factorize it with a model of the NMF family (nmf, onmf, "
                        "aonmf, semi-nmf, sparse-nmf, nsnmf, aa, svd), which read it sparse")
    reporter.info(f"Densified the {X.shape[0]} x {X.shape[1]} sparse matrix ({size / 2 ** 20:.0f} MiB): "
                  f"{why or 'this step'} needs dense data")
    return X.toarray()


def check_input(dataset, model: str, nonnegative: bool = True, clip_negative: bool = False,
                reporter: Reporter | None = None):
    """Refuse empty data, NaN/Inf, (for nonnegative models) negative values and unworkable
    magnitudes with one-line errors; with ``clip_negative`` set negatives to 0 (on a copy) and
    say how many. Returns the dataset."""
    from mfcli.validation import check_factorization_input

    reporter = reporter or _SILENT
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


# -- factorize ---------------------------------------------------------------------------------

FACTORIZE_PARAMS = ("loss", "init", "init_w", "init_h", *STOPPING, "seed", "dtype", "clip_negative")


def factorize(data, rank: int, model: str = "nmf", *, reporter: Reporter | None = None, **params: Any):
    """Factorize ``data`` (features x samples) as X ~= W H with a model of the registry, as
    ``mfcli factorize`` does, and return the :class:`~mfcli.result.Result` (not written:
    :meth:`Result.save`).

    Parameters (the CLI's names): ``loss`` (fro, kl, is, beta=B), ``init`` (the model's
    methods), ``init_w``/``init_h`` (arrays, data files or result files), ``max_iter``,
    ``tol``, ``target_error``, ``max_time``, ``seed`` (0), ``dtype``, ``clip_negative``, the
    model's own parameters (``mfcli factorize --help`` lists them, e.g. ``theta`` for nsnmf),
    and for a spec string the reading rules of :func:`open_data`. A scipy.sparse matrix (or
    ``.npz`` file) stays sparse for the models that read X through products (NMF, ONMF, AONMF,
    semi-NMF, sparse NMF, nsNMF, AA, SVD); minvol and edaa densify it, with a note.
    """
    from mfcli.errors import ParameterError
    from mfcli.models import registry

    spec = registry.get_model(model, "single")
    reporter = reporter or _SILENT
    own = {name: value for name, value in params.items() if name in spec.params}
    rules = {name: value for name, value in params.items() if name in READING_RULES and name != "dtype"}
    rest = {name: value for name, value in params.items() if name not in own and name not in rules}
    _refuse_unknown(rest, [*FACTORIZE_PARAMS, *spec.params], f"model {spec.name}", reading_rules=True)
    rank = _check_rank(rank)
    loss = spec.check_loss(rest.get("loss") or "fro")
    extra = model_params(spec, own)
    init, init_w, init_h = rest.get("init"), rest.get("init_w"), rest.get("init_h")
    if not spec.inits and (init or init_w is not None or init_h is not None):
        raise ParameterError(f"model {spec.name} takes no initialization (--init/--init-w/--init-h)")
    if init is not None and init not in spec.all_inits:
        raise ParameterError(f"model {spec.name} takes --init {', '.join(spec.all_inits)}, not '{init}'")
    seed = _check_seed(rest.get("seed", 0))

    check_engine(spec, data, rules)
    dataset = as_dataset(data, reporter=reporter, dtype=rest.get("dtype"), **rules)
    if spec.name in _DENSE_MODELS:
        dataset.X = _dense(dataset.X, reporter, f"model {spec.name}")
    check_input(dataset, spec.name, nonnegative=spec.nonnegative, clip_negative=bool(rest.get("clip_negative")),
                reporter=reporter)
    kwargs = {**{key: rest[key] for key in STOPPING if rest.get(key) is not None}, "seed": seed, **extra}
    if spec.inits:
        kwargs["init"] = init or spec.default_init
        # a given start is used in the data's working precision (the core refuses a mismatch)
        if init_w is not None:
            kwargs["W"] = as_working_dtype(read_matrix(init_w, "W"), dataset.X.dtype)
        if init_h is not None:
            kwargs["H"] = as_working_dtype(read_matrix(init_h, "H"), dataset.X.dtype)
    if spec.losses != ("fro",):
        kwargs["loss"] = loss
    start = "W given" if init_w is not None else kwargs.get("init")
    if isinstance(init_w, (str, os.PathLike)):
        start = f"W from {os.fspath(init_w)}"
    if init_h is not None:
        start = f"{start}, H from {os.fspath(init_h) if isinstance(init_h, (str, os.PathLike)) else 'given'}"
    reporter.info(f"Factorizing with {spec.name}, rank {rank}"
                  + (f", loss {loss}" if loss != "fro" else "") + (f", init {start}" if start else ""))
    with reporter.progress(f"{spec.name} r={rank}", kwargs.get("max_iter", 200)) as progress:
        result = spec.run(dataset.X, rank, callback=progress, **kwargs)
    finish_result(result, dataset, spec.name, {"model": spec.name, "loss": loss, **extra},
                  ["python", "mfcli.factorize"])
    return result


def _check_rank(rank) -> int:
    from mfcli.errors import ParameterError

    if isinstance(rank, bool) or not isinstance(rank, (int,)) and not (hasattr(rank, "__index__")):
        raise ParameterError(f"rank must be an integer >= 1, got {rank!r}")
    if int(rank) < 1:
        raise ParameterError(f"rank must be an integer >= 1, got {rank!r}")
    return int(rank)


def _check_seed(seed) -> int:
    from mfcli.errors import ParameterError

    if isinstance(seed, bool) or not hasattr(seed, "__index__") or not 0 <= int(seed) <= 2 ** 63 - 1:
        raise ParameterError(f"seed must be an integer from 0 to 2^63 - 1, got {seed!r}")
    return int(seed)


# -- unmix -------------------------------------------------------------------------------------

UNMIX_PARAMS = ("init", *STOPPING, "seed", "dtype", "clip_negative", "refine", "abundances", "truth")
ABUNDANCES = ("nnls", "fcls", "none")
REFINE_CHOICES = ("auto", "edaa", "none")
HARD_CLUSTER_MODELS = ("deep-onmf", "h2nmf")


def automatic_init(spec, dataset) -> str:
    """``init="auto"``: SPA for images when the model's default is ONMF restarts, else its default.

    Restarts keep the start of lowest ONMF objective, which on a hyperspectral image prefers
    splitting the large materials to isolating small distinct ones; SPA's starts are pure
    pixels, the vertices of the data cone, which is what unmixing looks for (Gillis' practice
    for ONMF on images). For other data the objective is what the user asks for.
    benchmarks/bench_unmix.py prints both inits' spectral angles on Urban (metal roofs included).
    """
    if dataset.is_image and spec.default_init == "restarts" and "spa" in spec.all_inits:
        return "spa"
    return spec.default_init


def refinement_method(choice: str, model: str, out_of_core: bool, is_image: bool = True) -> str:
    """``refine``: auto is edaa for the hard clusterings of an image (their endmembers are
    centroids of mixed pixels; benchmarks/bench_unmixing.py measures the refined layers against
    them) with the data in memory, none otherwise (a matrix of ratings has clusters of users,
    not mixed pixels). edaa out of core is refused (it samples pixels at random)."""
    from mfcli.errors import ParameterError

    if choice not in REFINE_CHOICES:
        raise ParameterError(f"refine must be one of {', '.join(REFINE_CHOICES)}, not {choice!r}")
    if choice == "auto":
        return "edaa" if model in HARD_CLUSTER_MODELS and not out_of_core and is_image else "none"
    if choice == "edaa" and out_of_core:
        raise ParameterError("--refine edaa needs the data in memory; use --engine memory or --refine none")
    return choice


def unmix(data, ranks: Sequence[int], model: str = "deep-onmf", *, reporter: Reporter | None = None,
          **params: Any):
    """Deep (hierarchical) unmixing of ``data`` (bands x pixels) with layers of ranks ``ranks``
    (first layer first, non-increasing), as ``mfcli unmix`` does: the deep factorization, the
    endmembers refined into materials (``refine``: auto, edaa, none), the soft abundances of
    every layer (``abundances``: nnls, fcls, none) and, with ``truth`` (specs as for
    :func:`evaluate`), every layer's estimates named after the materials they match. Returns
    the :class:`~mfcli.result.Result`; :func:`write_unmix_folder` writes the folder.

    Parameters (the CLI's names): ``init`` ("auto": SPA for images with deep-onmf),
    ``max_iter``, ``tol``, ``target_error``, ``max_time``, ``seed``, ``dtype``,
    ``clip_negative``, ``refine``, ``abundances``, ``truth``, the model's own parameters
    (``mfcli unmix --help``), and for a spec string the reading rules of :func:`open_data`.
    On the stream/dask engines the abundances are computed while the folder is written
    (give the Dataset to :func:`write_unmix_folder`).
    """
    import time

    from mfcli.errors import ParameterError
    from mfcli.models import registry
    from mfcli.validation import check_ranks

    started = time.perf_counter()
    spec = registry.get_model(model, "deep")
    reporter = reporter or _SILENT
    own = {name: value for name, value in params.items() if name in spec.params}
    rules = {name: value for name, value in params.items() if name in READING_RULES and name != "dtype"}
    rest = {name: value for name, value in params.items() if name not in own and name not in rules}
    _refuse_unknown(rest, [*UNMIX_PARAMS, *spec.params], f"model {spec.name}", reading_rules=True)
    extra = model_params(spec, own)
    init = rest.get("init") or "auto"
    if init != "auto" and init not in spec.all_inits:
        raise ParameterError(f"model {spec.name} takes --init auto, {', '.join(spec.all_inits)}, not '{init}'")
    abundances = rest.get("abundances") or "nnls"
    if abundances not in ABUNDANCES:
        raise ParameterError(f"abundances must be one of {', '.join(ABUNDANCES)}, not {abundances!r}")
    refine = rest.get("refine") or "auto"
    seed = _check_seed(rest.get("seed", 0))
    try:
        ranks = [int(r) for r in ranks]
    except (TypeError, ValueError):
        raise ParameterError(f"ranks must be a list of integers, e.g. [7, 6, 4, 2], not {ranks!r}") from None

    check_engine(spec, data, rules)
    dataset = as_dataset(data, reporter=reporter, dtype=rest.get("dtype"), **rules)
    dataset.X = _dense(dataset.X, reporter, "unmixing")
    check_input(dataset, spec.name, nonnegative=spec.nonnegative, clip_negative=bool(rest.get("clip_negative")),
                reporter=reporter)
    ranks = check_ranks(ranks, dataset.X.shape)
    truth_specs = _specs(rest.get("truth"))
    truth = _read_truth(truth_specs, dataset, reporter) if truth_specs else None  # before the run: fail fast
    out_of_core = hasattr(dataset.X, "scan")
    kwargs = {**{key: rest[key] for key in STOPPING if rest.get(key) is not None}, "seed": seed, **extra}
    kwargs["init"] = automatic_init(spec, dataset) if init == "auto" else init
    reporter.info(f"Unmixing with {spec.name}, ranks {','.join(map(str, ranks))}, init {kwargs['init']}")
    with reporter.progress(spec.name, kwargs.get("max_iter", 100)) as progress:
        result = spec.run(dataset.X, ranks, callback=progress, **kwargs)
    refinement = refinement_method(refine, spec.name, out_of_core, dataset.is_image)
    if refine == "auto" and refinement == "none" and out_of_core and spec.name in HARD_CLUSTER_MODELS:
        reporter.info(f"Endmembers not refined into materials: --refine needs the data in memory (--engine "
                      f"{dataset.X.engine})")
    if refinement != "none":
        from mfcli.models.refine import refine_layers

        with reporter.progress("refining endmembers", 25) as progress:
            refine_layers(dataset.X, result.layers, method=refinement, seed=seed, callback=progress)
    if abundances != "none" and not out_of_core:
        from mfcli.models.deep import layer_abundances

        layer_abundances(result, dataset.X, abundances)
    if refinement != "none":
        from mfcli.models.refine import refined_coefficients

        refined_coefficients(dataset.X, result.layers)
    elif abundances != "none":  # out of core: computed block by block while the folder is written
        for layer in result.layers:
            layer.attrs["abundances"] = abundances
    finish_result(result, dataset, spec.name, {"model": spec.name, "abundances": abundances, "refine": refinement,
                                               **extra}, ["python", "mfcli.unmix"])
    if truth is not None:
        _name_after_truth(result, truth, truth_specs, reporter)
    result.seconds = time.perf_counter() - started
    return result


def _specs(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [os.fspath(value)]
    return [os.fspath(v) for v in value]


def _read_truth(truth_specs, dataset, reporter: Reporter):
    """The ground truth oriented for the data (as `mfcli evaluate` reads it)."""
    from mfcli.io.truth import load_truth

    truth = load_truth(list(truth_specs), n_bands=dataset.n_features, n_pixels=dataset.n_samples,
                       image_shape=dataset.image_shape, pixel_order=dataset.pixel_order)
    for note in truth.notes:
        reporter.detail(f"  {note}")
    return truth


def _name_after_truth(result, truth, truth_specs, reporter: Reporter) -> None:
    """Label every layer's estimates with the ground-truth materials they match (as evaluate)."""
    from mfcli.plotting.truth import label_with_truth

    labels = label_with_truth(result, truth)
    how = "spectral angle" if truth.endmembers is not None else "abundance RMSE"
    named = sum(label is not None for names in labels for label in names)
    reporter.info(f"Named {named} estimates after the materials of {', '.join(truth_specs)} (matched on {how}, "
                  "as mfcli evaluate matches them)")


# -- writing -----------------------------------------------------------------------------------

def load_result(path: str | os.PathLike):
    """The :class:`~mfcli.result.Result` of a result file (``result.h5`` of an unmix folder
    too: give the folder or the file)."""
    from mfcli.io.result import read_result

    path = Path(path)
    if path.is_dir() and (path / "result.h5").exists():
        path = path / "result.h5"
    return read_result(path)


def save_result(result, path: str | os.PathLike, force: bool = False) -> Path:
    """Write ``result`` to the HDF5 file ``path`` atomically (a temporary file renamed into
    place); an existing file is replaced only with ``force``. Same as ``result.save(path)``."""
    from mfcli.io.atomic import check_output_path
    from mfcli.io.result import write_result

    check_output_path(os.fspath(path), force)
    return write_result(result, path, force=force)


UNMIX_FILES = ("result.h5", "hierarchy.json", "hierarchy.nwk", "hierarchy.dot")


def write_unmix_folder(result, folder: str | os.PathLike, *, pictures=True, force: bool = False,
                       data=None, reporter: Reporter | None = None) -> list[str]:
    """Write the folder ``mfcli unmix`` writes, atomically (built beside it, renamed into place;
    an existing folder is replaced only with ``force``): result.h5, the hierarchy as
    hierarchy.json, .nwk and .dot, and unless ``pictures=False`` the pictures of
    :func:`save_pictures` (or of ``pictures(result, folder)``, a function returning the names).
    ``data``: the Dataset of a stream/dask run whose abundances are computed block by block
    into result.h5 as it is written (no pictures then: the maps are not held in memory).
    Returns the names of the files written."""
    import json

    from mfcli.hierarchy import to_dot, to_json_dict, to_newick, tree_from_result
    from mfcli.io.atomic import atomic_directory, check_output_path
    from mfcli.io.result import result_writer

    reporter = reporter or _SILENT
    folder = os.fspath(folder)
    check_output_path(folder, force, kind="folder", marker="result.h5")
    engine_data = data.X if data is not None and hasattr(getattr(data, "X", None), "scan") else None
    tree = tree_from_result(result)
    with atomic_directory(folder, force=force, marker="result.h5") as where:
        with result_writer(result, where / "result.h5") as out:
            pending = [layer.attrs.get("abundances") for layer in result.layers
                       if layer.abundances is None and layer.attrs.get("abundances") not in (None, "none")]
            if engine_data is not None and pending:
                _write_abundances_by_blocks(out, result, engine_data, pending[0], reporter)
        (where / "hierarchy.json").write_text(json.dumps(to_json_dict(tree)) + "\n")
        (where / "hierarchy.nwk").write_text(to_newick(tree) + "\n")
        (where / "hierarchy.dot").write_text(to_dot(tree))
        if engine_data is not None and pictures:
            reporter.info(f"No pictures with --engine {engine_data.engine} (the abundance maps are not held in "
                          f"memory); draw them from {folder}/result.h5 with mfcli plot-abundances, "
                          "plot-endmembers, plot-tree, plot-convergence")
        draw = pictures if callable(pictures) else (lambda result, where: save_pictures(result, where,
                                                                                    reporter=reporter))
        drawn = draw(result, where) if pictures and engine_data is None else []
    return [*UNMIX_FILES, *drawn]


def _write_abundances_by_blocks(out, result, data, method: str, reporter: Reporter) -> None:
    """Soft abundances of every layer's endmembers for X on a stream/dask engine: one pass over
    X, each block of columns solved (on a Dask worker where the block is) and written into the
    result file being written before the next, so no r x n abundance map is ever held whole."""
    import numpy as np

    from mfcli.engines import map_columns
    from mfcli.models.deep import soft_abundances

    bases = [np.asarray(layer.data_basis, dtype=data.dtype) for layer in result.layers]

    def solve(block):
        return [soft_abundances(basis, block, method) for basis in bases]

    writers = [out.layer_array(index, "abundances", (basis.shape[1], data.shape[1]), data.dtype)
               for index, basis in enumerate(bases, start=1)]
    with reporter.progress(f"abundances ({method})", data.shape[1]) as progress:
        for start, stop, maps in map_columns(data, solve):
            for writer, values in zip(writers, maps):
                writer.write(start, stop, values)
            progress(stop)


def save_pictures(result, folder: str | os.PathLike, *, reporter: Reporter | None = None) -> list[str]:
    """The pictures ``mfcli unmix`` draws, into the existing folder ``folder``: per-layer
    abundance maps and endmember spectra, the hierarchy and the convergence plot
    (:func:`mfcli.plotting.bundle.write_pictures`). A picture that does not apply (no image
    shape: no maps) is skipped with a note. Returns the file names written."""
    from mfcli.plotting.bundle import write_pictures

    reporter = reporter or _SILENT
    written, skipped = write_pictures(result, Path(folder))
    for note in skipped:
        reporter.detail(f"  no picture {note}")
    return [path.name for path in written]


# -- evaluate ----------------------------------------------------------------------------------

def evaluate(result, truth, layer: int | None = None, *, match: str | None = None, abundances: str = "auto",
             data=None, library=None, wavelengths=None, top: int = 3, reporter: Reporter | None = None) -> dict:
    """Score a result (a Result or a result file) against ground truth (``truth``: a spec or a
    list of two: endmembers and abundances), as ``mfcli evaluate --json``: the same dict
    (mean_sad, sad, armse, sre, matching, ...; :func:`mfcli.unmixing.evaluate.evaluate_unmixing`).
    ``layer``: 1-based layer of a deep result (default: the last). ``match``: sad or abundance.
    ``abundances``: auto, stored or fcls. ``data``: the data the result came from (default:
    its recorded input), for FCLS abundances. ``library``: a spectral library to label the
    endmembers with (``wavelengths``: the bands' wavelengths where the result has none)."""
    import numpy as np

    from mfcli.errors import ParameterError
    from mfcli.io.truth import load_truth_for_result
    from mfcli.summary import JSON_INDEX_BASE
    from mfcli.unmixing.evaluate import evaluate_unmixing

    reporter = reporter or _SILENT
    if abundances not in ("auto", "stored", "fcls"):
        raise ParameterError(f"abundances must be auto, stored or fcls, not {abundances!r}")
    if match not in (None, "sad", "abundance"):
        raise ParameterError(f"match must be sad or abundance, not {match!r}")
    path = None
    if isinstance(result, (str, os.PathLike)):
        path = os.fspath(result)
        result = load_result(path)
    layer = -1 if layer is None else int(layer)
    chosen = result.layer(layer)
    truth_specs = _specs(truth)
    ground = load_truth_for_result(truth_specs, result, layer)
    for note in ground.notes:
        reporter.info(f"  {note}")
    E_est = np.asarray(chosen.data_basis, dtype=np.float64)
    A_est, abundances_from, dataset = _abundances(result, chosen, abundances, data,
                                                  need=ground.abundances is not None, reporter=reporter)
    if abundances_from:
        reporter.info(f"  estimated abundances: {abundances_from}")
    document = evaluate_unmixing(E_est, A_est, ground.endmembers, ground.abundances, match=match,
                                 names=ground.material_names())
    document["abundances_from"] = abundances_from
    document["relative_error"] = chosen.relative_error if chosen.relative_error is not None \
        else result.relative_error
    document["fcls_relative_error"] = _fcls_relative_error(E_est, A_est, dataset, abundances_from)
    document["truth"] = {**ground.sources, "notes": ground.notes,
                         "endmembers_scaled_to_max_one": ground.endmembers_scaled_to_max_one}
    document["result"] = {"path": path, "model": result.model, "layer": result.layer_number(layer),
                          "rank": chosen.rank}
    document["index_base"] = JSON_INDEX_BASE
    if library is not None:
        document["library"] = _library_labels(library, result, E_est, top, wavelengths, reporter)
    return document


def _load_data(result, data, reporter: Reporter):
    """The data behind ``result``: ``data``, else its recorded input if it can still be read."""
    if data is not None and not isinstance(data, (str, os.PathLike)):
        dataset = as_dataset(data)
        dataset.X = _dense(dataset.X, reporter, "FCLS")
        return dataset
    spec = os.fspath(data) if data is not None else result.input.get("source")
    if not spec:
        return None
    if data is None and not (spec.startswith("sample:") or os.path.exists(spec)):
        return None
    variable = result.input.get("variable") if data is None else None
    dataset = open_data(spec, variable=variable, reporter=reporter, keep_sparse=False)
    if data is None:
        reporter.detail(f"  data from the result's recorded input {spec}")
    return dataset


def _abundances(result, chosen, source: str, data, need: bool, reporter: Reporter):
    """(abundances r x n, how they were obtained, dataset or None)."""
    import numpy as np

    from mfcli.errors import DataError
    from mfcli.models.nnls import fcls

    if chosen.abundances is not None and source != "fcls":
        return np.asarray(chosen.abundances, dtype=np.float64), "the layer's stored abundances", None
    coefficients = np.asarray(chosen.data_coefficients, dtype=np.float64)
    kind = (chosen.attrs or {}).get("coefficients")
    sums_to_one = coefficients.size and np.abs(coefficients.sum(axis=0) - 1).max() <= 1e-3 \
        and coefficients.min() >= -1e-6
    if source == "stored" or (source == "auto" and (kind in ("fcls", "nnls") or sums_to_one)):
        how = f"the layer's coefficients ({kind})" if kind else "the layer's coefficients"
        return coefficients, how, None
    dataset = _load_data(result, data, reporter) if (need or source == "fcls") else None
    if dataset is None:
        if source == "fcls":
            raise DataError("--abundances fcls needs the data: give --data INPUT (the result's recorded input "
                            f"{result.input.get('source')!r} cannot be read)")
        return coefficients, "the layer's coefficients (they do not sum to one; give --data for FCLS)", None
    basis = np.asarray(chosen.data_basis)
    if dataset.X.shape[0] != basis.shape[0] or dataset.X.shape[1] != coefficients.shape[1]:
        raise DataError(f"the data are {dataset.X.shape[0]} x {dataset.X.shape[1]} but the result's layer has "
                        f"{basis.shape[0]} bands and {coefficients.shape[1]} pixels; give the matching --data")
    return np.asarray(fcls(basis, dataset.X), dtype=np.float64), "FCLS of the data for the layer's endmembers", dataset


def _fcls_relative_error(E_est, A_est, dataset, abundances_from):
    """||X - E A||_F / ||X||_F for abundances computed here by FCLS, else None."""
    from mfcli.metrics import relative_error

    if dataset is not None and abundances_from and abundances_from.startswith("FCLS"):
        return relative_error(dataset.X, E_est, A_est)
    return None


def _library_labels(library_spec, result, E_est, top: int, wavelengths_path, reporter: Reporter):
    from mfcli.errors import DataError
    from mfcli.io.library import read_library
    from mfcli.io.wavelengths import check_band_count, read_wavelengths
    from mfcli.unmixing.library import closest_library_spectra

    if wavelengths_path:
        wavelengths = check_band_count(read_wavelengths(os.fspath(wavelengths_path)), E_est.shape[0],
                                       f"--wavelengths {wavelengths_path}")
    elif result.input.get("wavelengths") is not None and not result.input.get("wavelengths_nominal"):
        wavelengths = result.input.get("wavelengths")
    else:
        raise DataError("the result's input has no wavelengths, so library spectra cannot be resampled to its bands; "
                        "give the bands' wavelengths with --wavelengths FILE (nm or micrometres, one per band)")
    library = read_library(os.fspath(library_spec))
    reporter.info(f"  library {library.source}: {len(library)} spectra, "
                  f"{library.wavelengths_nm.min():.0f}-{library.wavelengths_nm.max():.0f} nm")
    labels = closest_library_spectra(E_est, wavelengths, library, top=top)
    return [[{"name": item["name"], "sad": item["sad"]} for item in row] for row in labels]


# -- complete ----------------------------------------------------------------------------------

# The hyperparameters of the completion models (the CLI's options), each with its valid range,
# and which models take which.
COMPLETION_PARAMS = {
    "rank": (int, 1, None), "reg": (float, 0, None), "reg_bias": (float, 0, None), "w0": (float, 0, None),
    "frequency_power": (float, -8.0, 8.0), "implicit": (bool, None, None), "alpha": (float, 0, None),
    "cg_steps": (int, 0, None), "epochs": (int, 1, None), "tol": (float, 0, None), "max_time": (float, 0, None),
    "lr": (float, 0, None), "batch_size": (int, 1, None), "hidden": (list, None, None), "device": (str, None, None),
}
COMPLETION_APPLIES = {
    "baseline": {"reg", "epochs", "tol", "max_time"},
    "als": {"rank", "reg", "reg_bias", "epochs", "tol", "max_time"},
    "wals": {"rank", "reg", "reg_bias", "w0", "frequency_power", "implicit", "alpha", "epochs", "tol", "max_time",
             "cg_steps"},
    "sgd": {"rank", "reg", "reg_bias", "lr", "batch_size", "epochs", "tol", "max_time"},
    "bpr": {"rank", "reg", "lr", "batch_size", "epochs", "tol", "max_time"},
    "svd": {"rank"},
    "dmf": {"rank", "reg", "epochs", "lr", "batch_size", "hidden", "max_time", "device"},
    "dmf-d": {"rank", "reg", "epochs", "lr", "batch_size", "hidden", "max_time", "device"},
}
COMPLETION_SPLIT = ("test", "test_fraction", "masks", "dense", "holdout_rows", "holdout_cols", "top_k", "seed")


@dataclasses.dataclass
class Completion:
    """A fitted completion model and its scores: ``summary`` is the document of
    ``mfcli complete --json`` (rmse, mae, ranking, epochs, ...); ``predictor`` predicts
    ratings (:mod:`mfcli.completion`); ``result`` is the Result that ``save`` writes (read by
    ``mfcli predict`` and ``mfcli recommend``); ``warning``: why it did not converge, or None."""

    model: str
    summary: dict
    estimator: Any
    predictor: Any
    result: Any
    warning: str | None = None

    def save(self, path: str | os.PathLike, force: bool = False) -> Path:
        """Write the model to the HDF5 file ``path`` (atomic; ``force`` replaces a file)."""
        return save_result(self.result, path, force=force)


def as_ratings(ratings, dense: bool = False):
    """Ratings from a path or spec (triplets, a sparse .npz users x items matrix, ``dense``: a
    NaN-masked matrix, ``sample:survey-ratings``), a :class:`~mfcli.completion.data.Ratings`,
    or a (users, items, values) triple of arrays (user and item ids of any type). Returns
    (ratings, the input's metadata for the Result, its name in messages)."""
    from mfcli.completion.data import Ratings
    from mfcli.errors import ParameterError
    from mfcli.io.ratings import describe_source, read_ratings

    if isinstance(ratings, (str, os.PathLike)):
        path = os.fspath(ratings)
        return read_ratings(path, dense=dense), describe_source(path), path
    if isinstance(ratings, Ratings):
        return ratings, {"source": "", "format": "ratings", "layout": "users x items"}, "the ratings"
    if isinstance(ratings, tuple) and len(ratings) == 3:
        return (Ratings.from_triplets(*ratings), {"source": "", "format": "ratings", "layout": "users x items"},
                "the ratings")
    raise ParameterError("ratings must be a path, a Ratings object or a (users, items, values) triple of arrays, "
                         f"not {type(ratings).__name__}")


def _check_completion_params(model: str, given: dict[str, Any]) -> dict[str, Any]:
    from mfcli.errors import ParameterError
    from mfcli.models.registry import check_number

    if model not in COMPLETION_APPLIES:
        raise ParameterError(f"unknown completion model '{model}'; choose one of {', '.join(COMPLETION_APPLIES)}")
    valid = sorted(COMPLETION_APPLIES[model] | set(COMPLETION_SPLIT) | ({"implicit"} if model == "bpr" else set()))
    _refuse_unknown(given, valid, f"completion model {model}")
    checked = {}
    for name, value in given.items():
        if name in COMPLETION_SPLIT or value is None:
            continue
        kind, low, high = COMPLETION_PARAMS[name]
        if kind in (int, float):
            value = check_number(name, value, low, high, low_open=name in ("lr", "max_time"), integer=kind is int)
        elif kind is list:
            value = [check_number(name, v, 1, None, integer=True) for v in value]
        elif name == "device" and value not in ("auto", "cpu", "cuda"):
            raise ParameterError(f"device must be auto, cpu or cuda, not {value!r}")
        checked[name] = value
    return checked


def complete(ratings, model: str = "als", *, reporter: Reporter | None = None, **params: Any) -> Completion:
    """Train a completion model on ``ratings`` and score it on held-out ratings, as
    ``mfcli complete`` does; returns a :class:`Completion` (``.summary`` is the ``--json``
    document, ``.save(path)`` writes the model).

    ``ratings``: see :func:`as_ratings`. The split (the CLI's names): ``test`` (test ratings,
    same forms; those also in ``ratings`` are removed from training with a warning),
    ``masks`` (paths of 0/1 .npz masks TRAIN,[VAL,]TEST), else a random ``test_fraction``
    (0.2); ``holdout_rows``/``holdout_cols`` (users/items left out of training and folded in);
    ``top_k`` (10; 0: no ranking metrics); ``seed``; ``dense``. Hyperparameters: ``rank``,
    ``reg``, ``reg_bias``, ``w0``, ``frequency_power``, ``implicit``, ``alpha``, ``cg_steps``,
    ``epochs``, ``tol``, ``max_time``, ``lr``, ``batch_size``, ``hidden``, ``device``, as the
    model takes them (``mfcli complete --help`` lists each model's and its defaults); a name the
    model does not take is refused.
    """
    import time

    import numpy as np

    from mfcli.completion import DEEP_MODELS, RANKING_MODELS
    from mfcli.completion import data as cdata
    from mfcli.completion.evaluate import (evaluate as evaluate_ratings, evaluate_areas, evaluate_ranking,
                                           extend_factor_model, make_estimator, restrict)
    from mfcli.completion.persist import factor_model_to_result
    from mfcli.errors import DataError, ParameterError
    from mfcli.io.ratings import read_mask

    reporter = reporter or _SILENT
    hyper = _check_completion_params(model, params)
    seed = _check_seed(params.get("seed", 0))
    top_k = params.get("top_k", 10)
    test_spec, masks = params.get("test"), params.get("masks")
    dense = bool(params.get("dense"))
    test_fraction = params.get("test_fraction", 0.2)
    holdout_rows, holdout_cols = params.get("holdout_rows") or 0.0, params.get("holdout_cols") or 0.0
    from mfcli.models.registry import check_number

    top_k = check_number("top_k", top_k, 0, None, integer=True)
    test_fraction = check_number("test_fraction", test_fraction, 0, 1, low_open=True, high_open=True)
    holdout_rows = check_number("holdout_rows", holdout_rows, 0, 1, high_open=True)
    holdout_cols = check_number("holdout_cols", holdout_cols, 0, 1, high_open=True)
    if test_spec is not None and masks is not None:
        raise ParameterError("give at most one of --test and --masks")
    if (holdout_rows or holdout_cols) and test_spec is not None:
        raise ParameterError("--holdout-rows/--holdout-cols need a random or mask split, not --test")
    if masks is not None:
        masks = [os.fspath(m) for m in ([masks] if isinstance(masks, (str, os.PathLike)) else masks)]
        if not (isinstance(ratings, (str, os.PathLike)) and (os.fspath(ratings).lower().endswith(".npz") or dense)):
            raise ParameterError("--masks needs a matrix input (a .npz ratings matrix or --dense)")
    deep = model in DEEP_MODELS
    implicit = model in RANKING_MODELS or (model == "wals" and bool(hyper.get("implicit")))
    if implicit and top_k == 0:
        raise ParameterError(f"{model}{' --implicit' if model == 'wals' else ''} models implicit feedback, judged "
                             "by ranking metrics; give --top-k 1 or more")
    est_params = {k: v for k, v in hyper.items() if v is not False and (model != "bpr" or k != "implicit")}
    est_params["seed"] = seed
    if deep:
        est_params.setdefault("device", "auto")
        if "max_time" in est_params:
            est_params["time_budget"] = est_params.pop("max_time")

    ratings, source, name = as_ratings(ratings, dense=dense)
    check_rating_magnitudes(ratings, name, model)
    reporter.info(f"Read {name}: {len(ratings)} ratings, {ratings.n_users} users x {ratings.n_items} items, "
                  f"values {ratings.values.min():g}..{ratings.values.max():g}")
    validation = None
    if masks is not None:
        parts = cdata.mask_split(ratings, [read_mask(p) for p in masks])
        train, test = parts[0], parts[-1]
        validation = parts[1] if len(parts) == 3 else None
        split = f"masks {','.join(masks)}"
    elif test_spec is not None:
        test, _, test_name = as_ratings(test_spec, dense=dense)
        check_rating_magnitudes(test, test_name, model)
        train = without_test_ratings(ratings, test, name, test_name, reporter)
        split = f"test file {test_name}" if isinstance(test_spec, (str, os.PathLike)) else "test ratings given"
    else:
        train, test = cdata.random_split(ratings, test_fraction, seed)
        split = f"random {1 - test_fraction:.0%}/{test_fraction:.0%} split (seed {seed})"
    if len(test) == 0:
        raise DataError("the test set is empty; give a larger --test-fraction or a test file with ratings")
    if len(train) == 0:
        raise DataError("the training set is empty; check the split")
    # Only the ids seen in training define the model (the matrix split keeps the full id maps).
    train = train.compact()
    if validation is not None:
        validation = validation.reindex(train.user_ids, train.item_ids, drop_unknown=True)
    estimator = make_estimator(model, **est_params)

    holdout = bool(holdout_rows or holdout_cols)
    fit_set = train
    if holdout:
        seen_users, seen_items = cdata.holdout_split(train, holdout_rows, holdout_cols, seed)
        fit_set = restrict(train, seen_users, seen_items)
        if validation is not None:
            validation = validation.reindex(fit_set.user_ids, fit_set.item_ids, drop_unknown=True)
        reporter.info(f"Held out {int((~seen_users).sum())} users and {int((~seen_items).sum())} items "
                      f"({len(train) - len(fit_set)} training ratings used only as their inputs)")

    reporter.info(f"Training {model} on {len(fit_set)} ratings ({split}), testing on {len(test)}")
    start = time.perf_counter()
    with reporter.progress(f"{model}", estimator.params.get("epochs")) as progress:
        estimator.fit(fit_set, validation=validation, callback=progress)
    seconds = time.perf_counter() - start
    stopping = _stopping(estimator, deep)
    _require_finite(estimator, model, deep)

    if deep:
        predictor = estimator.predictor(train if holdout else fit_set)
    elif holdout:
        predictor = extend_factor_model(estimator.model_, train)
    else:
        predictor = estimator.model_
    report = evaluate_ratings(predictor, test)
    if not implicit and not np.isfinite(report["rmse"]):
        raise DataError(f"{model} predicts non-finite ratings; check the scale of the ratings and the "
                        "regularization (--reg)")
    summary = {"model": model, "rank": int(estimator.model_.rank) if not deep else int(estimator.rank_),
               "rmse": None if implicit else report["rmse"], "mae": None if implicit else report["mae"],
               "n_train": int(len(fit_set)), "n_test": report["n_test"], "seconds": round(seconds, 3),
               **stopping,
               "n_validation": int(len(validation)) if validation is not None else 0,
               "unseen_users": report["unseen_users"], "unseen_items": report["unseen_items"],
               "n_test_unseen": report["n_test_unseen"], "split": split}
    if implicit:
        summary["implicit"] = True
    if top_k:
        seen = predictor.ratings if deep else (train if holdout else fit_set)
        summary["ranking"] = evaluate_ranking(predictor, seen, test, top_k)
    if deep and estimator.discrete:
        summary.update(estimator.discrete_report(predictor, test))
    if holdout:
        # Areas are defined over the users and items of the whole training split.
        test_in_train = test.reindex(train.user_ids, train.item_ids, drop_unknown=True)
        summary["areas"] = evaluate_areas(predictor, test_in_train, seen_users, seen_items)
    history = getattr(estimator, "history_", {})
    if history.get("validation_rmse") is not None and len(history["validation_rmse"]):
        summary["best_epoch"] = int(np.argmin(history["validation_rmse"]) + 1)
        summary["validation_rmse"] = float(np.min(history["validation_rmse"]))

    from mfcli.result import make_provenance

    result_params = {"model": model, **estimator.params}
    if deep:
        result = estimator.to_result(predictor, result_params, summary)
    else:
        result = factor_model_to_result(model, predictor, train if holdout else fit_set, result_params,
                                        history, summary)
    result.input = source
    result.provenance = make_provenance(["python", "mfcli.complete"])
    result.seconds = seconds
    result.converged = stopping["converged"]
    return Completion(model, summary, estimator, predictor, result, _convergence_warning(model, estimator, stopping,
                                                                                        deep))


def without_test_ratings(ratings, test, ratings_name: str, test_name: str, reporter: Reporter | None = None):
    """The training ratings without the (user, item) pairs of the test set, with a warning when
    there were any: a model tested on ratings it was trained on reports an error far too low."""
    import numpy as np

    in_train = test.reindex(ratings.user_ids, ratings.item_ids)
    known = (in_train.users >= 0) & (in_train.items >= 0)
    width = max(ratings.n_items, 1)
    overlap = np.isin(ratings.users * width + ratings.items, in_train.users[known] * width + in_train.items[known])
    if not overlap.any():
        return ratings
    (reporter or _SILENT).warn(f"{int(overlap.sum())} of the {len(test)} test ratings of {test_name} are also in "
                               f"{ratings_name}; they were removed from training, so that the model is tested only "
                               "on ratings it has not seen")
    return ratings.subset(~overlap)


def check_rating_magnitudes(ratings, source: str, model: str) -> None:
    """Refuse ratings whose magnitudes the model's arithmetic cannot take (float32 for the deep
    models, float64 otherwise; :func:`mfcli.validation.require_workable_magnitude`)."""
    import numpy as np

    from mfcli.completion import DEEP_MODELS
    from mfcli.validation import largest_magnitude, require_workable_magnitude

    largest = largest_magnitude(ratings.values)
    if largest:
        dtype = np.float32 if model in DEEP_MODELS else np.float64
        require_workable_magnitude(largest, dtype, len(ratings), f"the ratings of {source}", float64_option=None)


def _stopping(estimator, deep: bool) -> dict:
    """{epochs, converged, stop_reason} of a fitted estimator."""
    if deep:
        return {"epochs": int(len(estimator.history_["seconds"])), "converged": bool(estimator.converged_),
                "stop_reason": estimator.stop_reason_}
    return {"epochs": int(estimator.n_epochs_ or 0), "converged": bool(estimator.converged_),
            "stop_reason": estimator.stop_reason_}


def _convergence_warning(model: str, estimator, stopping: dict, deep: bool) -> str | None:
    """One line when a limit (epochs, max_time) ended a run whose stopping rule was not met."""
    if stopping["converged"] or stopping["stop_reason"] not in ("max_iter", "max_time"):
        return None
    if deep:
        if not estimator.has_stopping_rule_:
            return None
        rule = "the validation RMSE was still improving"
    else:
        info = estimator.model_.convergence
        if not info.get("tol"):
            return None  # tol 0: a fixed number of epochs was asked for
        progress = info.get("last_progress")
        rule = f"last relative decrease {progress:.2g} > --tol {info['tol']:g}" if progress is not None and \
            info.get("rule") == "descent" else f"--tol {info['tol']:g} not met"
    limit = "--epochs" if stopping["stop_reason"] == "max_iter" else "--max-time"
    return (f"{model} stopped by {limit} after {stopping['epochs']} epochs before its stopping rule was met "
            f"({rule}); converged: false. Raise {limit} (or loosen --tol) for a converged model.")


def _require_finite(estimator, model: str, deep: bool) -> None:
    """A DataError unless the fitted parameters are finite (no run exits 0 with a NaN answer)."""
    import numpy as np

    from mfcli.errors import DataError

    if deep:
        arrays = [layer[key] for layer in estimator.user_layers_ + estimator.item_layers_ for key in layer]
    else:
        m = estimator.model_
        arrays = [m.user_factors, m.item_factors, m.user_bias, m.item_bias, np.asarray([m.global_mean])]
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise DataError(f"{model} produced non-finite parameters; the ratings' scale or a step size or "
                        "regularization is too large (check --lr, --reg, --alpha)")
