"""Checks of data and parameters shared by every model (NumPy only, raise mfcli errors)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mfcli.errors import DataError, ParameterError
from mfcli.models.linalg import floor_for

FLOAT_DTYPES = ("float32", "float64")


def count_nonfinite(X: np.ndarray) -> int:
    """Number of NaN or +-Inf entries of ``X`` (0 for integer arrays), without a temporary of X's
    size (a flag per entry was the peak of loading Urban beside the data): a NaN or Inf makes the
    float64 sum of all entries NaN or Inf, so a finite sum means none; otherwise (or where the sum
    overflowed) they are counted block by block."""
    X = np.asarray(X)
    if not np.issubdtype(X.dtype, np.floating) or X.size == 0:
        return 0
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(X, dtype=np.float64)):
            return 0
    rows = X.reshape(X.shape[0], -1) if X.ndim > 1 else X.reshape(1, -1)
    step = max(1, COUNT_BLOCK // max(1, rows.shape[0]))
    return sum(int(block.size - np.count_nonzero(np.isfinite(block)))
               for block in (rows[:, start:start + step] for start in range(0, rows.shape[1], step)))


COUNT_BLOCK = 1 << 22  # entries per block of count_nonfinite's exact count


def require_finite(X: np.ndarray, what: str = "the data") -> None:
    """Raise DataError if ``X`` holds NaN or Inf."""
    bad = count_nonfinite(X)
    if bad:
        n_nan = int(np.count_nonzero(np.isnan(X)))
        raise _nonfinite_error(n_nan, bad - n_nan, what)


def _nonfinite_error(n_nan: int, n_inf: int, what: str) -> DataError:
    return DataError(
        f"{what} contain {n_nan + n_inf} non-finite values ({n_nan} NaN, {n_inf} Inf); "
        "factorization needs complete data: remove or fill them "
        "(matrix completion, `mfcli complete`, treats NaN as missing)"
    )


def require_nonempty(X: np.ndarray, what: str = "the data") -> None:
    if np.asarray(X).size == 0:
        raise DataError(f"{what} are empty (shape {tuple(np.shape(X))}); check the file and variable")


def require_nonnegative(X: np.ndarray, model: str, what: str = "the data") -> None:
    """Raise DataError if ``X`` has negative entries (for nonnegative models)."""
    X = np.asarray(X)
    minimum = X.min() if X.size else 0
    if minimum < 0:
        raise _negative_error(int(np.count_nonzero(X < 0)), float(minimum), model, what)


def _negative_error(n_negative: int, minimum: float, model: str, what: str) -> DataError:
    return DataError(
        f"{what} have {n_negative} negative values (minimum {minimum:.4g}) but {model} needs "
        "nonnegative data; use --clip-negative to set them to 0, or a model that allows "
        "signed data (semi-nmf, svd)"
    )


def clip_negative(X: np.ndarray) -> tuple[np.ndarray, int]:
    """Copy of ``X`` with negative entries set to 0, and how many there were."""
    n_neg = int(np.count_nonzero(X < 0))
    if n_neg == 0:
        return X, 0
    return np.maximum(X, 0, dtype=X.dtype), n_neg


_clip_negative = clip_negative  # the parameter of the same name below shadows it


# Room left below the overflow threshold by magnitude_limits, and the factor by which the data
# must exceed the smallest value the solvers keep in a factor.
MAGNITUDE_MARGIN = 16.0
FLOOR_MARGIN = 1e6


def magnitude_limits(dtype, size: int) -> tuple[float, float]:
    """(smallest, largest) largest-magnitude of data of ``size`` values in ``dtype`` that the
    models' arithmetic takes.

    Above: the solvers form products of two factors that each carry the data's scale and sum
    their squares (ONMF's ||X H^T||, the Gram matrices of HALS and minvol), so fourth powers of
    the magnitude summed over up to ``size`` terms must stay finite, with a margin of 16 on
    the magnitude: about 1e74 in float64 for ten million values, 4e6 in float32.
    Below: the solvers keep every factor entry at least at a small absolute floor (HALS:
    1e-16 in float64, 1e-12 in float32); data within 10^6 of it are fitted by the floor rather
    than by the data (measured: aonmf's relative error exceeds 1 at 1e-20 in float64), so the
    data must reach 1e-10 (float64) or 1e-6 (float32).
    """
    dtype = np.dtype(dtype) if np.dtype(dtype).kind == "f" else np.dtype(np.float64)
    info = np.finfo(dtype)
    largest = float((float(info.max) / max(int(size), 1)) ** 0.25) / MAGNITUDE_MARGIN
    smallest = max(float(float(info.tiny) ** 0.25) * MAGNITUDE_MARGIN, floor_for(dtype) * FLOOR_MARGIN)
    return smallest, largest


def require_workable_magnitude(largest: float, dtype, size: int, what: str = "the data",
                               float64_option: str | None = "--dtype float64") -> None:
    """Raise DataError when the data's largest magnitude ``largest`` is 0 (nothing to factorize)
    or out of :func:`magnitude_limits`, saying how to rescale them."""
    if largest == 0:
        raise DataError(f"{what} are all zero; there is nothing to factorize (check the file and the variable)")
    smallest, limit = magnitude_limits(dtype, size)
    name = np.dtype(dtype).name
    wider = magnitude_limits(np.float64, size)
    if largest > limit:
        hint = f" or work in float64 ({float64_option})" if float64_option and name == "float32" and \
            largest <= wider[1] else ""
        raise DataError(f"{what} hold values up to {largest:.3g} in magnitude, beyond what {name} arithmetic on "
                        f"{size} values takes without overflow (about {limit:.2g}); divide the data by a "
                        f"constant first{hint}")
    if largest < smallest:
        hint = f" or work in float64 ({float64_option})" if float64_option and name == "float32" and \
            largest >= wider[0] else ""
        raise DataError(f"{what} hold values of at most {largest:.3g} in magnitude, too small for the solvers' "
                        f"{name} arithmetic (they need about {smallest:.2g} or more); multiply the data by a "
                        f"constant first{hint}")


def largest_magnitude(X: np.ndarray) -> float:
    """max |x| over ``X`` (finite data), 0 for empty data."""
    X = np.asarray(X)
    if X.size == 0:
        return 0.0
    return float(max(abs(float(X.max())), abs(float(X.min()))))


def check_factorization_input(X: np.ndarray, model: str, nonnegative: bool = True, clip_negative: bool = False,
                              what: str = "the data") -> tuple[np.ndarray, int]:
    """The checks every factorization command makes on its input, in one call.

    Refuses empty data, NaN/Inf, all-zero data and magnitudes the models' arithmetic cannot
    take (:func:`require_workable_magnitude`) with a DataError; for a nonnegative ``model``
    refuses negative values, or with ``clip_negative`` sets them to 0. Returns (X, number of
    values clipped).
    """
    if type(X).__module__.startswith("scipy.sparse"):
        return _check_sparse_input(X, model, nonnegative, clip_negative, what)
    require_nonempty(X, what)
    X_array = np.asarray(X)
    # the smallest and largest entries decide every check (a NaN or Inf shows in them): two
    # passes over the data instead of five; the exact counts of an error are taken only then
    low, high = (float(X_array.min()), float(X_array.max())) if np.issubdtype(X_array.dtype, np.floating) \
        else (None, None)
    if low is None or not (np.isfinite(low) and np.isfinite(high)):
        require_finite(X, what)
    if nonnegative and clip_negative:
        X, n_clipped = _clip_negative(X)
        largest = largest_magnitude(X)
    else:
        if nonnegative and (low is None or low < 0):
            require_nonnegative(X, model, what)
        n_clipped = 0
        largest = largest_magnitude(X) if low is None else max(abs(low), abs(high))
    require_workable_magnitude(largest, X_array.dtype, X_array.size, what)
    return X, n_clipped


def _check_sparse_input(X, model: str, nonnegative: bool, clip_negative: bool, what: str):
    """:func:`check_factorization_input` of a scipy.sparse matrix, on its stored values (the
    others are zeros); clipping works on a copy and drops the zeros it makes."""
    if X.ndim != 2 or min(X.shape) == 0:
        raise DataError(f"{what} are empty (shape {X.shape})")
    values = X.data
    require_finite(values, what)
    n_clipped = 0
    if nonnegative and clip_negative:
        n_clipped = int(np.count_nonzero(values < 0))
        if n_clipped:
            X = X.copy()
            X.data = np.maximum(X.data, 0)
            X.eliminate_zeros()
    elif nonnegative:
        require_nonnegative(values, model, what)
    require_workable_magnitude(largest_magnitude(X.data) if X.nnz else 0.0, X.dtype, X.shape[0] * X.shape[1], what)
    return X, n_clipped


def check_value_counts(counts: dict, model: str, nonnegative: bool = True, clip_negative: bool = False,
                       what: str = "the data", dtype=None, size: int = 0) -> int:
    """:func:`check_factorization_input` for data that are not held in memory, from counts made
    where they are (``{"nan", "inf", "negative", "minimum", "maximum"}``, e.g. by a streaming
    engine's ``scan()``): the same errors (the magnitudes where ``dtype`` and ``size`` are
    given). Returns the number of values clipped (the engine clips them)."""
    if counts["nan"] or counts["inf"]:
        raise _nonfinite_error(int(counts["nan"]), int(counts["inf"]), what)
    n_clipped = 0
    if nonnegative and counts["negative"]:
        if not clip_negative:
            raise _negative_error(int(counts["negative"]), float(counts["minimum"]), model, what)
        n_clipped = int(counts["negative"])
    if "maximum" in counts and dtype is not None:
        low, high = float(counts["minimum"]), float(counts["maximum"])
        if nonnegative and clip_negative:
            low, high = max(low, 0.0), max(high, 0.0)
        require_workable_magnitude(max(abs(low), abs(high)), dtype, size, what)
    return n_clipped


def as_float_matrix(X: np.ndarray, dtype: str | np.dtype | None = None, what: str = "the data") -> np.ndarray:
    """Return ``X`` as a 2-D float array of ``dtype`` (keeping float32/float64 when None)."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise DataError(f"{what} must be a 2-D matrix, got {X.ndim} dimensions with shape {X.shape}")
    if dtype is None:
        dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    dtype = np.dtype(dtype)
    if dtype.name not in FLOAT_DTYPES:
        raise ParameterError(f"dtype must be float32 or float64, not {dtype.name}")
    return np.ascontiguousarray(X, dtype=dtype)


def check_rank(rank: int, shape: Sequence[int], name: str = "rank") -> int:
    """A rank must be a positive integer no larger than min(m, n)."""
    m, n = shape
    if int(rank) != rank or rank < 1:
        raise ParameterError(f"{name} must be a positive integer, got {rank}")
    if rank > min(m, n):
        raise ParameterError(
            f"{name} {rank} is larger than min(m, n) = {min(m, n)} for data of shape {m}x{n}; "
            "choose a smaller rank"
        )
    return int(rank)


def check_ranks(ranks: Sequence[int], shape: Sequence[int]) -> list[int]:
    """Deep-model ranks: positive, non-increasing, each at most min(m, n). Names the offender."""
    ranks = list(ranks)
    if not ranks:
        raise ParameterError("give at least one rank, e.g. --ranks 7,6,4,2")
    m, n = shape
    for i, r in enumerate(ranks):
        if int(r) != r or r < 1:
            raise ParameterError(f"rank {r} (layer {i + 1}) must be a positive integer")
        if r > min(m, n):
            raise ParameterError(
                f"rank {r} (layer {i + 1}) is larger than min(m, n) = {min(m, n)} "
                f"for data of shape {m}x{n}"
            )
        if i and r > ranks[i - 1]:
            raise ParameterError(
                f"rank {r} (layer {i + 1}) is larger than rank {ranks[i - 1]} of layer {i}; "
                "ranks must be non-increasing, e.g. 7,6,4,2"
            )
    return [int(r) for r in ranks]
