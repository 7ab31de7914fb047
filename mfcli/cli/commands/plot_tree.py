"""mfcli plot-tree: the hierarchy of a deep result as a picture."""

from __future__ import annotations

import click

from mfcli.cli.commands._plotting import (check_picture_output, load_truth, load_wavelengths, name_after_truth,
                                          picture_options, save, truth_option, wavelengths_option)
from mfcli.cli.options import result_argument


@click.command(short_help="Draw the hierarchy of a deep result with map thumbnails and spectra.")
@result_argument
@wavelengths_option
@truth_option
@picture_options
def command(result_path: str, wavelengths_path: str | None, truth_specs: tuple[str, ...], output: str, dpi: int,
            force: bool) -> None:
    """Draw the hierarchy of RESULT from the deepest layer (top) down to layer 1.

    Each node shows its number #1..#k and name (a stored label, or with --truth the material it
    matches), a thumbnail of its abundance map (images) or its member count (other data), its
    endmember as a sparkline, and its share of the data; thick edges mark merges.

    \b
    Example:
      mfcli plot-tree out/result.h5 -o tree.png
    """
    from mfcli.io.result import read_result
    from mfcli.plotting.tree import tree_figure

    check_picture_output(output, force)
    result = read_result(result_path)
    truth = load_truth(truth_specs, result)
    if truth is not None:
        name_after_truth(result, truth)
    figure = tree_figure(result, wavelengths=load_wavelengths(wavelengths_path), dpi=dpi)
    save(figure, output, force, dpi, f"hierarchy of ranks {','.join(map(str, result.ranks))}")
