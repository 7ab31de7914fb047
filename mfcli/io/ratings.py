"""Read ratings for matrix completion into :class:`~mfcli.completion.data.Ratings`.

Accepted inputs:

* triplet text files ``user SEP item SEP rating [SEP timestamp ...]``: MovieLens 100K ``u.data``
  (tab), 1M ``ratings.dat`` (``::``), ml-latest ``ratings.csv`` (comma, with a header line), or
  any CSV/TSV/whitespace file; the separator is detected from the first lines, and a first line
  whose rating field is not a number is taken as a header. Ids may be integers or strings.
* a scipy.sparse matrix saved with ``scipy.sparse.save_npz`` (users x items, stored entries are
  the ratings; ids are the row and column numbers from 0);
* a dense users x items matrix with NaN for missing ratings (``dense=True``; any format
  :func:`mfcli.io.load_dataset` reads, taken as stored: rows are users).

Pairs files for ``mfcli predict`` are read by :func:`read_pairs` (user, item[, ...]).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mfcli.completion.data import Ratings
from mfcli.errors import DataError, InputError

SEPARATORS = ("::", "\t", ",", ";", "|")


STDIN_TEXT_SPECS = ("-", "-:csv", "-:tsv", "-:txt")


def is_stdin(path: str) -> bool:
    """Whether ``path`` names standard input: '-', or '-:FMT' with a format."""
    return path == "-" or path.startswith("-:")


def _read_text(path: str) -> str:
    if is_stdin(path):
        if path.lower() not in STDIN_TEXT_SPECS:
            raise InputError(f"ratings on standard input are text (user,item,rating lines), so '{path}' does "
                             "not apply; give '-' or '-:csv' (a matrix on standard input: --dense)")
        import sys

        data = sys.stdin.buffer.read()
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError("standard input is not UTF-8 text; pipe user,item,rating lines") from None
    if not os.path.exists(path):
        raise InputError(f"ratings file '{path}' does not exist; check the path")
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            return fh.read()
    except OSError as exc:
        raise InputError(f"cannot read '{path}': {exc.strerror}") from None


def _detect_separator(lines: list[str]) -> str | None:
    sample = lines[:20]
    for sep in SEPARATORS:
        if all(sep in line for line in sample):
            return sep
    return None  # whitespace


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _split_table(text: str, path: str, min_columns: int, what: str, header_field: int | None = -1
                 ) -> tuple[list[list[str]], list[int]]:
    """Rows of fields and their line numbers, blank and '#' lines removed, and a header line removed
    when its field ``header_field`` (default: the last required one, a rating) is not a number."""
    lines = text.splitlines()
    content = [(number, line) for number, line in enumerate(lines, start=1)
               if line.strip() and not line.lstrip().startswith("#")]
    if not content:
        raise DataError(f"'{path}' holds no {what}; expected lines 'user,item,rating'")
    sep = _detect_separator([line for _, line in content])
    rows = [[f.strip() for f in (line.split(sep) if sep else line.split())] for _, line in content]
    numbers = [number for number, _ in content]
    header_field = min_columns - 1 if header_field == -1 else header_field
    first = rows[0]
    if header_field is not None and len(first) >= min_columns and not _is_number(first[header_field]):
        rows, numbers = rows[1:], numbers[1:]  # a header line
    if not rows:
        raise DataError(f"'{path}' holds a header but no {what}")
    widths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    short = np.flatnonzero(widths < min_columns)
    if short.size:
        line = numbers[short[0]]
        raise InputError(f"line {line} of '{path}' has {widths[short[0]]} field(s) but {what} need at least "
                         f"{min_columns} (user, item{', rating' if min_columns > 2 else ''})")
    return rows, numbers


def _ids(values: list[str]) -> np.ndarray:
    """Integer ids where every id is an integer, else strings."""
    array = np.asarray(values)
    try:
        return array.astype(np.int64)
    except (ValueError, OverflowError):  # text ids, or integers beyond 64 bits: kept as text
        return array.astype(str)


def _numbers(texts: list[str], numbers: list[int], path: str, hint: str) -> np.ndarray:
    """The ratings as floats, or an InputError naming the first line whose rating is not a number."""
    try:
        values = np.asarray(texts, dtype=np.float64)
    except ValueError:
        values = None
    if values is None or not np.all(np.isfinite(values)):
        bad = next(k for k, t in enumerate(texts) if not _is_number(t) or not np.isfinite(float(t)))
        raise InputError(f"line {numbers[bad]} of '{path}': rating '{texts[bad]}' is not a finite number; "
                         f"ratings must be numeric ({hint})")
    return values


def read_triplets(path: str) -> Ratings:
    """Ratings from a CSV/TSV/``::`` file of user, item, rating[, ...] lines (see the module docstring)."""
    text = _read_text(path)
    ratings = _numeric_triplets(text, path)
    if ratings is not None:
        return ratings
    rows, numbers = _split_table(text, path, 3, "ratings")
    return _triplets(rows, numbers, path)


def _numeric_triplets(text: str, path: str) -> Ratings | None:
    """The common case, read by NumPy's C parser: integer user and item ids and finite numeric
    ratings (MovieLens files). None when the file is anything else (string ids, bad lines...): the
    general reader then reads it and names any bad line. Gives the same ratings as the general reader."""
    import io

    head, offset, header_end = [], 0, None
    # the first lines only (splitting the whole text would cost more than parsing it)
    for line in text[:1 << 16].splitlines(keepends=True)[:1000]:
        offset += len(line)
        if line.strip() and not line.lstrip().startswith("#"):
            if not head:
                header_end = offset
            head.append(line.rstrip("\r\n"))
            if len(head) == 20:
                break
    if not head:
        return None
    sep = _detect_separator(head)
    first = [f.strip() for f in (head[0].split(sep) if sep else head[0].split())]
    if len(first) < 3:
        return None
    if not _is_number(first[2]):  # a header line (as _split_table decides): parse after it
        text = text[header_end:]
    if sep == "::":
        text, sep = text.replace("::", "\x1f"), "\x1f"
    # Whole-number ratings (MovieLens' stars, counts) parse faster as integers; a fractional one
    # (3.5) stops that parse, and the ratings are parsed as floats.
    table = None
    for rating_type in (np.int64, np.float64):
        columns = [("user", np.int64), ("item", np.int64), ("rating", rating_type)]
        try:
            table = np.loadtxt(io.StringIO(text), delimiter=sep, usecols=(0, 1, 2), comments="#", ndmin=1,
                               dtype=columns)
            break
        except (ValueError, IndexError, TypeError):
            continue
    if table is None:
        return None
    ratings = table["rating"].astype(np.float64)
    if table.size == 0 or not np.all(np.isfinite(ratings)):
        return None
    try:
        return Ratings.from_triplets(table["user"], table["item"], ratings)
    except DataError as exc:
        raise DataError(f"'{path}': {exc}") from None


def _triplets(rows: list[list[str]], numbers: list[int], path: str) -> Ratings:
    values = _numbers([r[2] for r in rows], numbers, path, "user, item, rating")
    try:
        return Ratings.from_triplets(_ids([r[0] for r in rows]), _ids([r[1] for r in rows]), values)
    except DataError as exc:
        raise DataError(f"'{path}': {exc}") from None


def read_pairs(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(user ids, item ids, ratings or None) from a file of user, item[, rating] lines (header optional).

    The third column is returned when every line has a numeric one (true ratings to score against).
    """
    rows, _ = _split_table(_read_text(path), path, 2, "user,item pairs", header_field=None)
    first = rows[0]
    if first[0].lower() in ("user", "userid", "user_id", "users"):
        rows = rows[1:]
    if not rows:
        raise DataError(f"'{path}' holds no user,item pairs")
    truth = None
    if all(len(r) >= 3 and _is_number(r[2]) for r in rows):
        truth = np.asarray([r[2] for r in rows], dtype=np.float64)
        if not np.isfinite(truth).all():
            bad = int(np.flatnonzero(~np.isfinite(truth))[0])
            raise InputError(f"'{path}': the rating '{rows[bad][2]}' of pair {bad + 1} is not a finite number; "
                             "true ratings must be finite")
    elif any(len(r) >= 3 for r in rows):
        bad = next(k for k, r in enumerate(rows) if len(r) < 3 or not _is_number(r[2]))
        third = rows[bad][2] if len(rows[bad]) >= 3 else "(none)"
        raise InputError(f"'{path}': pair {bad + 1} has '{third}' as its third field, which is not a rating; "
                         "PAIRS are 'user,item' lines, or 'user,item,rating' lines with a number on every line")
    return _ids([r[0] for r in rows]), _ids([r[1] for r in rows]), truth


def read_sparse(path: str) -> Ratings:
    """Ratings from a scipy.sparse users x items .npz matrix (ids are row/column numbers from 0)."""
    import scipy.sparse as sp

    try:
        matrix = sp.load_npz(path)
    except FileNotFoundError:
        raise InputError(f"ratings file '{path}' does not exist; check the path") from None
    except (ValueError, OSError, KeyError) as exc:
        raise InputError(f"'{path}' is not a scipy.sparse .npz matrix ({exc}); save one with "
                         "scipy.sparse.save_npz, or give a CSV/TSV of user,item,rating") from None
    if matrix.nnz == 0:
        raise DataError(f"'{path}' holds no ratings (an empty sparse matrix)")
    return Ratings.from_sparse(matrix)


def read_mask(path: str):
    """A sparse 0/1 mask matrix (.npz) selecting ratings of a ratings matrix."""
    import scipy.sparse as sp

    try:
        return sp.load_npz(path)
    except FileNotFoundError:
        raise InputError(f"mask file '{path}' does not exist; check the path") from None
    except (ValueError, OSError, KeyError) as exc:
        raise InputError(f"'{path}' is not a scipy.sparse .npz mask ({exc})") from None


def read_dense(spec: str) -> Ratings:
    """Ratings from a dense users x items matrix with NaN for missing entries."""
    from mfcli.io.load import load_dataset

    dataset = load_dataset(spec, layout="matrix")
    if dataset.X.size and np.isnan(dataset.X).all():
        raise DataError(f"'{spec}' holds no ratings: every value of its {dataset.X.shape[0]} x "
                        f"{dataset.X.shape[1]} matrix is NaN (missing)")
    return Ratings.from_dense(dataset.X)


def read_sample_ratings(spec: str) -> Ratings:
    """The ratings of a bundled sample (``sample:survey-ratings``), users x items whatever way the
    matrix is stored, with 1-based ids (user k and item k are the k-th as the sample describes them)."""
    from mfcli.completion.data import IdMap
    from mfcli.io.load import load_dataset
    from mfcli.io.samples import SAMPLES

    name = spec.split(":", 2)[1]
    sample = SAMPLES.get(name)
    if sample is not None and sample.ratings_rows is None:
        ratings_samples = ", ".join(f"sample:{s.name}" for s in SAMPLES.values() if s.ratings_rows)
        raise InputError(f"{spec} is not a ratings sample ({sample.kind}); matrix completion takes {ratings_samples}")
    matrix = np.asarray(load_dataset(spec, layout="matrix").X, dtype=np.float64)
    if sample is not None and sample.ratings_rows == "items":
        matrix = matrix.T
    ratings = Ratings.from_dense(matrix)
    return Ratings(ratings.users, ratings.items, ratings.values, IdMap(np.arange(1, matrix.shape[0] + 1)),
                   IdMap(np.arange(1, matrix.shape[1] + 1)))


def read_ratings(path: str, dense: bool = False) -> Ratings:
    """Ratings from ``path``: triplets (text), a sparse .npz matrix, or (``dense``) a NaN-masked
    matrix; a bundled sample (``sample:survey-ratings``) is read users x items."""
    if path.startswith("sample:"):
        return read_sample_ratings(path)
    if dense:
        return read_dense(path)
    if not is_stdin(path) and Path(path).suffix.lower() == ".npz":
        return read_sparse(path)
    return read_triplets(path)


def describe_source(path: str) -> dict:
    """Input metadata of a ratings file for ``Result.input`` (path, sha256, size)."""
    from mfcli.io.formats import sha256_of

    meta = {"source": str(path), "format": "ratings", "layout": "users x items"}
    if not is_stdin(path) and os.path.isfile(path):
        meta["sha256"] = sha256_of(path)
        meta["bytes"] = os.path.getsize(path)
    return meta


def read_new_ratings(path: str) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """A new user's ratings for fold-in: ``item,rating`` lines (one user), or ``user,item,rating``
    triplets (several users). Returns (user ids or None, item ids, ratings)."""
    rows, numbers = _split_table(_read_text(path), path, 2, "new ratings", header_field=None)
    triplets = min(len(r) for r in rows) >= 3 and _is_number(rows[-1][2])
    if not _is_number(rows[0][2 if triplets else 1]):  # a header line
        rows, numbers = rows[1:], numbers[1:]
        if not rows:
            raise DataError(f"'{path}' holds a header but no new ratings")
    if triplets:
        ratings = _triplets(rows, numbers, path)
        return ratings.user_ids.ids[ratings.users], ratings.item_ids.ids[ratings.items], ratings.values
    values = _numbers([r[1] for r in rows], numbers, path, "item,rating lines, or user,item,rating")
    items = _ids([r[0] for r in rows])
    if len(np.unique(items)) != len(items):
        raise DataError(f"'{path}' rates an item more than once; keep one rating per item")
    return None, items, values


def read_user_list(path: str) -> np.ndarray:
    """User ids for batch recommendations: the first field of each line (a header line 'user' is
    skipped; '-' reads stdin)."""
    rows, _ = _split_table(_read_text(path), path, 1, "user ids", header_field=None)
    if rows[0][0].lower() in ("user", "userid", "user_id", "users"):
        rows = rows[1:]
    if not rows:
        raise DataError(f"'{path}' holds a header but no user ids")
    return _ids([r[0] for r in rows])
