"""Abundance maps: one panel per component, in the image's true shape and orientation.

Each panel is titled with the component's number (``#1..#k``), its name (a label stored in the
result, or the ground-truth material it matches with ``--truth``) and its share of pixels, and
framed in the component's colour (the colour of its spectrum in the other pictures). Every layer
has its own colour scale by default (a deep model's layers differ in scale, and one scale makes
the first layer look dim), with a colour bar that says what a pixel's value is; ``shared_scale``
puts all layers on one. With several layers there is one row per layer, deepest at the bottom,
as in the deep-MF survey's Fig. 5 (Urban, layer by layer).

Drawn on a :class:`~mfcli.plotting.canvas.Canvas`: one image per panel, coloured in NumPy, no
axes per panel and no layout engine.
"""

from __future__ import annotations

import math

import numpy as np

from mfcli.plotting.canvas import Canvas
from mfcli.plotting.style import ABUNDANCE_CMAP, DEFAULT_DPI, plot_style
from mfcli.plotting.views import as_images, cluster_colors, layer_indices, layer_maps, robust_vmax
from mfcli.summary import cluster_name, format_share

PANEL_INCHES = 1.55
GAP_INCHES = 0.1
MARGIN_INCHES = 0.12
TITLE_SIZE = 7.0
SUPTITLE_SIZE = 8.5
TITLE_INCHES = 2 * TITLE_SIZE / 72 * 1.2 + 0.05  # two lines: "#k name" and the share
SUPTITLE_INCHES = 0.42
ROW_LABEL_INCHES = 0.62
COLORBAR_INCHES = 0.9


def _scale(values: np.ndarray, fractions: bool, vmax: float | None) -> tuple[float, float, bool]:
    """(bottom, top, clipped) of a colour scale for ``values``."""
    top = float(vmax) if vmax is not None else robust_vmax(values, fractions=fractions)
    finite = values[np.isfinite(values)]
    low = float(finite.min()) if finite.size else 0.0
    bottom = 0.0 if low > -1e-3 * top else low
    clipped = bool(finite.size and float(finite.max()) > top * (1 + 1e-9))
    return bottom, top, clipped


def _suptitle(canvas: Canvas, text: str, width: float) -> None:
    """A title centred at the top, on two lines (split at a " · ") when one is too wide."""
    if canvas.text_width(text, SUPTITLE_SIZE) > width and " · " in text:
        parts = text.split(" · ")
        cut = max(1, len(parts) // 2)
        text = " · ".join(parts[:cut]) + "\n" + " · ".join(parts[cut:])
    lines = [canvas.fit(line, width, SUPTITLE_SIZE) for line in text.split("\n")]
    canvas.text(canvas.width / 2, MARGIN_INCHES, "\n".join(lines), size=SUPTITLE_SIZE, va="top")


def _panel(canvas: Canvas, image: np.ndarray, x: float, y: float, w: float, h: float, scale, cmap: str,
           color: str | None, title: str, share: float | None) -> None:
    """One map with its two-line title above it (``#k name`` and the share of pixels) and a frame."""
    bottom, top, _ = scale
    lines = [canvas.fit(title, w, TITLE_SIZE, "bold")]
    if share is not None:
        lines.append(f"{format_share(share)} of pixels")
    canvas.text(x + w / 2, y - 0.03, "\n".join(lines), size=TITLE_SIZE, va="bottom")
    canvas.values_image(image, x, y, w, h, bottom, top, cmap)
    if color is not None:
        canvas.frame(x, y, w, h, color, 2.0)


def abundance_figure(result, layer: int | str = -1, kind: str = "auto", cmap: str | None = None,
                     vmax: float | None = None, dpi: float = DEFAULT_DPI, shared_scale: bool = False):
    """The Figure of abundance maps of ``layer`` (1-based, -1 = last, or ``"all"``): per-layer
    colour scales (``shared_scale``: one for all layers; ``vmax``: the top of every scale)."""
    cmap = cmap or ABUNDANCE_CMAP
    indices = layer_indices(result, layer)
    maps = [layer_maps(result, index, kind) for index in indices]
    images = [as_images(result, m.values) for m in maps]
    colors = [cluster_colors(result, index) for index in indices]
    rows, cols = result.image_shape
    if shared_scale or len(maps) == 1:
        common = _scale(np.concatenate([m.values.ravel() for m in maps]), all(m.fractions for m in maps), vmax)
        scales = [common] * len(maps)
    else:
        scales = [_scale(m.values, m.fractions, vmax) for m in maps]

    if len(indices) == 1:
        rank = maps[0].values.shape[0]
        n_cols = math.ceil(rank / math.ceil(rank / 6))
        grid = [[(0, k) for k in range(i, min(i + n_cols, rank))] for i in range(0, rank, n_cols)]
    else:
        n_cols = max(m.values.shape[0] for m in maps)
        grid = [[(row, k) for k in range(m.values.shape[0])] for row, m in enumerate(maps)]
    panel_w = PANEL_INCHES
    panel_h = PANEL_INCHES * min(max(rows / cols, 0.25), 4.0)
    left = MARGIN_INCHES + (ROW_LABEL_INCHES if len(maps) > 1 else 0.0)
    width = max(left + n_cols * panel_w + (n_cols - 1) * GAP_INCHES + 0.12 + COLORBAR_INCHES + MARGIN_INCHES, 5.2)
    row_h = TITLE_INCHES + panel_h + 0.08
    height = SUPTITLE_INCHES + len(grid) * row_h + MARGIN_INCHES

    with plot_style():
        canvas = Canvas(width, height, dpi)
        what = maps[0].description if len({m.description for m in maps}) == 1 else "maps"
        layers_text = f"layer {indices[0]} of {len(result.layers)}" if len(indices) == 1 else \
            f"layers 1-{len(result.layers)} (top to bottom)"
        _suptitle(canvas, f"{result.model} · {layers_text} · {what} · {rows}x{cols} pixels",
                  width - 2 * MARGIN_INCHES)
        bar_x = left + n_cols * panel_w + (n_cols - 1) * GAP_INCHES + 0.12
        for grid_row, entries in enumerate(grid):
            y = SUPTITLE_INCHES + grid_row * row_h + TITLE_INCHES
            for grid_col, (which, k) in enumerate(entries):
                layer_map = maps[which]
                x = left + grid_col * (panel_w + GAP_INCHES)
                _panel(canvas, images[which][k], x, y, panel_w, panel_h, scales[which], cmap, colors[which][k],
                       cluster_name(k, layer_map.labels[k]), layer_map.shares[k])
            which = entries[0][0]
            if len(maps) > 1:
                row_label = f"layer {maps[which].layer}\n(r = {maps[which].values.shape[0]})"
                canvas.text(MARGIN_INCHES, y + panel_h / 2, row_label, size=7.5, ha="left", va="center", weight="bold")
            per_row = len(maps) > 1 and not shared_scale
            if per_row or grid_row == 0:
                span = panel_h if per_row or len(grid) == 1 else (len(grid) - 1) * row_h + panel_h
                bottom, top, clipped = scales[which]
                label = maps[which].quantity + (" (top clipped)" if clipped else "")
                canvas.colorbar(bar_x, y, span, bottom, top, cmap, label)
    return canvas.finish()


def truth_abundance_figure(result, layer: int, truth, match, cmap: str | None = None, dpi: float = DEFAULT_DPI):
    """Reference abundance maps (top row) above the matched maps of ``layer`` (bottom row).

    ``truth.abundances`` is (k x n) in the result's pixel order; ``match`` a
    :class:`~mfcli.plotting.endmembers.TruthMatch` of the layer's endmembers to the references.
    Each row has its own colour scale (references are fractions; a layer's maps may not be).
    """
    cmap = cmap or ABUNDANCE_CMAP
    maps = layer_maps(result, layer, "auto")
    estimated = as_images(result, maps.values)
    colors = cluster_colors(result, layer)
    reference = as_images(result, np.asarray(truth.abundances, dtype=np.float64))
    rows, cols = result.image_shape
    pairs = list(match.pairs)
    n_cols = max(len(pairs), 1)
    panel_w = PANEL_INCHES
    panel_h = PANEL_INCHES * min(max(rows / cols, 0.25), 4.0)
    left = MARGIN_INCHES + ROW_LABEL_INCHES
    width = max(left + n_cols * panel_w + (n_cols - 1) * GAP_INCHES + 0.12 + COLORBAR_INCHES + MARGIN_INCHES, 5.2)
    row_h = TITLE_INCHES + panel_h + 0.08
    height = SUPTITLE_INCHES + 2 * row_h + MARGIN_INCHES
    truth_values = reference[[r for _, r in pairs]] if pairs else reference
    scales = (_scale(truth_values, True, None),
              _scale(estimated[[e for e, _ in pairs]] if pairs else estimated, maps.fractions, None))
    with plot_style():
        canvas = Canvas(width, height, dpi)
        _suptitle(canvas, f"{result.model} · layer {layer} · {maps.description} against the ground-truth abundances",
                  width - 2 * MARGIN_INCHES)
        bar_x = left + n_cols * panel_w + (n_cols - 1) * GAP_INCHES + 0.12
        for row in range(2):
            y = SUPTITLE_INCHES + row * row_h + TITLE_INCHES
            for column, (est, ref) in enumerate(pairs):
                x = left + column * (panel_w + GAP_INCHES)
                if row == 0:
                    _panel(canvas, reference[ref], x, y, panel_w, panel_h, scales[0], cmap, None,
                           f"truth: {match.names[ref]}", None)
                else:
                    _panel(canvas, estimated[est], x, y, panel_w, panel_h, scales[1], cmap, colors[est],
                           cluster_name(est, maps.labels[est] or match.names[ref]), maps.shares[est])
            row_label = "ground\ntruth" if row == 0 else f"layer {layer}\n(r = {maps.values.shape[0]})"
            canvas.text(MARGIN_INCHES, y + panel_h / 2, row_label, size=7.5, ha="left", va="center", weight="bold")
            bottom, top, clipped = scales[row]
            label = ("true abundance (fraction)" if row == 0 else maps.quantity) + \
                (" (top clipped)" if clipped else "")
            canvas.colorbar(bar_x, y, panel_h, bottom, top, cmap, label)
    return canvas.finish()
