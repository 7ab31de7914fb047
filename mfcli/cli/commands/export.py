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
    from mfcli.io.result import read_result
    from mfcli.io.write import write_array

    result = read_result(result_path)
    chosen = result.layer(layer)
    array = {
        "W": chosen.W, "H": chosen.H, "basis": chosen.data_basis, "coefficients": chosen.data_coefficients,
        "abundances": chosen.abundances, "assignments": chosen.assignments,
    }[factor]
    if array is None:
        raise InputError(f"layer {layer if layer != -1 else len(result.layers)} of '{result_path}' has no "
                         f"{factor}; available: " + ", ".join(f for f in FACTORS if getattr(chosen, f, None) is not None
                                                              or f in ("basis", "coefficients")))
    write_array(array, output, fmt=output_format, force=force, name=factor)
    if output != "-":
        console.info(f"Wrote {factor} {array.shape[0]}x{array.shape[1] if array.ndim > 1 else 1} to {output}")
