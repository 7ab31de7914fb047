"""mfcli plot-abundances: a grid of a layer's abundance maps."""

from __future__ import annotations

import click

from mfcli.cli.commands._plotting import (check_picture_output, load_truth, name_after_truth, picture_options, save,
                                          truth_option)
from mfcli.cli.options import FiniteFloatRange, result_argument


def _parse_layer(ctx, param, value: str) -> int | str:
    if value.lower() == "all":
        return "all"
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a layer number or 'all'") from None


@click.command(short_help="Draw a layer's abundance maps as images, one panel per component.")
@result_argument
@click.option("--layer", default="-1", callback=_parse_layer, metavar="L|all",
              help="Layer (1 = closest to the data, default: the last) or 'all' for one row per layer.")
@click.option("--hard", "kind", flag_value="hard",
              help="Hard cluster maps (1 where a pixel belongs to the cluster).")
@click.option("--soft", "kind", flag_value="soft",
              help="Soft abundances (NNLS/FCLS) where stored, else the coefficients.")
@click.option("--cmap", default="viridis", show_default=True, help="matplotlib colour map.")
@click.option("--vmax", type=FiniteFloatRange(min=0, min_open=True),
              help="Top of every colour scale (default: 1 for fractions, else the 99.5th percentile of the layer).")
@click.option("--shared-scale", is_flag=True,
              help="With --layer all: one colour scale for all layers (default: one per layer).")
@truth_option
@picture_options
def command(result_path: str, layer, kind: str | None, cmap: str, vmax: float | None, shared_scale: bool,
            truth_specs: tuple[str, ...], output: str, dpi: int, force: bool) -> None:
    """Draw the abundance maps of RESULT in the image's true shape and orientation.

    One panel per component, titled #1..#k with its name (a label stored in the result, or the
    ground-truth material it matches with --truth) and its share of pixels. Each layer has its
    own colour scale, with a colour bar saying what the values are (--shared-scale: one for all
    layers). Without --hard/--soft the layer's soft abundances are shown where stored, else its
    coefficients. The format follows the extension of -o.

    \b
    Example:
      mfcli plot-abundances out/result.h5 --layer all -o maps.png
      mfcli plot-abundances out/result.h5 --layer 1 --truth sample:urban -o named_maps.png
    """
    from mfcli.errors import ParameterError
    from mfcli.io.result import read_result
    from mfcli.plotting.abundances import abundance_figure

    check_picture_output(output, force)
    import matplotlib

    if cmap not in matplotlib.colormaps:
        raise ParameterError(f"unknown colour map '{cmap}'; try viridis, magma, cividis, gray or any matplotlib name")
    result = read_result(result_path)
    truth = load_truth(truth_specs, result)
    if truth is not None:
        name_after_truth(result, truth)
    figure = abundance_figure(result, layer=layer, kind=kind or "auto", cmap=cmap, vmax=vmax, dpi=dpi,
                              shared_scale=shared_scale)
    which = "all layers" if layer == "all" else f"layer {result.layer_number(layer)}"
    save(figure, output, force, dpi, f"abundance maps of {which}")
