"""mfcli evaluate: compare a result's endmembers and abundances with a ground truth."""

from __future__ import annotations

import click

from mfcli.cli.options import json_option, layer_option, result_argument


@click.command(short_help="Score a result against ground truth: spectral angles, abundance RMSE, SRE.")
@result_argument
@click.option("--truth", "truth_specs", multiple=True, required=True, metavar="FILE",
              help="Ground truth (.mat/.h5/.npz/.npy/CSV or sample:NAME) with endmembers and/or abundances; "
                   "repeat to take endmembers and abundances from two files.")
@layer_option
@click.option("--match", "match", type=click.Choice(["sad", "abundance"]), default=None,
              help="Match estimated to true materials on spectral angle or on abundance RMSE "
                   "(default: sad when the truth has endmembers).")
@click.option("--abundances", "abundance_source", type=click.Choice(["auto", "stored", "fcls"]), default="auto",
              show_default=True,
              help="Abundances to score: the layer's (stored), FCLS of the data for the layer's endmembers "
                   "(fcls), or auto: stored if they are abundances (sum to one, or NNLS/FCLS output), else FCLS "
                   "when the data can be read, else the stored coefficients.")
@click.option("--data", "data_spec", metavar="INPUT",
              help="The data the result was computed from (default: the input recorded in the result), "
                   "for FCLS abundances and the reconstruction error.")
@click.option("--library", "library_spec", metavar="FILE",
              help="Spectral library (USGS layout; the bundled USGS 1995 library is sample:usgs-1995): label each "
                   "estimated endmember with its closest library spectra (resampled to the data's wavelengths).")
@click.option("--wavelengths", "wavelengths_path", metavar="FILE", type=click.Path(dir_okay=False),
              help="Wavelengths of the bands (text/CSV or .npy, nm or micrometres) for --library, where the "
                   "result's input has none.")
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True,
              help="Library spectra listed per endmember with --library.")
@json_option
def command(result_path: str, truth_specs: tuple[str, ...], layer: int, match: str | None, abundance_source: str,
            data_spec: str | None, library_spec: str | None, wavelengths_path: str | None, top: int,
            as_json: bool) -> None:
    """Compare the endmembers and abundances of RESULT (any mfcli result: factorize, unmix,
    endmembers, abundances; --layer picks a layer of a deep result) with a ground truth.

    Estimated materials are matched one-to-one to the true ones by the Hungarian algorithm
    (scipy.optimize.linear_sum_assignment) on spectral angle or on abundance RMSE. Reported per
    material: spectral angle distance (SAD, degrees) and abundance RMSE; overall: mean SAD,
    abundance RMSE (aRMSE), SRE of the abundances in dB (10 log10 ||A||^2 / ||A - A_est||^2) and
    the result's relative reconstruction error ||X - WH||_F / ||X||_F (and, where abundances
    were computed by FCLS, that of the endmembers with those abundances).

    Ground truth is detected under the usual names: endmembers M, GT, E (bands x materials or
    materials x bands), abundances A, S_GT (materials x pixels, pixels x materials, or an
    abundance cube rows x cols x materials); names from 'cood'. Samson's GT spectra are each
    scaled to a maximum of 1: the spectral angle is scale-free and compares with them, and the
    note says so. Plain NMF coefficients carry an arbitrary scale per component, so abundances
    are then FCLS of the data for the layer's endmembers, which depends on those endmembers'
    scale: for such results trust the spectral angles first.

    A table goes to stderr, materials and estimates numbered #1..#k; --json prints on stdout:
    mean_sad, sad (per true material), armse, armse_per_material, sre, match, matching [{true,
    name, estimated, sad, rmse}], unmatched_estimates, abundances_from, relative_error,
    fcls_relative_error (null unless FCLS abundances were computed), truth {endmembers,
    abundances, notes, endmembers_scaled_to_max_one}, result {path, model, layer, rank},
    index_base, library (with --library: per estimated endmember [{name, sad}]). In JSON,
    true, estimated and unmatched_estimates are 0-based positions (index_base 0): estimate j is
    #j+1 in the table and the pictures; layers are numbered from 1.

    \b
    Examples:
      mfcli factorize sample:samson -r 3 --model minvol -o samson.h5
      mfcli evaluate samson.h5 --truth sample:samson
      mfcli evaluate deep.h5 --layer 2 --truth gt.mat --match abundance --json
      mfcli evaluate samson.h5 --truth sample:samson --library sample:usgs-1995
    """
    from mfcli.api import evaluate
    from mfcli.cli import console

    document = evaluate(result_path, list(truth_specs), layer, match=match, abundances=abundance_source,
                        data=data_spec, library=library_spec, wavelengths=wavelengths_path, top=top,
                        reporter=console.REPORTER)
    _print_table(document)
    if as_json:
        console.emit_json(document)


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


def _print_table(document: dict) -> None:
    from rich.table import Table

    from mfcli.cli import console

    table = Table(title=f"{document['result']['path']} (layer {document['result']['layer']}, "
                        f"matched on {document['match']})")
    table.add_column("true material")
    table.add_column("estimate", justify="right")
    table.add_column("SAD (deg)", justify="right")
    table.add_column("abundance RMSE", justify="right")
    library = document.get("library")
    if library:
        table.add_column("closest library spectra")
    for entry in document["matching"]:
        estimate = "-" if entry["estimated"] is None else f"#{entry['estimated'] + 1}"
        row = [f"#{entry['true'] + 1} {entry['name']}", estimate,
               _fmt(entry["sad"]), _fmt(entry["rmse"], 4)]
        if library:
            labels = library[entry["estimated"]] if entry["estimated"] is not None else []
            row.append(", ".join(f"{item['name']} ({item['sad']:.1f})" for item in labels))
        table.add_row(*row)
    console.print_table(table)
    sre = document["sre"]
    console.info(f"mean SAD {_fmt(document['mean_sad'])} deg, aRMSE {_fmt(document['armse'], 4)}, "
                 f"SRE {'-' if sre is None else ('inf' if sre == float('inf') else f'{sre:.2f}')} dB, "
                 f"relative error {_fmt(document['relative_error'], 4)}"
                 + (f" (with FCLS abundances {_fmt(document['fcls_relative_error'], 4)})"
                    if document["fcls_relative_error"] is not None else ""))
    if document["unmatched_estimates"]:
        unmatched = ", ".join(f"#{j + 1}" for j in document["unmatched_estimates"])
        console.info(f"estimates without a true material: {unmatched}")
