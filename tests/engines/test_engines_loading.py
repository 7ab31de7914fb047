"""Opening a file for the stream/dask engines follows the loader's rules without reading the data
matrix: the same Dataset metadata, and the streamed X equals the loaded X."""

from __future__ import annotations

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from mfcli.engines import open_matrix  # noqa: E402
from mfcli.errors import DataError, InputError  # noqa: E402
from mfcli.io.load import load_dataset, open_lazy  # noqa: E402

METADATA = ("image_shape", "pixel_order", "scale", "source", "variable", "sha256", "layout", "notes")


def assert_same_as_loaded(spec, engines=("stream", "dask"), **options):
    loaded = load_dataset(spec, **options)
    lazy, source = open_lazy(spec, **options)
    assert lazy.X is None
    for name in METADATA:
        assert getattr(lazy, name) == getattr(loaded, name), name
    for name in ("wavelengths", "band_indices"):
        np.testing.assert_array_equal(getattr(lazy, name), getattr(loaded, name))
    for engine in engines:
        if engine == "dask":
            pytest.importorskip("dask")
        matrix = open_matrix(source, engine, dtype=options.get("dtype"), chunk_size=70)
        assert matrix.shape == loaded.X.shape and matrix.dtype == loaded.X.dtype
        np.testing.assert_allclose(matrix.columns(np.arange(loaded.n_samples)), loaded.X, rtol=1e-6)
    return loaded


def urban_arrays(rows=12, cols=20, bands=9):
    rng = np.random.default_rng(0)
    return {"Y": 1000 * rng.random((bands, rows * cols)), "nRow": np.array([[rows]], np.float64),
            "nCol": np.array([[cols]], np.float64), "maxValue": np.array([[1000.0]]),
            "SlectBands": np.arange(5, 5 + bands).reshape(-1, 1).astype(np.float64)}


def test_matlab_v73_urban_layout_transposed_storage_scale_bands_and_f_order(tmp_path):
    from mfcli.io.write import _write_mat73

    path = tmp_path / "Urban_R162.mat"
    _write_mat73(path, urban_arrays())
    loaded = assert_same_as_loaded(str(path))
    assert loaded.pixel_order == "F" and loaded.scale == 1000.0 and loaded.image_shape == (12, 20)
    assert_same_as_loaded(str(path), dtype="float32")
    lazy, source = open_lazy(str(path))
    assert source.transposed  # h5py sees MATLAB's column-major Y as pixels x bands


def test_hdf5_pixels_x_bands_transpose_flag_and_variable(tmp_path):
    rng = np.random.default_rng(1)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f.create_dataset("group/pixels", data=rng.random((6 * 7, 5)), chunks=(8, 5))
        f["rows"], f["cols"] = 6, 7
        f["plain"] = rng.random((40, 5)).astype(np.float32)
        f["counts"] = rng.integers(0, 9, (5, 40)).astype(np.uint16)
    assert_same_as_loaded(f"{tmp_path / 'd.h5'}:group/pixels")
    assert_same_as_loaded(str(tmp_path / "d.h5"), variable="plain", transpose=True)
    loaded = assert_same_as_loaded(str(tmp_path / "d.h5"), variable="counts")
    assert loaded.X.dtype == np.float64


def test_npy_is_mapped_from_disk(tmp_path):
    X = np.random.default_rng(2).random((4, 90)).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    assert_same_as_loaded(str(tmp_path / "x.npy"))
    assert_same_as_loaded(str(tmp_path / "x.npy"), image_shape=(9, 10))


def test_inputs_that_cannot_be_streamed_are_refused_in_one_line(tmp_path):
    import scipy.io

    np.savetxt(tmp_path / "x.csv", np.ones((3, 4)), delimiter=",")
    scipy.io.savemat(tmp_path / "v5.mat", {"Y": np.ones((3, 4))})
    np.save(tmp_path / "cube.npy", np.ones((3, 4, 5)))
    for spec, error, words in [(str(tmp_path / "x.csv"), InputError, "not csv"),
                               (str(tmp_path / "v5.mat"), InputError, "not mat"),
                               (str(tmp_path / "cube.npy"), DataError, "image cube"),
                               ("sample:samson", InputError, "bundled sample"),
                               ("-", InputError, "standard input"),
                               (str(tmp_path / "missing.h5"), InputError, "does not exist")]:
        with pytest.raises(error, match=words) as info:
            open_lazy(spec)
        assert "\n" not in str(info.value)
