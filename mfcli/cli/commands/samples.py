"""mfcli samples: the bundled sample data."""

from __future__ import annotations

import click

from mfcli.cli import console
from mfcli.cli.options import json_option


@click.command(short_help="List the bundled samples (use them as sample:NAME).")
@json_option
def command(as_json: bool) -> None:
    """List the bundled samples (a table on stdout). Any command that takes a file accepts
    sample:NAME (and sample:NAME:VAR for one of its variables); the library sample is for
    `mfcli evaluate --library sample:usgs-1995`.

    \b
    JSON keys (--json): a list of {name, kind, description, ground_truth, file}.
    """
    from mfcli.io.samples import SAMPLES, sample_path

    rows = [{"name": f"sample:{s.name}", "kind": s.kind, "description": s.description,
             "ground_truth": s.truth, "file": str(sample_path(s.name))} for s in SAMPLES.values()]
    if as_json:
        console.emit_json(rows)
        return
    from rich.table import Table

    table = Table(title="Bundled samples")
    table.add_column("name", no_wrap=True)
    table.add_column("kind")
    table.add_column("description")
    for row in rows:
        table.add_row(row["name"], row["kind"], row["description"])
    console.listing(table)
