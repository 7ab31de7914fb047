"""Ground truth for unmixing: true endmembers and/or abundances from .mat, .h5, .npz, .npy, CSV.

Detection (documented in ``mfcli evaluate --help``):

- **Names.** Endmembers under the first present of ``M, GT, E, endmembers, gt_endmembers,
  M1``; abundances under ``A, S_GT, abundances, gt_abundances, A1, S`` (exact name first,
  then any case). The usual pairs are M/A (Urban), GT/S_GT (Samson, Moffett, Jasper) and E/A.
  Material names from ``cood`` or ``names`` where present. A file holding one unnamed array
  (.npy, CSV) is endmembers if one side has as many entries as the data have bands, and
  abundances if it covers the data's pixels.
- **Orientation.** Endmembers are returned bands x materials, transposed if stored
  materials x bands (the side equal to the number of bands decides). Abundances are returned
  materials x pixels in the data's pixel order: a 2-D array is transposed if stored
  pixels x materials; a 3-D array is an abundance cube, (rows, cols, materials) or
  (materials, rows, cols), flattened in the data's pixel order.
- **Two files.** Endmembers from one file and abundances from another: give both.

Each choice is recorded in ``GroundTruth.notes``. NumPy plus the mfcli readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mfcli.dataset import image_to_pixels, pixels_to_image
from mfcli.errors import DataError, InputError
from mfcli.io.formats import ABUNDANCE_NAMES, ENDMEMBER_NAMES, MATERIAL_NAME_VARIABLES, unknown_variable


MAX_ONE_NOTE = ("the true endmembers are each scaled to a maximum of 1 (as in Samson's GT), so only "
                "scale-free measures such as the spectral angle compare with them")


@dataclass
class GroundTruth:
    """True endmembers (m x r, bands x materials) and/or abundances (r x n, in the data's pixel order)."""

    endmembers: np.ndarray | None = None
    abundances: np.ndarray | None = None
    names: list[str] | None = None
    sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def rank(self) -> int | None:
        if self.endmembers is not None:
            return int(self.endmembers.shape[1])
        if self.abundances is not None:
            return int(self.abundances.shape[0])
        return None

    @property
    def endmembers_scaled_to_max_one(self) -> bool:
        """True when each true spectrum has a maximum of 1 (a scale-free ground truth)."""
        if self.endmembers is None:
            return False
        return bool(np.allclose(self.endmembers.max(axis=0), 1.0, atol=2e-3))

    def material_names(self) -> list[str]:
        """One name per material: the file's (a numbering prefix such as Urban's "1-Asphalt Road"
        removed when every name has one, since pictures number materials themselves), else
        "material k" (1-based)."""
        r = self.rank or 0
        if self.names and len(self.names) == r:
            return strip_numbering(list(self.names))
        return [f"material {k + 1}" for k in range(r)]


def strip_numbering(names: list[str]) -> list[str]:
    """Names without a leading "1-", "2." or "3 " when every name has such a prefix."""
    import re

    pattern = re.compile(r"^\s*\d+\s*[-.:)]?\s+|^\s*\d+\s*[-.:)]\s*")
    stripped = [pattern.sub("", name, count=1) for name in names]
    if all(new != old and new.strip() for new, old in zip(stripped, names)):
        return stripped
    return names


def _find(infos: dict, candidates: Sequence[str]) -> str | None:
    for name in candidates:
        if name in infos:
            return name
    lower = {n.lower().rsplit("/", 1)[-1]: n for n in infos}
    for name in candidates:
        if name.lower() in lower:
            return lower[name.lower()]
    return None


def decode_names(value) -> list[str]:
    """Flatten a MATLAB cell array / char matrix / bytes array of names into strings."""
    array = np.asarray(value)
    if array.dtype.kind in "US":
        if array.ndim <= 1:
            return [str(v.decode("latin-1") if isinstance(v, bytes) else v).strip() for v in np.ravel(array)]
        return ["".join(str(c) for c in row).strip() for row in array]
    if array.dtype.kind == "O":
        out: list[str] = []
        for item in array.ravel():
            out.extend(decode_names(item))
        return out
    if array.dtype.kind in "iu" and array.ndim == 2:  # char codes, one name per row
        return [bytes(int(c) for c in row if c).decode("latin-1").strip() for row in array]
    return []


def _finite(values, what: str) -> np.ndarray:
    """``values`` as float64, or a DataError if they are not numbers or not all finite."""
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{what} are not numbers; give the variable of the ground truth with FILE:VAR") from None
    if not np.isfinite(values).all():
        raise DataError(f"{what} hold {int(values.size - np.count_nonzero(np.isfinite(values)))} NaN or Inf "
                        "values; a ground truth must be complete")
    return values


def orient_endmembers(E: np.ndarray, n_bands: int | None, what: str) -> tuple[np.ndarray, str | None]:
    """Endmembers as bands x materials. Returns (array, note or None)."""
    E = _finite(E, what)
    if E.ndim == 1:
        E = E[:, None]
    if E.ndim != 2:
        raise DataError(f"{what} must be a 2-D matrix of spectra, got shape {E.shape}")
    if n_bands is None:
        if E.shape[0] < E.shape[1]:
            return E.T, f"{what} {E.shape[0]}x{E.shape[1]} read as materials x bands (transposed)"
        return E, None
    if E.shape[0] == n_bands:
        return E, None
    if E.shape[1] == n_bands:
        return E.T, f"{what} {E.shape[0]}x{E.shape[1]} is materials x bands; transposed"
    raise DataError(f"{what} has shape {E.shape[0]}x{E.shape[1]}, but the data have {n_bands} bands; "
                    "the spectra must have one value per band")


def orient_abundances(A: np.ndarray, n_pixels: int | None, image_shape, pixel_order: str | None,
                      rank: int | None, what: str) -> tuple[np.ndarray, str | None]:
    """Abundances as materials x pixels in the data's pixel order. Returns (array, note or None)."""
    A = _finite(A, what)
    order = pixel_order or "C"
    if A.ndim == 3:
        rows_cols = tuple(image_shape) if image_shape is not None else None
        if rows_cols is not None and A.shape[:2] == rows_cols:
            cube, layout = np.moveaxis(A, 2, 0), "rows x cols x materials"
        elif rows_cols is not None and A.shape[1:] == rows_cols:
            cube, layout = A, "materials x rows x cols"
        elif rank is not None and A.shape[2] == rank:
            cube, layout = np.moveaxis(A, 2, 0), "rows x cols x materials"
        elif rank is not None and A.shape[0] == rank:
            cube, layout = A, "materials x rows x cols"
        else:
            cube, layout = np.moveaxis(A, 2, 0), "rows x cols x materials"
        flat = image_to_pixels(cube, order)
        if n_pixels is not None and flat.shape[1] != n_pixels:
            raise DataError(f"{what} is a {A.shape} cube ({flat.shape[1]} pixels) but the data have {n_pixels} pixels")
        return flat, f"{what} {'x'.join(map(str, A.shape))} read as an abundance cube ({layout}), " \
                     f"flattened in pixel order {order}"
    if A.ndim != 2:
        raise DataError(f"{what} must be a 2-D matrix or a 3-D cube of abundances, got shape {A.shape}")
    if n_pixels is None:
        if A.shape[0] > A.shape[1]:
            return A.T, f"{what} {A.shape[0]}x{A.shape[1]} read as pixels x materials (transposed)"
        return A, None
    if A.shape[1] == n_pixels:
        return A, None
    if A.shape[0] == n_pixels:
        return A.T, f"{what} {A.shape[0]}x{A.shape[1]} is pixels x materials; transposed"
    raise DataError(f"{what} has shape {A.shape[0]}x{A.shape[1]}, but the data have {n_pixels} pixels")


def _reorder_pixels(A: np.ndarray, image_shape, file_order: str, data_order: str | None) -> tuple[np.ndarray, str | None]:
    """A 2-D abundance matrix stored in ``file_order`` put in the data's pixel order."""
    if image_shape is None or data_order is None or file_order == data_order:
        return A, None
    images = pixels_to_image(A, tuple(image_shape), file_order)
    return image_to_pixels(images, data_order), f"abundance pixels reordered from {file_order} to {data_order} order"


def load_truth(specs: str | Sequence[str], *, n_bands: int | None = None, n_pixels: int | None = None,
               image_shape=None, pixel_order: str | None = None, valid_pixels=None) -> GroundTruth:
    """Read ground truth from one file or two (endmembers from one, abundances from the other).

    ``n_bands``, ``n_pixels``, ``image_shape``, ``pixel_order`` describe the data the truth
    belongs to and decide orientations; see the module docstring. ``valid_pixels``: the
    pixels of the image the data hold (the others were nodata): abundances given for every
    pixel of the image keep those only, like the data.
    """
    valid = None if valid_pixels is None else np.asarray(valid_pixels, dtype=bool).ravel()
    if valid is not None:
        n_pixels = valid.size  # the truth covers the whole image; the nodata pixels are dropped below
    from mfcli.io.load import open_spec

    if isinstance(specs, str):
        specs = [specs]
    if len(specs) > 2:
        raise InputError(f"{len(specs)} ground truths given ({', '.join(specs)}); give one file, or two: one with "
                         "the endmembers and one with the abundances")
    truth = GroundTruth()
    for spec in specs:
        before = (truth.endmembers is None, truth.abundances is None)
        container, source, spec_var, _ = open_spec(spec, digest=False)
        with container:
            infos = {n: i for n, i in container.variables().items()}
            numeric = {n: i for n, i in infos.items() if i.numeric and i.size > 1}
            if spec_var is not None:
                if spec_var not in infos:
                    raise unknown_variable(source, spec_var, infos)
                numeric = {spec_var: infos[spec_var]}
            e_name = _find(numeric, ENDMEMBER_NAMES)
            a_name = _find(numeric, ABUNDANCE_NAMES)
            if e_name is None and a_name is None and len(numeric) == 1:
                only = next(iter(numeric))
                kind = _guess_kind(numeric[only].shape, n_pixels)
                e_name, a_name = (only, None) if kind == "endmembers" else (None, only)
            if e_name is None and a_name is None:
                found = ", ".join(f"{n} {tuple(i.shape)}" for n, i in infos.items()) or "nothing"
                raise InputError(
                    f"found no ground truth in '{source}' (looked for endmembers {'/'.join(ENDMEMBER_NAMES)} "
                    f"and abundances {'/'.join(ABUNDANCE_NAMES)}; found: {found}); give the variable as FILE:VAR")
            if e_name is not None and truth.endmembers is None:
                E, note = orient_endmembers(container.read(e_name), n_bands, f"endmembers '{e_name}'")
                truth.endmembers = E
                truth.sources["endmembers"] = f"{source}:{e_name}"
                truth.notes.append(f"true endmembers: '{e_name}' of {source} ({E.shape[0]} bands x {E.shape[1]})")
                if note:
                    truth.notes.append(note)
            if a_name is not None and truth.abundances is None:
                rank = truth.endmembers.shape[1] if truth.endmembers is not None else None
                raw = container.read(a_name)
                A, note = orient_abundances(raw, n_pixels, image_shape, pixel_order, rank, f"abundances '{a_name}'")
                if np.ndim(raw) == 2:
                    # A matrix is in its file's pixel order: F for MATLAB files, C otherwise.
                    A, reorder_note = _reorder_pixels(A, image_shape, "F" if container.matlab else "C", pixel_order)
                    note = "; ".join(n for n in (note, reorder_note) if n) or None
                if valid is not None:
                    A = A[:, valid]
                    note = "; ".join(n for n in (note, f"{valid.size - int(valid.sum())} nodata pixels left out, "
                                                       "as in the data") if n)
                truth.abundances = A
                truth.sources["abundances"] = f"{source}:{a_name}"
                truth.notes.append(f"true abundances: '{a_name}' of {source} ({A.shape[0]} x {A.shape[1]} pixels)")
                if note:
                    truth.notes.append(note)
            if (truth.endmembers is None, truth.abundances is None) == before:
                taken = " and ".join(f"{kind} from {where}" for kind, where in truth.sources.items())
                raise InputError(f"'{spec}' adds nothing to the ground truth ({taken} already); give the "
                                 "endmembers and the abundances once each")
            if truth.names is None:
                names_var = _find(infos, MATERIAL_NAME_VARIABLES)
                if names_var is not None:
                    names = decode_names(container.read(names_var))
                    truth.names = names or None
    if truth.endmembers is not None and truth.abundances is not None \
            and truth.endmembers.shape[1] != truth.abundances.shape[0]:
        raise DataError(f"the true endmembers have {truth.endmembers.shape[1]} materials but the true abundances "
                        f"{truth.abundances.shape[0]}; check the ground-truth files")
    if truth.endmembers_scaled_to_max_one:
        truth.notes.append(MAX_ONE_NOTE)
    return truth


def _guess_kind(shape, n_pixels) -> str:
    """An unnamed lone array: a cube or one with a pixel axis holds abundances, else endmembers."""
    return "abundances" if len(shape) == 3 or (n_pixels is not None and n_pixels in shape) else "endmembers"


def load_truth_for_result(specs: str | Sequence[str], result, layer: int = -1) -> GroundTruth:
    """Ground truth oriented for a :class:`~mfcli.result.Result` (its bands, pixels, image shape
    and pixel order)."""
    chosen = result.layer(layer)
    return load_truth(specs, n_bands=int(np.shape(chosen.data_basis)[0]),
                      n_pixels=int(np.shape(chosen.data_coefficients)[1]),
                      image_shape=result.image_shape, pixel_order=result.pixel_order,
                      valid_pixels=result.valid_pixels)
