"""Scree plot of a rank estimate: eigenvalues of the signal correlation and HySime's criterion.

Left: the eigenvalues (log scale) with the estimated rank marked. Right: the per-component
signal power against twice the noise power (HySime keeps a component when the first is
larger). Drawn on a :class:`~mfcli.plotting.canvas.Canvas` (no layout engine).
"""

from __future__ import annotations

import numpy as np

from mfcli.plotting.canvas import Canvas, Plot, integer_ticks, tick_labels
from mfcli.plotting.convergence import log_ticks
from mfcli.plotting.style import DEFAULT_DPI, component_color, plot_style

TITLE_SIZE = 7.5


def _log_panel(canvas: Canvas, box, k: np.ndarray, series, rank: int, title: str, ylabel: str) -> None:
    """One log-scale panel of ``series`` [(values, colour, label)] against the component number."""
    x, y, w, h = box
    canvas.text(x + w / 2, y, canvas.fit(title, w, TITLE_SIZE), size=TITLE_SIZE, va="top")
    top = y + TITLE_SIZE / 72 * 1.3 + 0.05
    labelled = [(label, color, "solid") for _, color, label in series if label]
    if labelled:
        top += canvas.legend(x + 0.05, top, w - 0.1, labelled, 6.5, columns=len(labelled)) + 0.04
    values = np.concatenate([v for v, _, _ in series])
    low, high = float(values.min()), float(values.max())
    if high <= low:
        low, high = low / 2, high * 2
    pad = (high / low) ** 0.05
    plot = Plot(canvas, x, top, w, y + h - top, (k[0] - 0.5, k[-1] + 0.5), (low / pad, high * pad), ylog=True)
    plot.line([rank, rank], [low / pad, high * pad], "#888888", 1.0, "dashed")
    for values, color, _ in series:
        plot.line(k, values, color, 1.2, markers=k.size <= 40)
    yticks, ylabels = log_ticks(low / pad, high * pad)
    xticks = integer_ticks(float(k[0]), float(k[-1]), 8)
    plot.axes(xticks, tick_labels(xticks), yticks, ylabels, "component", ylabel)


def scree_figure(estimate: dict, max_components: int | None = None, dpi: float = DEFAULT_DPI):
    """Figure for the dict returned by :func:`mfcli.models.rank.hysime`."""
    eigenvalues = np.asarray(estimate["eigenvalues"], dtype=np.float64)
    rank = int(estimate["rank"])
    shown = min(eigenvalues.size, max_components or max(3 * rank, 20))
    k = np.arange(1, shown + 1, dtype=np.float64)
    tiny = np.finfo(np.float64).tiny
    both = "signal_power" in estimate and "noise_power" in estimate
    panel_w, gap, left = 3.0, 0.9, 0.85
    width = left + panel_w + ((gap + panel_w) if both else 0.0) + 0.2
    with plot_style():
        canvas = Canvas(width, 2.9, dpi)
        _log_panel(canvas, (left, 0.12, panel_w, 2.2), k, [(np.maximum(eigenvalues[:shown], tiny),
                                                             component_color(0), None)], rank,
                   f"scree ({estimate.get('method', 'hysime')}: rank {rank}, dashed)",
                   "eigenvalue of the signal correlation")
        if both:
            signal = np.maximum(np.asarray(estimate["signal_power"], dtype=np.float64)[:shown], tiny)
            noise = np.maximum(2.0 * np.asarray(estimate["noise_power"], dtype=np.float64)[:shown], tiny)
            _log_panel(canvas, (left + panel_w + gap, 0.12, panel_w, 2.2), k,
                       [(signal, component_color(0), "signal power"), (noise, component_color(1), "2 x noise power")],
                       rank, "HySime: keep where signal > 2 x noise", "power")
    return canvas.finish()
