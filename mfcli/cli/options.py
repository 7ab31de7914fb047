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


def _stack(*decorators: Callable) -> Callable:
    def apply(func: Callable) -> Callable:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


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
DATA_FORMATS = ("csv", "tsv", "npy", "npz", "mat", "mat73", "h5", "envi")

input_argument = click.argument("input_spec", metavar="INPUT")
result_argument = click.argument("result_path", metavar="RESULT", type=click.Path(dir_okay=False))

data_options = _stack(
    click.option("--var", "variable", metavar="NAME",
                 help="Variable or HDF5 dataset to read (same as INPUT:NAME). Default: Y, X, data... else the largest array."),
    click.option("--format", "input_format", type=click.Choice(DATA_FORMATS, case_sensitive=False),
                 help="Input format if the extension does not tell (same as INPUT:FMT)."),
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
)

output_option = click.option("-o", "--output", "output", required=True, metavar="PATH",
                             help="Output file ('-' for stdout where data is written).")
force_option = click.option("--force", is_flag=True, help="Overwrite an existing output.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
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
               image_shape=None, transpose=False, dtype=None, **_ignored: Any):
    """Load INPUT with the shared data options and log what was detected."""
    from mfcli.cli import console
    from mfcli.io import load_dataset

    dataset = load_dataset(input_spec, variable=variable, fmt=input_format, layout=layout, order=pixel_order,
                           transpose=transpose, image_shape=image_shape, dtype=dtype)
    shape = f"{dataset.n_features} x {dataset.n_samples}"
    image = f", image {dataset.image_shape[0]}x{dataset.image_shape[1]} ({dataset.pixel_order} order)" \
        if dataset.image_shape else ""
    console.info(f"Read {dataset.source}: {shape} {dataset.X.dtype}{image}")
    for note in dataset.notes:
        console.detail(f"  {note}")
    return dataset


def check_factorization_input(dataset, model: str, nonnegative: bool = True, clip_negative: bool = False):
    """Refuse empty data, NaN/Inf and (for nonnegative models) negative values with one-line
    errors; with ``clip_negative`` set negatives to 0 and say how many. Returns the dataset."""
    from mfcli.cli import console
    from mfcli.validation import check_factorization_input as check

    what = f"the data of {dataset.source}" if dataset.source else "the data"
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
