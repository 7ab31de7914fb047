"""Label estimated endmembers with their closest spectra of a spectral library (by spectral angle)."""

from __future__ import annotations

import numpy as np

from mfcli.errors import DataError
from mfcli.metrics import spectral_angle_matrix


def closest_library_spectra(E: np.ndarray, wavelengths_nm: np.ndarray, library, top: int = 3) -> list[list[dict]]:
    """For each column of E (bands x r, at ``wavelengths_nm``), the ``top`` library spectra of
    smallest spectral angle, as ``[{"name", "sad", "index"}]``.

    The library (:class:`mfcli.io.library.SpectralLibrary`) is resampled to the data's
    wavelengths by linear interpolation; the angle uses the bands inside the library's range.
    """
    if wavelengths_nm is None:
        raise DataError("the data have no wavelengths, so library spectra cannot be resampled to them; "
                        "use data with wavelengths (ENVI header, 'wavelengths' variable)")
    E = np.asarray(E, dtype=np.float64)
    wavelengths_nm = np.asarray(wavelengths_nm, dtype=np.float64)
    if E.shape[0] != wavelengths_nm.size:
        raise DataError(f"{E.shape[0]} bands but {wavelengths_nm.size} wavelengths")
    resampled = library.resample(wavelengths_nm)
    usable = np.isfinite(resampled).all(axis=1)
    if usable.sum() < 2:
        raise DataError(f"the library ({library.wavelengths_nm.min():.0f}-{library.wavelengths_nm.max():.0f} nm) "
                        f"does not cover the data's wavelengths ({wavelengths_nm.min():.0f}-{wavelengths_nm.max():.0f} nm)")
    angles = spectral_angle_matrix(E[usable], resampled[usable])  # r x k
    labels = []
    for row in angles:
        order = np.argsort(row, kind="stable")[:top]
        labels.append([{"name": library.names[k], "sad": float(row[k]), "index": int(k)} for k in order])
    return labels
