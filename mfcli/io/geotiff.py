"""GeoTIFF, and any raster GDAL reads, through rasterio (the optional ``geo`` extra).

Reading gives a (rows, cols, bands) cube and what the file says about it: the georeference
(CRS as WKT, affine transform), the nodata value and which pixels hold no data (GDAL's masks:
the nodata value, an internal mask or an alpha band), band descriptions, wavelengths (GDAL's
``IMAGERY`` metadata ``CENTRAL_WAVELENGTH_UM``, or ENVI-style ``wavelength`` tags as GDAL
writes them when it converts ENVI files) and a common band scale. Writing gives a GeoTIFF of
k bands (maps or a cube) with the georeference, the nodata value, band descriptions and, for
cluster maps, a colour table; the file appears atomically (:func:`mfcli.io.atomic.atomic_file`).
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import numpy as np

from mfcli.errors import DataError, InputError, MissingDependencyError
from mfcli.georeference import Georeference

# Colour-table GeoTIFFs hold unsigned bytes or 16-bit integers.
PALETTE_DTYPES = (np.uint8, np.uint16)


def import_rasterio(purpose: str):
    """rasterio, or a MissingDependencyError naming the ``geo`` extra and what needed it."""
    try:
        import rasterio
    except ImportError:
        raise MissingDependencyError("rasterio", "geo", purpose) from None
    return rasterio


@contextlib.contextmanager
def _quiet(rasterio):
    """No warnings for files without a georeference, no .aux.xml files beside our outputs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.Env(GDAL_PAM_ENABLED="NO"):
            yield


def read_raster(path: str, fmt: str = "tif") -> tuple[np.ndarray, dict[str, Any]]:
    """Read a raster as a (rows, cols, bands) cube and its metadata: ``georeference``,
    ``nodata``, ``valid_pixels`` ((rows, cols) bool, only where some pixel has no data),
    ``band_names``, ``wavelengths`` (nm), ``scale_factor`` (X is divided by it), ``notes``."""
    what = "GeoTIFF" if fmt == "tif" else "a raster read through GDAL"
    rasterio = import_rasterio(f"reading '{path}' ({what})")
    with _quiet(rasterio):
        try:
            src = rasterio.open(path)
        except rasterio.errors.RasterioIOError as exc:
            reason = " ".join(str(exc).split())
            raise InputError(f"cannot read '{path}' as {what} ({reason}); the file may be corrupt, truncated "
                             "or in another format (give it as PATH:FORMAT)") from None
        with src:
            if src.count == 0:
                inner = ", ".join(src.subdatasets[:5]) if src.subdatasets else "none"
                raise InputError(f"'{path}' holds no raster bands of its own (subdatasets: {inner}); "
                                 "give one subdataset as the input")
            alpha = rasterio.enums.ColorInterp.alpha
            bands = [b for b in range(1, src.count + 1) if src.colorinterp[b - 1] != alpha]
            notes: list[str] = []
            if len(bands) < src.count:
                notes.append(f"{src.count - len(bands)} alpha band(s) used as the mask, not as data")
            cube = np.moveaxis(src.read(bands), 0, 2)  # (rows, cols, bands), a view of GDAL's band order
            meta: dict[str, Any] = {"notes": notes}
            flags = [src.mask_flag_enums[b - 1] for b in bands]
            if any(f != [rasterio.enums.MaskFlags.all_valid] for f in flags) or len(bands) < src.count:
                masks = src.read_masks(bands)
                valid = np.all(masks != 0, axis=0)
                if not valid.all():
                    meta["valid_pixels"] = valid
            nodata = [src.nodatavals[b - 1] for b in bands]
            if nodata[0] is not None:
                meta["nodata"] = float(nodata[0])
                if any(v is not None and not _same(v, nodata[0]) for v in nodata):
                    notes.append("the bands declare different nodata values; a pixel is nodata where any band is")
            georeference = _georeference(src)
            if georeference is not None:
                meta["georeference"] = georeference
            elif src.gcps[0] or src.rpcs:
                notes.append("georeferenced by ground control points or RPCs, which mfcli does not keep "
                             "(warp it to a map grid first, e.g. gdalwarp)")
            descriptions = [src.descriptions[b - 1] for b in bands]
            if any(descriptions):
                meta["band_names"] = [d or f"band {b}" for d, b in zip(descriptions, bands)]
            wavelengths = _wavelengths(src, bands)
            if wavelengths is not None:
                meta["wavelengths"] = wavelengths
                meta["wavelengths_source"] = f"the band metadata of {path}"
            scales = {float(src.scales[b - 1]) for b in bands}
            offsets = {float(src.offsets[b - 1]) for b in bands}
            if len(scales) == 1 and scales != {1.0} and 0.0 not in scales:
                scale = scales.pop()
                if offsets == {0.0}:  # stored x scale = value: X is divided by 1 / scale, as by any scale
                    meta["scale_factor"] = 1.0 / scale
                    meta["scale_name"] = f"1 / the bands' GDAL scale {scale:g}"
                else:
                    notes.append(f"the bands' GDAL scale {scale:g} and offsets are not applied: values are as stored")
            elif len(scales) > 1:
                notes.append("the bands have different scales (GDAL), not applied: values are as stored")
    return cube, meta


def _same(a: float, b: float) -> bool:
    return a == b or (np.isnan(a) and np.isnan(b))


def _georeference(src) -> Georeference | None:
    transform = src.transform
    if src.crs is None and transform.is_identity:
        return None
    crs = src.crs.to_wkt() if src.crs is not None else None
    return Georeference(crs, tuple(transform)[:6])


def _wavelengths(src, bands: list[int]) -> np.ndarray | None:
    """Band centres in nm: GDAL's IMAGERY metadata (micrometres), else ENVI-style ``wavelength``
    tags per band or a ``{...}`` list in the ENVI domain, with their ``wavelength_units``."""
    from mfcli.io.envi import _wavelengths_nm

    imagery = [src.tags(b, ns="IMAGERY").get("CENTRAL_WAVELENGTH_UM") for b in bands]
    if all(imagery):
        try:
            return np.asarray([float(v) for v in imagery]) * 1000.0
        except ValueError:
            pass
    dataset_tags = {k.lower(): v for k, v in src.tags().items()}
    envi_tags = {k.lower().replace("_", " "): v for k, v in src.tags(ns="ENVI").items()}
    units = dataset_tags.get("wavelength_units") or envi_tags.get("wavelength units") or ""
    per_band = [{k.lower(): v for k, v in src.tags(b).items()} for b in bands]
    values = [tags.get("wavelength") for tags in per_band]
    if all(values):
        units = per_band[0].get("wavelength_units") or units
        return _wavelengths_nm({"wavelength": values, "wavelength units": units}, len(bands))
    listed = envi_tags.get("wavelength")
    if listed:
        return _wavelengths_nm({"wavelength": listed.strip("{} ").split(","), "wavelength units": units}, len(bands))
    return None


def write_geotiff(path: str, images: np.ndarray, *, georeference: Georeference | None = None,
                  nodata: float | None = None, band_names: list[str] | None = None,
                  wavelengths: np.ndarray | None = None, colors: dict[int, str] | None = None,
                  tags: dict[str, str] | None = None, force: bool = False) -> None:
    """Write (k, rows, cols) ``images`` as a k-band GeoTIFF, atomically.

    ``georeference``: CRS and transform (None: a plain pixel grid). ``nodata``: the value of
    pixels without data. ``band_names``: band descriptions. ``wavelengths``: nm, as ENVI-style
    band tags (``wavelength``, ``wavelength_units``) and GDAL's ``IMAGERY`` metadata.
    ``colors``: a colour table (value -> '#rrggbb'; single-band uint8/uint16 only).
    ``tags``: dataset metadata.
    """
    from mfcli.io.atomic import atomic_file

    rasterio = import_rasterio(f"writing GeoTIFF '{path}'")
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise DataError(f"a GeoTIFF holds (bands, rows, cols) images, not an array of shape {images.shape}")
    if images.dtype.kind == "b":
        images = images.astype(np.uint8)
    elif images.dtype == np.float16:
        images = images.astype(np.float32)
    k, rows, cols = images.shape
    if colors is not None and (k != 1 or images.dtype not in PALETTE_DTYPES):
        raise DataError("a colour table needs one band of unsigned 8- or 16-bit integers")
    profile = {"driver": "GTiff", "width": cols, "height": rows, "count": k, "dtype": images.dtype.name,
               "compress": "deflate", "BIGTIFF": "IF_SAFER"}
    if rows >= 256 and cols >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    if k > 1:
        profile["interleave"] = "band"
    if georeference is not None:
        profile["transform"] = rasterio.Affine(*georeference.transform)
        if georeference.crs:
            profile["crs"] = rasterio.crs.CRS.from_wkt(georeference.crs)
    if nodata is not None:
        profile["nodata"] = nodata
    if colors is not None:
        profile["photometric"] = "palette"
    with atomic_file(path, force=force) as tmp, _quiet(rasterio):
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(images)
            for band, name in enumerate(band_names or [], start=1):
                dst.set_band_description(band, str(name))
            if wavelengths is not None:
                for band, value in enumerate(np.ravel(wavelengths), start=1):
                    dst.update_tags(band, wavelength=repr(float(value)), wavelength_units="Nanometers")
                    dst.update_tags(band, ns="IMAGERY", CENTRAL_WAVELENGTH_UM=repr(float(value) / 1000.0))
            if colors is not None:
                dst.write_colormap(1, {int(v): _rgba(c) for v, c in colors.items()})
            if tags:
                dst.update_tags(**{key: str(value) for key, value in tags.items()})


def _rgba(color: str) -> tuple[int, int, int, int]:
    """'#rrggbb' (or '#rrggbbaa') as an (r, g, b, a) tuple of 0-255."""
    text = color.lstrip("#")
    values = [int(text[i:i + 2], 16) for i in range(0, len(text), 2)]
    return tuple(values + [255] * (4 - len(values)))  # type: ignore[return-value]
