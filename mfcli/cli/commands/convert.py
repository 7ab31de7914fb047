"""mfcli convert: between data formats."""

from __future__ import annotations

import click

from mfcli.cli import console
from mfcli.cli.options import data_options, force_option, input_argument, load_input


@click.command(short_help="Convert data between formats (.mat v5/v7.3, .h5, .csv, .npy, ENVI).")
@input_argument
@click.argument("output_spec", metavar="OUTPUT")
@data_options
@click.option("--to", "output_format", metavar="FMT",
              help="Output format if OUTPUT's extension does not tell (also OUTPUT:FMT): "
                   "csv, tsv, npy, npz, mat, mat73, h5, envi.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default=None, help="Convert the values.")
@force_option
def command(input_spec: str, output_spec: str, output_format: str | None, dtype: str | None, force: bool,
            **data_opts) -> None:
    """Read INPUT and write it as OUTPUT, keeping image shape, pixel order and wavelengths where
    the output format can hold them. Cubes become bands x pixels matrices for CSV/NPY.

    OUTPUT '-' (or '-:csv', '-:npy') writes to stdout, e.g.
    `mfcli convert sample:samson -:csv | mfcli info -`.
    """
    from mfcli.io.load import parse_spec
    from mfcli.io.write import write_dataset

    dataset = load_input(input_spec, dtype=dtype, **data_opts)
    path, _var, fmt = parse_spec(output_spec) if output_spec != "-" else ("-", None, None)
    if output_spec.startswith("-:"):
        path, fmt = "-", output_spec[2:]
    write_dataset(dataset, path, fmt=output_format or fmt, force=force)
    if path != "-":
        console.info(f"Wrote {path}")
