"""Checks shared by several test files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """The module of ``scripts/<name>.py`` (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nonincreasing(values, rtol: float = 1e-10, from_start: bool = False) -> bool:
    """True when the values never increase by more than rounding: rtol times the value before
    (plus rtol times the first value with ``from_start``, for curves that approach zero)."""
    values = np.asarray(values, dtype=np.float64)
    bound = rtol * np.abs(values[:-1]) + (rtol * abs(values[0]) if from_start else 0.0)
    return bool(np.all(np.diff(values) <= bound))


def hierarchy_groups(document: dict, layer: int) -> list[list[int]]:
    """1-based column groups of ``layer`` from a hierarchy JSON document (mfcli.hierarchy
    to_json_dict), sorted, so independent of the cluster numbering; empty clusters left out."""
    layers = document["layers"]

    def members(level, cid):
        cluster = layers[level]["clusters"][cid]
        if level == 0:
            return list(cluster["members"])
        return [j for child in cluster["children"] for j in members(level - 1, child)]

    groups = [sorted(j + 1 for j in members(layer - 1, c["id"])) for c in layers[layer - 1]["clusters"]]
    return sorted(group for group in groups if group)
