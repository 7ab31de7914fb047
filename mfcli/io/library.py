"""Spectral libraries: read the USGS layout and resample spectra to a sensor's wavelengths.

USGS 1995 library as distributed for unmixing (``usgs_1995_library.mat``):

- ``datalib`` (bands x (3 + spectra)): column 0 the wavelengths in micrometres (not sorted),
  column 1 the resolution, column 2 the channel number (a fill value -1.23e34 where unknown),
  columns 3.. the reflectance spectra. Fill values (< -1e30) anywhere mark missing samples.
- ``names`` (rows x chars) uint8, latin-1: one name per column of ``datalib``, so rows 3..
  name the spectra.

Other layouts: any .mat/.h5/.npz with ``wavelengths`` (nm or um: values below 100 are taken
as micrometres) and ``spectra`` (bands x spectra) and optional ``names``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfcli.errors import DataError, InputError
from mfcli.io.truth import decode_names

FILL_THRESHOLD = -1e30


@dataclass
class SpectralLibrary:
    """Spectra (bands x k) sampled at ``wavelengths_nm`` (increasing), with their names."""

    wavelengths_nm: np.ndarray
    spectra: np.ndarray
    names: list[str]
    source: str = ""

    def __len__(self) -> int:
        return int(self.spectra.shape[1])

    def resample(self, wavelengths_nm: np.ndarray) -> np.ndarray:
        """Spectra linearly interpolated at ``wavelengths_nm`` (bands x k); NaN outside the
        library's range or where a library sample is missing."""
        target = np.asarray(wavelengths_nm, dtype=np.float64)
        out = np.full((target.size, len(self)), np.nan)
        for k in range(len(self)):
            column = self.spectra[:, k]
            good = np.isfinite(column)
            if good.sum() < 2:
                continue
            wl = self.wavelengths_nm[good]
            values = np.interp(target, wl, column[good], left=np.nan, right=np.nan)
            out[:, k] = values
        return out


def read_library(spec: str) -> SpectralLibrary:
    """Read a spectral library (USGS ``datalib``/``names`` layout, or wavelengths/spectra/names)."""
    from mfcli.io.load import open_spec

    container, source, _, _ = open_spec(spec, digest=False)
    with container:
        infos = container.variables()
        if "datalib" in infos:
            table = np.asarray(container.read("datalib"), dtype=np.float64)
            if table.ndim != 2 or table.shape[1] < 4:
                raise DataError(f"'datalib' of {source} has shape {table.shape}; expected bands x (3 + spectra)")
            wavelengths = table[:, 0] * 1000.0  # micrometres -> nm
            spectra = table[:, 3:].copy()
            names = decode_names(container.read("names"))[3:] if "names" in infos else []
        elif "spectra" in infos and ("wavelengths" in infos or "wavelength" in infos):
            spectra = np.asarray(container.read("spectra"), dtype=np.float64)
            wavelengths = np.asarray(container.read("wavelengths" if "wavelengths" in infos else "wavelength"),
                                     dtype=np.float64).ravel()
            if spectra.shape[0] != wavelengths.size and spectra.shape[1] == wavelengths.size:
                spectra = spectra.T
            if np.nanmax(wavelengths) < 100:
                wavelengths = wavelengths * 1000.0
            names = decode_names(container.read("names")) if "names" in infos else []
        else:
            raise InputError(f"'{source}' is not a spectral library: expected 'datalib' and 'names' (USGS layout) "
                             "or 'wavelengths' and 'spectra'")
    if spectra.shape[0] != wavelengths.size:
        raise DataError(f"the library {source} has {wavelengths.size} wavelengths but spectra of {spectra.shape[0]} bands")
    spectra[spectra < FILL_THRESHOLD] = np.nan
    good_rows = np.isfinite(wavelengths) & (wavelengths > 0)
    order = np.argsort(wavelengths[good_rows], kind="stable")
    wavelengths = wavelengths[good_rows][order]
    spectra = spectra[good_rows][order]
    if len(names) != spectra.shape[1]:
        names = [f"spectrum {k + 1}" for k in range(spectra.shape[1])]
    return SpectralLibrary(wavelengths_nm=wavelengths, spectra=spectra, names=names, source=source)
