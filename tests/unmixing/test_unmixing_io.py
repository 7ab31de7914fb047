"""Ground truth and spectral library readers: names, orientations, pixel order, USGS layout."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from mfcli.dataset import image_to_pixels, pixels_to_image
from mfcli.errors import DataError, InputError
from mfcli.io.library import read_library
from mfcli.io.truth import load_truth
from mfcli.unmixing.library import closest_library_spectra

M_BANDS, RANK, ROWS, COLS = 12, 3, 4, 5


@pytest.fixture
def planted():
    rng = np.random.default_rng(0)
    E = rng.random((M_BANDS, RANK)) + 0.1
    A = rng.dirichlet(np.ones(RANK), size=ROWS * COLS).T  # pixels in F order, like MATLAB
    return E, A


def load(path, **kwargs):
    defaults = {"n_bands": M_BANDS, "n_pixels": ROWS * COLS, "image_shape": (ROWS, COLS), "pixel_order": "F"}
    return load_truth(str(path), **{**defaults, **kwargs})


def test_urban_layout_m_a_with_names(tmp_path, planted):
    E, A = planted
    path = tmp_path / "gt.mat"
    names = np.empty((RANK, 1), dtype=object)
    for k in range(RANK):
        names[k, 0] = np.array([f"{k + 1}-material"])
    scipy.io.savemat(path, {"M": E, "A": A, "cood": names})
    truth = load(path)
    np.testing.assert_allclose(truth.endmembers, E)
    np.testing.assert_allclose(truth.abundances, A)
    # the file's names, without the numbering prefix (pictures number materials #1..#k themselves)
    assert truth.names == ["1-material", "2-material", "3-material"]
    assert truth.material_names() == ["material", "material", "material"]
    assert truth.sources == {"endmembers": f"{path}:M", "abundances": f"{path}:A"}


def test_samson_layout_transposed_spectra_and_abundance_cube(tmp_path, planted):
    E, A = planted
    spectra = (E / E.max(axis=0)).T  # materials x bands, scaled to max 1 like Samson's GT
    cube = np.moveaxis(pixels_to_image(A, (ROWS, COLS), "F"), 0, 2)  # rows x cols x materials
    path = tmp_path / "samson_like.mat"
    scipy.io.savemat(path, {"GT": spectra, "S_GT": cube})
    truth = load(path)
    np.testing.assert_allclose(truth.endmembers, spectra.T)
    np.testing.assert_allclose(truth.abundances, A)
    assert truth.endmembers_scaled_to_max_one
    assert any("transposed" in note for note in truth.notes)
    assert any("scale-free" in note for note in truth.notes)


def test_materials_first_cube_and_pixels_by_materials_matrix(tmp_path, planted):
    E, A = planted
    images = pixels_to_image(A, (ROWS, COLS), "F")  # materials x rows x cols
    np.savez(tmp_path / "cube.npz", E=E.T, abundances=images)
    truth = load(tmp_path / "cube.npz")
    np.testing.assert_allclose(truth.abundances, A)
    np.savez(tmp_path / "flat.npz", A=A.T)  # pixels x materials, in C order (not a MATLAB file)
    truth = load(tmp_path / "flat.npz", pixel_order="C")
    np.testing.assert_allclose(truth.abundances, A)


def test_matlab_matrix_reordered_to_the_data_pixel_order(tmp_path, planted):
    E, A = planted
    scipy.io.savemat(tmp_path / "gt.mat", {"A": A})
    truth = load(tmp_path / "gt.mat", pixel_order="C")  # the data were read row by row
    expected = image_to_pixels(pixels_to_image(A, (ROWS, COLS), "F"), "C")
    np.testing.assert_allclose(truth.abundances, expected)


def test_two_files_and_single_array_files(tmp_path, planted):
    E, A = planted
    np.save(tmp_path / "endmembers.npy", E)
    np.save(tmp_path / "abundances.npy", A)
    truth = load_truth([str(tmp_path / "endmembers.npy"), str(tmp_path / "abundances.npy")],
                       n_bands=M_BANDS, n_pixels=ROWS * COLS)
    np.testing.assert_allclose(truth.endmembers, E)
    np.testing.assert_allclose(truth.abundances, A)


def test_bad_truth_files_say_what_is_wrong(tmp_path, planted):
    E, A = planted
    scipy.io.savemat(tmp_path / "nothing.mat", {"foo": np.ones(3), "bar": np.ones(4)})
    with pytest.raises(InputError, match="found no ground truth"):
        load(tmp_path / "nothing.mat")
    scipy.io.savemat(tmp_path / "wrong.mat", {"M": np.ones((7, RANK))})
    with pytest.raises(DataError, match="12 bands"):
        load(tmp_path / "wrong.mat")
    scipy.io.savemat(tmp_path / "mismatch.mat", {"M": E, "A": A[:2]})
    with pytest.raises(DataError, match="materials"):
        load(tmp_path / "mismatch.mat")


def test_bundled_samples_ground_truth_matches_the_data():
    from mfcli.io import load_dataset
    from mfcli.models.nnls import nnls

    dataset = load_dataset("sample:samson")
    truth = load_truth("sample:samson", n_bands=dataset.n_features, n_pixels=dataset.n_samples,
                       image_shape=dataset.image_shape, pixel_order=dataset.pixel_order)
    # Samson's S_GT is the NNLS of its (max-1 scaled) GT spectra normalized to sum one: the pixel
    # order of the flattened cube must agree with the data's for this to hold.
    H = nnls(truth.endmembers, dataset.X.astype(np.float64))
    assert np.abs(H / H.sum(axis=0) - truth.abundances).mean() < 0.01


def usgs_like_file(path):
    """A small library in the USGS layout: unsorted micrometre wavelengths, fill values, names."""
    wavelengths_um = np.array([0.5, 0.4, 0.6, 0.7, 0.8, 0.9])
    spectra = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                        [6.0, 5.0, 4.0, 3.0, 2.0, 1.0],
                        [1.0, 1.0, 1.0, 1.0, 1.0, -1.23e34]]).T
    table = np.column_stack([wavelengths_um, np.full(6, 0.01), np.arange(1, 7), spectra])
    table[4:, 2] = -1.23e34
    raw_names = ["Wavelengths in microns", "Resolution", "Channel", "Rising ", "Falling x", "Flat\xe9"]
    names = np.zeros((len(raw_names), 12), dtype=np.uint8)
    for i, name in enumerate(raw_names):
        encoded = name.encode("latin-1")[:12]
        names[i, :len(encoded)] = np.frombuffer(encoded, dtype=np.uint8)
    scipy.io.savemat(path, {"datalib": table, "names": names})


def test_usgs_layout_sorted_wavelengths_fill_values_latin1_names(tmp_path):
    usgs_like_file(tmp_path / "lib.mat")
    library = read_library(str(tmp_path / "lib.mat"))
    assert library.names == ["Rising", "Falling x", "Flat\xe9"]
    np.testing.assert_allclose(library.wavelengths_nm, [400, 500, 600, 700, 800, 900])
    np.testing.assert_allclose(library.spectra[:, 0], [2, 1, 3, 4, 5, 6])
    assert np.isnan(library.spectra[-1, 2])
    resampled = library.resample(np.array([450.0, 650.0, 950.0]))
    np.testing.assert_allclose(resampled[:2, 0], [1.5, 3.5])
    assert np.isnan(resampled[2]).all()  # outside the library's range


def test_library_labels_pick_the_closest_spectrum(tmp_path):
    usgs_like_file(tmp_path / "lib.mat")
    library = read_library(str(tmp_path / "lib.mat"))
    wavelengths = np.array([420.0, 520.0, 640.0, 760.0])
    E = np.column_stack([library.resample(wavelengths)[:, 1] * 3.0, library.resample(wavelengths)[:, 0]])
    labels = closest_library_spectra(E, wavelengths, library, top=2)
    assert labels[0][0]["name"] == "Falling x" and labels[0][0]["sad"] == pytest.approx(0.0, abs=1e-9)
    assert labels[1][0]["name"] == "Rising"
    with pytest.raises(DataError, match="does not cover"):
        closest_library_spectra(E, np.array([100.0, 200.0, 250.0, 300.0]), library)


def test_real_usgs_library(shared_data):
    library = read_library(str(shared_data / "hsi" / "usgs_1995_library.mat"))
    assert len(library) == 498
    assert np.all(np.diff(library.wavelengths_nm) > 0)
    assert library.names[0].startswith("Acmite")
    assert np.isfinite(library.spectra).all()
