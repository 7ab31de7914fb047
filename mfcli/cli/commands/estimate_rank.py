"""mfcli estimate-rank: the number of endmembers (signal subspace dimension), by HySime."""

from __future__ import annotations

import click

from mfcli.cli.commands._plotting import check_picture_output, save
from mfcli.cli.options import data_options, force_option, input_argument, json_option


@click.command(short_help="Estimate the rank (number of endmembers) of hyperspectral data by HySime.")
@input_argument
@data_options
@click.option("--max-rank", type=click.IntRange(min=1), default=None, help="Cap the estimate at this value.")
@click.option("--plot", "plot_path", metavar="FILE", help="Write a scree plot (.png, .svg or .pdf).")
@force_option
@json_option
def command(input_spec: str, max_rank: int | None, plot_path: str | None, force: bool, as_json: bool,
            **data_opts) -> None:
    """Estimate the signal subspace dimension of INPUT (bands x pixels) by HySime
    (Bioucas-Dias & Nascimento 2008): the noise of each band is estimated by regression on the
    other bands, then the eigenvectors of the signal correlation are kept while the signal power
    they carry exceeds twice the noise power they add (the projection's mean squared error falls).

    Prints the estimate on stdout (one integer), or with --json {rank, method, eigenvalues,
    signal_power, noise_power, noise_std} (first 50 components). Real scenes often give more
    components than materials (illumination, nonlinear mixing, correlated noise): treat the
    estimate as an upper bound and look at the scree plot.

    \b
    Example:
      mfcli estimate-rank sample:urban --plot urban_scree.png
    """
    from mfcli.cli import console
    from mfcli.cli.options import check_factorization_input, load_input
    from mfcli.models.rank import hysime

    if plot_path:
        check_picture_output(plot_path, force)
    dataset = load_input(input_spec, **data_opts)
    check_factorization_input(dataset, "HySime", nonnegative=False)
    estimate = hysime(dataset.X, max_rank=max_rank)
    rank = estimate["rank"]
    noise = estimate["noise_std"]
    console.info(f"HySime: rank {rank} (noise std per band {noise.min():.3g}-{noise.max():.3g})")
    if plot_path:
        from mfcli.plotting.scree import scree_figure

        save(scree_figure(estimate), plot_path, force, None, "the scree plot")
    if as_json:
        head = 50
        console.emit_json({"rank": rank, "method": "hysime",
                           "eigenvalues": estimate["eigenvalues"][:head].tolist(),
                           "signal_power": estimate["signal_power"][:head].tolist(),
                           "noise_power": estimate["noise_power"][:head].tolist(),
                           "noise_std": noise.tolist()})
    else:
        console.echo(str(rank))
