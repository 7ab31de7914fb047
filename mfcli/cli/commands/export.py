"""mfcli export: one array of a result file."""

from __future__ import annotations

import click

from mfcli.cli import console
from mfcli.cli.options import force_option, layer_option, result_argument


FACTORS = ("W", "H", "basis", "coefficients", "abundances", "assignments")


@click.command(short_help="Write one factor of a result (W, H, ...) as CSV, NPY or .mat.")
@result_argument
@click.option("--factor", type=click.Choice(FACTORS), default="W", show_default=True,
              help="W/H: the layer's own factors (in a deep result, layer l's H maps the clusters of layer l-1 "
                   "to those of layer l); basis/coefficients: its data-space view (endmembers, bands x r, and "
                   "per-pixel coefficients, r x pixels); abundances: soft NNLS/FCLS abundances; assignments: "
                   "the cluster (from 0) of each column of the layer's input.")
@layer_option
@click.option("-o", "--output", default="-", show_default=True, metavar="PATH",
              help="Output file, or '-' for stdout.")
@click.option("--format", "output_format", type=click.Choice(["csv", "tsv", "npy", "mat", "mat73", "h5"]),
              help="Output format (default: from the extension; CSV on stdout).")
@force_option
def command(result_path: str, factor: str, layer: int, output: str, output_format: str | None, force: bool) -> None:
    """Write one array of RESULT (a file written by mfcli) to a file or stdout.

    In a deep result (mfcli unmix) each layer factorizes the one below: layer 1 X ~= W1 H1, layer
    l W_{l-1} ~= W_l H_l (deep ONMF), so H of layer l >= 2 is r_l x r_{l-1}, not a map of the
    pixels. The endmembers of a layer are --factor basis and its maps --factor coefficients (or
    abundances); the note on stderr says which array was written.

    \b
    Examples:
      mfcli export out/result.h5 --factor basis --layer 2 -o endmembers.csv
      mfcli export out/result.h5 --factor abundances --layer 2 -o maps.npy
    """
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
    number = result.layer_number(layer)
    note = _what_it_is(result, number, factor, array.shape)
    if output != "-":
        shape = "x".join(map(str, array.shape))
        console.info(f"Wrote {factor} ({shape}) to {output}")
    if note:
        console.info(note)


def _what_it_is(result, number: int, factor: str, shape) -> str | None:
    """For a deep result's own factors, what the array is and where the data-space view is."""
    if len(result.layers) < 2 or factor not in ("W", "H"):
        return None
    chain = (result.summary or {}).get("chain")
    rows, cols = shape
    if factor == "H" and number > 1:
        what = (f"layer {number}'s own H ({rows} x {cols}) maps the {cols} clusters of layer {number - 1} to its {rows}"
                if chain != "activations" else f"layer {number}'s own H ({rows} x {cols}) factorizes layer "
                f"{number - 1}'s coefficients")
        return f"Note: {what}; for the maps of the pixels export --factor coefficients or abundances --layer {number}"
    if factor == "W" and number > 1 and chain == "activations":
        return (f"Note: layer {number}'s own W ({rows} x {cols}) factorizes layer {number - 1}'s coefficients; for its "
                f"endmembers (bands x {cols}) export --factor basis --layer {number}")
    return None
