"""The numbers a person reads about a result, each defined once and written one way.

The CLI tables, ``--json``, the pictures and the HTML report all take them from here, so the
same layer never shows two errors, two sweep counts or two shares:

- **relative error of layer l**: ``Layer.relative_error`` = ||X - B_l C_l||_F / ||X||_F, the
  layer's data-space reconstruction (basis B_l, coefficients C_l) at the end of the run; the
  model's error (``Result.relative_error``) is the last layer's. Where ``unmix`` refined the
  endmembers, the deep factorization's own error (where the joint refinement's curve ends) is
  ``summary['unrefined_relative_error']``, labelled as such. A deep model's layer-wise
  initialization records, per layer, the error of the layer's own factorization of its input
  (``Layer.history``): another quantity, always labelled as such.
- **iterations / sweeps**: ``Result.n_iter``, the iterations of a single-layer model or the
  sweeps of a deep model's joint refinement. A deep model's ``Result.history`` starts with
  entry 0, the layer-wise initialization, so it holds ``n_iter + 1`` values;
  :func:`iteration_numbers` numbers any history so that its last value is at ``n_iter``.
- **share of a cluster**: the fraction of all data columns (pixels) whose hard cluster it is
  (:func:`hard_assignments`: composed down the layers for hierarchies, else the largest
  coefficient).
- **numbers of clusters, endmembers and materials**: 1-based ``#1..#k`` wherever a person reads
  them (:func:`cluster_name`); JSON documents give 0-based positions (array indices) and say so
  with ``"index_base": 0`` (:data:`JSON_INDEX_BASE`). Layers are numbered from 1 everywhere.

NumPy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

JSON_INDEX_BASE = 0
ERROR_DIGITS = 4  # significant digits of a relative error shown to a person


def format_error(value: float | None) -> str:
    """A relative error as a person reads it everywhere: 4 significant digits (``0.08030``)."""
    if value is None or not np.isfinite(value):
        return "-"
    return f"{float(value):#.{ERROR_DIGITS}g}"


def format_share(fraction: float) -> str:
    """A share of the data columns as a percentage with one decimal (``31.4%``)."""
    return f"{100.0 * float(fraction):.1f}%"


def cluster_number(index: int) -> str:
    """``#k``, 1-based, of the 0-based cluster/endmember/material ``index``."""
    return f"#{int(index) + 1}"


def cluster_name(index: int, label: str | None = None) -> str:
    """``#k`` (1-based) and the label where there is one: ``#3 grass``."""
    return cluster_number(index) + (f" {label}" if label else "")


def hard_assignments(result, index: int) -> np.ndarray:
    """The cluster (0-based, or -1 for none) of every data column at layer ``index`` (1-based).

    Deep orthogonal models store assignments layer by layer (layer 1: data columns -> clusters,
    layer l: clusters of l-1 -> clusters of l); they are composed down to the data columns.
    Otherwise each column goes to its largest coefficient (-1 for an all-zero column).
    """
    layers = result.layers[:index]
    if all(layer.assignments is not None for layer in layers):
        assign = np.asarray(layers[0].assignments, dtype=np.int64)
        for layer in layers[1:]:
            upper = np.asarray(layer.assignments, dtype=np.int64)
            assign = np.where(assign >= 0, upper[np.clip(assign, 0, None)], -1)
        return assign
    coefficients = np.asarray(result.layers[index - 1].data_coefficients)
    assign = np.argmax(coefficients, axis=0).astype(np.int64)
    assign[~np.any(coefficients > 0, axis=0)] = -1
    return assign


def cluster_sizes(assign: np.ndarray, rank: int) -> np.ndarray:
    """Number of data columns in each of ``rank`` clusters."""
    assign = np.asarray(assign)
    return np.bincount(assign[assign >= 0], minlength=rank)[:rank]


def shares(assign: np.ndarray, rank: int) -> np.ndarray:
    """Fraction of all data columns in each cluster."""
    return cluster_sizes(assign, rank) / max(np.asarray(assign).size, 1)


def iteration_numbers(n_values: int, n_iter: int | None) -> np.ndarray:
    """x values of a history of ``n_values`` entries whose last is iteration ``n_iter``: 0..n for
    a deep model's history (entry 0 is the initialization), 1..n for a single-layer one."""
    last = n_values if n_iter is None else int(n_iter)
    return np.arange(last - n_values + 1, last + 1)


def layer_summaries(result) -> list[dict[str, Any]]:
    """Per layer (1-based ``layer``): ``rank``, ``relative_error``, ``sizes`` and ``shares`` of its
    clusters (0-based positions), ``empty`` (0-based clusters without any column), ``labels``
    and, from layer 2 of a hierarchy, ``children`` of every cluster and ``merged`` [{cluster,
    children}] (clusters with two or more children)."""
    hierarchy = all(layer.assignments is not None for layer in result.layers)
    out = []
    for index, layer in enumerate(result.layers, start=1):
        assign = hard_assignments(result, index)
        sizes = cluster_sizes(assign, layer.rank)
        entry: dict[str, Any] = {
            "layer": index, "rank": layer.rank, "relative_error": layer.relative_error,
            "sizes": [int(s) for s in sizes], "shares": [float(s) for s in sizes / max(assign.size, 1)],
            "empty": [int(k) for k in np.flatnonzero(sizes == 0)],
            "labels": list(layer.labels) if layer.labels else None,
        }
        if hierarchy and index > 1:
            upper = np.asarray(layer.assignments, dtype=np.int64)
            children = [[int(c) for c in np.flatnonzero(upper == k)] for k in range(layer.rank)]
            entry["children"] = children
            entry["merged"] = [{"cluster": k, "children": c} for k, c in enumerate(children) if len(c) >= 2]
        out.append(entry)
    return out


def merges_text(entry: dict[str, Any]) -> str:
    """The merges of one layer summary as a person reads them: ``#1 = #1 + #7; #3 = #3 + #6``."""
    return "; ".join(f"{cluster_number(m['cluster'])} = " + " + ".join(cluster_number(c) for c in m["children"])
                     for m in entry.get("merged", []))


def empty_cluster_warnings(summaries: list[dict[str, Any]]) -> list[str]:
    """One line per layer with clusters that no data column belongs to."""
    lines = []
    for entry in summaries:
        if entry["empty"]:
            names = ", ".join(cluster_number(k) for k in entry["empty"])
            lines.append(f"layer {entry['layer']}: {len(entry['empty'])} of {entry['rank']} clusters are empty "
                         f"({names}: no data column is assigned to them); a smaller rank, another --init or "
                         "--seed may fit these data better")
    return lines
