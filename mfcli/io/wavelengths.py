"""Wavelengths of the bands, only from a source: the file (ENVI header, a ``wavelengths``
variable or attribute), the user (``--wavelengths FILE``) or a cited table stored with a sample.

Nanometres are never derived from band numbers: a sensor's band centres are not evenly spaced
(HYDICE's 210 bands are narrow in the visible and wide in the short-wave infrared, so an even
400-2500 nm grid puts Urban's vegetation red edge near 975 nm instead of about 700 nm). Without
a source the bands are shown by number. NumPy only.
"""

from __future__ import annotations

import os

import numpy as np

from mfcli.errors import InputError

MICROMETRE_LIMIT = 30.0  # wavelengths all below this are taken as micrometres (no sensor band is under 30 nm)


def to_nanometres(values, source: str) -> tuple[np.ndarray, str | None]:
    """``values`` as nm (float64, flat); micrometres (every value below 30) are converted.
    Returns (nm, a note saying the units were converted, or None)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size and np.all(np.isfinite(values)) and float(np.max(values)) < MICROMETRE_LIMIT:
        return values * 1000.0, f"wavelengths of {source} read as micrometres and converted to nm"
    return values, None


def check_band_count(values: np.ndarray, n_bands: int, source: str) -> np.ndarray:
    """``values`` if there is one per band, else a one-line InputError."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size != n_bands:
        raise InputError(f"{source} gives {values.size} wavelengths but the data have {n_bands} bands; "
                         "give one wavelength per kept band, in the order of the bands")
    return values


def read_wavelengths(path: str) -> np.ndarray:
    """Wavelengths from a text/CSV file (numbers separated by newlines, commas, semicolons or
    spaces) or a ``.npy`` file, in nm; values all below 30 are taken as micrometres."""
    if not os.path.exists(path):
        raise InputError(f"wavelength file '{path}' does not exist; check the path")
    try:
        if path.lower().endswith(".npy"):
            values = np.load(path, allow_pickle=False)
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read().replace(",", " ").replace(";", " ")
            values = np.array([float(v) for v in text.split()])
    except (ValueError, OSError) as exc:
        raise InputError(f"cannot read wavelengths from '{path}' ({exc}); give one number per band, "
                         "in nm or micrometres") from None
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise InputError(f"'{path}' holds no usable wavelengths; give one finite number per band")
    if np.any(values <= 0):
        raise InputError(f"'{path}' holds wavelengths <= 0; give positive wavelengths in nm or micrometres")
    return to_nanometres(values, path)[0]


def apply_wavelengths_file(dataset, path: str) -> None:
    """Give ``dataset`` the wavelengths of ``path`` (``--wavelengths FILE``), one per band."""
    source = f"--wavelengths {path}"
    dataset.wavelengths = check_band_count(read_wavelengths(path), dataset.n_features, source)
    dataset.wavelengths_source = source
    dataset.notes.append(f"wavelengths {dataset.wavelengths.min():.0f}-{dataset.wavelengths.max():.0f} nm "
                         f"from {source}")
