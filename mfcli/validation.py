"""Checks of data and parameters shared by every model (NumPy only, raise mfcli errors)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mfcli.errors import DataError, ParameterError

FLOAT_DTYPES = ("float32", "float64")


def count_nonfinite(X: np.ndarray) -> int:
    """Number of NaN or +-Inf entries of ``X`` (0 for integer arrays)."""
    X = np.asarray(X)
    if not np.issubdtype(X.dtype, np.floating):
        return 0
    return int(X.size - np.count_nonzero(np.isfinite(X)))


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


def check_factorization_input(X: np.ndarray, model: str, nonnegative: bool = True, clip_negative: bool = False,
                              what: str = "the data") -> tuple[np.ndarray, int]:
    """The checks every factorization command makes on its input, in one call.

    Refuses empty data and NaN/Inf (DataError); for a nonnegative ``model`` refuses negative
    values, or with ``clip_negative`` sets them to 0. Returns (X, number of values clipped).
    """
    require_nonempty(X, what)
    require_finite(X, what)
    if not nonnegative:
        return X, 0
    if clip_negative:
        return _clip_negative(X)
    require_nonnegative(X, model, what)
    return X, 0


def check_value_counts(counts: dict, model: str, nonnegative: bool = True, clip_negative: bool = False,
                       what: str = "the data") -> int:
    """:func:`check_factorization_input` for data that are not held in memory, from counts made
    where they are (``{"nan", "inf", "negative", "minimum"}``, e.g. by a streaming engine's
    ``scan()``): the same errors. Returns the number of values clipped (the engine clips them)."""
    if counts["nan"] or counts["inf"]:
        raise _nonfinite_error(int(counts["nan"]), int(counts["inf"]), what)
    if not nonnegative or not counts["negative"]:
        return 0
    if clip_negative:
        return int(counts["negative"])
    raise _negative_error(int(counts["negative"]), float(counts["minimum"]), model, what)


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
