"""The fast path of the ratings reader (NumPy's parser for integer ids) reads exactly what the
general reader reads, and leaves everything else to it."""

from __future__ import annotations

import numpy as np
import pytest

from mfcli.errors import InputError
from mfcli.io import ratings as R


def general(path):
    rows, numbers = R._split_table(R._read_text(str(path)), str(path), 3, "ratings")
    return R._triplets(rows, numbers, str(path))


CASES = {
    "tab.data": "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n",
    "colons.dat": "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n",
    "header.csv": "userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,3.0,1260759179\n7,31,4.5,1\n",
    "comments.csv": "# a comment\n\n5,6,1\n# another\n5,7,2\n\n8,6,3\n",
    "spaces.txt": "1 2 3.5\n  1   3 4\n2 2 1\n",
    "bom.csv": "\ufeffuser,item,rating\n10,20,1\n11,20,2\n",
    "crlf.csv": "1,2,3\r\n1,3,4\r\n2,2,5\r\n",
    # whole ratings are parsed as integers first; a fractional one late in the file restarts the
    # parse with float ratings
    "late_fraction.tsv": "".join(f"{u}\t{i}\t{(u + i) % 5 + 1}\t0\n" for u in range(40) for i in range(30))
    + "41\t3\t3.5\t0\n",
    "sparse_ids.csv": "1000000,7,1\n3,999999,2\n1000000,999999,5\n",
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_fast_path_reads_what_the_general_reader_reads(tmp_path, name):
    path = tmp_path / name
    path.write_text(CASES[name], encoding="utf-8")
    fast = R._numeric_triplets(R._read_text(str(path)), str(path))
    assert fast is not None, "the fast path should take this file"
    expected = general(path)
    assert fast.user_ids == expected.user_ids and fast.item_ids == expected.item_ids
    for key in ("users", "items", "values"):
        np.testing.assert_array_equal(getattr(fast, key), getattr(expected, key))


@pytest.mark.parametrize("text", [
    "alice,x,3\nbob,y,4\n",          # string ids
    "1,2,3\n1,3,four\n",             # a bad rating: the general reader names the line
    "1,2,3\n1,3\n",                  # a short line
    "1,2,nan\n",                     # not finite
    "1.5,2,3\n",                     # a non-integer id (kept as a string by the general reader)
    "99999999999999999999,2,3\n",    # an id beyond int64
])
def test_anything_else_is_left_to_the_general_reader(tmp_path, text):
    path = tmp_path / "r.csv"
    path.write_text(text)
    assert R._numeric_triplets(R._read_text(str(path)), str(path)) is None


def test_a_bad_line_is_still_named(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("1,2,3\n1,3,four\n")
    with pytest.raises(InputError, match="line 2"):
        R.read_triplets(str(path))


def test_id_maps_of_small_and_large_integer_ids_equal_numpys_unique():
    from mfcli.completion.data import IdMap

    rng = np.random.default_rng(0)
    for values in (rng.integers(0, 50, 500), rng.integers(0, 10**12, 300), np.array([-3, 5, 5, 0]),
                   np.array([7], dtype=np.uint16), rng.integers(0, 2**20, 100_000)):
        id_map, index = IdMap.from_values(values)
        ids, inverse = np.unique(values, return_inverse=True)
        np.testing.assert_array_equal(id_map.ids, ids)
        assert id_map.ids.dtype == ids.dtype
        np.testing.assert_array_equal(index, inverse.ravel())
