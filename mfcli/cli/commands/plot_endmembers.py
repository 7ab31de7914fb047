"""mfcli plot-endmembers: the endmember spectra of a layer."""

from __future__ import annotations

import click

from mfcli.cli.commands._plotting import (check_picture_output, load_truth, load_wavelengths, name_after_truth,
                                          picture_options, save, truth_option, wavelengths_option)
from mfcli.cli.options import layer_option, result_argument


@click.command(short_help="Plot a layer's endmember spectra, optionally against a ground truth.")
@result_argument
@layer_option
@wavelengths_option
@truth_option
@picture_options
def command(result_path: str, layer: int, wavelengths_path: str | None, truth_specs: tuple[str, ...], output: str,
            dpi: int, force: bool) -> None:
    """Plot the endmembers (data-space basis vectors) of RESULT.

    Against wavelength in nm where a source gives it (--wavelengths, or the input file's own
    wavelengths recorded in the result), else against band numbers (SlectBands where the file
    has them), with gaps where bands were removed. With
    --truth, one panel per endmember with its matched reference spectrum (Hungarian matching on
    spectral angle) and their angle.

    \b
    Example:
      mfcli plot-endmembers out/result.h5 --layer 3 --truth sample:urban -o spectra.pdf
    """
    from mfcli.io.result import read_result
    from mfcli.plotting.endmembers import endmember_figure
    from mfcli.plotting.truth import match_spectra

    check_picture_output(output, force)
    result = read_result(result_path)
    wavelengths = load_wavelengths(wavelengths_path)
    index = result.layer_number(layer)
    truth = load_truth(truth_specs, result)
    match = None
    if truth is not None:
        name_after_truth(result, truth)
        match = match_spectra(result, index, truth)
    figure = endmember_figure(result, index, wavelengths=wavelengths, truth=match, dpi=dpi)
    extra = ""
    if match is not None:
        extra = f" against {', '.join(truth_specs)} (mean angle {sum(match.angles_deg) / max(len(match.angles_deg), 1):.2f}°)"
    save(figure, output, force, dpi, f"endmembers of layer {index}{extra}")
