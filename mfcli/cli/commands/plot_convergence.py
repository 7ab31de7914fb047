"""mfcli plot-convergence: relative error per iteration."""

from __future__ import annotations

import click

from mfcli.cli.commands._plotting import check_picture_output, picture_options, save
from mfcli.cli.options import result_argument


@click.command(short_help="Plot the relative error per iteration (log scale), per layer and joint.")
@result_argument
@picture_options
def command(result_path: str, output: str, dpi: int, force: bool) -> None:
    """Plot the convergence of RESULT on a log scale: the relative error per iteration of a
    single-layer model, with its final error and number of iterations as in the table and
    --json; for a deep model, the joint refinement sweep by sweep (sweep 0: the layer-wise
    initialization) with each layer's final relative error, beside the layer-wise
    initialization, where each layer fits its own input (another quantity, labelled so).

    \b
    Example:
      mfcli plot-convergence out/result.h5 -o convergence.svg
    """
    from mfcli.io.result import read_result
    from mfcli.plotting.convergence import convergence_figure

    check_picture_output(output, force)
    result = read_result(result_path)
    save(convergence_figure(result, dpi=dpi), output, force, dpi, "convergence")
