"""What the out-of-core engines share: column norms made in one pass and kept (and forgotten
when ``clip_negative`` changes), and the scan of the input checks (NaN, Inf and negative values
counted where the data are)."""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np


def column_sq_norms(block: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->j", block, block)


def count_values(block: np.ndarray, clip: bool = False):
    """(NaN count, Inf count, negative count, minimum, maximum, column norms) of one block as
    stored; the norms of the block as the solvers see it (negatives set to 0 when ``clip``)."""
    norms = column_sq_norms(block)
    nan = inf = negative = 0
    if not np.isfinite(norms).all():  # NaN/Inf somewhere (or a float32 overflow): count them
        nan, inf = int(np.count_nonzero(np.isnan(block))), int(np.count_nonzero(np.isinf(block)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN block
        minimum = float(np.nanmin(block)) if block.size else np.inf
        maximum = float(np.nanmax(block)) if block.size else -np.inf
    if minimum < 0:
        negative = int(np.count_nonzero(block < 0))
        if clip:
            norms = column_sq_norms(np.maximum(block, 0))
    return nan, inf, negative, minimum, maximum, norms


class ColumnNorms:
    """``sq_norm``/``col_sq_norms`` from one pass of ``map_column_blocks`` (kept), and ``scan``
    from one pass of ``_map_raw_blocks`` over X as stored; both engines define those two."""

    _sq_norm: float | None = None
    _col_sq_norms: np.ndarray | None = None
    _clip = False

    @property
    def clip_negative(self) -> bool:
        """Negative values count as 0 (the stored data are not changed)."""
        return self._clip

    @clip_negative.setter
    def clip_negative(self, value: bool) -> None:
        self._clip = bool(value)
        self._sq_norm = self._col_sq_norms = None  # the norms change with clipping
        self._clipping_changed()

    def _clipping_changed(self) -> None:
        """Hook for an engine that derives more than the norms from the clipping."""

    def _keep_norms(self, col: np.ndarray) -> None:
        self._col_sq_norms = col
        self._sq_norm = float(col.sum(dtype=np.float64))

    def _norms(self) -> None:
        col = np.empty(self.shape[1], dtype=self.dtype)
        for start, stop, norms in self.map_column_blocks(column_sq_norms):
            col[start:stop] = norms
        self._keep_norms(col)

    def sq_norm(self) -> float:
        if self._sq_norm is None:
            self._norms()
        return self._sq_norm  # type: ignore[return-value]

    def col_sq_norms(self) -> np.ndarray:
        if self._col_sq_norms is None:
            self._norms()
        return self._col_sq_norms  # type: ignore[return-value]

    def scan(self) -> dict:
        """One pass over X: the number of NaN, Inf and negative values as stored (before any
        clipping), the minimum and the maximum, for the input checks; the column norms of X as the
        solvers see it are kept, which saves the solvers' first pass."""
        counts = {"nan": 0, "inf": 0, "negative": 0, "minimum": np.inf, "maximum": -np.inf}
        col = np.empty(self.shape[1], dtype=self.dtype)
        for start, stop, (nan, inf, negative, minimum, maximum, norms) in self._map_raw_blocks(
                partial(count_values, clip=self.clip_negative)):
            counts["nan"] += nan
            counts["inf"] += inf
            counts["negative"] += negative
            counts["minimum"] = min(counts["minimum"], minimum)
            counts["maximum"] = max(counts["maximum"], maximum)
            col[start:stop] = norms
        self._keep_norms(col)
        return counts
