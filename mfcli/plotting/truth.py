"""Ground truth beside a result: matched reference spectra and abundances for the pictures.

The ground truth is read by :func:`mfcli.io.truth.load_truth_for_result` (the same reader as
``mfcli evaluate``); the numbers (spectral angles, Hungarian matching, abundance RMSE) all come
from :mod:`mfcli.metrics`. This module only arranges them for drawing.
"""

from __future__ import annotations

import numpy as np

from mfcli.errors import DataError
from mfcli.plotting.endmembers import TruthMatch


def truth_label(truth) -> str:
    """Where a :class:`mfcli.io.truth.GroundTruth` came from, for titles and the report."""
    sources = list(dict.fromkeys(getattr(truth, "sources", {}).values()))
    return ", ".join(sources) or "the ground truth"


def match_spectra(result, index: int, truth) -> TruthMatch:
    """Match layer ``index``'s endmembers to the reference spectra by the Hungarian algorithm on
    spectral angle (:func:`mfcli.metrics.match_by_cost` on :func:`mfcli.metrics.spectral_angle_matrix`)."""
    from mfcli.metrics import match_by_cost, spectral_angle_matrix

    if truth.endmembers is None:
        raise DataError(f"{truth_label(truth)} has no endmember spectra to compare with")
    basis = np.asarray(result.layer(index).data_basis, dtype=np.float64)
    spectra = np.asarray(truth.endmembers, dtype=np.float64)
    if spectra.shape[0] != basis.shape[0]:
        raise DataError(f"the ground-truth spectra have {spectra.shape[0]} bands but the result's endmembers "
                        f"have {basis.shape[0]}; give a ground truth for the same bands")
    angles = spectral_angle_matrix(basis, spectra)
    matched = match_by_cost(angles)
    pairs = [(int(est), int(ref)) for ref, est in enumerate(matched) if est >= 0]
    pairs.sort()
    return TruthMatch(spectra, truth.material_names(), pairs, [float(angles[e, r]) for e, r in pairs])



def match_maps(result, index: int, truth) -> TruthMatch:
    """Match layer ``index``'s maps to the reference abundances by the Hungarian algorithm on
    their RMSE (:func:`mfcli.metrics.match_abundances`); no spectral angles."""
    from mfcli.metrics import match_abundances
    from mfcli.plotting.views import layer_maps

    if truth.abundances is None:
        raise DataError(f"{truth_label(truth)} has no abundances to compare with")
    maps = layer_maps(result, index, "auto").values
    if np.shape(truth.abundances)[1] != maps.shape[1]:
        raise DataError(f"the ground-truth abundances cover {np.shape(truth.abundances)[1]} pixels but the result "
                        f"has {maps.shape[1]}; give a ground truth for the same image")
    matched = match_abundances(maps, truth.abundances)
    pairs = sorted((int(est), int(ref)) for ref, est in enumerate(matched) if est >= 0)
    return TruthMatch(truth.endmembers, truth.material_names(), pairs, [])

