"""Abundance maps: one panel per component, in the image's true shape and orientation.

All panels share one colour scale (one colourbar), so brightness means the same in every
panel; each panel is titled with the component's index, label and share of pixels, and
framed in the component's colour (the colour of its spectrum in the other pictures). With
several layers there is one row per layer, deepest at the bottom, as in the deep-MF survey's
Fig. 5 (Urban, layer by layer).
"""

from __future__ import annotations

import math

import numpy as np

from mfcli.plotting.style import ABUNDANCE_CMAP, DEFAULT_DPI, new_figure, plot_style
from mfcli.plotting.views import as_images, cluster_colors, component_title, layer_indices, layer_maps, robust_vmax

PANEL_INCHES = 1.75


def abundance_figure(result, layer: int | str = -1, kind: str = "auto", cmap: str | None = None,
                     vmax: float | None = None, dpi: float = DEFAULT_DPI):
    """The Figure of abundance maps of ``layer`` (1-based, -1 = last, or ``"all"``)."""
    indices = layer_indices(result, layer)
    maps = [layer_maps(result, index, kind) for index in indices]
    images = [as_images(result, m.values) for m in maps]
    colors = [cluster_colors(result, index) for index in indices]
    rows, cols = result.image_shape
    top = float(vmax) if vmax is not None else robust_vmax(np.concatenate([m.values.ravel() for m in maps]),
                                                                  fractions=all(m.fractions for m in maps))
    bottom = min(0.0, min(float(np.nanmin(m.values)) for m in maps))
    bottom = 0.0 if bottom > -1e-3 * top else bottom

    if len(indices) == 1:
        rank = maps[0].values.shape[0]
        n_cols = math.ceil(rank / math.ceil(rank / 6))
        grid = [[(0, k) for k in range(i, min(i + n_cols, rank))] for i in range(0, rank, n_cols)]
    else:
        n_cols = max(m.values.shape[0] for m in maps)
        grid = [[(row, k) for k in range(m.values.shape[0])] for row, m in enumerate(maps)]
    aspect = rows / cols
    panel_w = PANEL_INCHES
    panel_h = PANEL_INCHES * min(max(aspect, 0.25), 4.0)
    width = max(n_cols * (panel_w + 0.08) + (1.3 if len(maps) > 1 else 1.0), 5.6)  # room for the title
    height = len(grid) * (panel_h + 0.3) + 0.45

    with plot_style():
        figure = new_figure(width, height, dpi=dpi)
        axes = figure.subplots(len(grid), n_cols, squeeze=False)
        mappable = None
        for grid_row, entries in enumerate(grid):
            for grid_col in range(n_cols):
                ax = axes[grid_row][grid_col]
                if grid_col >= len(entries):
                    ax.set_axis_off()
                    continue
                which, k = entries[grid_col]
                layer_map = maps[which]
                mappable = ax.imshow(images[which][k], cmap=cmap or ABUNDANCE_CMAP, vmin=bottom, vmax=top,
                                     interpolation="nearest", origin="upper")
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(True)
                    spine.set_color(colors[which][k])
                    spine.set_linewidth(2.0)
                ax.set_title(component_title(k, layer_map.labels[k], layer_map.shares[k]), pad=3)
                if grid_col == 0 and len(maps) > 1:
                    ax.set_ylabel(f"layer {layer_map.layer} (r={layer_map.values.shape[0]})", fontsize=8)
        clipped = any(float(np.nanmax(m.values)) > top * (1 + 1e-9) for m in maps)
        colorbar = figure.colorbar(mappable, ax=axes, shrink=min(0.9, 2.2 / height + 0.35),
                                   extend="max" if clipped else "neither", pad=0.02, aspect=25)
        colorbar.ax.tick_params(labelsize=7)
        colorbar.outline.set_linewidth(0.5)
        what = maps[0].description if len({m.description for m in maps}) == 1 else "maps"
        layers_text = f"layer {indices[0]} of {len(result.layers)}" if len(indices) == 1 else \
            f"layers 1-{len(result.layers)} (top to bottom)"
        figure.suptitle(f"{result.model} · {layers_text} · {what} · {rows}x{cols} pixels")
    return figure


def truth_abundance_figure(result, layer: int, truth, match, cmap: str | None = None, dpi: float = DEFAULT_DPI):
    """Reference abundance maps (top row) above the matched maps of ``layer`` (bottom row).

    ``truth.abundances`` is (k x n) in the result's pixel order; ``match`` a
    :class:`~mfcli.plotting.endmembers.TruthMatch` of the layer's endmembers to the references.
    Each row has its own colour scale (references are fractions; a layer's maps may not be).
    """
    maps = layer_maps(result, layer, "auto")
    estimated = as_images(result, maps.values)
    colors = cluster_colors(result, layer)
    reference = as_images(result, np.asarray(truth.abundances, dtype=np.float64))
    rows, cols = result.image_shape
    pairs = list(match.pairs)
    n_cols = max(len(pairs), 1)
    panel_h = PANEL_INCHES * min(max(rows / cols, 0.25), 4.0)
    with plot_style():
        figure = new_figure(n_cols * PANEL_INCHES + 1.2, 2 * (panel_h + 0.35) + 0.7, dpi=dpi)
        axes = figure.subplots(2, n_cols, squeeze=False)
        tops = (robust_vmax(reference[[r for _, r in pairs]], fractions=True) if pairs else 1.0,
                robust_vmax(estimated[[e for e, _ in pairs]], fractions=maps.fractions) if pairs else 1.0)
        for row, (images, top) in enumerate(zip((reference, estimated), tops)):
            mappable = None
            for column, (est, ref) in enumerate(pairs):
                ax = axes[row][column]
                mappable = ax.imshow(images[ref if row == 0 else est], cmap=cmap or ABUNDANCE_CMAP, vmin=0.0,
                                     vmax=top, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    ax.set_title(f"truth: {match.names[ref]}")
                else:
                    ax.set_title(component_title(est, maps.labels[est], maps.shares[est]))
                    for spine in ax.spines.values():
                        spine.set_visible(True)
                        spine.set_color(colors[est])
                        spine.set_linewidth(2.0)
            if mappable is not None:
                figure.colorbar(mappable, ax=list(axes[row]), shrink=0.85, pad=0.02, aspect=15)
        axes[0][0].set_ylabel("ground truth")
        axes[1][0].set_ylabel(f"layer {layer}")
        figure.suptitle(f"{result.model} · layer {layer} · {maps.description} vs ground-truth abundances")
    return figure
