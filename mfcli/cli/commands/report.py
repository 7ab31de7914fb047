"""mfcli report: one self-contained HTML report of a result."""

from __future__ import annotations

import click

from mfcli.cli.commands._plotting import load_truth, load_wavelengths, truth_option, wavelengths_option
from mfcli.cli.options import file_output, force_option, result_argument


@click.command(short_help="Write a self-contained HTML report: input, parameters, errors, all pictures.")
@result_argument
@truth_option
@wavelengths_option
@click.option("-o", "--output", required=True, metavar="FILE.html", callback=file_output("the HTML report"),
              help="The HTML file to write.")
@force_option
def command(result_path: str, truth_specs: tuple[str, ...], wavelengths_path: str | None, output: str,
            force: bool) -> None:
    """Write one HTML file describing RESULT: the input, the parameters, per-layer errors, the
    abundance maps, endmembers, hierarchy and convergence pictures, and with --truth the
    evaluation against the ground truth. Pictures are embedded; the file fetches nothing and
    opens offline.

    \b
    Example:
      mfcli report out/result.h5 --truth sample:urban -o report.html
    """
    from pathlib import Path

    from mfcli.cli import console
    from mfcli.io.atomic import check_output_path
    from mfcli.io.result import read_result
    from mfcli.plotting.report import write_report

    check_output_path(output, force)
    result = read_result(result_path)
    truth = load_truth(truth_specs, result)
    write_report(result, output, truth=truth, wavelengths=load_wavelengths(wavelengths_path), force=force,
                 result_name=Path(result_path).name)
    size = Path(output).stat().st_size
    console.info(f"Wrote report to {output} ({size / 1e6:.1f} MB)")
