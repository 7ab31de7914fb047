"""Round trips through every format, MATLAB v7.3 conventions, ENVI interleaves and byte orders,
and the pixel order of MATLAB (Fortran) versus NumPy (C) files."""

from __future__ import annotations

import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mfcli.dataset import image_to_pixels
from mfcli.io.envi import read_envi
from mfcli.io.formats import open_container
from mfcli.io.load import load_dataset
from mfcli.io.write import write_array

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])

INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
FLOAT_DTYPES = ["float32", "float64"]


def arrays_of(dtypes, min_dims=2, max_dims=2, allow_nonfinite=True):
    """Arrays of one of ``dtypes`` with 1..5 entries per axis; floats include NaN/Inf when allowed."""
    def elements(dtype):
        if np.dtype(dtype).kind == "f":
            return hnp.from_dtype(np.dtype(dtype), allow_nan=allow_nonfinite, allow_infinity=allow_nonfinite,
                                  allow_subnormal=False)
        return None

    return st.sampled_from(dtypes).flatmap(
        lambda dtype: hnp.arrays(np.dtype(dtype), hnp.array_shapes(min_dims=min_dims, max_dims=max_dims,
                                                                     min_side=1, max_side=5),
                                 elements=elements(dtype)))


def write_and_read(array: np.ndarray, name: str, fmt: str | None = None) -> np.ndarray:
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / name)
        write_array(array, path, fmt=fmt)
        with open_container(path, fmt) as container:
            (variable,) = container.variables()
            return np.asarray(container.read(variable))


def assert_identical(back: np.ndarray, array: np.ndarray) -> None:
    assert back.shape == array.shape
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)  # NaN equals NaN here


@SETTINGS
@given(arrays_of(FLOAT_DTYPES + INT_DTYPES + ["bool"], max_dims=4))
def test_npy_round_trip_is_identical(array):
    assert_identical(write_and_read(array, "x.npy"), array)


@SETTINGS
@given(arrays_of(FLOAT_DTYPES + INT_DTYPES + ["bool"], max_dims=3))
def test_hdf5_round_trip_is_identical(array):
    assert_identical(write_and_read(array, "x.h5"), array)


@SETTINGS
@given(arrays_of(FLOAT_DTYPES + INT_DTYPES, max_dims=3))
def test_npz_round_trip_is_identical(array):
    assert_identical(write_and_read(array, "x.npz"), array)


@SETTINGS
@given(arrays_of(FLOAT_DTYPES + INT_DTYPES, max_dims=3))
def test_mat_v5_round_trip_is_identical(array):
    assert_identical(write_and_read(array, "x.mat"), array)


@SETTINGS
@given(arrays_of(FLOAT_DTYPES + INT_DTYPES + ["bool"], max_dims=3))
def test_mat_v73_round_trip_is_identical(array):
    assert_identical(write_and_read(array, "x.mat", fmt="mat73"), array)


@SETTINGS
@given(arrays_of(["float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"]),
       st.sampled_from(["x.csv", "x.tsv", "x.txt"]))
def test_text_round_trip_is_exact(array, name):
    """CSV/TSV are plain decimal text: integers come back as int64, floats as float64, equal."""
    back = write_and_read(array, name)
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)


@SETTINGS
@given(arrays_of(["float32"]))
def test_text_round_trip_of_float32_is_exact_in_float32(array):
    """float32 is written with 9 significant digits: enough to give back every float32 bit for bit."""
    back = write_and_read(array, "x.csv")
    assert_identical(back.astype(np.float32), array)


@SETTINGS
@given(arrays_of(FLOAT_DTYPES + ["uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"],
                 min_dims=3, max_dims=3),
       st.sampled_from(["x.img", "x.hdr", "x.bil", "x.bip", "x.bsq", "x.dat"]))
def test_envi_round_trip_is_identical(cube, name):
    assert_identical(write_and_read(cube, name), cube)


def test_envi_writes_the_interleave_its_extension_names(tmp_path):
    cube = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    for interleave in ("bil", "bip", "bsq"):
        write_array(cube, str(tmp_path / f"x.{interleave}"))
        header = (tmp_path / f"x.{interleave}").with_suffix(".hdr").read_text()
        assert f"interleave = {interleave}" in header
        np.testing.assert_array_equal(read_envi(str(tmp_path / f"x.{interleave}"))[0], cube)
        (tmp_path / "x.hdr").unlink()


# --------------------------------------------------------------------------- ENVI written by hand

PLANTED = (np.arange(3)[:, None, None] * 100 + np.arange(4)[None, :, None] * 10
           + np.arange(5)[None, None, :]).astype(np.float32)  # (rows=3, cols=4, bands=5), no symmetry


def _write_raw_envi(folder: Path, cube: np.ndarray, interleave: str, big_endian: bool, offset: int,
                    dtype_code: int, extra: str = "") -> Path:
    """An ENVI pair written from the format's definition, without the spectral package."""
    rows, cols, bands = cube.shape
    layout = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}[interleave]
    dtype = cube.dtype.newbyteorder(">" if big_endian else "<")
    payload = np.ascontiguousarray(cube.transpose(layout)).astype(dtype).tobytes()
    data = folder / f"scene.{interleave}"
    data.write_bytes(b"\xAB" * offset + payload)
    (folder / "scene.hdr").write_text(
        "ENVI\n"
        f"samples = {cols}\nlines = {rows}\nbands = {bands}\nheader offset = {offset}\n"
        f"file type = ENVI Standard\ndata type = {dtype_code}\ninterleave = {interleave}\n"
        f"byte order = {1 if big_endian else 0}\n{extra}"
    )
    return data


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("big_endian", [False, True])
def test_envi_reads_every_interleave_and_byte_order(tmp_path, interleave, big_endian):
    data = _write_raw_envi(tmp_path, PLANTED, interleave, big_endian, offset=64, dtype_code=4)
    cube, meta = read_envi(str(data))
    assert cube.dtype == np.float32 and cube.dtype.isnative
    np.testing.assert_array_equal(cube, PLANTED)
    # The header names the same image.
    np.testing.assert_array_equal(read_envi(str(tmp_path / "scene.hdr"))[0], PLANTED)


def test_envi_big_endian_integers_and_wavelengths_in_micrometres(tmp_path):
    cube = (PLANTED * 3).astype(np.int16)
    extra = "wavelength units = Micrometers\nwavelength = {0.4, 0.5, 0.6, 0.7, 0.8}\n"
    data = _write_raw_envi(tmp_path, cube, "bil", big_endian=True, offset=128, dtype_code=2, extra=extra)
    dataset = load_dataset(str(data))
    assert dataset.layout == "cube" and dataset.image_shape == (3, 4) and dataset.pixel_order == "C"
    np.testing.assert_array_equal(dataset.to_image(dataset.X), np.moveaxis(cube, 2, 0))
    np.testing.assert_allclose(dataset.wavelengths, [400, 500, 600, 700, 800])


def test_envi_without_a_data_file_is_an_input_error(tmp_path):
    from mfcli.errors import InputError

    (tmp_path / "lonely.hdr").write_text("ENVI\nsamples = 2\nlines = 2\nbands = 1\ndata type = 4\n"
                                         "interleave = bsq\nbyte order = 0\n")
    with pytest.raises(InputError, match="no data file"):
        read_envi(str(tmp_path / "lonely.hdr"))


# --------------------------------------------------------------------------- MATLAB v7.3

def test_mat73_follows_matlab_conventions(tmp_path):
    array = np.arange(12, dtype=np.float64).reshape(3, 4)
    path = tmp_path / "x.mat"
    write_array(array, str(path), fmt="mat73", name="Y")
    head = path.read_bytes()[:512]
    assert head.startswith(b"MATLAB 7.3 MAT-file")
    assert head[124:128] == b"\x00\x02IM"  # version 0x0200, little-endian mark
    assert scipy.io.matlab.matfile_version(str(path)) == (2, 0)  # SciPy sees a v7.3 (HDF5) MAT-file
    with h5py.File(path, "r") as f:
        assert f.userblock_size == 512
        assert f["Y"].shape == (4, 3)  # MATLAB is column-major: HDF5 holds the transpose
        np.testing.assert_array_equal(f["Y"][()], array.T)
        assert f["Y"].attrs["MATLAB_class"] == b"double"
    with open_container(str(path)) as container:
        assert container.format == "mat73" and container.matlab
        assert container.variables()["Y"].shape == (3, 4)
        np.testing.assert_array_equal(container.read("Y"), array)


def test_mat73_classes_strings_logicals_and_empties(tmp_path):
    path = tmp_path / "x.mat"
    from mfcli.io.write import _write_mat73

    _write_mat73(path, {"f": np.ones((2, 3), np.float32), "i": np.ones((2, 2), np.uint16),
                        "b": np.array([[True, False]]), "s": np.array("F"), "e": np.zeros((0, 3))})
    with h5py.File(path, "r") as f:
        classes = {name: f[name].attrs["MATLAB_class"].decode() for name in f}
        assert classes == {"f": "single", "i": "uint16", "b": "logical", "s": "char", "e": "double"}
        assert f["e"].attrs["MATLAB_empty"] == 1
    with open_container(str(path)) as container:
        assert container.read("b").dtype == bool
        assert str(container.read("s")) == "F"
        assert container.read("e").shape == (0, 3)
        assert not container.variables()["s"].numeric


# --------------------------------------------------------------------------- pixel order

def _matrix_files(folder: Path, cube: np.ndarray) -> dict[str, tuple[str, dict]]:
    """The same image stored as bands x pixels in MATLAB (F) and NumPy/HDF5 (C) conventions."""
    rows, cols, bands = cube.shape
    # Built here from the definition, not with mfcli's helpers: column j of Y_F is pixel
    # (j % rows, j // rows); column j of Y_C is pixel (j // cols, j % cols).
    Y_F = np.stack([cube[:, :, b].flatten(order="F") for b in range(bands)])
    Y_C = np.stack([cube[:, :, b].flatten(order="C") for b in range(bands)])
    scipy.io.savemat(folder / "f.mat", {"Y": Y_F, "nRow": rows, "nCol": cols})
    write_array(Y_F, str(folder / "f73.mat"), fmt="mat73", name="Y")
    with h5py.File(folder / "f73.mat", "a") as f:  # still a valid v7.3 file: add the scalars
        for key, value in (("nRow", rows), ("nCol", cols)):
            f[key] = np.array([[float(value)]])
            f[key].attrs["MATLAB_class"] = np.bytes_("double")
    with h5py.File(folder / "c.h5", "w") as f:
        f["Y"] = Y_C
        f["Y"].attrs["image_shape"] = [rows, cols]
        f["Y"].attrs["pixel_order"] = "C"
    np.save(folder / "c.npy", Y_C)
    return {
        "mat v5 (F)": (str(folder / "f.mat"), {}),
        "mat v7.3 (F)": (str(folder / "f73.mat"), {}),
        "h5 (C)": (str(folder / "c.h5"), {}),
        "npy (C)": (str(folder / "c.npy"), {"image_shape": (rows, cols)}),
        "npy with --order": (str(folder / "c.npy"), {"image_shape": (rows, cols), "order": "C"}),
    }


@pytest.mark.parametrize("shape", [(3, 5, 2), (4, 4, 3)])
def test_fortran_and_c_order_files_give_the_same_image(tmp_path, shape):
    rows, cols, bands = shape
    cube = (np.arange(rows)[:, None, None] * 100 + np.arange(cols)[None, :, None] * 10
            + np.arange(bands)[None, None, :]).astype(np.float64)
    expected = np.moveaxis(cube, 2, 0)
    for label, (path, options) in _matrix_files(tmp_path, cube).items():
        dataset = load_dataset(path, **options)
        assert dataset.image_shape == (rows, cols), label
        np.testing.assert_array_equal(dataset.to_image(dataset.X), expected, err_msg=label)
    # Reading MATLAB's Fortran-order pixels as C order gives a wrong picture: the order matters.
    wrong = load_dataset(str(tmp_path / "f.mat"), order="C")
    assert not np.array_equal(wrong.to_image(wrong.X), expected)


def test_matlab_cube_and_numpy_cube_give_the_same_image(tmp_path):
    cube = PLANTED.astype(np.float64)  # (3, 4, 5): rows != cols != bands
    scipy.io.savemat(tmp_path / "cube.mat", {"cube": cube})  # stored column-major on disk
    write_array(cube, str(tmp_path / "cube73.mat"), fmt="mat73", name="cube")
    np.save(tmp_path / "cube.npy", np.ascontiguousarray(cube))
    expected = np.moveaxis(cube, 2, 0)
    for name in ("cube.mat", "cube73.mat", "cube.npy"):
        for order in (None, "F", "C"):
            dataset = load_dataset(str(tmp_path / name), order=order)
            assert dataset.layout == "cube" and dataset.image_shape == (3, 4)
            assert dataset.pixel_order == (order or "C")
            np.testing.assert_array_equal(dataset.to_image(dataset.X), expected, err_msg=f"{name} {order}")
    # A (bands, rows, cols) cube with --layout cube-bands-first is the same picture.
    np.save(tmp_path / "bands_first.npy", expected)
    dataset = load_dataset(str(tmp_path / "bands_first.npy"), layout="cube-bands-first")
    np.testing.assert_array_equal(dataset.to_image(dataset.X), expected)


def test_pixel_order_helpers_agree_with_numpy_flatten():
    image = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(image_to_pixels(image, "F"), image.flatten(order="F"))
    np.testing.assert_array_equal(image_to_pixels(image, "C"), image.flatten(order="C"))


def test_envi_keeps_the_wavelengths_of_a_matrix_without_image_shape(tmp_path):
    from mfcli.dataset import Dataset
    from mfcli.io.write import write_dataset

    X = np.arange(12, dtype=np.float32).reshape(3, 4)
    wavelengths = np.array([450.0, 550.0, 650.0])
    write_dataset(Dataset(X=X, wavelengths=wavelengths), str(tmp_path / "m.hdr"))
    back = load_dataset(str(tmp_path / "m.hdr"))
    np.testing.assert_array_equal(back.X, X)
    np.testing.assert_allclose(back.wavelengths, wavelengths)
