"""The Result type: what every model returns and what every later command reads.

One Result holds any number of layers. For a single-layer model (``factorize``) there is one
layer with ``X ~= W H``. For a deep model the layers are numbered from 1 (closest to the data)
to L; each layer keeps

- its own factors ``W`` and ``H`` exactly as the model defines them (deep ONMF:
  ``W_{l-1} ~= W_l H_l``; multilayer NMF: ``H_{l-1} ~= W_l H_l``), and
- its view in data space: ``basis`` (m x r_l, the endmembers / basis vectors as spectra) and
  ``coefficients`` (r_l x n, the per-sample weights, e.g. abundance maps), such that
  ``X ~= basis @ coefficients``. They are stored only where they differ from ``W``/``H``.

Completion models (``complete``) keep their two factor matrices in one layer and model-specific
arrays (biases, id maps, network weights) in ``arrays`` under ``/``-separated names.

Saving and loading is in :mod:`mfcli.io.result` (one HDF5 file). This module is NumPy only.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RESULT_FORMAT = "mfcli-result"
RESULT_FORMAT_VERSION = 1


@dataclass
class Layer:
    """One layer of a (deep) factorization.

    ``W``, ``H``: the layer's own factors. ``basis``/``coefficients``: the data-space view
    (``None`` means "same as W"/"same as H"). ``abundances``: optional soft abundances
    (r x n) computed for ``basis`` by NNLS/FCLS. ``assignments``: for hard (orthogonal)
    layers, the cluster of each column of this layer's input (-1 if unassigned), from which
    the hierarchy is built; ``assignment_weights`` the weight of that assignment.
    ``history``: per-iteration arrays (at least ``relative_error`` and ``seconds``).
    """

    W: np.ndarray
    H: np.ndarray
    basis: np.ndarray | None = None
    coefficients: np.ndarray | None = None
    abundances: np.ndarray | None = None
    assignments: np.ndarray | None = None
    assignment_weights: np.ndarray | None = None
    relative_error: float | None = None
    history: dict[str, np.ndarray] = field(default_factory=dict)
    labels: list[str] | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def rank(self) -> int:
        return int(self.W.shape[1]) if self.W.ndim == 2 else int(self.H.shape[0])

    @property
    def data_basis(self) -> np.ndarray:
        """Basis vectors in data space (m x r)."""
        return self.W if self.basis is None else self.basis

    @property
    def data_coefficients(self) -> np.ndarray:
        """Per-sample coefficients in data space (r x n)."""
        return self.H if self.coefficients is None else self.coefficients


@dataclass
class Result:
    """The outcome of one run: layers, histories, parameters and provenance.

    ``model``: the model name as given on the command line (``nmf``, ``deep-onmf``...).
    ``params``: every parameter of the run (JSON-able). ``history``: global per-iteration arrays
    (e.g. ``global_loss`` of a deep model's joint refinement). ``input``: metadata of the input
    (see :meth:`mfcli.dataset.Dataset.describe`) plus ``wavelengths``/``band_indices`` arrays.
    ``hierarchy``: tree arrays where the model builds one (see :mod:`mfcli.hierarchy`).
    ``arrays``: any further named arrays. ``provenance``: mfcli version, command line, date.
    """

    model: str
    layers: list[Layer]
    params: dict[str, Any] = field(default_factory=dict)
    history: dict[str, np.ndarray] = field(default_factory=dict)
    input: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    converged: bool | None = None
    n_iter: int | None = None

    @property
    def ranks(self) -> list[int]:
        return [layer.rank for layer in self.layers]

    @property
    def relative_error(self) -> float | None:
        """Relative error of the whole model (the last layer's data-space reconstruction)."""
        if "relative_error" in self.summary:
            return self.summary["relative_error"]
        return self.layers[-1].relative_error if self.layers else None

    def save(self, path, force: bool = False):
        """Write this result to the HDF5 file ``path`` atomically (an existing file is replaced
        only with ``force``); read it back with :func:`mfcli.load_result`. Returns the path."""
        from mfcli.api import save_result

        return save_result(self, path, force=force)

    def layer(self, index: int) -> Layer:
        """Layer by 1-based index; ``-1`` means the last one."""
        if index == -1:
            return self.layers[-1]
        return self.layers[self.layer_number(index) - 1]

    def layer_number(self, index: int) -> int:
        """The 1-based number of layer ``index`` (``-1`` means the last one); a ParameterError
        when there is no such layer."""
        if index == -1:
            return len(self.layers)
        if not 1 <= index <= len(self.layers):
            from mfcli.errors import ParameterError

            raise ParameterError(
                f"layer {index} does not exist: this result has {len(self.layers)} layer(s) "
                f"(ranks {','.join(map(str, self.ranks))}); use --layer 1..{len(self.layers)}"
            )
        return int(index)

    @property
    def image_shape(self) -> tuple[int, int] | None:
        shape = self.input.get("image_shape")
        return tuple(int(s) for s in shape) if shape is not None else None

    @property
    def pixel_order(self) -> str | None:
        return self.input.get("pixel_order")

    @property
    def georeference(self):
        """The input image's :class:`~mfcli.georeference.Georeference`, or None."""
        from mfcli.georeference import Georeference

        return Georeference.from_dict(self.input.get("georeference"))

    @property
    def valid_pixels(self) -> np.ndarray | None:
        """One flag per pixel of the input image (True: a column of the data; False: nodata,
        left out), or None when every pixel is a column (see :class:`mfcli.dataset.Dataset`)."""
        valid = self.input.get("valid_pixels")
        return None if valid is None else np.asarray(valid, dtype=bool).ravel()


def make_provenance(command_line: list[str] | None = None) -> dict[str, Any]:
    """Version, date and command line for a Result."""
    from mfcli import __version__

    return {
        "mfcli_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command_line": " ".join(command_line) if command_line else "",
        "numpy_version": np.__version__,
    }


def input_metadata(dataset) -> dict[str, Any]:
    """Input description of a :class:`~mfcli.dataset.Dataset` for ``Result.input``."""
    meta = dataset.describe()
    if dataset.wavelengths is not None:
        meta["wavelengths"] = np.asarray(dataset.wavelengths, dtype=np.float64)
    if dataset.band_indices is not None:
        meta["band_indices"] = np.asarray(dataset.band_indices, dtype=np.int64)
    if dataset.valid_pixels is not None:
        meta["valid_pixels"] = np.asarray(dataset.valid_pixels, dtype=bool)
    return meta
