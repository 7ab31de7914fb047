"""mfcli export: one array of a result file."""

from __future__ import annotations

import click

from mfcli.cli import console
from mfcli.cli.options import force_option, layer_option, result_argument


FACTORS = ("W", "H", "basis", "coefficients", "abundances", "assignments")


@click.command(short_help="Write one factor of a result (W, H, ...) as CSV, NPY or .mat.")
@result_argument
@click.option("--factor", type=click.Choice(FACTORS), default="W", show_default=True,
              help="W/H: the layer's own factors; basis/coefficients: its data-space view "
                   "(endmembers and abundance maps); abundances: soft NNLS/FCLS abundances.")
@layer_option
@click.option("-o", "--output", default="-", show_default=True, metavar="PATH",
              help="Output file, or '-' for stdout.")
@click.option("--format", "output_format", type=click.Choice(["csv", "tsv", "npy", "mat", "mat73", "h5"]),
              help="Output format (default: from the extension; CSV on stdout).")
@force_option
def command(result_path: str, factor: str, layer: int, output: str, output_format: str | None, force: bool) -> None:
    """Write one array of RESULT (a file written by mfcli) to a file or stdout."""
    from mfcli.errors import InputError
    from mfcli.io.atomic import check_output_path
    from mfcli.io.result import read_result
    from mfcli.io.write import write_array

    if output.startswith("-:"):  # '-:npy' is stdout in that format, as in convert
        output, output_format = "-", output_format or output[2:]
    if output != "-":  # fail before reading the result
        check_output_path(output, force)
    result = read_result(result_path)
    chosen = result.layer(layer)
    arrays = {
        "W": chosen.W, "H": chosen.H, "basis": chosen.data_basis, "coefficients": chosen.data_coefficients,
        "abundances": chosen.abundances, "assignments": chosen.assignments,
    }
    array = arrays[factor]
    if array is None:
        number = result.layer_number(layer)
        available = ", ".join(name for name, value in arrays.items() if value is not None)
        raise InputError(f"layer {number} of '{result_path}' has no {factor}; available: {available}")
    write_array(array, output, fmt=output_format, force=force, name=factor)
    if output != "-":
        shape = "x".join(map(str, array.shape))
        console.info(f"Wrote {factor} ({shape}) to {output}")
