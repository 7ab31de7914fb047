"""mfcli estimate-rank: the number of endmembers, by the simplex fit gain (HySime: an upper bound)."""

from __future__ import annotations

import click

from mfcli.cli.commands._plotting import check_picture_output, save
from mfcli.cli.options import data_options, force_option, input_argument, json_option


@click.command(short_help="Estimate the number of endmembers of hyperspectral data (simplex fit gain; HySime).")
@input_argument
@data_options
@click.option("--method", type=click.Choice(["simplex", "hysime"]), default="simplex", show_default=True,
              help="simplex: the materials a simplex fit needs, up to HySime's count; hysime: the signal "
                   "subspace dimension (an upper bound on real scenes).")
@click.option("--max-rank", type=click.IntRange(min=1), default=None, help="Cap the estimate at this value.")
@click.option("--plot", "plot_path", metavar="FILE", help="Write a scree plot (.png, .svg or .pdf).")
@force_option
@json_option
def command(input_spec: str, method: str, max_rank: int | None, plot_path: str | None, force: bool,
            as_json: bool, **data_opts) -> None:
    """Estimate the number of endmembers (materials) of INPUT (bands x pixels).

    \b
    hysime   the signal subspace dimension (Bioucas-Dias & Nascimento 2008): the noise of each
             band is estimated by regression on the other bands, then the eigenvectors of the
             signal correlation are kept while the signal power they carry exceeds twice the
             noise power they add. Real scenes give more components than materials (spectral
             variability, illumination, correlated noise): an upper bound (Samson 73, Moffett 15,
             for 3 materials each).
    simplex  (default) the materials a simplex needs: SPA endmembers of the pixels divided by
             their sums, exact FCLS fits with 1, 2, ... of them; the estimate is the largest count,
             up to HySime's (at most 15), whose last endmember at least halves the fit's residual
             (Samson 3, Moffett 3, the Urban stand-in 6). Large scenes: a seeded sample of 20000
             pixels.

    Prints the estimate on stdout (one integer), or with --json {rank, method, upper_bound
    (HySime's rank; simplex only), gains (simplex: the residual's reduction factor by
    endmember 2, 3, ...), eigenvalues, signal_power, noise_power, noise_std} (HySime's curves,
    first 50 components). Check a count by unmixing with it and one more (docs/unmixing.md).

    \b
    Example:
      mfcli estimate-rank sample:urban --plot urban_scree.png
    """
    from mfcli.cli import console
    from mfcli.cli.options import load_input
    from mfcli.models.rank import estimate_rank

    if plot_path:
        check_picture_output(plot_path, force)
    dataset = load_input(input_spec, **data_opts)
    estimate = estimate_rank(dataset.X, method=method, max_rank=max_rank)
    rank = estimate["rank"]
    subspace = estimate.get("hysime", estimate)
    noise = subspace["noise_std"]
    if method == "simplex":
        gains = ", ".join(f"{gain:.2f}" for gain in estimate["gains"][:10])
        console.info(f"simplex fit gain: rank {rank} (HySime upper bound {estimate['upper_bound']}; gains of "
                     f"endmembers 2, 3, ...: {gains})")
    else:
        console.info(f"HySime: rank {rank} (noise std per band {noise.min():.3g}-{noise.max():.3g})")
    if plot_path:
        from mfcli.plotting.scree import scree_figure

        save(scree_figure(subspace), plot_path, force, None, "the scree plot")
    if as_json:
        head = 50
        document = {"rank": rank, "method": method}
        if method == "simplex":
            document["upper_bound"] = estimate["upper_bound"]
            document["gains"] = estimate["gains"].tolist()
        document.update({"eigenvalues": subspace["eigenvalues"][:head].tolist(),
                         "signal_power": subspace["signal_power"][:head].tolist(),
                         "noise_power": subspace["noise_power"][:head].tolist(),
                         "noise_std": noise.tolist()})
        console.emit_json(document)
    else:
        click.echo(str(rank))
