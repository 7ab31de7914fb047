"""The hierarchy of a deep result, drawn from the deepest layer (top) down to layer 1 (bottom).

Each node is one cluster: a thumbnail of its abundance map (images) or its member count and
members (other data), its endmember as a small sparkline in the component's colour, and a
title with its number ``#k`` (1-based), name (label or matched material) and share of the data.
Drawn on a :class:`~mfcli.plotting.canvas.Canvas` (one axes, no layout engine). Thick dark edges join a cluster to the
two or more clusters it merges; a thin grey edge means the cluster passes unchanged to the
next layer, so merges stand out at a glance. This is the picture the deep-MF survey's Fig. 5
(Urban, layer by layer) shows as separate rows of maps.

Layer-1 clusters are ordered by a depth-first walk from the top, so every subtree is
contiguous and no edges cross; a parent sits above the mean of its children.
"""

from __future__ import annotations

import numpy as np

from mfcli.plotting.canvas import Canvas
from mfcli.plotting.style import ABUNDANCE_CMAP, DEFAULT_DPI, plot_style
from mfcli.plotting.views import as_images, break_at_gaps, cluster_colors, layer_maps, robust_vmax, spectral_axis
from mfcli.summary import cluster_name, cluster_number, format_share, layer_summaries

SLOT_INCHES = 1.45  # horizontal room of one layer-1 cluster
THUMB_INCHES = 1.12
SPARK_INCHES = 0.3
TITLE_SIZE = 6.5
TITLE_INCHES = 3 * TITLE_SIZE / 72 * 1.2 + 0.06  # "#k name", the share, "merges ..."
EDGE_INCHES = 0.3
LEFT_INCHES = 0.75
TOP_INCHES = 0.42
FOOTER_INCHES = 0.42
COLORBAR_INCHES = 0.75
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


def _fit_lines(canvas: Canvas, lines: list[str], width: float, size: float) -> str:
    return "\n".join(canvas.fit(line, width, size) for line in lines)


def tree_figure(result, wavelengths: np.ndarray | None = None, dpi: float = DEFAULT_DPI):
    """The Figure of the hierarchy of ``result`` (which needs per-layer assignments)."""
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
    right = COLORBAR_INCHES if is_image else 0.15
    width = LEFT_INCHES + n_slots * SLOT_INCHES + right
    extra = max(0.0, MIN_WIDTH_INCHES - width)  # room for the title: centre a narrow tree
    left = LEFT_INCHES + extra / 2
    width += extra
    height = TOP_INCHES + n_layers * row_h - EDGE_INCHES + FOOTER_INCHES
    n_total = tree.n_columns
    unit = "pixels" if is_image else "columns"
    summaries = layer_summaries(result)

    with plot_style():
        canvas = Canvas(width, height, dpi)
        anchors: dict[tuple[int, int], tuple[float, float, float]] = {}  # (layer, id) -> (x, top, bottom) inches
        quantity = None
        for row, layer in enumerate(range(n_layers, 0, -1)):
            chosen = result.layer(layer)
            maps = layer_maps(result, layer, "auto")
            images = as_images(result, maps.values) if is_image else None
            top_value = robust_vmax(maps.values, fractions=maps.fractions)
            quantity = maps.quantity
            basis = np.asarray(chosen.data_basis, dtype=np.float64)
            axis = spectral_axis(result, basis.shape[0], wavelengths)
            order = np.argsort(axis.x, kind="stable")
            x_low, x_high = float(axis.x.min()), float(axis.x.max())
            colors = cluster_colors(result, layer)
            shares = summaries[layer - 1]["shares"]
            row_top = TOP_INCHES + row * row_h
            thumb_top = row_top + TITLE_INCHES
            canvas.text(0.12, thumb_top + thumb_h / 2, f"layer {layer}\nr = {chosen.rank}", size=8, ha="left",
                        va="center", weight="bold")
            for cluster in tree.layers[layer - 1]:
                k = cluster.id
                centre = left + (positions[layer - 1][k] + 0.5) * SLOT_INCHES
                color = colors[k]
                merged = len(cluster.children) >= 2
                lines = [cluster_name(k, cluster.label), format_share(shares[k])]
                if merged:
                    lines.append("merges " + " + ".join(cluster_number(c) for c in cluster.children))
                canvas.text(centre, thumb_top - 0.03, _fit_lines(canvas, lines, SLOT_INCHES - 0.08, TITLE_SIZE),
                            size=TITLE_SIZE, va="bottom", weight="bold" if merged else "normal")
                x0 = centre - thumb_w / 2
                if images is not None:
                    canvas.values_image(images[k], x0, thumb_top, thumb_w, thumb_h, 0.0, top_value, ABUNDANCE_CMAP)
                else:
                    canvas.image(np.full((1, 1, 4), (247, 247, 247, 255), dtype=np.uint8), x0, thumb_top, thumb_w,
                                 thumb_h)
                    text = [f"{cluster.size} {unit}"]
                    if layer == 1 and cluster.members is not None:
                        text.append(_ranges(cluster.members))
                    canvas.text(centre, thumb_top + thumb_h / 2, _fit_lines(canvas, text, thumb_w - 0.06, 6.5),
                                size=6.5, va="center")
                canvas.frame(x0, thumb_top, thumb_w, thumb_h, color, 2.4 if merged else 1.6)
                spark_top = thumb_top + thumb_h + 0.05
                values = basis[order, k]
                low, high = float(np.min(values)), float(np.max(values))
                ys = spark_top + SPARK_INCHES * (1.0 - (values - low) / (high - low if high > low else 1.0))
                xs = x0 + thumb_w * (axis.x[order] - x_low) / (x_high - x_low if x_high > x_low else 1.0)
                xs, ys = break_at_gaps(xs, ys, [(x0 + thumb_w * (a - x_low) / max(x_high - x_low, 1e-300),
                                                 x0 + thumb_w * (b - x_low) / max(x_high - x_low, 1e-300))
                                                for a, b in axis.gaps])
                canvas.line([x0, x0 + thumb_w], [spark_top + SPARK_INCHES] * 2, "#cccccc", 0.6)
                canvas.line(xs, ys, color, 1.0)
                anchors[(layer, k)] = (centre, row_top, spark_top + SPARK_INCHES)
            if images is not None:
                canvas.colorbar(width - COLORBAR_INCHES + 0.1, thumb_top, thumb_h, 0.0, top_value, ABUNDANCE_CMAP,
                                quantity, size=6.0, n_ticks=3)

        for layer in range(2, n_layers + 1):
            for cluster in tree.layers[layer - 1]:
                x_parent, _, bottom = anchors[(layer, cluster.id)]
                merged = len(cluster.children) >= 2
                for child in cluster.children:
                    x_child, child_top, _ = anchors[(layer - 1, child)]
                    canvas.line([x_parent, x_child], [bottom + 0.05, child_top + 0.02],
                                MERGE_COLOR if merged else PASS_COLOR, 2.0 if merged else 1.0)
        n_merges = sum(len(tree.merges(layer)) for layer in range(2, n_layers + 1))
        ranks = ",".join(map(str, tree.ranks))
        merges_text = "one layer: no merges" if n_layers == 1 else f"{n_merges} merge(s) (thick edges)"
        title = f"{result.model} hierarchy · ranks {ranks} · {n_total} {unit} · {merges_text}"
        canvas.text(width / 2, 0.12, canvas.fit(title, width - 0.3, 8.5), size=8.5, va="top")
        what = (f"thumbnails: {quantity} maps, one colour scale per layer (bars on the right)" if is_image else
                f"boxes: {unit} per cluster (layer 1: {unit} numbered from 1)")
        footer = [what, f"sparklines: endmembers against {axis.label}"]
        canvas.text(width / 2, height - 0.08, _fit_lines(canvas, footer, width - 0.3, 6.5), size=6.5,
                    va="bottom", color="#555555")
    return canvas.finish()
