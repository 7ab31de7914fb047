"""mfcli export: one array of a result file, or its maps as a GeoTIFF or ENVI image."""

from __future__ import annotations

import click

from mfcli.cli import console
from mfcli.cli.options import force_option, layer_option, result_argument


FACTORS = ("W", "H", "basis", "coefficients", "abundances", "assignments")
IMAGE_FORMATS = ("tif", "envi")


@click.command(short_help="Write one factor of a result (W, H, ...) as CSV, NPY or .mat, or maps as GeoTIFF/ENVI.")
@result_argument
@click.option("--factor", type=click.Choice(FACTORS), default="W", show_default=True,
              help="W/H: the layer's own factors (in a deep result, layer l's H maps the clusters of layer l-1 "
                   "to those of layer l); basis/coefficients: its data-space view (endmembers, bands x r, and "
                   "per-pixel coefficients, r x pixels); abundances: soft NNLS/FCLS abundances; assignments: "
                   "the cluster (from 0) of each column of the layer's input.")
@layer_option
@click.option("-o", "--output", default="-", show_default=True, metavar="PATH",
              help="Output file, or '-' for stdout.")
@click.option("--format", "output_format",
              type=click.Choice(["csv", "tsv", "npy", "mat", "mat73", "h5", *IMAGE_FORMATS]),
              help="Output format (default: from the extension; CSV on stdout). tif and envi write maps.")
@force_option
def command(result_path: str, factor: str, layer: int, output: str, output_format: str | None, force: bool) -> None:
    """Write one array of RESULT (a file written by mfcli) to a file or stdout.

    In a deep result (mfcli unmix) each layer factorizes the one below: layer 1 X ~= W1 H1, layer
    l W_{l-1} ~= W_l H_l (deep ONMF), so H of layer l >= 2 is r_l x r_{l-1}, not a map of the
    pixels. The endmembers of a layer are --factor basis and its maps --factor coefficients (or
    abundances); the note on stderr says which array was written.

    \b
    Maps for a GIS: with a .tif (GeoTIFF, needs mfcli[geo]) or .hdr (ENVI) output, --factor
    abundances, coefficients or assignments is written as an image in the input's georeference
    (CRS and transform, where the input had one): one band per endmember or cluster, named by
    its material where known, else #1..#k; the input's nodata pixels are NaN (declared nodata).
    assignments is one band of cluster numbers (k for #k, 0 for none), with a colour table
    (an ENVI Classification in ENVI).

    \b
    Examples:
      mfcli export out/result.h5 --factor basis --layer 2 -o endmembers.csv
      mfcli export out/result.h5 --factor abundances --layer 2 -o maps.npy
      mfcli export out/result.h5 --factor abundances -o abundances.tif
      mfcli export out/result.h5 --factor assignments --layer 2 -o clusters.tif
      mfcli export out/result.h5 --factor abundances --format envi -o abundances.hdr
    """
    from mfcli.errors import InputError
    from mfcli.io.atomic import check_output_path
    from mfcli.io.result import read_result
    from mfcli.io.write import write_array

    if output.startswith("-:"):  # '-:npy' is stdout in that format, as in convert
        output, output_format = "-", output_format or output[2:]
    image_format = _image_format(output, output_format)
    if image_format is not None:
        _export_maps(result_path, factor, layer, output, image_format, force)
        return
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


def _image_format(output: str, output_format: str | None) -> str | None:
    """"tif" or "envi" where the output is an image of maps, else None."""
    from mfcli.errors import InputError
    from mfcli.io.formats import format_from_path

    if output == "-":
        if output_format in IMAGE_FORMATS:
            raise InputError(f"{output_format} maps cannot be written to standard output; give a file name with -o")
        return None
    fmt = format_from_path(output, output_format)
    return fmt if fmt in IMAGE_FORMATS else None


def _export_maps(result_path: str, factor: str, layer: int, output: str, fmt: str, force: bool) -> None:
    from mfcli.errors import DataError
    from mfcli.io.atomic import check_output_path
    from mfcli.io.envi import envi_paths
    from mfcli.io.maps import MAP_FACTORS, map_images, write_map_images
    from mfcli.io.result import read_result

    if factor not in MAP_FACTORS:
        raise DataError(f"--factor {factor} holds spectra, not maps: a {'GeoTIFF' if fmt == 'tif' else 'ENVI'} "
                        f"output takes --factor {', '.join(f for f in MAP_FACTORS if f != 'H')}; write {factor} "
                        "as CSV, NPY, .mat or .h5")
    for target in envi_paths(output) if fmt == "envi" else (output,):
        check_output_path(target, force)
    result = read_result(result_path)
    maps = map_images(result, factor, layer, source=f"'{result_path}'")
    georeference = result.georeference
    write_map_images(maps, output, fmt, georeference, force=force)
    bands, rows, cols = maps.images.shape
    where = georeference.summary() if georeference is not None else "no georeference (the input had none)"
    console.info(f"Wrote {maps.description} ({bands} band{'s' if bands > 1 else ''}, {rows}x{cols}) to {output}: "
                 f"{where}")


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
