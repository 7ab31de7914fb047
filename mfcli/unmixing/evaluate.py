"""Compare estimated endmembers/abundances with a ground truth.

Estimated materials are matched one-to-one to true materials by the Hungarian algorithm
(:func:`mfcli.metrics.match_by_cost`), on the spectral angle between spectra (``match="sad"``)
or on the RMSE between abundance maps (``match="abundance"``); then per material the
spectral angle (degrees) and abundance RMSE, and overall the mean SAD, abundance RMSE (aRMSE)
and the SRE (dB) of the abundances. Every number comes from :mod:`mfcli.metrics`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mfcli.errors import ParameterError
from mfcli.metrics import (
    abundance_distance_matrix,
    abundance_rmse,
    match_by_cost,
    signal_to_reconstruction_error,
    spectral_angle_matrix,
)

MATCH_CHOICES = ("sad", "abundance")


def match_materials(E_est: np.ndarray | None, A_est: np.ndarray | None, E_true: np.ndarray | None,
                    A_true: np.ndarray | None, match: str | None = None) -> tuple[str, np.ndarray, dict]:
    """The one-to-one matching of estimated to true materials that ``mfcli evaluate`` reports and
    the pictures label with: the Hungarian algorithm (:func:`mfcli.metrics.match_by_cost`) on
    spectral angle (``match="sad"``, the default when both sides have spectra) or on abundance
    RMSE (``"abundance"``). Returns (what was matched on, for each true material the 0-based
    estimate or -1, and the cost matrices {"angles", "distances"} (estimates x materials, or None))."""
    have_spectra = E_est is not None and E_true is not None
    have_abundances = A_est is not None and A_true is not None
    if match is None:
        match = "sad" if have_spectra else "abundance"
    if match not in MATCH_CHOICES:
        raise ParameterError(f"unknown matching '{match}'; use sad or abundance")
    if match == "sad" and not have_spectra:
        raise ParameterError("matching on spectral angle needs true endmembers; this ground truth has only "
                             "abundances: use --match abundance")
    if match == "abundance" and not have_abundances:
        raise ParameterError("matching on abundances needs true abundances; this ground truth has only "
                             "endmembers: use --match sad")
    if not have_spectra and not have_abundances:
        raise ParameterError("nothing to compare: the ground truth and the result share neither endmembers "
                             "nor abundances")
    angles = spectral_angle_matrix(E_est, E_true) if have_spectra else None
    distances = abundance_distance_matrix(A_est, A_true) if have_abundances else None
    matched = np.asarray(match_by_cost(angles if match == "sad" else distances), dtype=np.int64)
    return match, matched, {"angles": angles, "distances": distances}


def evaluate_unmixing(E_est: np.ndarray | None, A_est: np.ndarray | None, E_true: np.ndarray | None,
                      A_true: np.ndarray | None, match: str | None = None,
                      names: list[str] | None = None) -> dict[str, Any]:
    """Match and score. Returns a JSON-able dict.

    Keys: ``match`` (what the matching used), ``matching`` (list, one entry per true material:
    ``true``, ``name``, ``estimated`` (0-based index or None), ``sad``, ``rmse``), ``sad``
    (per true material, None when unmatched or unavailable), ``mean_sad`` (over matched
    materials), ``armse``, ``armse_per_material``, ``sre`` (dB), ``unmatched_estimates``.
    """
    have_abundances = A_est is not None and A_true is not None
    match, matched, costs = match_materials(E_est, A_est, E_true, A_true, match)
    angles, distances = costs["angles"], costs["distances"]
    n_true = len(matched)
    n_est = (E_est.shape[1] if E_est is not None else A_est.shape[0])
    names = names if names and len(names) == n_true else [f"material {k + 1}" for k in range(n_true)]
    entries, sad_list, rmse_list = [], [], []
    for k, j in enumerate(matched):
        j = int(j)
        sad = float(angles[j, k]) if (angles is not None and j >= 0) else None
        rmse = float(distances[j, k]) if (distances is not None and j >= 0) else None
        entries.append({"true": k, "name": names[k], "estimated": j if j >= 0 else None, "sad": sad, "rmse": rmse})
        sad_list.append(sad)
        rmse_list.append(rmse)
    document: dict[str, Any] = {
        "match": match,
        "matching": entries,
        "sad": sad_list,
        "mean_sad": None,
        "armse": None,
        "armse_per_material": rmse_list if have_abundances else None,
        "sre": None,
        "unmatched_estimates": sorted(set(range(n_est)) - {int(j) for j in matched if j >= 0}),
    }
    known = [s for s in sad_list if s is not None]
    if known:
        document["mean_sad"] = float(np.mean(known))
    if have_abundances:
        # each true material's matched map; with fewer estimates than materials the unmatched count as zero
        estimate = np.zeros_like(np.asarray(A_true, dtype=np.float64))
        true_rows = [k for k, j in enumerate(matched) if j >= 0]
        estimate[true_rows] = A_est[[int(j) for j in matched if j >= 0]]
        document["armse"] = abundance_rmse(estimate, A_true)
        document["sre"] = signal_to_reconstruction_error(A_true, estimate)
    return document
