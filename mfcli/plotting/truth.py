"""Ground truth beside a result: matched reference spectra and abundances for the pictures.

The numbers (spectral angles, Hungarian matching, abundance RMSE) all come from
:mod:`mfcli.metrics`; this module only arranges them for drawing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mfcli.errors import DataError, InputError
from mfcli.plotting.endmembers import TruthMatch


@dataclass
class GroundTruth:
    """Reference endmembers (m x k) with names, and optionally abundances (k x n)."""

    spectra: np.ndarray | None
    names: list[str]
    abundances: np.ndarray | None = None
    source: str = ""
    notes: list[str] = field(default_factory=list)


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



def match_maps(result, index: int, truth: GroundTruth) -> TruthMatch:
    """Match layer ``index``'s maps to the reference abundances by the Hungarian algorithm on
    their RMSE (:func:`mfcli.metrics.match_abundances`); no spectral angles."""
    from mfcli.metrics import match_abundances
    from mfcli.plotting.views import layer_maps

    if truth.abundances is None:
        raise DataError(f"the ground truth {truth.source} has no abundances to compare with")
    maps = layer_maps(result, index, "auto").values
    if np.shape(truth.abundances)[1] != maps.shape[1]:
        raise DataError(f"the ground-truth abundances cover {np.shape(truth.abundances)[1]} pixels but the result "
                        f"has {maps.shape[1]}; give a ground truth for the same image")
    matched = match_abundances(maps, truth.abundances)
    pairs = sorted((int(est), int(ref)) for ref, est in enumerate(matched) if est >= 0)
    return TruthMatch(truth.spectra, list(truth.names), pairs, [])


SPECTRA_NAMES = ("M", "GT", "E", "endmembers", "gt_endmembers", "M1")
ABUNDANCE_NAMES = ("A", "S_GT", "abundances", "gt_abundances", "A1")
NAME_VARIABLES = ("cood", "names", "material_names")


def _names(raw, count: int) -> list[str]:
    flat = [np.asarray(item).ravel() for item in np.asarray(raw, dtype=object).ravel()]
    names = [str(item[0]) if item.size else "" for item in flat]
    if len(names) != count or not all(names):
        return [f"material {i + 1}" for i in range(count)]
    return [name.strip() for name in names]


def load_ground_truth(spec: str, result) -> GroundTruth:
    """Reference spectra and/or abundances for ``result`` from ``spec`` (a .mat/.h5/.npz file or
    ``sample:NAME``), under the usual names (M/A, GT/S_GT, E/A), in either orientation.

    Spectra become (m x k) for the result's m bands; abundances become (k x n) in the result's
    pixel order (a 2-D matrix is in the file's order: F for MATLAB files; a cube is an image).
    """
    from mfcli.dataset import image_to_pixels, pixels_to_image
    from mfcli.io.formats import open_container
    from mfcli.io.load import parse_spec

    if spec.startswith("sample:"):
        from mfcli.io.samples import open_sample

        container, _ = open_sample(spec[len("sample:"):].partition(":")[0])
    else:
        path, _, fmt = parse_spec(spec)
        container = open_container(path, fmt)
    n_bands = int(np.asarray(result.layers[0].data_basis).shape[0])
    n_pixels = int(np.asarray(result.layers[0].data_coefficients).shape[1])
    notes: list[str] = []
    with container:
        available = container.variables()
        spectra_name = next((n for n in SPECTRA_NAMES if n in available), None)
        abundance_name = next((n for n in ABUNDANCE_NAMES if n in available), None)
        if spectra_name is None and abundance_name is None:
            raise InputError(f"'{spec}' holds no ground truth under the usual names ({', '.join(SPECTRA_NAMES)} for "
                             f"spectra, {', '.join(ABUNDANCE_NAMES)} for abundances); found: "
                             f"{', '.join(sorted(available)) or 'nothing'}")
        spectra = abundances = None
        if spectra_name is not None:
            raw = np.asarray(container.read(spectra_name), dtype=np.float64)
            if raw.ndim != 2 or n_bands not in raw.shape:
                raise DataError(f"ground-truth spectra '{spectra_name}' in '{spec}' have shape {raw.shape}, which "
                                f"does not fit the result's {n_bands} bands")
            spectra = raw if raw.shape[0] == n_bands else raw.T
            notes.append(f"ground-truth spectra from '{spectra_name}' ({spectra.shape[1]} materials)")
        if abundance_name is not None:
            raw = np.asarray(container.read(abundance_name), dtype=np.float64)
            order = result.pixel_order or "C"
            if raw.ndim == 3 and result.image_shape is not None and raw.shape[:2] == tuple(result.image_shape):
                abundances = image_to_pixels(np.moveaxis(raw, 2, 0), order)
            elif raw.ndim == 2 and n_pixels in raw.shape:
                abundances = raw if raw.shape[1] == n_pixels else raw.T
                file_order = "F" if container.matlab else "C"
                if result.image_shape is not None and file_order != order:
                    abundances = image_to_pixels(pixels_to_image(abundances, result.image_shape, file_order), order)
            else:
                notes.append(f"ignored '{abundance_name}' of shape {raw.shape}: it does not fit {n_pixels} pixels")
            if abundances is not None:
                notes.append(f"ground-truth abundances from '{abundance_name}'")
        count = spectra.shape[1] if spectra is not None else (abundances.shape[0] if abundances is not None else 0)
        name_variable = next((n for n in NAME_VARIABLES if n in available), None)
        names = _names(container.read(name_variable), count) if name_variable else \
            [f"material {i + 1}" for i in range(count)]
    if spectra is None and abundances is None:
        raise DataError(f"the ground truth in '{spec}' fits neither the result's bands nor its pixels")
    return GroundTruth(spectra, names, abundances, spec, notes)
