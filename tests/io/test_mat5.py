"""The plain MATLAB v5 reader (mfcli.io.mat5.read_plain_mat5) against scipy.io.loadmat."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.io

from mfcli.errors import InputError
from mfcli.io.mat5 import read_plain_mat5

DTYPES = [np.float64, np.float32, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]
SHAPES = [(), (1,), (5,), (3, 4), (0, 3), (2, 3, 4), (1, 1, 1, 2), (40, 70)]


def _bytes(path) -> bytearray:
    with open(path, "rb") as fh:
        return bytearray(fh.read())


def _scipy(path) -> dict:
    return {k: v for k, v in scipy.io.loadmat(path, squeeze_me=False, mat_dtype=False).items()
            if not k.startswith("__")}


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("oned_as", ["row", "column"])
def test_plain_files_read_as_scipy_reads_them(tmp_path, compress, oned_as):
    """Every numeric type, scalars (small data elements), vectors, empty and N-d arrays, names of
    every length: the same names, dtypes (the stored type), shapes and values as scipy's."""
    rng = np.random.default_rng(0)
    variables = {f"v{index}_{np.dtype(dtype).name}_{len(shape)}": (rng.random(shape) * 100).astype(dtype)
                 for index, (dtype, shape) in enumerate((d, s) for d in DTYPES for s in SHAPES)}
    variables.update(Y=rng.random((162, 300)).astype(np.float32), nRow=np.array([[307.0]]),
                     maxValue=np.array([[1000]], dtype=np.uint16))
    path = tmp_path / "plain.mat"
    scipy.io.savemat(path, variables, do_compression=compress, oned_as=oned_as)
    expected = _scipy(path)
    got = read_plain_mat5(str(path), _bytes(path))
    assert got is not None and set(got) == set(expected)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        np.testing.assert_array_equal(got[name], value)
        assert got[name].flags.writeable


def test_a_double_stored_as_small_integers_keeps_the_stored_type(tmp_path):
    """MATLAB writes a double array of small whole numbers as miUINT8 (the shared Samson file's
    `cols`); scipy with mat_dtype=False returns uint8, and so does the plain reader."""
    path = tmp_path / "ints.mat"
    scipy.io.savemat(path, {"Y": np.ones((2, 3))})
    data = _bytes(path)
    # rewrite Y's real part (miDOUBLE, 48 bytes) as miUINT8, 6 bytes: tag at the last 56 bytes
    tail = bytearray(np.array([2, 6], "<u4").tobytes()) + bytearray(b"\x01" * 6 + b"\x00\x00")
    data = data[:-56] + tail
    size = int(np.frombuffer(bytes(data[132:136]), "<u4")[0]) - 40  # the array's element: 40 bytes fewer
    data[132:136] = np.array([size], "<u4").tobytes()
    path.write_bytes(bytes(data))
    expected = _scipy(path)
    assert expected["Y"].dtype == np.uint8
    got = read_plain_mat5(str(path), _bytes(path))
    assert got["Y"].dtype == np.uint8 and np.array_equal(got["Y"], expected["Y"])


@pytest.mark.parametrize("compress", [False, True])
def test_text_and_cells_read_as_scipy_reads_them(tmp_path, compress):
    """Rows of characters (ASCII and not) and cell arrays of those and of numeric arrays (a
    ground truth's material names, ``cood``): the same object arrays, element types, shapes and
    values as scipy's."""
    variables = {
        "Y": np.ones((3, 2), dtype=np.float32), "s": "hello", "u": "héllo wörld €", "far": "\U0001F600 x",
        "names": np.array([["1-Asphalt Road"], ["2-Grass"], ["3-Tree"]], dtype=object),
        "grid": np.array([["ab", "cde"], ["f", "g"]], dtype=object),
        "mixed": np.array([[np.arange(6.0).reshape(2, 3), "x", np.int16(3)]], dtype=object),
    }
    path = tmp_path / "text.mat"
    scipy.io.savemat(path, variables, do_compression=compress)
    expected = _scipy(path)
    got = read_plain_mat5(str(path), _bytes(path))
    assert got is not None and set(got) == set(expected)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        if value.dtype != object:
            np.testing.assert_array_equal(got[name], value)
            continue
        for ours, theirs in zip(got[name].ravel(order="F"), value.ravel(order="F")):
            assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, name
            np.testing.assert_array_equal(ours, theirs)


NESTED = np.empty((1, 1), dtype=object)  # a cell within a cell
NESTED[0, 0] = np.empty((1, 1), dtype=object)
NESTED[0, 0][0, 0] = "a"


@pytest.mark.parametrize("variables", [
    {"Y": np.ones((2, 2)), "c": np.array([[1 + 2j]])},
    {"Y": np.array([[True, False]])},
    {"Y": np.ones((2, 2)), "st": {"a": 1.0}},
    {"Y": np.ones((2, 2)), "nested": NESTED},
    {"Y": np.ones((2, 2)), "rows": np.array(["ab", "cd"])},
    {"Y": np.ones((2, 2)), "empty": ""},
])
def test_anything_else_is_left_to_scipy(tmp_path, variables):
    path = tmp_path / "other.mat"
    scipy.io.savemat(path, variables)
    assert read_plain_mat5(str(path), _bytes(path)) is None


@pytest.mark.parametrize("damage", ["truncate", "size", "dims", "type"])
def test_a_damaged_plain_file_is_an_input_error(tmp_path, damage):
    path = tmp_path / "damaged.mat"
    scipy.io.savemat(path, {"Y": np.arange(12.0).reshape(3, 4)})
    data = _bytes(path)
    if damage == "truncate":
        data = data[:-20]
    elif damage == "size":  # the real part's size (last element: tag then 96 bytes)
        data[-100:-96] = np.array([200], "<u4").tobytes()
    elif damage == "dims":  # the first dimension (after the array's tag, its flags and the dimensions' tag)
        data[160:164] = np.array([5], "<i4").tobytes()
    else:
        data[-104:-100] = np.array([99], "<u4").tobytes()
    with pytest.raises(InputError, match="damaged MATLAB file"):
        read_plain_mat5(str(path), data)


def test_loading_a_plain_mat_file_does_not_import_scipy(tmp_path):
    """The point of the plain reader: `mfcli unmix urban.mat` does not pay for importing scipy."""
    path = tmp_path / "scene.mat"
    scipy.io.savemat(path, {"Y": np.random.default_rng(1).random((20, 30)), "nRow": np.array([[5.0]]),
                            "nCol": np.array([[6.0]])})
    code = ("import sys; from mfcli.api import open_data; d = open_data(sys.argv[1]); "
            "print(d.X.shape, 'scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["(20,", "30)", "False"]


def test_the_urban_sample_loads_without_scipy():
    """`mfcli unmix sample:urban` (the Quick start) reads its bundled ground truth, material
    names included, with the plain reader: scipy's import cost 0.2-0.3 s of the command."""
    code = ("import sys; from mfcli.api import open_data; d = open_data('sample:urban'); "
            "print(d.X.shape, 'scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["(162,", "94249)", "False"]


def test_arrays_beside_a_large_one_do_not_keep_the_whole_file_alive(tmp_path, monkeypatch):
    """One large array and small ones: views of the file's bytes (no copy). Several large ones:
    each array its own memory, so the ones a command does not use can be let go."""
    import mfcli.io.mat5 as mat5

    monkeypatch.setattr(mat5, "SHARED_BYTES_LIMIT", 1000)
    rng = np.random.default_rng(2)
    one = tmp_path / "one.mat"
    scipy.io.savemat(one, {"Y": rng.random((30, 40)), "nRow": np.array([[5.0]])})
    got = read_plain_mat5(str(one), _bytes(one))
    assert got["Y"].base is not None and got["nRow"].base is not None  # views
    two = tmp_path / "two.mat"
    scipy.io.savemat(two, {"Y": rng.random((30, 40)), "A": rng.random((30, 40))})
    got = read_plain_mat5(str(two), _bytes(two))
    assert got["Y"].flags.owndata and got["A"].flags.owndata
    np.testing.assert_array_equal(got["A"], _scipy(two)["A"])
