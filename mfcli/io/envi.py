"""ENVI images (.hdr beside .img/.dat/.bsq/.bil/.bip), read and written with Spectral Python.

The `spectral` package handles interleave (BSQ/BIL/BIP), data type, byte order and header
offset; we only find the header/data pair and turn wavelengths into nanometres.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mfcli.errors import DataError, InputError

DATA_EXTENSIONS = ("", ".img", ".dat", ".bsq", ".bil", ".bip", ".raw")


def _header_and_data(path: str) -> tuple[str, str]:
    p = Path(path)
    if p.suffix.lower() == ".hdr":
        header = str(p)
        for ext in DATA_EXTENSIONS + tuple(e.upper() for e in DATA_EXTENSIONS if e):
            candidate = str(p.with_suffix(ext)) if ext else str(p.with_suffix(""))
            if os.path.isfile(candidate) and candidate != header:
                return header, candidate
        raise InputError(f"ENVI header '{path}' has no data file beside it (looked for "
                         f"{', '.join(e or '(no extension)' for e in DATA_EXTENSIONS)})")
    header = find_header(path)
    if header is None:
        raise InputError(f"ENVI data file '{path}' has no header (.hdr) beside it")
    return header, str(p)


def find_header(data_path: str) -> str | None:
    """The ENVI header beside a data file (``x.hdr``, ``x.img.hdr`` or ``x.HDR``), if there is one."""
    p = Path(data_path)
    for candidate in (str(p.with_suffix(".hdr")), data_path + ".hdr", str(p.with_suffix(".HDR"))):
        if os.path.isfile(candidate):
            return candidate
    return None


def envi_paths(path: str) -> tuple[Path, Path]:
    """(header, data file) of an ENVI output named by either (``x.hdr`` -> ``x.img``)."""
    target = Path(path)
    if target.suffix.lower() == ".hdr":
        return target, target.with_suffix(".img")
    return target.with_suffix(".hdr"), target


def _wavelengths_nm(meta: dict[str, Any], n_bands: int) -> np.ndarray | None:
    values = meta.get("wavelength")
    if not values or len(values) != n_bands:
        return None
    try:
        wl = np.asarray([float(v) for v in values])
    except ValueError:
        return None
    units = str(meta.get("wavelength units", "")).strip().lower()
    if units in ("micrometers", "micrometer", "microns", "um", "µm") or (not units and wl.max() < 30):
        wl = wl * 1000.0
    return wl


def read_envi(path: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Read an ENVI image as a (rows, cols, bands) cube and its metadata."""
    import spectral.io.envi as envi

    header, data_file = _header_and_data(path)
    try:
        image = envi.open(header, data_file)
        with warnings.catch_warnings():  # spectral warns about NaN; `mfcli info` counts them instead
            warnings.simplefilter("ignore")
            # The stored type, unscaled (spectral would convert to float32 and divide by the scale).
            cube = np.asarray(image.load(dtype=image.dtype, scale=False))
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot read ENVI image '{header}': {exc}") from None
    cube = np.asarray(cube)
    if cube.ndim == 2:
        cube = cube[:, :, None]
    if not cube.dtype.isnative:  # big-endian files ("byte order = 1"): compute in native order
        cube = cube.astype(cube.dtype.newbyteorder("="))
    meta = dict(image.metadata)
    out: dict[str, Any] = {}
    scale = getattr(image, "scale_factor", 1.0)
    if scale and float(scale) not in (0.0, 1.0):
        out["scale_factor"] = float(scale)  # "reflectance scale factor": the loader divides by it
    wl = _wavelengths_nm(meta, cube.shape[2])
    if wl is not None:
        out["wavelengths"] = wl
    out.update(_header_georeference(header, data_file, meta))
    names = meta.get("band names")
    if isinstance(names, list) and len(names) == cube.shape[2]:
        out["band_names"] = [str(name) for name in names]
    ignore = meta.get("data ignore value")
    if ignore is not None:
        try:
            out["nodata"] = float(ignore[0] if isinstance(ignore, list) else ignore)
        except ValueError:
            out.setdefault("notes", []).append(f"data ignore value '{ignore}' is not a number; ignored")
    return cube, out


def _header_georeference(header: str, data_file: str, meta: dict[str, Any]) -> dict[str, Any]:
    """``{"georeference": ...}`` from ``map info`` and ``coordinate system string`` (read from the
    header text: Spectral Python splits it at its commas); without a coordinate system string
    GDAL names the CRS of the map info where rasterio is installed. A map info that cannot be
    read is a note, not an error: the image is still usable."""
    from mfcli.georeference import Georeference

    map_info = meta.get("map info")
    if not map_info:
        return {}
    text = Path(header).read_text(encoding="latin-1")
    found = re.search(r"^\s*coordinate system string\s*=\s*\{(.*?)\}", text, re.MULTILINE | re.DOTALL | re.IGNORECASE)
    try:
        georeference = Georeference.from_envi(map_info, found.group(1) if found else None)
    except (DataError, ValueError) as exc:
        return {"notes": [f"map info not understood ({exc}); read without a georeference"]}
    notes = []
    if georeference.crs is None:
        try:
            import rasterio
        except ImportError:
            notes.append(f"map info projection '{_first(map_info)}' without a coordinate system string: the "
                         "transform is kept, the CRS is not (install mfcli[geo] to have GDAL read it)")
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    with rasterio.open(data_file) as src:
                        if src.crs is not None:
                            georeference = Georeference(src.crs.to_wkt(), georeference.transform)
                except rasterio.errors.RasterioError:
                    pass
            if georeference.crs is None:
                notes.append(f"map info projection '{_first(map_info)}' names no CRS that GDAL knows; "
                             "the transform is kept, the CRS is not")
    return {"georeference": georeference, **({"notes": notes} if notes else {})}


def _first(value) -> str:
    return str(value[0] if isinstance(value, list) and value else value).strip()


def interleave_for(path: str) -> str:
    """The interleave an ENVI data file name asks for: .bil -> BIL, .bip -> BIP, else BSQ."""
    suffix = Path(path).suffix.lower().lstrip(".")
    return suffix if suffix in ("bil", "bip") else "bsq"


def header_fields(georeference=None, band_names: list[str] | None = None, nodata: float | None = None,
                  classes: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """ENVI header fields for :func:`write_envi`: ``map info`` and ``coordinate system string``
    (the WKT) of a :class:`~mfcli.georeference.Georeference`, ``band names`` (ENVI lists cannot
    hold commas: they become '-'), ``data ignore value`` (the nodata value), and for a class
    map ``classes`` as (name, '#rrggbb') from value 0 on: ENVI Classification fields."""
    fields: dict[str, Any] = {}
    if georeference is not None:
        fields["map info"] = georeference.envi_map_info()
        if georeference.crs:
            fields["coordinate system string"] = "{" + " ".join(georeference.crs.split()) + "}"
    if band_names is not None:
        fields["band names"] = [str(name) for name in band_names]
    if nodata is not None:
        fields["data ignore value"] = "nan" if nodata != nodata else repr(float(nodata))
    if classes is not None:
        fields["file type"] = "ENVI Classification"
        fields["classes"] = len(classes)
        fields["class names"] = [name for name, _ in classes]
        fields["class lookup"] = [int(color.lstrip("#")[i:i + 2], 16) for _, color in classes for i in (0, 2, 4)]
    return fields


def write_envi(path: str, cube: np.ndarray, wavelengths: np.ndarray | None = None,
               fields: dict[str, Any] | None = None) -> list[str]:
    """Write a (rows, cols, bands) cube as ``path`` (.hdr) plus a data file, little-endian, in
    the interleave the data file's extension asks for (.bil, .bip; BSQ otherwise). Returns both
    names. ``fields``: further header fields (:func:`header_fields`).
    """
    import spectral.io.envi as envi

    header, data = envi_paths(path)
    ext = data.suffix
    cube = np.asarray(cube)
    if cube.ndim != 3:
        raise DataError(f"an ENVI image is a (rows, cols, bands) cube, not an array of shape {cube.shape}")
    if cube.dtype == np.int8 or cube.dtype.kind == "b":  # ENVI has no signed byte type
        cube = cube.astype(np.int16)
    elif cube.dtype == np.float16:
        cube = cube.astype(np.float32)
    metadata: dict[str, Any] = {}
    if wavelengths is not None:
        metadata["wavelength"] = [repr(float(w)) for w in np.ravel(wavelengths)]
        metadata["wavelength units"] = "Nanometers"
    metadata.update(fields or {})
    save, classes = envi.save_image, {}
    if metadata.pop("file type", None) == "ENVI Classification":  # save_image would write "ENVI Standard"
        lookup = metadata.pop("class lookup")
        save, classes = envi.save_classification, {
            "class_names": metadata.pop("class names"),
            "class_colors": [tuple(lookup[i:i + 3]) for i in range(0, len(lookup), 3)]}
        metadata.pop("classes", None)
    with warnings.catch_warnings():  # spectral opens its output with a buffering Python warns about
        warnings.simplefilter("ignore", RuntimeWarning)
        save(str(header), cube, dtype=cube.dtype, force=True, ext=ext, interleave=interleave_for(str(data)),
             byteorder="little", metadata=metadata, **classes)
    return [str(header), str(data)]
