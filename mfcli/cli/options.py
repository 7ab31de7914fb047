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
class StdioSpecCommand(click.Command):
    """A command whose inputs and outputs may be '-:FMT' (stdin/stdout in that format, e.g.
    ``mfcli info -:npy < X.npy``). Click reads any token starting with '-' as an option, so such
    tokens are wrapped while parsing, then restored. Every mfcli command is one (the command
    group makes it so)."""

    def parse_args(self, ctx, args):
        wrapped = {f"<{arg}>": arg for arg in args if arg.startswith("-:") and len(arg) > 2}
        rest = super().parse_args(ctx, [f"<{arg}>" if f"<{arg}>" in wrapped else arg for arg in args])

        def restore(value):
            if isinstance(value, str):
                return wrapped.get(value, value)
            if isinstance(value, (tuple, list)):
                return type(value)(restore(v) for v in value)
            return value

        for name, value in ctx.params.items():
            ctx.params[name] = restore(value)
        return rest


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
    items = value.replace(" ", "").split(",")
    if not any(items):
        raise click.BadParameter("give at least one integer, e.g. 7,6,4,2")
    if not all(items):
        raise click.BadParameter(f"'{value}' has an empty item (two commas in a row, or one at an end); "
                                 "give integers separated by single commas, e.g. 7,6,4,2")
    try:
        return [int(v) for v in items]
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a comma-separated list of integers, e.g. 7,6,4,2") from None


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
        if value is not None and value.startswith("<-:") and value.endswith(">"):
            value = value[1:-1]  # a '-:FMT' token as StdioSpecCommand wraps it while parsing
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
SEED_MAX = 2 ** 63 - 1  # what NumPy, torch and the HDF5 result (int64) all take


def check_seed(ctx, param, value: int | None):
    if value is not None and value > SEED_MAX:
        raise click.BadParameter(f"{value} is too large; a seed is an integer from 0 to 2^63 - 1")
    return value


seed_option = click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, callback=check_seed,
                           help="Seed of every random choice (an integer >= 0).")
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
               device="cpu", keep_nodata=False, wavelengths_path=None, keep_sparse=False, **_ignored: Any):
    """Load INPUT with the shared data options (:func:`mfcli.api.open_data`) and log what was
    detected. ``keep_sparse``: a sparse .npz stays sparse (factorize); other commands densify it.

    A dask.distributed client opened for ``scheduler`` is closed when the command ends.
    """
    from mfcli.api import open_data
    from mfcli.cli import console

    return open_data(input_spec, reporter=console.REPORTER, keep_sparse=keep_sparse,
                     variable=variable, format=input_format, layout=layout, order=pixel_order,
                     image_shape=image_shape, transpose=transpose, dtype=dtype, engine=engine, chunk_size=chunk_size,
                     scheduler=scheduler, device=device, keep_nodata=keep_nodata, wavelengths=wavelengths_path)


def check_engine(model_spec, engine="memory", device="cpu", **_ignored: Any) -> None:
    """Refuse a model that needs X in memory as a NumPy array on another engine (before reading)."""
    from mfcli.api import check_engine as check

    check(model_spec, None, {"engine": engine, "device": device})


def check_factorization_input(dataset, model: str, nonnegative: bool = True, clip_negative: bool = False):
    """Refuse empty data, NaN/Inf and (for nonnegative models) negative values with one-line
    errors; with ``clip_negative`` set negatives to 0 and say how many (:func:`mfcli.api.check_input`).
    Returns the dataset."""
    from mfcli.api import check_input
    from mfcli.cli import console

    return check_input(dataset, model, nonnegative=nonnegative, clip_negative=clip_negative,
                       reporter=console.REPORTER)


def command_line() -> list[str]:
    """The command line that started this process, for provenance."""
    return ["mfcli", *sys.argv[1:]]
