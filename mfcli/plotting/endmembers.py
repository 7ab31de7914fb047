"""Endmember spectra: the columns of a layer's data-space basis against wavelength.

The x axis is the wavelength in nm where a source gives it (``--wavelengths``, or the input's
own, see :func:`mfcli.plotting.views.spectral_axis`), else the band number. Lines break, and the background is
shaded, where bands were removed (a spacing larger than 1.5x the median). With a ground
truth, each endmember gets its own panel with its matched reference spectrum (scaled to it by
least squares, since reference libraries are often normalised) and their spectral angle, as in
the deep-MF survey's Fig. 6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mfcli.plotting.canvas import Canvas, Plot, integer_ticks, nice_ticks, tick_labels
from mfcli.plotting.style import DEFAULT_DPI, GAP_COLOR, TRUTH_COLOR, plot_style
from mfcli.plotting.views import SpectralAxis, break_at_gaps, cluster_colors, spectral_axis
from mfcli.summary import cluster_name, format_share, hard_assignments, shares


@dataclass
class TruthMatch:
    """Ground-truth spectra matched to a layer's endmembers.

    ``spectra``: (m, k) reference spectra; ``names``: their k names; ``pairs``: (endmember,
    reference) index pairs; ``angles_deg``: the spectral angle of each pair in degrees.
    """

    spectra: np.ndarray
    names: list[str]
    pairs: list[tuple[int, int]]
    angles_deg: list[float]


TITLE_SIZE = 8.5
PANEL_TITLE_SIZE = 7.0
LEGEND_SIZE = 7.0
LABEL_SIZE = 7.5


def _title(canvas: Canvas, text: str, y: float = 0.1) -> float:
    """The figure's title at the top, each line fitted to the width; returns its height."""
    lines = [canvas.fit(line, canvas.width - 0.3, TITLE_SIZE) for line in text.split("\n")]
    canvas.text(canvas.width / 2, y, "\n".join(lines), size=TITLE_SIZE, va="top")
    return len(lines) * TITLE_SIZE / 72 * 1.2


def _ordered(axis: SpectralAxis, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(axis.x, kind="stable")
    return break_at_gaps(axis.x[order], np.asarray(values, dtype=np.float64)[order], axis.gaps)


def _spectra_plot(canvas: Canvas, box, axis: SpectralAxis, curves, markers: bool, xlabel: str | None,
                  ylabel: str | None, n_xticks: int = 7) -> Plot:
    """A plot of ``curves`` [(values, colour, style)] against the spectral axis, gaps shaded."""
    low, high = float(np.min(axis.x)), float(np.max(axis.x))
    pad = 0.01 * (high - low) if high > low else 0.5
    values = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v, _, _ in curves])
    values = values[np.isfinite(values)]
    y_low, y_high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    y_pad = 0.05 * (y_high - y_low) if y_high > y_low else max(abs(y_high), 1.0) * 0.05
    plot = Plot(canvas, *box, (low - pad, high + pad), (y_low - y_pad, y_high + y_pad))
    for start, end in axis.gaps:
        plot.vspan(start, end, GAP_COLOR)
    for curve, color, style in curves:
        x, y = _ordered(axis, curve)
        plot.line(x, y, color, 1.3 if style == "solid" else 1.0, style, markers=markers and style == "solid")
    xticks = integer_ticks(low, high, n_xticks) if not axis.is_wavelength else nice_ticks(low, high, n_xticks)
    yticks = nice_ticks(y_low - y_pad, y_high + y_pad, 5)
    plot.axes(xticks, tick_labels(xticks), yticks, tick_labels(yticks), xlabel, ylabel, label_size=LABEL_SIZE)
    return plot


def endmember_figure(result, layer: int = -1, wavelengths: np.ndarray | None = None,
                     truth: TruthMatch | None = None, dpi: float = DEFAULT_DPI):
    """The Figure of layer ``layer``'s endmembers (1-based, -1 = last); with ``truth``, one panel
    per endmember with its matched reference spectrum and spectral angle."""
    index = result.layer_number(int(layer))
    chosen = result.layer(index)
    basis = np.asarray(chosen.data_basis, dtype=np.float64)
    n_features, rank = basis.shape
    axis = spectral_axis(result, n_features, wavelengths)
    pixel_shares = shares(hard_assignments(result, index), rank)
    labels = list(chosen.labels) if chosen.labels else [None] * rank
    colors = cluster_colors(result, index)
    markers = n_features <= 40
    is_image = result.image_shape is not None
    ylabel = "value (data units)" if is_image else "basis value"
    unit = "pixels" if is_image else "columns"
    gap_note = f" · shaded: {len(axis.gaps)} gap(s) of removed bands" if axis.gaps else ""
    title = f"{result.model} · layer {index} of {len(result.layers)} · {rank} endmembers{gap_note}"

    with plot_style():
        if truth is None:
            entries = [(f"{cluster_name(k, labels[k])} · {format_share(pixel_shares[k])}", colors[k], "solid")
                       for k in range(rank)]
            columns = 2 if rank > 14 else 1
            rows = -(-rank // columns)
            height = max(3.4, 1.0 + (rows + 1) * LEGEND_SIZE / 72 * 1.45)
            canvas = Canvas(8.0, height, dpi)
            legend_title = f"endmember · share of {unit}"
            widest = max([canvas.text_width(label, LEGEND_SIZE) + 0.4 for label, _, _ in entries] +
                         [canvas.text_width(legend_title, LEGEND_SIZE, "bold")])
            legend_w = columns * min(2.3, max(1.3, widest)) + 0.05
            top = 0.2 + _title(canvas, title)
            left = 0.72
            box = (left, top, canvas.width - left - legend_w - 0.35, height - top - 0.55)
            _spectra_plot(canvas, box, axis, [(basis[:, k], colors[k], "solid") for k in range(rank)], markers,
                          axis.label, ylabel)
            canvas.legend(canvas.width - legend_w - 0.1, top, legend_w, entries, LEGEND_SIZE, columns, legend_title)
            return canvas.finish()

        matched = dict(truth.pairs)
        angles = {k: a for (k, _), a in zip(truth.pairs, truth.angles_deg)}
        n_cols = min(rank, 3)
        n_rows = math.ceil(rank / n_cols)
        panel_w, panel_h, gap_x = 2.45, 1.45, 0.62
        panel_title = 2 * PANEL_TITLE_SIZE / 72 * 1.2 + 0.05
        row_h = panel_title + panel_h + 0.26
        mean = float(np.mean(truth.angles_deg)) if truth.angles_deg else float("nan")
        full_title = (f"{title}\nsolid: extracted · dashed: ground truth (scaled to fit) · mean spectral angle "
                      f"{mean:.1f}°")
        width = 0.72 + n_cols * panel_w + (n_cols - 1) * gap_x + 0.2
        height = 0.2 + 2 * TITLE_SIZE / 72 * 1.2 + n_rows * row_h + 0.3
        canvas = Canvas(width, height, dpi)
        top = 0.2 + _title(canvas, full_title)
        for k in range(rank):
            row, column = divmod(k, n_cols)
            x = 0.72 + column * (panel_w + gap_x)
            y = top + row * row_h + panel_title
            name = cluster_name(k, labels[k] or (truth.names[matched[k]] if k in matched else None))
            lines = [f"{name} · {format_share(pixel_shares[k])}"]
            curves = [(basis[:, k], colors[k], "solid")]
            if k in matched:
                reference = truth.spectra[:, matched[k]]
                scale = float(reference @ basis[:, k]) / max(float(reference @ reference), 1e-300)
                curves.append((scale * reference, TRUTH_COLOR, "dashed"))
                lines.append(f"truth: {truth.names[matched[k]]} · angle {angles[k]:.1f}°")
            else:
                lines.append("no ground-truth match")
            canvas.text(x + panel_w / 2, y - 0.04, canvas.fit_lines(lines, panel_w, PANEL_TITLE_SIZE),
                        size=PANEL_TITLE_SIZE, va="bottom")
            _spectra_plot(canvas, (x, y, panel_w, panel_h), axis, curves, markers, None, None, n_xticks=4)
        canvas.text(width / 2, height - 0.06, canvas.fit(axis.label, width - 0.3, LABEL_SIZE), size=LABEL_SIZE,
                    va="bottom")
        canvas.text(0.08, top + (n_rows * row_h) / 2, ylabel, size=LABEL_SIZE, ha="center", va="top", rotation=90)
    return canvas.finish()
