"""The Dataset type: a data matrix with the metadata needed to interpret it.

Orientation convention, used everywhere in mfcli: ``X`` is **features x samples**. For a
hyperspectral image that is **bands x pixels**: column ``j`` is the spectrum of pixel ``j``.
How pixels map to the image is given by ``image_shape = (rows, cols)`` and ``pixel_order``:

- ``"F"`` (MATLAB, Fortran order): pixel ``j`` is at ``(j % rows, j // rows)``, i.e. pixels
  run down the image columns first. Files written by MATLAB (Urban, Samson, Moffett) use it.
- ``"C"``: pixel ``j`` is at ``(j // cols, j % cols)``, row by row (ENVI, NumPy cubes).

:func:`pixels_to_image` and :func:`image_to_pixels` are the only places that reshape between
the two, so every picture and every cube written comes out the right way round.
This module uses NumPy only (no I/O).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mfcli.errors import DataError, ParameterError
from mfcli.georeference import Georeference

PIXEL_ORDERS = ("F", "C")


def fill_pixels(values: np.ndarray, valid_pixels: np.ndarray | None, fill: float = np.nan) -> np.ndarray:
    """Per-pixel values of the valid pixels only (k, n_valid) (or (n_valid,)) spread over every
    pixel of the image (k, n_pixels), ``fill`` where ``valid_pixels`` is False (nodata).
    ``valid_pixels`` None: the values already cover every pixel and are returned as they are."""
    values = np.asarray(values)
    if valid_pixels is None:
        return values
    valid = np.asarray(valid_pixels, dtype=bool).ravel()
    if values.shape[-1] != int(valid.sum()):
        raise DataError(f"{values.shape[-1]} values per pixel do not match the {int(valid.sum())} pixels "
                        f"with data of the image ({valid.size} pixels, {valid.size - int(valid.sum())} nodata)")
    kind = np.result_type(values.dtype, np.asarray(fill).dtype)
    out = np.full(values.shape[:-1] + (valid.size,), fill, dtype=kind)
    out[..., valid] = values
    return out


def pixels_to_image(values: np.ndarray, image_shape: tuple[int, int], order: str,
                    valid_pixels: np.ndarray | None = None, fill: float = np.nan) -> np.ndarray:
    """Reshape ``values`` of shape (k, n_pixels) (or (n_pixels,)) to (k, rows, cols) (or (rows, cols)).

    ``order`` is the pixel order of the columns ("F" or "C"); see the module docstring. With
    ``valid_pixels`` (one flag per pixel of the image, in ``order``), ``values`` hold the valid
    pixels only and the others (nodata) are ``fill``.
    """
    if order not in PIXEL_ORDERS:
        raise ParameterError(f"pixel order must be 'F' or 'C', not {order!r}")
    rows, cols = (int(s) for s in image_shape)
    values = fill_pixels(values, valid_pixels, fill)
    squeeze = values.ndim == 1
    values2d = values[None, :] if squeeze else values
    if values2d.shape[1] != rows * cols:
        raise DataError(
            f"cannot show {values2d.shape[1]} pixels as a {rows}x{cols} image "
            f"({rows * cols} pixels); check --image-shape"
        )
    images = values2d.reshape(values2d.shape[0], rows, cols, order="C") if order == "C" else \
        values2d.reshape(values2d.shape[0], cols, rows).transpose(0, 2, 1)
    return images[0] if squeeze else images


def image_to_pixels(images: np.ndarray, order: str) -> np.ndarray:
    """Inverse of :func:`pixels_to_image`: (k, rows, cols) -> (k, rows*cols) in ``order``."""
    if order not in PIXEL_ORDERS:
        raise ParameterError(f"pixel order must be 'F' or 'C', not {order!r}")
    images = np.asarray(images)
    squeeze = images.ndim == 2
    images3d = images[None] if squeeze else images
    k, rows, cols = images3d.shape
    if order == "C":
        flat = images3d.reshape(k, rows * cols)
    else:
        flat = images3d.transpose(0, 2, 1).reshape(k, rows * cols)
    return flat[0] if squeeze else flat


def cube_to_matrix(cube: np.ndarray, order: str = "C") -> np.ndarray:
    """(rows, cols, bands) cube -> (bands, rows*cols) matrix with pixels in ``order``."""
    return image_to_pixels(np.moveaxis(np.asarray(cube), 2, 0), order)


def matrix_to_cube(X: np.ndarray, image_shape: tuple[int, int], order: str) -> np.ndarray:
    """(bands, pixels) matrix -> (rows, cols, bands) cube."""
    return np.moveaxis(pixels_to_image(X, image_shape, order), 0, 2)


@dataclass
class Dataset:
    """A data matrix ``X`` (features x samples) and what is known about it.

    Attributes
    ----------
    X : (m, n) array, features x samples (bands x pixels for images).
    image_shape : (rows, cols) when the samples are the pixels of an image, else None.
    pixel_order : "F" or "C" (see module docstring) when ``image_shape`` is set.
    wavelengths : (m,) wavelengths in nanometres where a source gives them (never derived
        from band numbers, see :mod:`mfcli.io.wavelengths`).
    wavelengths_source : where the wavelengths come from (the ENVI header, a variable of the
        file, ``--wavelengths FILE``), or None.
    band_indices : (m,) 1-based indices of the kept bands in the sensor's full band list
        (e.g. Urban's ``SlectBands``), where known.
    scale : the data were divided by this number when loaded (1.0 if untouched).
    source : path of the file (or "sample:NAME", or "-" for stdin).
    variable : the variable or dataset path inside the file.
    sha256 : hex digest of the source file's bytes. It may be given as a function returning it
        (a second thread hashing the file while it is read and factorized): the first read of
        ``sha256`` calls it and keeps the digest.
    layout : how the array was interpreted: "matrix", "cube" or "bands-x-pixels".
    notes : human-readable remarks made while loading (which variable was chosen, scale...).
    extras : other arrays found beside the data that later steps may use (e.g. ground truth
        ``GT``/``S_GT``), by their name in the file.
    feature_names, sample_names : names of the rows and columns where the file gives them
        (a table's header, the band descriptions of a GeoTIFF, ENVI ``band names``).
    georeference : where the image lies on the Earth (:class:`mfcli.georeference.Georeference`),
        for images read from a georeferenced file.
    nodata : the value marking pixels without data in the file (None: none declared).
    valid_pixels : for an image with nodata pixels, one flag per pixel of the image (rows*cols,
        in ``pixel_order``): True for the pixels that are columns of ``X``. The nodata pixels are
        left out of ``X``, so ``n_samples`` is the number of valid pixels; None when every pixel
        is a column of ``X``.
    """

    X: np.ndarray
    image_shape: tuple[int, int] | None = None
    pixel_order: str | None = None
    wavelengths: np.ndarray | None = None
    band_indices: np.ndarray | None = None
    wavelengths_source: str | None = None
    scale: float = 1.0
    source: str = ""
    variable: str | None = None
    sha256: str | None = None
    layout: str = "matrix"
    notes: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    feature_names: list[str] | None = None
    sample_names: list[str] | None = None
    georeference: Georeference | None = None
    nodata: float | None = None
    valid_pixels: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.X.shape)  # type: ignore[return-value]

    @property
    def n_features(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[1])

    @property
    def is_image(self) -> bool:
        return self.image_shape is not None

    def to_image(self, values: np.ndarray) -> np.ndarray:
        """Per-pixel values (k, n) -> images (k, rows, cols), the right way round."""
        if self.image_shape is None:
            raise DataError(
                f"{self.source or 'the data'} has no image shape, so it cannot be shown as an image; "
                "give one with --image-shape ROWSxCOLS"
            )
        return pixels_to_image(values, self.image_shape, self.pixel_order or "C", self.valid_pixels)

    @property
    def n_nodata_pixels(self) -> int:
        """Pixels of the image left out of X as nodata."""
        return 0 if self.valid_pixels is None else int(self.valid_pixels.size - np.count_nonzero(self.valid_pixels))

    def pixel_numbers(self, columns: np.ndarray) -> np.ndarray:
        """The pixel numbers (0-based, in ``pixel_order``, counting nodata pixels) of columns of X."""
        columns = np.asarray(columns, dtype=np.int64)
        return columns if self.valid_pixels is None else np.flatnonzero(self.valid_pixels)[columns]

    def image_matrix(self) -> tuple[np.ndarray, float | None]:
        """X with the nodata pixels put back: (bands x every pixel of the image, the value they
        hold: ``nodata``, or NaN where the file declared none). (X, nodata) without nodata pixels."""
        if self.valid_pixels is None:
            return self.X, self.nodata
        fill = self.nodata if self.nodata is not None else np.nan
        return fill_pixels(self.X, self.valid_pixels, fill).astype(self.X.dtype, copy=False), float(fill)

    def __getstate__(self) -> dict[str, Any]:
        self.sha256  # a digest still being computed is waited for: its function cannot be pickled
        return self.__dict__

    def describe(self) -> dict[str, Any]:
        """Metadata as plain JSON-able values (no arrays of data)."""
        return {
            "source": self.source,
            "variable": self.variable,
            "sha256": self.sha256,
            "shape": list(self.X.shape),
            "dtype": str(self.X.dtype),
            "layout": self.layout,
            "image_shape": list(self.image_shape) if self.image_shape else None,
            "pixel_order": self.pixel_order,
            "scale": self.scale,
            "has_wavelengths": self.wavelengths is not None,
            "wavelengths_source": self.wavelengths_source,
            "notes": list(self.notes),
            **({"georeference": self.georeference.to_dict()} if self.georeference is not None else {}),
            **({"nodata": self.nodata} if self.nodata is not None else {}),
            **({"nodata_pixels": self.n_nodata_pixels} if self.valid_pixels is not None else {}),
        }


def _sha256(dataset: Dataset) -> str | None:
    value = dataset.__dict__.get("_sha256")
    if callable(value):  # the digest being computed on a second thread: wait for it, once
        value = dataset.__dict__["_sha256"] = value()
    return value


def _set_sha256(dataset: Dataset, value) -> None:
    dataset.__dict__["_sha256"] = value


# after the class is made: its __init__ assigns the field through the property
Dataset.sha256 = property(_sha256, _set_sha256, doc="Hex digest of the source file's bytes (see the class docstring).")
