"""mfcli convert: between data formats."""

from __future__ import annotations

import click

from mfcli.cli import console
from mfcli.cli.options import DATA_FORMATS, data_options, force_option, input_argument, load_input


class StdioSpecCommand(click.Command):
    """A command whose INPUT/OUTPUT may be '-:FMT' (stdin/stdout in that format). Click reads any
    token starting with '-' as an option, so such tokens are wrapped while parsing, then restored."""

    def parse_args(self, ctx, args):
        wrapped = {f"<{arg}>": arg for arg in args if arg.startswith("-:") and len(arg) > 2}
        rest = super().parse_args(ctx, [f"<{arg}>" if f"<{arg}>" in wrapped else arg for arg in args])
        for name, value in ctx.params.items():
            if isinstance(value, str) and value in wrapped:
                ctx.params[name] = wrapped[value]
        return rest


@click.command(cls=StdioSpecCommand,
               short_help="Convert data between formats (.mat v5/v7.3, .h5, .csv, .npy, ENVI, GeoTIFF).")
@input_argument
@click.argument("output_spec", metavar="OUTPUT")
@data_options
@click.option("--to", "output_format", type=click.Choice(DATA_FORMATS, case_sensitive=False),
              help="Output format if OUTPUT's extension does not tell (same as OUTPUT:FMT).")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default=None, help="Convert the values.")
@force_option
def command(input_spec: str, output_spec: str, output_format: str | None, dtype: str | None, force: bool,
            **data_opts) -> None:
    """Read INPUT and write it as OUTPUT, keeping image shape, pixel order and wavelengths where
    the output format can hold them (.mat, .h5, .npz, ENVI, GeoTIFF). CSV, TSV and NPY hold the
    bands x pixels matrix only; a cube becomes that matrix. The georeference (CRS, transform),
    nodata value and band names travel between GeoTIFF (.tif), ENVI (.hdr) and HDF5 (.h5);
    nodata pixels are written back with the nodata value. GeoTIFF needs mfcli[geo].

    OUTPUT '-' (or '-:csv', '-:tsv', '-:npy') writes to stdout, e.g.
    `mfcli convert sample:samson -:csv | mfcli info -`. Values are written as read: NaN and
    negative values are kept (see `mfcli info` for their counts).
    """
    from mfcli.errors import InputError
    from mfcli.io.atomic import check_output_path
    from mfcli.io.envi import envi_paths
    from mfcli.io.formats import format_from_path
    from mfcli.io.load import parse_spec
    from mfcli.io.write import write_dataset

    if output_spec == "-" or output_spec.startswith("-:"):
        path, fmt = "-", output_spec[2:] or None
    else:
        path, _var, fmt = parse_spec(output_spec)
    fmt = output_format or fmt
    if path == "-" and fmt not in (None, "csv", "tsv", "npy"):  # fail before reading a large input
        raise InputError(f"standard output takes CSV, TSV or NPY, not {fmt}; write {fmt} to a file")
    if path != "-":
        fmt = format_from_path(path, fmt)
        for target in envi_paths(path) if fmt == "envi" else (path,):
            check_output_path(target, force)
    dataset = load_input(input_spec, dtype=dtype, keep_nodata=True, **data_opts)
    if dataset.image_shape is not None and (path == "-" or fmt in ("csv", "tsv", "npy")):
        console.info(f"Note: {fmt or 'csv'} keeps the {dataset.n_features} x {dataset.n_samples} matrix only; the image "
                     f"shape {dataset.image_shape[0]}x{dataset.image_shape[1]} ({dataset.pixel_order} order) is not stored")
    kept_by = ("tif", "envi", "h5")
    if path != "-" and fmt not in kept_by and (dataset.georeference is not None or dataset.nodata is not None):
        lost = " and ".join(what for what, present in (("georeference", dataset.georeference is not None),
                                                       (f"nodata value ({dataset.nodata:g})", dataset.nodata is not None))
                            if present)
        console.info(f"Note: {fmt} does not keep the {lost} (GeoTIFF, ENVI and HDF5 do)")
    write_dataset(dataset, path, fmt=fmt, force=force)
    if path != "-":
        console.info(f"Wrote {path}")
