"""Ground truth beside a result: matched reference spectra and abundances for the pictures.

The numbers (spectral angles, Hungarian matching, abundance RMSE) all come from
:mod:`mfcli.metrics`; this module only arranges them for drawing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfcli.errors import DataError
from mfcli.plotting.endmembers import TruthMatch


@dataclass
class GroundTruth:
    """Reference endmembers (m x k) with names, and optionally abundances (k x n)."""

    spectra: np.ndarray | None
    names: list[str]
    abundances: np.ndarray | None = None
    source: str = ""


def match_spectra(result, index: int, truth: GroundTruth) -> TruthMatch:
    """Match layer ``index``'s endmembers to the reference spectra by the Hungarian algorithm on
    spectral angle (:func:`mfcli.metrics.match_endmembers`)."""
    from mfcli.metrics import match_endmembers, spectral_angle_matrix

    if truth.spectra is None:
        raise DataError(f"the ground truth {truth.source} has no endmember spectra to compare with")
    basis = np.asarray(result.layer(index).data_basis, dtype=np.float64)
    spectra = np.asarray(truth.spectra, dtype=np.float64)
    if spectra.shape[0] != basis.shape[0]:
        raise DataError(f"the ground-truth spectra have {spectra.shape[0]} bands but the result's endmembers "
                        f"have {basis.shape[0]}; give a ground truth for the same bands")
    angles = spectral_angle_matrix(basis, spectra)
    matched = match_endmembers(basis, spectra)
    pairs = [(int(est), int(ref)) for ref, est in enumerate(matched) if est >= 0]
    pairs.sort()
    return TruthMatch(spectra, list(truth.names), pairs, [float(angles[e, r]) for e, r in pairs])
