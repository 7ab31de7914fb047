"""Ground truth beside a result: matched reference spectra and abundances for the pictures, and
the material names that label the matched estimates.

The ground truth is read by :func:`mfcli.io.truth.load_truth_for_result` (the same reader as
``mfcli evaluate``); the matching is :func:`mfcli.unmixing.evaluate.match_materials`, the one
``mfcli evaluate`` reports (Hungarian algorithm on spectral angle, or on abundance RMSE where
the ground truth has no spectra), and the numbers (spectral angles, abundance RMSE) come from
:mod:`mfcli.metrics`. This module only arranges them for drawing.
"""

from __future__ import annotations

import numpy as np

from mfcli.errors import DataError
from mfcli.plotting.endmembers import TruthMatch


def truth_label(truth) -> str:
    """Where a :class:`mfcli.io.truth.GroundTruth` came from, for titles and the report."""
    sources = list(dict.fromkeys(getattr(truth, "sources", {}).values()))
    return ", ".join(sources) or "the ground truth"


def _layer_estimates(result, index: int, truth):
    """(endmembers m x r or None, abundances r x n or None) of layer ``index`` that the ground
    truth can be compared with, checked against its shapes."""
    layer = result.layer(index)
    basis = np.asarray(layer.data_basis, dtype=np.float64)
    E_est = A_est = None
    if truth.endmembers is not None:
        if np.shape(truth.endmembers)[0] != basis.shape[0]:
            raise DataError(f"the ground-truth spectra have {np.shape(truth.endmembers)[0]} bands but the result's "
                            f"endmembers have {basis.shape[0]}; give a ground truth for the same bands")
        E_est = basis
    if truth.abundances is not None:
        from mfcli.plotting.views import layer_maps

        maps = layer_maps(result, index, "auto").values
        if np.shape(truth.abundances)[1] != maps.shape[1]:
            raise DataError(f"the ground-truth abundances cover {np.shape(truth.abundances)[1]} pixels but the result "
                            f"has {maps.shape[1]}; give a ground truth for the same image")
        A_est = maps
    return E_est, A_est


def match_layer(result, index: int, truth, match: str | None = None) -> TruthMatch:
    """Layer ``index``'s estimates matched to the ground-truth materials as ``mfcli evaluate``
    matches them (spectral angle by default, ``match="abundance"`` on the maps)."""
    from mfcli.unmixing.evaluate import match_materials

    E_est, A_est = _layer_estimates(result, index, truth)
    E_true = np.asarray(truth.endmembers, dtype=np.float64) if truth.endmembers is not None else None
    A_true = np.asarray(truth.abundances, dtype=np.float64) if truth.abundances is not None else None
    how, matched, costs = match_materials(E_est, A_est, E_true, A_true, match)
    pairs = sorted((int(est), int(ref)) for ref, est in enumerate(matched) if est >= 0)
    angles = [float(costs["angles"][e, r]) for e, r in pairs] if costs["angles"] is not None else []
    return TruthMatch(E_true, truth.material_names(), pairs, angles if how == "sad" or E_true is not None else [])


def match_spectra(result, index: int, truth) -> TruthMatch:
    """Match layer ``index``'s endmembers to the reference spectra on spectral angle."""
    if truth.endmembers is None:
        raise DataError(f"{truth_label(truth)} has no endmember spectra to compare with")
    return match_layer(result, index, truth, "sad")


def match_maps(result, index: int, truth) -> TruthMatch:
    """Match layer ``index``'s maps to the reference abundances on their RMSE."""
    if truth.abundances is None:
        raise DataError(f"{truth_label(truth)} has no abundances to compare with")
    return match_layer(result, index, truth, "abundance")


def truth_labels(result, truth, match: str | None = None) -> list[list[str | None]]:
    """For every layer, the ground-truth material name of each estimate (None where unmatched)."""
    labels = []
    for index in range(1, len(result.layers) + 1):
        found = match_layer(result, index, truth, match)
        names: list[str | None] = [None] * result.layer(index).rank
        for est, ref in found.pairs:
            names[est] = found.names[ref]
        labels.append(names)
    return labels


def label_with_truth(result, truth, match: str | None = None) -> list[list[str | None]]:
    """Name every layer's estimates after the ground-truth materials they match (``Layer.labels``,
    which every picture, the tree and the report show); returns the labels."""
    labels = truth_labels(result, truth, match)
    for layer, names in zip(result.layers, labels):
        layer.labels = names
    return labels
