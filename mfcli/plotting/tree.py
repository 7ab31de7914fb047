"""The hierarchy of a deep result, drawn from the deepest layer (top) down to layer 1 (bottom).

Each node is one cluster: a thumbnail of its abundance map (images) or its member count and
members (other data), its endmember as a small sparkline in the component's colour, and a
title with layer, index, label and share of the data. Thick dark edges join a cluster to the
two or more clusters it merges; a thin grey edge means the cluster passes unchanged to the
next layer, so merges stand out at a glance. This is the picture the deep-MF survey's Fig. 5
(Urban, layer by layer) shows as separate rows of maps.

Layer-1 clusters are ordered by a depth-first walk from the top, so every subtree is
contiguous and no edges cross; a parent sits above the mean of its children.
"""

from __future__ import annotations

import numpy as np

from mfcli.plotting.style import ABUNDANCE_CMAP, DEFAULT_DPI, new_figure, plot_style
from mfcli.plotting.views import as_images, break_at_gaps, cluster_colors, layer_maps, robust_vmax, spectral_axis

SLOT_INCHES = 1.45  # horizontal room of one layer-1 cluster
THUMB_INCHES = 1.12
SPARK_INCHES = 0.34
TITLE_INCHES = 0.34
EDGE_INCHES = 0.42
LEFT_INCHES = 0.75
TOP_INCHES = 0.5
MIN_WIDTH_INCHES = 5.8
MERGE_COLOR = "#222222"
PASS_COLOR = "#b0b0b0"


def node_positions(tree) -> list[dict[int, float]]:
    """x slot of every cluster, per layer (list index = layer - 1): leaves in depth-first order
    from the roots, parents at the mean of their children, childless clusters to the right."""
    n_layers = len(tree.layers)
    leaf_order: list[int] = []

    def walk(layer: int, cluster_id: int) -> None:
        cluster = tree.cluster(layer, cluster_id)
        if layer == 1:
            leaf_order.append(cluster_id)
            return
        for child in cluster.children:
            walk(layer - 1, child)

    for root in tree.layers[-1]:
        walk(n_layers, root.id)
    seen = set(leaf_order)
    leaf_order += [c.id for c in tree.layers[0] if c.id not in seen]
    positions = [{cid: float(slot) for slot, cid in enumerate(leaf_order)}]
    for layer in range(2, n_layers + 1):
        below = positions[-1]
        current: dict[int, float] = {}
        spare = max(below.values(), default=-1.0) + 1.0
        for cluster in tree.layers[layer - 1]:
            if cluster.children:
                current[cluster.id] = float(np.mean([below[c] for c in cluster.children]))
            else:
                current[cluster.id] = spare
                spare += 1.0
        positions.append(current)
    return positions


def _ranges(members: np.ndarray, limit: int = 6) -> str:
    """1-based column numbers as compact ranges: ``1-5, 7, 10`` (at most ``limit`` ranges)."""
    numbers = np.sort(np.asarray(members, dtype=np.int64)) + 1
    if numbers.size == 0:
        return "none"
    breaks = np.flatnonzero(np.diff(numbers) > 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [numbers.size - 1]])
    parts = [f"{numbers[s]}" if s == e else f"{numbers[s]}-{numbers[e]}" for s, e in zip(starts, ends)]
    return ", ".join(parts[:limit]) + (", ..." if len(parts) > limit else "")


def tree_figure(result, wavelengths: np.ndarray | None = None, dpi: float = DEFAULT_DPI):
    """The Figure of the hierarchy of ``result`` (which needs per-layer assignments)."""
    from matplotlib.lines import Line2D

    from mfcli.hierarchy import tree_from_result

    tree = tree_from_result(result)
    n_layers = len(tree.layers)
    positions = node_positions(tree)
    n_slots = int(max(max(p.values(), default=0.0) for p in positions)) + 1
    is_image = result.image_shape is not None
    if is_image:
        rows, cols = result.image_shape
        thumb_w = THUMB_INCHES if rows <= cols else THUMB_INCHES * max(cols / rows, 0.3)
        thumb_h = THUMB_INCHES * min(max(rows / cols, 0.3), 1.0)
    else:
        thumb_w, thumb_h = THUMB_INCHES, 0.5
    row_h = TITLE_INCHES + thumb_h + 0.05 + SPARK_INCHES + EDGE_INCHES
    width = LEFT_INCHES + n_slots * SLOT_INCHES + 0.15
    extra = max(0.0, MIN_WIDTH_INCHES - width)  # room for the title: centre a narrow tree
    left = LEFT_INCHES + extra / 2
    width += extra
    height = TOP_INCHES + n_layers * row_h - EDGE_INCHES + 0.5
    n_total = tree.n_columns
    unit = "pixels" if is_image else "columns"

    with plot_style():
        figure = new_figure(width, height, dpi=dpi, constrained=False)

        def box(x_in: float, y_top_in: float, w_in: float, h_in: float):
            """Axes rectangle in figure fractions from inches measured from the top-left corner."""
            return [x_in / width, 1.0 - (y_top_in + h_in) / height, w_in / width, h_in / height]

        anchors: dict[tuple[int, int], tuple[float, float, float]] = {}  # (layer, id) -> (x, top, bottom) inches
        for row, layer in enumerate(range(n_layers, 0, -1)):
            chosen = result.layer(layer)
            maps = layer_maps(result, layer, "auto")
            images = as_images(result, maps.values) if is_image else None
            top_value = robust_vmax(maps.values, fractions=maps.fractions)
            basis = np.asarray(chosen.data_basis, dtype=np.float64)
            axis = spectral_axis(result, basis.shape[0], wavelengths)
            order = np.argsort(axis.x, kind="stable")
            colors = cluster_colors(result, layer)
            row_top = TOP_INCHES + row * row_h
            figure.text(0.12 / width, 1.0 - (row_top + TITLE_INCHES + thumb_h / 2) / height,
                        f"layer {layer}\nr = {chosen.rank}", ha="left", va="center", fontsize=8,
                        fontweight="bold")
            for cluster in tree.layers[layer - 1]:
                k = cluster.id
                centre = left + (positions[layer - 1][k] + 0.5) * SLOT_INCHES
                color = colors[k]
                name = f"#{k}" + (f" {cluster.label}" if cluster.label else "")
                share = cluster.size / max(n_total, 1)
                merged = len(cluster.children) >= 2
                title = f"{name} · {100 * share:.1f} %" + (f"\nmerges {'+'.join(f'#{c}' for c in cluster.children)}"
                                                             if merged else "")
                thumb = figure.add_axes(box(centre - thumb_w / 2, row_top + TITLE_INCHES, thumb_w, thumb_h))
                thumb.set_xticks([])
                thumb.set_yticks([])
                for spine in thumb.spines.values():
                    spine.set_visible(True)
                    spine.set_color(color)
                    spine.set_linewidth(2.4 if merged else 1.6)
                if images is not None:
                    thumb.imshow(images[k], cmap=ABUNDANCE_CMAP, vmin=0.0, vmax=top_value,
                                 interpolation="antialiased", aspect="auto")
                else:
                    text = f"{cluster.size} {unit}"
                    if layer == 1 and cluster.members is not None:
                        text += f"\n{_ranges(cluster.members)}"
                    thumb.text(0.5, 0.5, text, ha="center", va="center", fontsize=7, transform=thumb.transAxes)
                    thumb.set_facecolor("#f7f7f7")
                thumb.set_title(title, fontsize=7, pad=2, fontweight="bold" if merged else "normal")
                spark_top = row_top + TITLE_INCHES + thumb_h + 0.05
                spark = figure.add_axes(box(centre - thumb_w / 2, spark_top, thumb_w, SPARK_INCHES))
                x, y = break_at_gaps(axis.x[order], basis[order, k], axis.gaps)
                spark.plot(x, y, color=color, linewidth=1.0)
                spark.set_xticks([])
                spark.set_yticks([])
                spark.set_xlim(float(axis.x.min()), float(axis.x.max()))
                for side in ("left", "top", "right"):
                    spark.spines[side].set_visible(False)
                spark.spines["bottom"].set_color("#cccccc")
                anchors[(layer, k)] = (centre, row_top, spark_top + SPARK_INCHES)

        for layer in range(2, n_layers + 1):
            for cluster in tree.layers[layer - 1]:
                x_parent, _, bottom = anchors[(layer, cluster.id)]
                merged = len(cluster.children) >= 2
                for child in cluster.children:
                    x_child, child_top, _ = anchors[(layer - 1, child)]
                    line = Line2D([x_parent / width, x_child / width],
                                  [1.0 - (bottom + 0.03) / height, 1.0 - (child_top + 0.02) / height],
                                  transform=figure.transFigure, color=MERGE_COLOR if merged else PASS_COLOR,
                                  linewidth=2.0 if merged else 1.0, solid_capstyle="round")
                    figure.add_artist(line)
        n_merges = sum(len(tree.merges(layer)) for layer in range(2, n_layers + 1))
        ranks = ",".join(map(str, tree.ranks))
        merges_text = "one layer: no merges" if n_layers == 1 else f"{n_merges} merge(s) (thick edges)"
        figure.suptitle(f"{result.model} hierarchy · ranks {ranks} · {n_total} {unit} · {merges_text}",
                        y=1.0 - 0.12 / height, va="top")
        what = "thumbnails: abundance maps (one colour scale per layer)" if is_image else \
            f"boxes: {unit} per cluster (layer 1: {unit} numbered from 1)"
        figure.text(0.5, 0.1 / height, f"{what}\nsparklines: endmembers against {axis.label}",
                    ha="center", va="bottom", fontsize=6.5, color="#555555")
    return figure
