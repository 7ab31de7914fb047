"""Options shared by commands, so ``--rank``, ``--seed``, ``--json``, ``-o``, ``--force`` mean the
same everywhere (rasterio's ``rio/options.py``, sqlite-utils' stacked option decorators).

Also the small helpers every command uses: loading the input the same way, building the
Result provenance, and writing outputs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from mfcli.engines import ENGINES  # NumPy-free, so --help stays fast


def stack_options(*decorators: Callable) -> Callable:
    """One decorator applying ``decorators`` in the order written (the first is the outermost)."""

    def apply(func: Callable) -> Callable:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange that also refuses nan and inf (which compare False with every bound, so
    FloatRange lets them through), with the valid range in the message."""

    def convert(self, value, param, ctx):
        import math

        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            valid = self._describe_range()
            self.fail(f"{value!r} is not a finite number" + (f"; give a number {valid}" if valid else ""), param, ctx)
        return number


def parse_image_shape(ctx, param, value: str | None):
    if value is None:
        return None
    text = value.lower().replace(",", "x")
    try:
        rows, cols = (int(v) for v in text.split("x"))
    except ValueError:
        raise click.BadParameter(f"'{value}' is not ROWSxCOLS, e.g. 307x307") from None
    if rows < 1 or cols < 1:
        raise click.BadParameter(f"'{value}': rows and columns must be positive")
    return rows, cols


def parse_int_list(ctx, param, value: str | None):
    if value is None:
        return None
    try:
        values = [int(v) for v in value.replace(" ", "").split(",") if v]
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a comma-separated list of integers, e.g. 7,6,4,2") from None
    if not values:
        raise click.BadParameter("give at least one integer, e.g. 7,6,4,2")
    return values


# The formats of mfcli.io.formats.FORMATS (kept here so that --help does not import NumPy).
DATA_FORMATS = ("csv", "tsv", "npy", "npz", "mat", "mat73", "h5", "envi", "tif", "gdal")

input_argument = click.argument("input_spec", metavar="INPUT")
result_argument = click.argument("result_path", metavar="RESULT", type=click.Path(dir_okay=False))

data_options = stack_options(
    click.option("--var", "variable", metavar="NAME",
                 help="Variable or HDF5 dataset to read (same as INPUT:NAME). Default: Y, X, data... else the largest array."),
    click.option("--format", "input_format", type=click.Choice(DATA_FORMATS, case_sensitive=False),
                 help="Input format if the extension does not tell (same as INPUT:FMT); tif (GeoTIFF) and gdal "
                      "(any raster GDAL reads) need mfcli[geo]."),
    click.option("--layout", type=click.Choice(["auto", "matrix", "cube", "cube-bands-first", "bands-x-pixels",
                                                "pixels-x-bands"]), default="auto", show_default=True,
                 help="How to read the array; auto detects cubes and image shapes stored beside the data."),
    click.option("--order", "pixel_order", type=click.Choice(["F", "C"], case_sensitive=False),
                 help="Pixel order of a bands x pixels matrix: F (MATLAB, down the columns) or C (row by row). "
                      "Default: F for .mat files, C otherwise."),
    click.option("--image-shape", callback=parse_image_shape, metavar="ROWSxCOLS",
                 help="Image shape of a bands x pixels matrix when the file does not store it."),
    click.option("--transpose", is_flag=True,
                 help="Transpose a 2-D matrix as it is read (samples x features input), before layout detection."),
    click.option("--wavelengths", "wavelengths_path", metavar="FILE", type=click.Path(dir_okay=False),
                 help="Wavelengths of the bands (text/CSV or .npy, one per band, nm or micrometres), overriding "
                      "the file's; recorded in the result. Without them spectra are drawn against band numbers."),
)

engine_options = stack_options(
    click.option("--engine", type=click.Choice(ENGINES), default="memory", show_default=True,
                 help="Where X lives: memory (loaded whole); stream (an HDF5/MATLAB v7.3/.npy file read block by "
                      "block of columns, bounded memory); dask (a Dask array: local threads, or a cluster with "
                      "--scheduler). Same results on every engine."),
    click.option("--chunk-size", type=click.IntRange(min=1), default=None, metavar="N",
                 help="Columns per block read by the stream engine or per Dask chunk (default: about 8 MiB of X; "
                      "on a Dask cluster, about four chunks per worker thread)."),
    click.option("--scheduler", metavar="ADDRESS",
                 help="dask.distributed scheduler for --engine dask, e.g. tcp://host:8786 (default: local threads)."),
    click.option("--device", default="cpu", show_default=True, metavar="DEVICE",
                 help="For --engine memory: cpu (NumPy) or cuda, cuda:N (X as a torch tensor on a GPU)."),
)

def file_output(what: str) -> Callable:
    """Callback of an -o that names a file or folder, never standard output (a result file is
    HDF5, a folder is a folder): '-' is a usage error, not a file named '-'."""

    def check(ctx, param, value: str | None):
        if value is not None and (value == "-" or value.startswith("-:")):
            raise click.BadParameter(f"{what} cannot be written to standard output; give a file name")
        return value

    return check


output_option = click.option("-o", "--output", "output", required=True, metavar="PATH",
                             callback=file_output("a result file (HDF5)"),
                             help="Result file to write (HDF5).")
force_option = click.option("--force", is_flag=True, help="Overwrite an existing output.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
result_output_options = stack_options(output_option, force_option, json_option)  # commands writing a result file
seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random choice.")
rank_option = click.option("-r", "--rank", type=click.IntRange(min=1), required=True, help="Rank of the factorization.")
dtype_option = click.option("--dtype", type=click.Choice(["float32", "float64"]), default=None,
                            help="Working precision (default: the data's own float type, float64 for integers).")
clip_negative_option = click.option(
    "--clip-negative", is_flag=True,
    help="Set negative input values to 0 instead of refusing them (nonnegative models need X >= 0).")
layer_option = click.option("--layer", type=int, default=-1, show_default=False,
                            help="Layer of a deep result (1 = closest to the data; default: the last layer).")


def load_input(input_spec: str, variable=None, input_format=None, layout="auto", pixel_order=None,
               image_shape=None, transpose=False, dtype=None, engine="memory", chunk_size=None, scheduler=None,
               device="cpu", keep_nodata=False, wavelengths_path=None, **_ignored: Any):
    """Load INPUT with the shared data options and log what was detected.

    Nodata pixels are left out of X unless ``keep_nodata`` (convert: written back as read).

    With ``engine`` "stream" or "dask" the data matrix is not read: ``dataset.X`` is the
    engine's DataMatrix over the file (same detection rules, :func:`mfcli.io.load.open_lazy`).
    With ``device`` "cuda" it is a :class:`~mfcli.engines.gpu.TorchMatrix` on the GPU.
    """
    from mfcli.cli import console
    from mfcli.errors import ParameterError
    from mfcli.io import load_dataset

    if scheduler and engine != "dask":
        raise ParameterError("--scheduler applies to --engine dask")
    if chunk_size and engine == "memory":
        raise ParameterError("--chunk-size applies to --engine stream or dask")
    if device != "cpu" and engine != "memory":
        raise ParameterError(f"--device {device} applies to --engine memory (the stream and dask engines run on CPUs)")
    options = {"variable": variable, "fmt": input_format, "layout": layout, "order": pixel_order,
               "transpose": transpose, "image_shape": image_shape, "dtype": dtype}
    if engine == "memory":
        if device != "cpu":
            from mfcli.engines.gpu import check_device

            check_device(device)
        dataset = load_dataset(input_spec, keep_nodata=keep_nodata, **options)
        verb = "Read"
        if device != "cpu":
            from mfcli.engines.gpu import TorchMatrix

            dataset.X = TorchMatrix(dataset.X, device)
            verb = f"Read (X on {device})"
    else:
        dataset = _open_out_of_core(input_spec, engine, chunk_size, scheduler, options)
        where = f", scheduler {scheduler}" if scheduler else ""
        verb = f"Opened (--engine {engine}, blocks of {dataset.X.chunk_size} columns{where})"
    if wavelengths_path:
        from mfcli.io.wavelengths import apply_wavelengths_file

        apply_wavelengths_file(dataset, wavelengths_path)
    shape = f"{dataset.n_features} x {dataset.n_samples}"
    image = f", image {dataset.image_shape[0]}x{dataset.image_shape[1]} ({dataset.pixel_order} order)" \
        if dataset.image_shape else ""
    if dataset.n_nodata_pixels:
        image += f", {dataset.n_nodata_pixels} nodata pixels left out"
    console.info(f"{verb} {dataset.source}: {shape} {dataset.X.dtype}{image}")
    if dataset.georeference is not None:
        console.info(f"Georeference: {dataset.georeference.summary()}")
    for note in dataset.notes:
        console.detail(f"  {note}")
    return dataset


def _open_out_of_core(input_spec: str, engine: str, chunk_size, scheduler, options: dict):
    """The Dataset of INPUT with X the stream/dask engine's DataMatrix over the file (not read);
    a dask.distributed Client for ``scheduler``, closed when the command ends."""
    from mfcli.engines import open_matrix
    from mfcli.io.load import open_lazy

    if engine == "dask":
        from mfcli.engines.dask import import_dask

        import_dask()  # says how to install it before anything else
    dataset, source = open_lazy(input_spec, **options)
    client = None
    if scheduler:
        from mfcli.engines.dask import connect

        client = connect(scheduler)
        context = click.get_current_context(silent=True)
        if context is not None:
            context.call_on_close(client.close)
    dataset.X = open_matrix(source, engine, dtype=options["dtype"], chunk_size=chunk_size, client=client)
    return dataset


def check_engine(model_spec, engine="memory", device="cpu", **_ignored: Any) -> None:
    """Refuse a model that needs X in memory as a NumPy array on another engine (before reading)."""
    from mfcli.errors import ParameterError

    if not model_spec.any_engine and (engine != "memory" or device != "cpu"):
        raise ParameterError(f"model {model_spec.name} needs the data in memory as a NumPy array; "
                             "use --engine memory --device cpu")


def check_factorization_input(dataset, model: str, nonnegative: bool = True, clip_negative: bool = False):
    """Refuse empty data, NaN/Inf and (for nonnegative models) negative values with one-line
    errors; with ``clip_negative`` set negatives to 0 and say how many. Returns the dataset."""
    from mfcli.cli import console
    from mfcli.validation import check_factorization_input as check

    what = f"the data of {dataset.source}" if dataset.source else "the data"
    if hasattr(dataset.X, "scan"):  # an engine: one pass where the data are, clipping as they are read
        from mfcli.validation import check_value_counts

        dataset.X.clip_negative = bool(nonnegative and clip_negative)
        n_clipped = check_value_counts(dataset.X.scan(), model, nonnegative=nonnegative,
                                       clip_negative=clip_negative, what=what)
    else:
        dataset.X, n_clipped = check(dataset.X, model, nonnegative=nonnegative, clip_negative=clip_negative,
                                     what=what)
    if n_clipped:
        message = f"set {n_clipped} negative values to 0 (--clip-negative)"
        dataset.notes.append(message)
        console.warn(message)
    return dataset


def command_line() -> list[str]:
    """The command line that started this process, for provenance."""
    return ["mfcli", *sys.argv[1:]]
