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

PIXEL_ORDERS = ("F", "C")


def pixels_to_image(values: np.ndarray, image_shape: tuple[int, int], order: str) -> np.ndarray:
    """Reshape ``values`` of shape (k, n_pixels) (or (n_pixels,)) to (k, rows, cols) (or (rows, cols)).

    ``order`` is the pixel order of the columns ("F" or "C"); see the module docstring.
    """
    if order not in PIXEL_ORDERS:
        raise ParameterError(f"pixel order must be 'F' or 'C', not {order!r}")
    rows, cols = (int(s) for s in image_shape)
    values = np.asarray(values)
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
    sha256 : hex digest of the source file's bytes.
    layout : how the array was interpreted: "matrix", "cube" or "bands-x-pixels".
    notes : human-readable remarks made while loading (which variable was chosen, scale...).
    extras : other arrays found beside the data that later steps may use (e.g. ground truth
        ``GT``/``S_GT``), by their name in the file.
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
        return pixels_to_image(values, self.image_shape, self.pixel_order or "C")

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
        }
