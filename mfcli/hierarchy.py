"""The hierarchy of a deep (orthogonal) factorization, and its exports: JSON, Newick, DOT.

Deep ONMF (X ~= W1 H1, W1 ~= W2 H2, ..., W_{L-1} ~= W_L H_L) makes every H_l a hard
assignment: column j of H_1 puts pixel j in one cluster of layer 1; column k of H_l (l >= 2)
puts cluster k of layer l-1 in one cluster of layer l. A Result stores these as
``Layer.assignments`` (one int per input column of the layer, -1 where a column has no
cluster), and this module turns them into a tree. For soft models, each child goes to its
largest weight, and ``Layer.assignment_weights`` keeps that weight.

JSON schema (stable; scripts rely on it)::

    {"ranks": [7, 6, 4, 2],
     "n_columns": 94249, "unassigned": 0, "index_base": 0,
     "layers": [
       {"layer": 1, "rank": 7, "clusters": [
          {"id": 0, "size": 123, "parent": 2, "members": [0-based column indices], "label": null}, ...]},
       {"layer": 2, "rank": 6, "clusters": [
          {"id": 0, "size": 456, "parent": 1, "children": [ids in layer 1], "label": null}, ...]},
       ...]}

``size`` is the number of data columns (pixels, users) in the cluster's subtree; ``members``
only on layer 1, ``children`` on layers >= 2, ``parent`` null on the last layer. Layers are
numbered from 1; ``id``, ``parent``, ``children`` and ``members`` are 0-based positions
(``index_base`` 0), so cluster ``id`` k is ``#k+1`` in tables and pictures, and in the Newick
and DOT names (``L2_3`` is layer 2's #3), which people read. NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mfcli.errors import DataError


@dataclass
class Cluster:
    layer: int
    id: int
    size: int
    parent: int | None
    members: np.ndarray | None = None
    children: list[int] = field(default_factory=list)
    label: str | None = None
    weight: float | None = None  # soft models: weight of the assignment to the parent


@dataclass
class Tree:
    ranks: list[int]
    layers: list[list[Cluster]]
    n_columns: int
    unassigned: int = 0

    def cluster(self, layer: int, cluster_id: int) -> Cluster:
        return self.layers[layer - 1][cluster_id]

    def merges(self, layer: int) -> list[tuple[int, list[int]]]:
        """Clusters of ``layer`` (>= 2) with two or more children: (id, children)."""
        return [(c.id, c.children) for c in self.layers[layer - 1] if len(c.children) >= 2]


def build_tree(assignments: list[np.ndarray], ranks: list[int], labels: list[list[str] | None] | None = None,
               weights: list[np.ndarray | None] | None = None) -> Tree:
    """Tree from per-layer assignments (see module docstring). ``assignments[0]`` has one entry per
    data column; ``assignments[l]`` one per cluster of layer l (0-based list index)."""
    if len(assignments) != len(ranks):
        raise DataError(f"{len(assignments)} assignment arrays for {len(ranks)} layers")
    for index, (assign, rank) in enumerate(zip(assignments, ranks), start=1):
        assign = np.asarray(assign)
        if index > 1 and assign.size != ranks[index - 2]:
            raise DataError(f"layer {index} assigns {assign.size} clusters but layer {index - 1} has {ranks[index - 2]}")
        if assign.size and (assign.max() >= rank or assign.min() < -1):
            raise DataError(f"layer {index} has assignments outside 0..{rank - 1}")
    column_assign = np.asarray(assignments[0], dtype=np.int64)
    n_columns = int(column_assign.size)
    layers: list[list[Cluster]] = []
    sizes = np.bincount(column_assign[column_assign >= 0], minlength=ranks[0])
    order = np.argsort(column_assign, kind="stable")
    starts = np.searchsorted(column_assign[order], np.arange(ranks[0]))
    ends = np.searchsorted(column_assign[order], np.arange(ranks[0]), side="right")
    parents_next = np.asarray(assignments[1]) if len(ranks) > 1 else None
    first = []
    for k in range(ranks[0]):
        parent = int(parents_next[k]) if parents_next is not None and parents_next[k] >= 0 else None
        first.append(Cluster(1, k, int(sizes[k]), parent, members=np.sort(order[starts[k]:ends[k]])))
    layers.append(first)
    for index in range(2, len(ranks) + 1):
        assign = np.asarray(assignments[index - 1], dtype=np.int64)
        parents_next = np.asarray(assignments[index]) if index < len(ranks) else None
        child_weights = weights[index - 1] if weights is not None and weights[index - 1] is not None else None
        clusters = []
        for k in range(ranks[index - 1]):
            children = [int(c) for c in np.flatnonzero(assign == k)]
            size = int(sum(layers[-1][c].size for c in children))
            parent = int(parents_next[k]) if parents_next is not None and parents_next[k] >= 0 else None
            clusters.append(Cluster(index, k, size, parent, children=children))
        if child_weights is not None:
            for c, w in zip(layers[-1], np.asarray(child_weights)):
                c.weight = float(w)
        layers.append(clusters)
    if labels is not None:
        for layer_clusters, layer_labels in zip(layers, labels):
            if layer_labels is not None:
                for c, name in zip(layer_clusters, layer_labels):
                    c.label = name
    return Tree(list(ranks), layers, n_columns, int(np.count_nonzero(column_assign < 0)))


def tree_from_result(result) -> Tree:
    """The tree of a deep Result whose layers all have ``assignments``."""
    missing = [i for i, layer in enumerate(result.layers, start=1) if layer.assignments is None]
    if missing:
        raise DataError(
            f"this {result.model} result has no cluster assignments on layer(s) {missing}, so it has no "
            "hierarchy; hierarchies come from deep models (mfcli unmix)"
        )
    return build_tree([layer.assignments for layer in result.layers], result.ranks,
                      labels=[layer.labels for layer in result.layers],
                      weights=[layer.assignment_weights for layer in result.layers])


def to_json_dict(tree: Tree, include_members: bool = True) -> dict[str, Any]:
    layers = []
    for index, clusters in enumerate(tree.layers, start=1):
        entries = []
        for c in clusters:
            entry: dict[str, Any] = {"id": c.id, "size": c.size, "parent": c.parent}
            if index == 1:
                entry["members"] = c.members.tolist() if include_members and c.members is not None else None
            else:
                entry["children"] = list(c.children)
            entry["label"] = c.label
            if c.weight is not None:
                entry["weight"] = c.weight
            entries.append(entry)
        layers.append({"layer": index, "rank": tree.ranks[index - 1], "clusters": entries})
    return {"ranks": tree.ranks, "n_columns": tree.n_columns, "unassigned": tree.unassigned, "index_base": 0,
            "layers": layers}


def _node_name(c: Cluster) -> str:
    base = f"L{c.layer}_{c.id + 1}"  # 1-based, as people read cluster numbers
    if c.label:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in c.label)
        base = f"{base}_{safe}"
    return base


def to_newick(tree: Tree) -> str:
    """Newick string; leaves are the layer-1 clusters, sizes as NHX comments."""

    def render(layer: int, cid: int) -> str:
        c = tree.cluster(layer, cid)
        note = f"[&&NHX:size={c.size}]"
        if layer == 1:
            return f"{_node_name(c)}{note}"
        inner = ",".join(render(layer - 1, child) for child in c.children)
        return f"({inner}){_node_name(c)}{note}" if inner else f"{_node_name(c)}{note}"

    top = len(tree.layers)
    roots = [render(top, c.id) for c in tree.layers[-1]]
    if len(roots) == 1:
        return roots[0] + ";"
    return f"({','.join(roots)})root[&&NHX:size={tree.n_columns - tree.unassigned}];"


def to_dot(tree: Tree) -> str:
    """Graphviz DOT: one node per cluster (layer, id, size, label), edges parent -> child."""
    lines = ["digraph hierarchy {", "  rankdir=TB;", '  node [shape=box, fontname="Helvetica"];']
    for clusters in reversed(tree.layers):
        same = " ".join(f'"{_node_name(c)}";' for c in clusters)
        lines.append(f"  {{ rank=same; {same} }}")
        for c in clusters:
            label = c.label.replace("\\", "\\\\").replace('"', '\\"') if c.label else ""
            text = f"layer {c.layer} #{c.id + 1}\\n{c.size} columns" + (f"\\n{label}" if label else "")
            lines.append(f'  "{_node_name(c)}" [label="{text}"];')
    for clusters in tree.layers[1:]:
        for c in clusters:
            for child in c.children:
                lines.append(f'  "{_node_name(c)}" -> "{_node_name(tree.cluster(c.layer - 1, child))}";')
    lines.append("}")
    return "\n".join(lines) + "\n"
