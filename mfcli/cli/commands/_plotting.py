"""Options and steps shared by the picture commands (plot-*, report). Not a command itself
(the leading underscore keeps it out of the command list)."""

from __future__ import annotations

import click

from mfcli.cli.options import force_option, stack_options

picture_output_option = click.option(
    "-o", "--output", "output", required=True, metavar="FILE",
    help="Picture file; the format follows the extension: .png, .svg or .pdf.")
dpi_option = click.option("--dpi", type=click.IntRange(min=20, max=1200), default=150, show_default=True,
                          help="Resolution of PNG pictures (dots per inch).")
wavelengths_option = click.option(
    "--wavelengths", "wavelengths_path", metavar="FILE", type=click.Path(dir_okay=False),
    help="Wavelengths of the kept bands (text/CSV or .npy, nm or micrometres), overriding the result's metadata.")
truth_option = click.option(
    "--truth", "truth_specs", multiple=True, metavar="GT",
    help="Ground truth, read as by `mfcli evaluate` (.mat/.h5/.npz/.npy/CSV or sample:NAME with endmembers and/or "
         "abundances, e.g. M/A or GT/S_GT; repeat for two files): estimates are matched to its materials as "
         "evaluate matches them and named after them.")


picture_options = stack_options(picture_output_option, dpi_option, force_option)


def check_picture_output(output: str, force: bool) -> None:
    """Fail fast, before any work, on an unknown extension or an existing file without --force."""
    from mfcli.io.atomic import check_output_path
    from mfcli.plotting.style import image_format

    image_format(output)
    check_output_path(output, force)


def load_wavelengths(path: str | None):
    if path is None:
        return None
    from mfcli.plotting.views import read_wavelengths

    return read_wavelengths(path)


def load_truth(specs: tuple[str, ...], result):
    """The ground truth for ``result`` (:func:`mfcli.io.truth.load_truth_for_result`), or None."""
    if not specs:
        return None
    from mfcli.cli import console
    from mfcli.io.truth import load_truth_for_result

    truth = load_truth_for_result(list(specs), result)
    for note in truth.notes:
        console.detail(f"  {note}")
    return truth


def name_after_truth(result, truth) -> None:
    """Label the estimates of every layer with the ground-truth material they match (the matching
    of `mfcli evaluate`), for the pictures; the result file is not changed."""
    from mfcli.cli import console
    from mfcli.plotting.truth import label_with_truth

    labels = label_with_truth(result, truth)
    console.detail("  estimates named after the ground truth: " + "; ".join(
        f"layer {index}: " + ", ".join(f"#{k + 1} {name}" for k, name in enumerate(names) if name)
        for index, names in enumerate(labels, start=1)))


def save(figure, output: str, force: bool, dpi: int | None, what: str) -> None:
    """Write ``figure`` atomically (``dpi`` None: the figure's own) and say so on stderr."""
    from mfcli.cli import console
    from mfcli.plotting.style import save_figure

    save_figure(figure, output, force=force, dpi=dpi)
    console.info(f"Wrote {what} to {output}")
