"""The loading rules: which array, layout, image shape, pixel order, scale, band indices,
wavelengths, provenance; the bundled samples; stdin."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys

import h5py
import numpy as np
import pytest
import scipy.io

from mfcli.errors import DataError, InputError, ParameterError
from mfcli.io.load import choose_variable, load_dataset, parse_spec
from mfcli.io.formats import VariableInfo, read_text_matrix
from mfcli.io.samples import SAMPLES, URBAN_REMOVED_BANDS, urban_kept_bands
from mfcli.io.write import write_array, write_dataset


def planted_images(rows: int, cols: int, bands: int) -> np.ndarray:
    """(bands, rows, cols) images with no symmetry: every pixel of every band differs."""
    r, c, b = np.meshgrid(np.arange(rows), np.arange(cols), np.arange(bands), indexing="ij")
    return np.moveaxis(1 + r + 100.0 * c + 10000.0 * b, 2, 0)


def fortran_pixels(images: np.ndarray) -> np.ndarray:
    """MATLAB's Y: column j is pixel (j % rows, j // rows), built with NumPy's order='F'."""
    return np.stack([image.flatten(order="F") for image in images])


# --------------------------------------------------------------------------- Urban_R162 layout

@pytest.mark.parametrize("fmt", ["mat", "mat73"])
def test_urban_r162_layout_scale_shape_order_bands_and_wavelengths(tmp_path, fmt):
    rows, cols = 20, 30
    kept = np.array([5, 6, 7, 8, 50, 51, 52, 120, 121, 190, 195, 197])  # 1-based HYDICE band numbers
    images = planted_images(rows, cols, kept.size)
    max_value = 1000.0
    arrays = {"Y": fortran_pixels(images) * max_value / images.max(), "nRow": np.array([[rows]], np.float64),
              "nCol": np.array([[cols]], np.float64), "SlectBands": kept.reshape(-1, 1).astype(np.float64),
              "maxValue": np.array([[max_value]])}
    path = tmp_path / "Urban_R162.mat"
    if fmt == "mat":
        scipy.io.savemat(path, arrays)
    else:
        from mfcli.io.write import _write_mat73

        _write_mat73(path, arrays)

    dataset = load_dataset(str(path))
    assert dataset.variable == "Y" and dataset.layout == "bands-x-pixels"
    assert dataset.shape == (kept.size, rows * cols)
    assert dataset.image_shape == (rows, cols) and dataset.pixel_order == "F"
    assert dataset.scale == max_value
    np.testing.assert_allclose(dataset.X, arrays["Y"] / max_value)
    np.testing.assert_allclose(dataset.to_image(dataset.X), images / images.max())
    np.testing.assert_array_equal(dataset.band_indices, kept)
    # no wavelengths in the file: none are invented from the band numbers (issue 15)
    assert dataset.wavelengths is None and dataset.wavelengths_source is None
    assert any("no wavelengths in the file" in note for note in dataset.notes)
    assert dataset.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert dataset.source == str(path)

    raw = load_dataset(str(path), apply_scale=False)
    assert raw.scale == 1.0
    np.testing.assert_array_equal(raw.X, arrays["Y"])


def test_urban_keeps_162_of_hydice_210_bands():
    kept = urban_kept_bands()
    assert kept.size == 162 and not set(kept.astype(int)) & set(URBAN_REMOVED_BANDS)


def test_samson_style_file_with_lines_cols_and_ground_truth(tmp_path):
    rows, cols, bands = 6, 4, 5
    images = planted_images(rows, cols, bands)
    truth = np.random.default_rng(0).random((rows, cols, 3))
    scipy.io.savemat(tmp_path / "samson.mat", {
        "Y": fortran_pixels(images), "lines": np.array([[rows]], np.uint8), "cols": np.array([[cols]], np.uint8),
        "GT": np.ones((3, bands)), "S_GT": truth})
    dataset = load_dataset(str(tmp_path / "samson.mat"))
    assert dataset.image_shape == (rows, cols) and dataset.pixel_order == "F" and dataset.scale == 1.0
    np.testing.assert_array_equal(dataset.to_image(dataset.X), images)
    assert set(dataset.extras) == {"GT", "S_GT"}
    np.testing.assert_array_equal(dataset.extras["S_GT"], truth)
    assert any("'lines', 'cols'" in note for note in dataset.notes)


def test_pixels_x_bands_matrix_is_transposed_to_bands_x_pixels(tmp_path):
    images = planted_images(3, 5, 4)
    Y = fortran_pixels(images)
    scipy.io.savemat(tmp_path / "t.mat", {"X": Y.T, "nRow": 3, "nCol": 5})
    dataset = load_dataset(str(tmp_path / "t.mat"))
    assert dataset.shape == (4, 15) and dataset.layout == "bands-x-pixels"
    np.testing.assert_array_equal(dataset.to_image(dataset.X), images)


def test_image_shape_that_does_not_fit_is_dropped_with_a_note(tmp_path):
    scipy.io.savemat(tmp_path / "m.mat", {"Y": np.ones((4, 10)), "nRow": 3, "nCol": 3})
    dataset = load_dataset(str(tmp_path / "m.mat"))
    assert dataset.image_shape is None and dataset.layout == "matrix"
    assert any("does not match" in note for note in dataset.notes)
    with pytest.raises(DataError, match="matches neither side"):
        load_dataset(str(tmp_path / "m.mat"), image_shape=(3, 3))


def test_overrides_layout_order_transpose_and_image_shape(tmp_path):
    images = planted_images(2, 3, 4)
    Y_C = np.stack([image.ravel() for image in images])
    np.save(tmp_path / "y.npy", Y_C)
    plain = load_dataset(str(tmp_path / "y.npy"))
    assert plain.layout == "matrix" and plain.image_shape is None and plain.pixel_order is None
    shaped = load_dataset(str(tmp_path / "y.npy"), image_shape=(2, 3))
    assert shaped.pixel_order == "C"
    np.testing.assert_array_equal(shaped.to_image(shaped.X), images)
    as_f = load_dataset(str(tmp_path / "y.npy"), image_shape=(2, 3), order="f")
    assert as_f.pixel_order == "F"
    np.save(tmp_path / "yt.npy", Y_C.T)
    flipped = load_dataset(str(tmp_path / "yt.npy"), transpose=True, image_shape=(2, 3))
    np.testing.assert_array_equal(flipped.X, Y_C)
    assert flipped.layout == "bands-x-pixels"
    with pytest.raises(DataError, match="needs an image shape"):
        load_dataset(str(tmp_path / "y.npy"), layout="bands-x-pixels")
    with pytest.raises(DataError, match="needs a 3-D array"):
        load_dataset(str(tmp_path / "y.npy"), layout="cube")
    with pytest.raises(ParameterError, match="layout"):
        load_dataset(str(tmp_path / "y.npy"), layout="diagonal")
    with pytest.raises(ParameterError, match="pixel order"):
        load_dataset(str(tmp_path / "y.npy"), order="Z")
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4)))
    with pytest.raises(ParameterError, match="--transpose applies to a 2-D matrix"):
        load_dataset(str(tmp_path / "cube.npy"), transpose=True)


def test_hdf5_attributes_give_image_shape_order_and_wavelengths(tmp_path):
    images = planted_images(3, 4, 2)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["group/cube_matrix"] = fortran_pixels(images)
        f["group/cube_matrix"].attrs["image_shape"] = [3, 4]
        f["group/cube_matrix"].attrs["pixel_order"] = "F"
        f["group/cube_matrix"].attrs["wavelengths"] = [500.0, 600.0]
        f["other"] = np.zeros((2, 2))
    dataset = load_dataset(f"{tmp_path / 'd.h5'}:/group/cube_matrix")
    assert dataset.variable == "group/cube_matrix" and dataset.pixel_order == "F"
    np.testing.assert_array_equal(dataset.to_image(dataset.X), images)
    assert dataset.wavelengths.tolist() == [500.0, 600.0]
    assert load_dataset(str(tmp_path / "d.h5")).variable == "group/cube_matrix"  # the largest 2-D array


def test_choose_variable_rule():
    def info(name, shape, dtype="float64"):
        return name, VariableInfo(name, shape, np.dtype(dtype))

    assert choose_variable(dict([info("big", (50, 50)), info("Y", (3, 4))]))[0] == "Y"
    assert choose_variable(dict([info("g/data", (3, 4)), info("big", (50, 50))]))[0] == "g/data"
    assert choose_variable(dict([info("a", (5, 5)), info("b", (9, 9)), info("row", (1, 500))]))[0] == "b"
    assert choose_variable(dict([info("y", (3, 4)), info("text", (10, 10), "<U3")]))[0] == "y"
    with pytest.raises(DataError, match="no non-empty 2-D or 3-D"):
        choose_variable(dict([info("a", (5,)), info("b", (1, 7))]))
    assert choose_variable(dict([info("only", (5,))]))[0] == "only"  # later checks say what is wrong


@pytest.mark.parametrize("spec,expected", [
    ("data.mat:Y", ("data.mat", "Y", None)),
    ("data.h5:/group/X", ("data.h5", "/group/X", None)),
    ("-:csv", ("-", None, "csv")),
    ("out:npy", ("out", None, "npy")),
    ("-", ("-", None, None)),
    ("sample:samson:Y", ("sample:samson:Y", None, None)),
])
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


def test_an_existing_file_with_a_colon_is_a_path(tmp_path):
    path = tmp_path / "odd:name.csv"
    path.write_text("1,2\n3,4\n")
    assert parse_spec(str(path)) == (str(path), None, None)
    assert load_dataset(str(path)).shape == (2, 2)


def test_text_tables_comments_header_delimiters_and_missing_values():
    text = "# made by hand\n\nu1;u2;u3\n1;2;3\n# between rows\n4;;6\n"
    array, meta = read_text_matrix(text, "t.csv")
    assert meta["column_names"] == ["u1", "u2", "u3"]
    np.testing.assert_array_equal(array, [[1, 2, 3], [4, np.nan, 6]])
    assert read_text_matrix("1 2\n3 4\n", "w.txt")[0].dtype == np.int64
    np.testing.assert_array_equal(read_text_matrix("1\t2.5\n3\tinf\n", "t.tsv")[0], [[1, 2.5], [3, np.inf]])
    with pytest.raises(InputError, match="line 3 has 1 fields"):
        read_text_matrix("1,2\n3,4\n5\n", "ragged.csv")
    with pytest.raises(InputError, match="'x' is not a number"):
        read_text_matrix("1,2\n3,x\n", "bad.csv")
    with pytest.raises(DataError, match="no numeric rows"):
        read_text_matrix("# nothing\n", "empty.csv")
    with pytest.raises(DataError, match="header but no numeric rows"):
        read_text_matrix("a,b\n", "header.csv")


def test_column_names_follow_the_orientation(tmp_path):
    (tmp_path / "r.csv").write_text("a,b,c\n1,2,3\n4,5,6\n")
    assert load_dataset(str(tmp_path / "r.csv")).sample_names == ["a", "b", "c"]
    flipped = load_dataset(str(tmp_path / "r.csv"), transpose=True)
    assert flipped.feature_names == ["a", "b", "c"] and flipped.sample_names is None


def test_integers_become_float64_and_dtype_converts(tmp_path):
    np.save(tmp_path / "i.npy", np.arange(6, dtype=np.int16).reshape(2, 3))
    assert load_dataset(str(tmp_path / "i.npy")).X.dtype == np.float64
    assert load_dataset(str(tmp_path / "i.npy"), dtype="float32").X.dtype == np.float32
    np.save(tmp_path / "f.npy", np.ones((2, 3), np.float32))
    assert load_dataset(str(tmp_path / "f.npy")).X.dtype == np.float32


def test_write_dataset_keeps_image_shape_order_and_wavelengths(tmp_path):
    images = planted_images(3, 4, 2)
    np.save(tmp_path / "c.npy", np.stack([image.ravel() for image in images]))
    dataset = load_dataset(str(tmp_path / "c.npy"), image_shape=(3, 4))
    dataset.wavelengths = np.array([450.5, 550.25])
    dataset.band_indices = np.array([3, 9])
    for name, fmt in (("o.mat", None), ("o73.mat", "mat73"), ("o.h5", None), ("o.npz", None), ("o.img", None)):
        write_dataset(dataset, str(tmp_path / name), fmt=fmt)
        back = load_dataset(str(tmp_path / name))
        assert back.image_shape == (3, 4), name
        np.testing.assert_array_equal(back.to_image(back.X), images, err_msg=name)
        np.testing.assert_array_equal(back.wavelengths, dataset.wavelengths, err_msg=name)
        if not name.endswith(".img"):
            np.testing.assert_array_equal(back.band_indices, dataset.band_indices, err_msg=name)


def test_band_numbers_give_no_wavelengths_and_stay_band_numbers_when_written_and_read_back(tmp_path):
    kept = np.array([5, 6, 50, 120])
    arrays = {"Y": np.random.default_rng(0).random((kept.size, 12)), "nRow": np.array([[3.0]]),
              "nCol": np.array([[4.0]]), "SlectBands": kept.reshape(-1, 1).astype(np.float64)}
    scipy.io.savemat(tmp_path / "u.mat", arrays)
    dataset = load_dataset(str(tmp_path / "u.mat"))
    assert dataset.wavelengths is None
    for name in ("o.mat", "o.h5"):
        write_dataset(dataset, str(tmp_path / name))
        back = load_dataset(str(tmp_path / name))
        assert back.wavelengths is None, name
        np.testing.assert_array_equal(back.band_indices, kept, err_msg=name)


def test_wavelengths_come_from_the_file_with_their_source_and_micrometres_become_nm(tmp_path):
    arrays = {"Y": np.random.default_rng(0).random((4, 12)), "nRow": np.array([[3.0]]), "nCol": np.array([[4.0]]),
              "wavelengths": np.array([0.45, 0.55, 0.65, 0.75])}
    scipy.io.savemat(tmp_path / "w.mat", arrays)
    dataset = load_dataset(str(tmp_path / "w.mat"))
    np.testing.assert_allclose(dataset.wavelengths, [450, 550, 650, 750])
    assert "'wavelengths' variable" in dataset.wavelengths_source
    assert any("micrometres" in note for note in dataset.notes)


def test_stdin_reads_csv_and_npy(monkeypatch):
    class FakeStdin:
        def __init__(self, data: bytes):
            self.buffer = io.BytesIO(data)

    monkeypatch.setattr(sys, "stdin", FakeStdin(b"1,2,3\n4,5,6\n"))
    dataset = load_dataset("-")
    assert dataset.shape == (2, 3) and dataset.source == "-"
    assert dataset.sha256 == hashlib.sha256(b"1,2,3\n4,5,6\n").hexdigest()
    buffer = io.BytesIO()
    np.save(buffer, np.eye(3, dtype=np.float32))
    monkeypatch.setattr(sys, "stdin", FakeStdin(buffer.getvalue()))
    np.testing.assert_array_equal(load_dataset("-").X, np.eye(3))
    monkeypatch.setattr(sys, "stdin", FakeStdin(b"1\t2\n3\t4\n"))
    assert load_dataset("-:tsv").shape == (2, 2)
    monkeypatch.setattr(sys, "stdin", FakeStdin(b"1,2\n"))
    with pytest.raises(InputError, match="not NPY"):
        load_dataset("-:npy")
    monkeypatch.setattr(sys, "stdin", FakeStdin(b""))
    with pytest.raises(DataError, match="standard input is empty"):
        load_dataset("-")


def test_write_array_to_stdout(capsysbinary):
    write_array(np.array([[1.5, 2.0]]), "-")
    assert capsysbinary.readouterr().out == b"1.5,2\n"
    write_array(np.array([[1.5, 2.0]]), "-", fmt="npy")
    assert np.load(io.BytesIO(capsysbinary.readouterr().out)).tolist() == [[1.5, 2.0]]
    with pytest.raises(DataError, match="standard output takes CSV, TSV or NPY"):
        write_array(np.ones((2, 2)), "-", fmt="h5")


# --------------------------------------------------------------------------- samples

def test_samson_and_moffett_samples():
    samson = load_dataset("sample:samson")
    assert samson.shape == (156, 9025) and samson.image_shape == (95, 95) and samson.pixel_order == "F"
    assert samson.wavelengths[0] == 401 and samson.wavelengths[-1] == 889
    assert samson.extras["S_GT"].shape == (95, 95, 3) and samson.extras["GT"].shape == (3, 156)
    assert samson.X.dtype == np.float32 and samson.source == "sample:samson" and len(samson.sha256) == 64
    moffett = load_dataset("sample:moffett")
    assert moffett.shape == (184, 2500) and moffett.image_shape == (50, 50)
    ratings = load_dataset("sample:survey-ratings")
    assert ratings.shape == (9, 15) and ratings.X.min() >= 1 and ratings.X.max() <= 10


def test_sample_variable_spec_and_unknown_sample():
    truth = load_dataset("sample:samson:GT")
    assert truth.shape == (3, 156) and truth.variable == "GT" and truth.scale == 1.0
    with pytest.raises(InputError, match="unknown sample 'nope'; available: samson"):
        load_dataset("sample:nope")
    assert set(SAMPLES) == {"samson", "moffett", "urban", "survey-ratings", "usgs-1995"}


def test_urban_sample_is_the_urban_r162_layout():
    """Loaded once here (it is 162 x 94249): the same loader path as a real Urban_R162.mat."""
    urban = load_dataset("sample:urban")
    assert urban.shape == (162, 94249) and urban.image_shape == (307, 307) and urban.pixel_order == "F"
    assert urban.scale == 1000.0 and urban.X.dtype == np.float32
    np.testing.assert_array_equal(urban.band_indices, urban_kept_bands())
    assert urban.wavelengths is None  # the Urban_R162 layout has band numbers (SlectBands), no wavelengths
    M, A = urban.extras["M"], urban.extras["A"]
    # X = M A plus small seeded noise, on the ground truth's reflectance scale.
    residual = np.linalg.norm(urban.X - M @ A) / np.linalg.norm(M @ A)
    assert residual < 0.05


def test_urban_reconstruction_is_seeded_and_scaled():
    from mfcli.io.samples import URBAN_NOISE, URBAN_SCALE, build_urban

    rng = np.random.default_rng(1)
    truth = {"M": rng.random((162, 3)), "A": rng.dirichlet(np.ones(3), size=12).T,
             "nRow": np.array([[3]]), "nCol": np.array([[4]])}
    first, second = build_urban(truth), build_urban(truth)
    np.testing.assert_array_equal(first["Y"], second["Y"])
    noise = first["Y"] / URBAN_SCALE - (truth["M"] @ truth["A"]).astype(np.float32)
    assert 0.5 * URBAN_NOISE < noise.std() < 1.5 * URBAN_NOISE
    assert first["maxValue"].item() == URBAN_SCALE and first["SlectBands"].shape == (162, 1)


def test_bundled_samples_are_rebuilt_byte_for_byte_from_the_shared_data(shared_data, tmp_path):
    from checks import load_script
    from mfcli.io.samples import sample_dir

    module = load_script("make_samples")
    module.SHARED = shared_data
    module.main(tmp_path)
    for name in ("samson.mat", "moffett.mat", "urban_groundtruth.mat", "survey_ratings.csv", "usgs_1995_library.mat"):
        assert (tmp_path / name).read_bytes() == (sample_dir() / name).read_bytes(), name


def test_a_dat_file_without_envi_header_is_a_text_table(tmp_path):
    (tmp_path / "ratings.dat").write_text("1 2 3\n4 5 6\n")
    assert load_dataset(str(tmp_path / "ratings.dat")).shape == (2, 3)


def test_the_digest_hashed_on_a_second_thread_is_waited_for_once(tmp_path):
    """open_spec hands back the digest as a function (a thread hashes the file meanwhile); the
    Dataset calls it on the first read of sha256 and keeps the digest."""
    from mfcli.dataset import Dataset
    from mfcli.io.load import open_spec

    path = tmp_path / "x.npy"
    np.save(path, np.arange(12.0).reshape(3, 4))
    container, _, _, digest = open_spec(str(path))
    container.close()
    assert callable(digest)
    calls = []

    def counted():
        calls.append(1)
        return digest()

    dataset = Dataset(X=np.zeros((3, 4)), sha256=counted)
    assert dataset.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == dataset.sha256
    assert len(calls) == 1
    assert open_spec(str(path), digest=False)[3] is None
    loaded = load_dataset(str(path))  # pickled (a process pool, a cache) with its digest, not the function
    assert pickle.loads(pickle.dumps(loaded)).sha256 == dataset.sha256


@pytest.mark.skipif(not hasattr(os, "fork"), reason="this system cannot fork")
def test_a_digest_read_in_a_process_forked_before_the_hash_was_done_is_computed_there():
    """The hashing thread does not exist in a forked copy: the copy hashes the file itself."""
    import time

    from mfcli.io.load import _background

    wait = _background(lambda: (time.sleep(0.3), "digest")[1])
    child = os.fork()
    if child == 0:
        try:
            os._exit(0 if wait() == "digest" else 1)
        except BaseException:
            os._exit(2)
    assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0
    assert wait() == "digest"
