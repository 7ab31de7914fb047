"""Reading ratings files (mfcli.io.ratings): header detection of new-user ratings."""

from __future__ import annotations

import numpy as np
import pytest

from mfcli.io.ratings import read_new_ratings, read_triplets


def _write(tmp_path, text: str) -> str:
    path = tmp_path / "new.csv"
    path.write_text(text)
    return str(path)


def test_new_ratings_triplets_with_string_item_ids_keep_every_line(tmp_path):
    path = _write(tmp_path, "u1,movieA,5\nu1,movieB,3\nu2,movieA,4\n")
    users, items, values = read_new_ratings(path)
    expected = read_triplets(path)
    assert len(values) == len(expected) == 3
    assert sorted(zip(users.tolist(), items.tolist(), values.tolist())) == \
        [("u1", "movieA", 5.0), ("u1", "movieB", 3.0), ("u2", "movieA", 4.0)]


@pytest.mark.parametrize("text, n_users", [
    ("user,item,rating\nu1,movieA,5\nu2,movieB,3\n", 2),
    ("item,rating\nmovieA,5\nmovieB,3\n", None),
    ("movieA,5\nmovieB,3\n", None),
    ("1,10,5\n2,11,3\n", 2),
])
def test_new_ratings_drop_only_a_header_line(tmp_path, text, n_users):
    users, items, values = read_new_ratings(_write(tmp_path, text))
    assert np.array_equal(np.sort(values), [3.0, 5.0])
    assert (users is None) == (n_users is None)
    if users is not None:
        assert len(np.unique(users)) == n_users


def test_new_ratings_with_only_a_header_fail_cleanly(tmp_path):
    from mfcli.errors import DataError

    with pytest.raises(DataError, match="header"):
        read_new_ratings(_write(tmp_path, "user,item,rating\n"))
