"""Convergence: relative error per iteration on a log scale, with the numbers of the table.

A single-layer model: its relative error per iteration; the legend gives the final error and
the number of iterations exactly as ``--json`` and the table do (:mod:`mfcli.summary`).

A deep model: the right panel is the joint refinement, the model's relative error (the last
layer's, ``Result.history["relative_error"]``) from sweep 0 (the layer-wise initialization) to
sweep ``n_iter``; the left panel the layer-wise initialization, where each layer factorizes
its own input (layer 1: X, layer l: the factor of layer l-1), a different quantity, labelled
as such and given without a final number. A line under the panels gives each layer's relative
error ||X - B_l C_l||_F / ||X||_F at the end of the run, as the table and ``--json`` do.
"""

from __future__ import annotations

import numpy as np

from mfcli.completion.data import sorted_unique  # np.unique imports numpy.ma on first use (25 ms)
from mfcli.errors import DataError
from mfcli.plotting.canvas import Canvas, Plot, integer_ticks, round_ticks, tick_labels
from mfcli.plotting.style import DEFAULT_DPI, component_color, plot_style
from mfcli.summary import format_error, iteration_numbers

LAYER_KEYS = ("relative_error",)
TITLE_SIZE = 8.5
PANEL_TITLE_SIZE = 7.5
LABEL_SIZE = 7.5
LEGEND_SIZE = 6.8


def convergence_curves(result) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
    """(per-layer curves, global curves) as (legend name, values) pairs, non-empty ones only."""
    per_layer = []
    for index, layer in enumerate(result.layers, start=1):
        for key in LAYER_KEYS:
            values = layer.history.get(key)
            if values is not None and np.size(values):
                name = f"layer {index} (r={layer.rank})" if len(result.layers) > 1 else f"rank {layer.rank}"
                per_layer.append((name, np.asarray(values, dtype=np.float64).ravel()))
    joint = result.history.get("relative_error")
    global_curves = [("relative error", np.asarray(joint, dtype=np.float64).ravel())] \
        if joint is not None and np.size(joint) else []
    return per_layer, global_curves


def log_ticks(low: float, high: float) -> tuple[np.ndarray, list[str]]:
    """Ticks for a log axis over [low, high] whose labels are all different: powers of ten (every
    few decades over a wide range, with 2 and 5 between them over one or two), else round linear
    steps within less than a decade, each written exactly (:func:`tick_labels`)."""
    decades = np.log10(high) - np.log10(low)
    if decades >= 1:
        first, last = int(np.ceil(np.log10(low) - 1e-9)), int(np.floor(np.log10(high) + 1e-9))
        step = max(1, int(np.ceil((last - first + 1) / 6)))
        ticks = 10.0 ** np.arange(first, last + 1, step)
        if decades < 2.5:
            ticks = np.concatenate([ticks, *(m * 10.0 ** np.arange(first - 1, last + 1) for m in (2.0, 5.0))])
    else:  # within a decade: round linear steps, at least three where the range allows
        for bins in (5, 8, 12):
            ticks = round_ticks(low, high, bins)
            ticks = ticks[(ticks >= low) & (ticks <= high) & (ticks > 0)]
            if ticks.size >= 3:
                break
    ticks = sorted_unique(ticks[(ticks >= low) & (ticks <= high) & (ticks > 0)])
    if ticks.size < 2:
        ticks = np.array([low, high])
    labels = tick_labels(ticks)
    if len(set(labels)) == len(labels):
        return ticks, labels
    for digits in range(3, 10):  # ticks too fine for 4 decimals: enough significant digits to differ
        labels = [f"{t:.{digits}g}" for t in ticks]
        if len(set(labels)) == len(labels):
            break
    return ticks, labels


def _panel(canvas: Canvas, box, curves, colors, n_iter: int | None, legend: list[str], title: str, xlabel: str,
           ylabel: str) -> None:
    """One log-scale panel: its title, a legend under it (outside the data), the curves, the axes."""
    x, y, w, h = box
    canvas.text(x + w / 2, y, canvas.fit_lines(title.split("\n"), w, PANEL_TITLE_SIZE), size=PANEL_TITLE_SIZE,
                va="top")
    columns = 2 if len(legend) > 2 else 1
    legend_top = y + 2 * PANEL_TITLE_SIZE / 72 * 1.2 + 0.06
    used = canvas.legend(x, legend_top, w, [(text, color, "solid") for text, color in zip(legend, colors)],
                         LEGEND_SIZE, columns)
    top = legend_top + used + 0.06
    series = []
    for (_, values), color in zip(curves, colors):
        steps = iteration_numbers(values.size, n_iter)
        series.append((steps, np.where(values > 0, values, np.nan), color))
    finite = np.concatenate([v[np.isfinite(v)] for _, v, _ in series]) if series else np.array([1.0])
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (1.0, 1.0)
    if high <= low:
        low, high = low * 0.98, high * 1.02
    pad = (high / low) ** 0.06
    x_low = min(float(s[0]) for s, _, _ in series)
    x_high = max(float(s[-1]) for s, _, _ in series)
    if x_high <= x_low:
        x_low, x_high = x_low - 1, x_high + 1
    plot = Plot(canvas, x, top, w, y + h - top, (x_low - 0.03 * (x_high - x_low), x_high + 0.03 * (x_high - x_low)),
                (low / pad, high * pad), ylog=True)
    for steps, values, color in series:
        plot.line(steps, values, color, 1.3, markers=values.size <= 30)
    yticks, ylabels = log_ticks(low / pad, high * pad)
    xticks = integer_ticks(x_low, x_high, 6)
    plot.axes(xticks, tick_labels(xticks), yticks, ylabels, xlabel, ylabel, label_size=LABEL_SIZE)


def convergence_figure(result, dpi: float = DEFAULT_DPI):
    """The Figure of the error histories of ``result``."""
    per_layer, global_curves = convergence_curves(result)
    if not per_layer and not global_curves:
        raise DataError(f"this {result.model} result stores no error history, so there is no convergence to "
                        "plot; histories are saved by mfcli factorize and unmix")
    deep = len(result.layers) > 1 or bool(global_curves)
    joint = bool(global_curves) and (result.n_iter or 0) > 0
    n_panels = (1 if per_layer else 0) + (1 if joint else 0)
    panel_w, panel_h = 3.7, 2.75
    left, gap = 0.8, 0.85
    width = left + n_panels * panel_w + (n_panels - 1) * gap + 0.25
    footer_lines = []
    if deep:
        errors = " · ".join(f"layer {index} {format_error(layer.relative_error)}"
                            for index, layer in enumerate(result.layers, start=1))
        footer_lines = ["relative error ||X − B_l C_l|| / ||X|| of each layer at the end (as in the table):", errors]
    top = 0.2 + TITLE_SIZE / 72 * 1.2 + 0.1
    height = top + panel_h + 0.45 + len(footer_lines) * 7 / 72 * 1.25 + 0.12
    ranks = ",".join(map(str, result.ranks))
    with plot_style():
        canvas = Canvas(width, height, dpi)
        rank_text = f"ranks {ranks}" if len(result.layers) > 1 else f"rank {ranks}"
        canvas.text(width / 2, 0.12, canvas.fit(f"{result.model} · {rank_text} · convergence (log scale)",
                                                width - 0.3, TITLE_SIZE), size=TITLE_SIZE, va="top")
        x = left
        if per_layer:
            if deep:
                legend = [f"{name}: {values.size} iterations" for name, values in per_layer]
                title = "layer-wise initialization: each layer's\nown factorization of its input"
                ylabel = "relative error of the layer's own fit"
                n_iter = None
            else:
                layer = result.layers[0]
                n_iter = result.n_iter if result.n_iter is not None else per_layer[0][1].size
                legend = [f"{per_layer[0][0]}: {format_error(layer.relative_error)} after {n_iter} iterations"]
                title = "relative error ||X − WH|| / ||X||\nper iteration"
                ylabel = "relative error"
            _panel(canvas, (x, top, panel_w, panel_h), per_layer,
                   [component_color(i) for i in range(len(per_layer))], n_iter, legend, title, "iteration", ylabel)
            x += panel_w + gap
        if joint:
            sweeps = int(result.n_iter)
            refined = result.summary.get("unrefined_relative_error") is not None
            last = float(global_curves[0][1][-1])
            name = "deep factorization before refinement" if refined else f"model (layer {len(result.layers)})"
            legend = [f"{name}: {format_error(last)} after {sweeps} sweep{'s' if sweeps != 1 else ''}"]
            _panel(canvas, (x, top, panel_w, panel_h), global_curves, ["#222222"], sweeps, legend,
                   "joint refinement of all layers\n(sweep 0: the layer-wise initialization)", "sweep",
                   "relative error of the model")
        if footer_lines:
            canvas.text(width / 2, height - 0.08, canvas.fit_lines(footer_lines, width - 0.3, 7), size=7, va="bottom",
                        color="#333333")
    return canvas.finish()
