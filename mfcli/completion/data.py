"""Ratings as (user, item, value) triplets with id maps, and train/test splits (NumPy/SciPy only).

A :class:`Ratings` holds three parallel arrays of indices and values plus two :class:`IdMap`
objects that translate the user's ids (integers or strings, as they appear in the file) to the
row/column indices used by the models, and back. Reading files is in :mod:`mfcli.io.ratings`.
:class:`Pattern` is the 0/1 CSR pattern the solvers and the ranking code work on, in NumPy
alone: scipy.sparse (about 0.3 s to import, most of it SciPy's array-API layer) is imported only
where a sparse matrix is read, written or factorized.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfcli.errors import DataError, ParameterError


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique(values) by a sort (NumPy 2's hashing np.unique is several times slower on
    millions of integer keys)."""
    values = np.sort(np.asarray(values).ravel())
    if values.size < 2:
        return values
    return values[np.concatenate([[True], values[1:] != values[:-1]])]


def is_member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """np.isin(values, sorted_set) for a sorted array ``sorted_set``, by binary search."""
    values = np.asarray(values)
    if sorted_set.size == 0:
        return np.zeros(values.shape, dtype=bool)
    position = np.minimum(np.searchsorted(sorted_set, values), sorted_set.size - 1)
    return sorted_set[position] == values


class Pattern:
    """A 0/1 matrix in CSR form (``indptr``, ``indices``, ``shape``; the columns of each row sorted
    and distinct), with the few operations the solvers and the ranking need. scipy.sparse CSR
    matrices have the same attributes, so code that reads only these takes either."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, shape: tuple[int, int]):
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.shape = (int(shape[0]), int(shape[1]))

    @classmethod
    def from_pairs(cls, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> "Pattern":
        """The pattern of the (row, col) index pairs with both >= 0 (repeats count once)."""
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        keep = (rows >= 0) & (cols >= 0)
        width = max(int(shape[1]), 1)
        keys = sorted_unique(rows[keep] * width + cols[keep])
        return cls._from_keys(keys, shape)

    @classmethod
    def _from_keys(cls, keys: np.ndarray, shape: tuple[int, int]) -> "Pattern":
        width = max(int(shape[1]), 1)
        counts = np.bincount(keys // width, minlength=int(shape[0]))
        return cls(np.concatenate([[0], np.cumsum(counts)]), keys % width, shape)

    @property
    def nnz(self) -> int:
        return len(self.indices)

    def _keys(self) -> np.ndarray:
        rows = np.repeat(np.arange(self.shape[0], dtype=np.int64), np.diff(self.indptr))
        return rows * max(self.shape[1], 1) + self.indices

    def __getitem__(self, rows) -> "Pattern":
        """The pattern of the given rows (an index array), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, counts = self.indptr[rows], np.diff(self.indptr)[rows]
        indptr = np.concatenate([[0], np.cumsum(counts)])
        positions = np.repeat(starts - indptr[:-1], counts) + np.arange(indptr[-1])
        return Pattern(indptr, self.indices[positions], (len(rows), self.shape[1]))

    def minus(self, other) -> "Pattern":
        """The entries of this pattern that are not in ``other`` (same shape)."""
        keys = self._keys()
        other_keys = np.sort(Pattern(other.indptr, other.indices, other.shape)._keys())
        return Pattern._from_keys(keys[~is_member(keys, other_keys)], self.shape)

    def toarray(self) -> np.ndarray:
        dense = np.zeros(self.shape, dtype=np.int8)
        dense.reshape(-1)[self._keys()] = 1
        return dense


class IdMap:
    """A bijection between external ids and indices 0..n-1 (index order = first appearance or sorted).

    ``ids[index]`` is the external id; :meth:`index` maps ids to indices, -1 for unknown ids.
    """

    def __init__(self, ids):
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise DataError("ids must be a one-dimensional list")
        if ids.dtype.kind not in "iuU":
            ids = ids.astype(str)
        self._order = np.argsort(ids, kind="stable")
        self._sorted = ids[self._order]
        # distinct ids: no two neighbours equal in sorted order (np.unique would sort again, and
        # its first call imports numpy.ma: 25 ms of a `complete` process)
        if len(ids) > 1 and np.any(self._sorted[1:] == self._sorted[:-1]):
            raise DataError("ids of an id map must be unique")
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def __eq__(self, other) -> bool:
        return isinstance(other, IdMap) and self.ids.dtype.kind == other.ids.dtype.kind \
            and np.array_equal(self.ids, other.ids)

    @classmethod
    def from_values(cls, values) -> tuple["IdMap", np.ndarray]:
        """Id map of the distinct values (sorted) and the index of each value."""
        values = np.asarray(values)
        if values.dtype.kind in "iu" and values.size and values.min() >= 0 and values.max() < 4 * values.size + 65536:
            # small nonnegative integer ids (the common case): a table lookup instead of a sort
            present = np.zeros(int(values.max()) + 1, dtype=bool)
            present[values] = True
            ids = np.flatnonzero(present).astype(values.dtype)
            position = np.cumsum(present, dtype=np.int64) - 1
            return cls(ids), position[values].ravel()
        ids, inverse = np.unique(values, return_inverse=True)
        return cls(ids), inverse.astype(np.int64).ravel()

    @classmethod
    def range(cls, n: int) -> "IdMap":
        """Ids 0..n-1 (rows or columns of a matrix)."""
        return cls(np.arange(n, dtype=np.int64))

    def coerce(self, values) -> np.ndarray:
        """``values`` converted to this map's id type (strings to integers where the ids are integers)."""
        values = np.asarray(values)
        if self.ids.dtype.kind in "iu":
            if values.dtype.kind in "iu":
                return values.astype(np.int64)
            try:
                as_float = np.asarray(values, dtype=np.float64)
            except ValueError:  # some ids are not numbers: they match nothing
                as_float = np.asarray([_as_float(v) for v in values.ravel()]).reshape(values.shape)
            whole = np.isfinite(as_float) & (as_float == np.round(as_float))
            out = np.full(values.shape, np.iinfo(np.int64).min, dtype=np.int64)
            out[whole] = as_float[whole].astype(np.int64)
            return out
        return values.astype(str)

    def index(self, values) -> np.ndarray:
        """Indices of the ids ``values``; -1 where an id is unknown."""
        values = self.coerce(values)
        if len(self.ids) == 0:
            return np.full(values.shape, -1, dtype=np.int64)
        pos = np.searchsorted(self._sorted, values)
        pos = np.clip(pos, 0, len(self._sorted) - 1)
        found = self._sorted[pos] == values
        return np.where(found, self._order[pos], -1).astype(np.int64)

    def extend(self, new_ids) -> "IdMap":
        """A map with ``new_ids`` (those not already present) appended after the existing ids."""
        new_ids = self.coerce(np.asarray(new_ids))
        missing = new_ids[self.index(new_ids) < 0]
        _, first = np.unique(missing, return_index=True)
        return IdMap(np.concatenate([self.ids, missing[np.sort(first)]]))


@dataclass
class Ratings:
    """Observed entries of a users x items matrix: ``values[k]`` at (``users[k]``, ``items[k]``).

    ``user_ids``/``item_ids`` map the indices to the external ids.
    """

    users: np.ndarray
    items: np.ndarray
    values: np.ndarray
    user_ids: IdMap
    item_ids: IdMap

    def __post_init__(self):
        self.users = np.asarray(self.users, dtype=np.int64)
        self.items = np.asarray(self.items, dtype=np.int64)
        self.values = np.asarray(self.values, dtype=np.float64)
        if not (self.users.shape == self.items.shape == self.values.shape) or self.users.ndim != 1:
            raise DataError("users, items and values must be one-dimensional arrays of the same length")

    def __len__(self) -> int:
        return len(self.values)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_users, self.n_items

    @classmethod
    def from_triplets(cls, users, items, values) -> "Ratings":
        """Ratings from external ids (ids sorted to indices); raise DataError on a duplicate pair."""
        users = np.asarray(users)
        items = np.asarray(items)
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0:
            raise DataError("no ratings: the data hold no (user, item, rating) triplets")
        require_finite_ratings(values)
        user_ids, user_index = IdMap.from_values(users)
        item_ids, item_index = IdMap.from_values(items)
        ratings = cls(user_index, item_index, values, user_ids, item_ids)
        ratings.check_duplicates()
        return ratings

    @classmethod
    def from_sparse(cls, matrix, user_ids: IdMap | None = None, item_ids: IdMap | None = None) -> "Ratings":
        """Ratings from the stored entries of a scipy.sparse users x items matrix (rows/columns are ids 0..)."""
        import scipy.sparse as sp

        coo = sp.coo_matrix(matrix)
        coo.sum_duplicates()
        n_users, n_items = coo.shape
        require_finite_ratings(coo.data)
        return cls(coo.row, coo.col, coo.data, user_ids or IdMap.range(n_users), item_ids or IdMap.range(n_items))

    @classmethod
    def from_dense(cls, matrix) -> "Ratings":
        """Ratings from a dense users x items matrix with NaN for missing entries."""
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.ndim != 2:
            raise DataError(f"a dense ratings matrix must be 2-D, not of shape {matrix.shape}")
        if np.isinf(matrix).any():
            raise DataError("the dense ratings matrix holds Inf values; use NaN for missing ratings")
        users, items = np.nonzero(~np.isnan(matrix))
        return cls(users, items, matrix[users, items], IdMap.range(matrix.shape[0]), IdMap.range(matrix.shape[1]))

    def _pair_keys(self) -> np.ndarray:
        """One integer per (user, item) pair."""
        return self.users * max(self.n_items, 1) + self.items

    def check_duplicates(self) -> None:
        """Raise DataError if a (user, item) pair is rated more than once."""
        keys = self._pair_keys()
        order = np.argsort(keys, kind="stable")
        repeated = np.flatnonzero(keys[order][1:] == keys[order][:-1])
        if repeated.size:
            first = order[repeated[0] + 1]
            raise DataError(
                f"{repeated.size} duplicate ratings: e.g. user {self.user_ids.ids[self.users[first]]} rated item "
                f"{self.item_ids.ids[self.items[first]]} more than once (entries {order[repeated[0]] + 1} and "
                f"{first + 1}); keep one rating per (user, item) pair"
            )

    def drop_duplicates(self) -> "Ratings":
        """The ratings without repeats: the first rating of each (user, item) pair."""
        _, first = np.unique(self._pair_keys(), return_index=True)
        return self.subset(np.sort(first))

    def subset(self, mask_or_index) -> "Ratings":
        """The ratings selected by a boolean mask or an index array (same id maps)."""
        return Ratings(self.users[mask_or_index], self.items[mask_or_index], self.values[mask_or_index],
                       self.user_ids, self.item_ids)

    def to_csr(self, values=None, shape: tuple[int, int] | None = None):
        """users x items scipy.sparse CSR matrix of ``values`` (default: the ratings)."""
        import scipy.sparse as sp

        data = self.values if values is None else np.asarray(values, dtype=np.float64)
        return sp.csr_matrix((data, (self.users, self.items)), shape=shape or self.shape)

    def reindex(self, user_ids: IdMap, item_ids: IdMap, drop_unknown: bool = False) -> "Ratings":
        """The same ratings expressed in other id maps: indices -1 for ids those maps lack, or with
        ``drop_unknown`` only the ratings whose user and item both are in the maps."""
        users = user_ids.index(self.user_ids.ids[self.users])
        items = item_ids.index(self.item_ids.ids[self.items])
        ratings = Ratings(users, items, self.values, user_ids, item_ids)
        return ratings.subset((users >= 0) & (items >= 0)) if drop_unknown else ratings

    def compact(self) -> "Ratings":
        """The same ratings with id maps reduced to the users and items that have ratings."""
        users = np.flatnonzero(np.bincount(self.users, minlength=self.n_users))
        items = np.flatnonzero(np.bincount(self.items, minlength=self.n_items))
        if len(users) == self.n_users and len(items) == self.n_items:
            return self
        return self.reindex(IdMap(self.user_ids.ids[users]), IdMap(self.item_ids.ids[items]))

    def user_counts(self) -> np.ndarray:
        return np.bincount(self.users[self.users >= 0], minlength=self.n_users)

    def item_counts(self) -> np.ndarray:
        return np.bincount(self.items[self.items >= 0], minlength=self.n_items)


def require_finite_ratings(values: np.ndarray) -> None:
    values = np.asarray(values)
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(f"{int(bad.sum())} ratings are NaN or Inf (first at entry {int(np.argmax(bad)) + 1}); "
                        "give numeric ratings only")


def random_split(ratings: Ratings, test_fraction: float = 0.2, seed: int = 0) -> tuple[Ratings, Ratings]:
    """Random train/test split of the ratings: a random ``test_fraction`` of them is held out."""
    if not 0.0 < test_fraction < 1.0:
        raise ParameterError(f"--test-fraction must be between 0 and 1 (exclusive), not {test_fraction}")
    n = len(ratings)
    n_test = int(round(test_fraction * n))
    if n_test == 0 or n_test == n:
        raise DataError(f"a test fraction of {test_fraction} of {n} ratings leaves an empty "
                        f"{'test' if n_test == 0 else 'training'} set; give more ratings or another fraction")
    permutation = np.random.default_rng(seed).permutation(n)
    test = np.zeros(n, dtype=bool)
    test[permutation[:n_test]] = True
    return ratings.subset(~test), ratings.subset(test)


def mask_split(ratings: Ratings, masks: list) -> list[Ratings]:
    """Split ratings by sparse 0/1 masks of the matrix's shape (e.g. the DMF papers' train/val/test masks)."""
    import scipy.sparse as sp

    parts = []
    for number, mask in enumerate(masks, start=1):
        if tuple(mask.shape) != ratings.shape:
            raise DataError(f"mask {number} has shape {mask.shape[0]}x{mask.shape[1]} but the ratings matrix is "
                            f"{ratings.shape[0]}x{ratings.shape[1]}; give masks of the same matrix")
        member = np.asarray(sp.csr_matrix(mask)[ratings.users, ratings.items]).ravel() != 0
        parts.append(ratings.subset(member))
    return parts


def holdout_split(ratings: Ratings, row_fraction: float, col_fraction: float, seed: int = 0):
    """Hold out a random ``row_fraction`` of users and ``col_fraction`` of items (DMF extendability).

    Returns ``(seen_users, seen_items)`` boolean masks over the users and items. Area I is
    (seen, seen), II (unseen user, seen item), III (seen user, unseen item), IV (unseen, unseen).
    """
    for name, value in (("--holdout-rows", row_fraction), ("--holdout-cols", col_fraction)):
        if not 0.0 <= value < 1.0:
            raise ParameterError(f"{name} must be in [0, 1), not {value}")
    rng = np.random.default_rng(seed)
    seen_users = np.ones(ratings.n_users, dtype=bool)
    seen_items = np.ones(ratings.n_items, dtype=bool)
    seen_users[rng.permutation(ratings.n_users)[: int(round(row_fraction * ratings.n_users))]] = False
    seen_items[rng.permutation(ratings.n_items)[: int(round(col_fraction * ratings.n_items))]] = False
    return seen_users, seen_items


def areas(ratings: Ratings, seen_users: np.ndarray, seen_items: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks over ``ratings`` for the areas I-IV of Nguyen et al.'s Fig. 2."""
    u = seen_users[ratings.users]
    i = seen_items[ratings.items]
    return {"I": u & i, "II": ~u & i, "III": u & ~i, "IV": ~u & ~i}


def _as_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def ratings_arrays(train: Ratings) -> dict[str, np.ndarray]:
    """The id maps and the training ratings (as indices) of a completion Result."""
    return {
        "completion/user_ids": train.user_ids.ids,
        "completion/item_ids": train.item_ids.ids,
        "completion/train_users": train.users.astype(np.int32),
        "completion/train_items": train.items.astype(np.int32),
        "completion/train_values": train.values.astype(np.float32),
    }


def train_ratings_from_result(result) -> Ratings:
    """The training ratings stored in a completion :class:`~mfcli.result.Result` (by :func:`ratings_arrays`)."""
    a = result.arrays
    return Ratings(a["completion/train_users"], a["completion/train_items"], a["completion/train_values"],
                   IdMap(a["completion/user_ids"]), IdMap(a["completion/item_ids"]))


def align(predictor, ratings: Ratings) -> tuple[np.ndarray, np.ndarray]:
    """Indices of ``ratings``' users and items in the predictor's id maps (-1: unseen)."""
    users = ratings.users if predictor.user_ids is ratings.user_ids else \
        predictor.user_ids.index(ratings.user_ids.ids[ratings.users])
    items = ratings.items if predictor.item_ids is ratings.item_ids else \
        predictor.item_ids.index(ratings.item_ids.ids[ratings.items])
    return users, items
