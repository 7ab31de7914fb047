"""The result file: a hand-made Result written and read back, its HDF5 layout, and `mfcli export`."""

from __future__ import annotations

import io
import json

import h5py
import numpy as np
import pytest
import scipy.io

from mfcli.errors import InputError, OutputError
from mfcli.io.result import is_result_file, read_result, write_result
from mfcli.result import Layer, Result, make_provenance


def hand_made_result() -> Result:
    rng = np.random.default_rng(0)
    W1, H1 = rng.random((6, 3)), rng.random((3, 20))
    W2, H2 = rng.random((3, 2)), rng.random((2, 3))
    first = Layer(W=W1, H=H1, relative_error=0.1, history={"relative_error": np.array([0.5, 0.2, 0.1]),
                                                            "seconds": np.array([0.01, 0.02, 0.03])},
                  assignments=np.array([0, 1, 2, 1, -1] * 4), labels=["road", "grass", "roof"],
                  attrs={"algorithm": "hals", "tol": 1e-4})
    second = Layer(W=W2, H=H2, basis=W1 @ W2, coefficients=H2 @ H1, abundances=rng.random((2, 20)),
                   relative_error=0.2, arrays={"bias/user": np.arange(4.0)})
    return Result(
        model="deep-onmf", layers=[first, second], params={"ranks": [3, 2], "seed": 0, "dtype": "float64"},
        history={"global_loss": np.array([3.0, 2.0])},
        input={"source": "sample:samson", "sha256": "ab" * 32, "shape": [6, 20], "image_shape": [4, 5],
               "pixel_order": "F", "scale": 1.0, "wavelengths": np.linspace(400, 900, 6),
               "band_indices": np.arange(1, 7)},
        arrays={"hierarchy/parent": np.array([-1, 0, 0]), "names": np.array(["a", "bb"])},
        summary={"relative_error": 0.2}, provenance=make_provenance(["mfcli", "unmix", "x"]),
        seconds=1.5, converged=True, n_iter=3,
    )


def test_result_round_trip(tmp_path):
    result = hand_made_result()
    path = write_result(result, tmp_path / "r.h5")
    assert is_result_file(path)
    back = read_result(path)
    assert back.model == "deep-onmf" and back.ranks == [3, 2]
    assert back.params == result.params and back.summary == result.summary
    assert back.provenance == result.provenance
    assert (back.seconds, back.converged, back.n_iter) == (1.5, True, 3)
    for mine, theirs in zip(result.layers, back.layers):
        for name in ("W", "H", "basis", "coefficients", "abundances", "assignments"):
            expected = getattr(mine, name)
            if expected is None:
                assert getattr(theirs, name) is None
            else:
                np.testing.assert_array_equal(getattr(theirs, name), expected)
        assert theirs.relative_error == mine.relative_error
        assert theirs.labels == mine.labels and theirs.attrs == mine.attrs
        assert theirs.history.keys() == mine.history.keys()
        for key in mine.arrays:
            np.testing.assert_array_equal(theirs.arrays[key], mine.arrays[key])
    np.testing.assert_array_equal(back.history["global_loss"], [3.0, 2.0])
    np.testing.assert_array_equal(back.arrays["hierarchy/parent"], [-1, 0, 0])
    assert back.arrays["names"].tolist() == ["a", "bb"]
    assert back.image_shape == (4, 5) and back.pixel_order == "F"
    np.testing.assert_array_equal(back.input["wavelengths"], result.input["wavelengths"])
    np.testing.assert_array_equal(back.input["band_indices"], np.arange(1, 7))
    assert back.relative_error == 0.2


def test_result_layout_is_readable_with_plain_h5py(tmp_path):
    write_result(hand_made_result(), tmp_path / "r.h5")
    with h5py.File(tmp_path / "r.h5", "r") as f:
        assert f.attrs["format"] == b"mfcli-result" and f.attrs["model"].decode() == "deep-onmf"
        assert json.loads(f.attrs["params"])["ranks"] == [3, 2]
        assert f["layers"].attrs["count"] == 2
        assert f["layers/1/W"].shape == (6, 3) and f["layers/2/basis"].shape == (6, 2)
        assert "basis" not in f["layers/1"]  # stored only where it differs from W
        assert f["layers/1/history/relative_error"].shape == (3,)
        assert f["input"].attrs["pixel_order"] == b"F" and f["input/wavelengths"].shape == (6,)
        assert f["arrays/hierarchy/parent"].shape == (3,)


def test_texts_are_stored_in_the_headers_not_in_hdf5s_global_heap(tmp_path):
    """Every text attribute is a fixed-length UTF-8 string: no variable-length string, whose
    global heap, unchecked, made HDF5 loop forever on a damaged file; files written with
    variable-length texts (earlier mfcli) still read."""
    result = hand_made_result()
    result.provenance["command_line"] = "mfcli unmix données.h5 --ranks 3,2"  # not ASCII
    write_result(result, tmp_path / "r.h5")
    texts = []
    with h5py.File(tmp_path / "r.h5", "r") as f:
        def visit(name, item):
            for key in item.attrs:
                kind = h5py.h5a.open(item.id, key.encode()).get_type()
                if kind.get_class() == h5py.h5t.STRING:
                    assert not kind.is_variable_str(), f"{name}: {key}"
                    texts.append(key)
        visit("/", f)
        f.visititems(visit)
    assert {"format", "model", "params", "command_line", "labels", "meta"} <= set(texts)
    assert b"GCOL" not in (tmp_path / "r.h5").read_bytes()  # no global heap collection
    assert read_result(tmp_path / "r.h5").provenance["command_line"] == result.provenance["command_line"]
    with h5py.File(tmp_path / "r.h5", "a") as f:  # as earlier versions wrote them
        for key in ("format", "model", "params", "summary", "provenance"):
            value = f.attrs[key].decode()
            del f.attrs[key]
            f.attrs[key] = value
    back = read_result(tmp_path / "r.h5")
    assert back.model == result.model and back.params == read_result(tmp_path / "r.h5").params


def test_an_array_under_two_names_is_stored_once(tmp_path):
    """A refined layer's coefficients are its abundances (the same array): one dataset with two
    hard links, read back as two equal arrays."""
    result = hand_made_result()
    layer = result.layers[1]
    layer.coefficients = layer.abundances = np.random.default_rng(1).random((2, 5000))
    write_result(result, tmp_path / "r.h5")
    with h5py.File(tmp_path / "r.h5", "r") as f:
        group = f["layers/2"]
        assert group["coefficients"].id == group["abundances"].id
        assert h5py.h5o.get_info(group["abundances"].id).rc == 2  # two links, one object
    back = read_result(tmp_path / "r.h5").layers[1]
    np.testing.assert_array_equal(back.coefficients, layer.abundances)
    np.testing.assert_array_equal(back.abundances, layer.abundances)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, bool])
def test_large_arrays_compressed_chunk_by_chunk_read_back_through_hdf5s_filters(tmp_path, dtype):
    """Chunks shuffled and deflated by mfcli (H5Dwrite_chunk) are the standard shuffle+deflate
    pipeline: HDF5 itself inflates them to the same values, edge chunks included."""
    rng = np.random.default_rng(3)
    H = rng.random((7, 100_003))  # 100_003 columns: a last chunk that is not full
    H[rng.random(H.shape) < 0.6] = 0
    H = (H * 1000).astype(dtype) if dtype in (np.int64, bool) else H.astype(dtype)
    weights = rng.random(300_001).astype(dtype)  # 1-D, two chunks
    result = Result(model="nmf", layers=[Layer(W=np.ones((5, 7)), H=H, arrays={"weights": weights})])
    path = write_result(result, tmp_path / "r.h5")
    with h5py.File(path) as f:
        stored = f["layers/1/H"]
        assert stored.compression == "gzip" and stored.shuffle and stored.chunks[0] == 7
        np.testing.assert_array_equal(stored[()], H)
        np.testing.assert_array_equal(stored[:, 99_000:], H[:, 99_000:])
        assert stored.id.get_storage_size() < H.nbytes  # compressed
        np.testing.assert_array_equal(f["layers/1/arrays/weights"][()], weights)
    back = read_result(path)
    assert back.layers[0].H.dtype == H.dtype
    np.testing.assert_array_equal(back.layers[0].H, H)


def test_result_is_not_overwritten_without_force(tmp_path):
    write_result(hand_made_result(), tmp_path / "r.h5")
    before = (tmp_path / "r.h5").read_bytes()
    with pytest.raises(OutputError, match="already exists; use --force"):
        write_result(hand_made_result(), tmp_path / "r.h5")
    assert (tmp_path / "r.h5").read_bytes() == before
    write_result(hand_made_result(), tmp_path / "r.h5", force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5"]


def test_layer_number_resolves_the_last_layer_and_refuses_missing_ones():
    from mfcli.errors import ParameterError

    result = hand_made_result()
    assert [result.layer_number(index) for index in (1, 2, -1)] == [1, 2, 2]
    assert result.layer(result.layer_number(-1)) is result.layer(-1) is result.layers[-1]
    for missing in (0, 3, -2):
        with pytest.raises(ParameterError, match=f"layer {missing} does not exist"):
            result.layer_number(missing)


def test_reading_what_is_not_a_result(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_result(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(InputError, match="not a readable HDF5 result"):
        read_result(tmp_path / "text.h5")
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["x"] = np.ones(3)
    with pytest.raises(InputError, match="not an mfcli result"):
        read_result(tmp_path / "plain.h5")
    with h5py.File(tmp_path / "damaged.h5", "w") as f:
        f.attrs["format"] = "mfcli-result"
        f.attrs["format_version"] = 1
    with pytest.raises(InputError, match="damaged or incomplete"):
        read_result(tmp_path / "damaged.h5")


# --------------------------------------------------------------------------- mfcli export

@pytest.fixture
def result_file(tmp_path):
    return str(write_result(hand_made_result(), tmp_path / "run.h5"))


def test_export_to_stdout_as_csv_and_npy(invoke, result_file):
    result = invoke("export", result_file, "--factor", "H", "--layer", "1")
    assert result.exit_code == 0, result.stderr
    np.testing.assert_allclose(np.loadtxt(io.StringIO(result.stdout), delimiter=","),
                               hand_made_result().layers[0].H)
    result = invoke("export", result_file, "--factor", "basis", "-o", "-", "--format", "npy")
    assert result.exit_code == 0 and result.stderr == ""
    np.testing.assert_array_equal(np.load(io.BytesIO(result.stdout_bytes)), hand_made_result().layers[1].basis)


@pytest.mark.parametrize("name,fmt", [("w.csv", None), ("w.npy", None), ("w.mat", None), ("w73.mat", "mat73"),
                                      ("w.h5", None), ("w.tsv", None)])
def test_export_to_files(invoke, result_file, tmp_path, name, fmt):
    out = tmp_path / name
    args = ["export", result_file, "--factor", "W", "-o", str(out)] + (["--format", fmt] if fmt else [])
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    from mfcli.io.formats import open_container

    with open_container(str(out), fmt) as container:
        (variable,) = container.variables()
        np.testing.assert_array_equal(container.read(variable), hand_made_result().layers[-1].W)
    if name == "w.mat":
        assert set(k for k in scipy.io.loadmat(out) if not k.startswith("__")) == {"W"}


def test_export_errors(invoke, result_file, tmp_path):
    result = invoke("export", result_file, "--factor", "abundances", "--layer", "1")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: layer 1 of '%s' has no abundances; available: W, H, basis, "
                                     "coefficients, assignments" % result_file)
    result = invoke("export", result_file, "--layer", "3")
    assert result.exit_code == 1 and "layer 3 does not exist" in result.stderr
    (tmp_path / "taken.csv").write_text("keep me")
    result = invoke("export", result_file, "-o", str(tmp_path / "taken.csv"))
    assert result.exit_code == 1 and "already exists" in result.stderr
    assert (tmp_path / "taken.csv").read_text() == "keep me"
    result = invoke("export", result_file, "--format", "xls")
    assert result.exit_code == 2


def test_info_summarises_a_result(invoke, result_file):
    result = invoke("info", result_file, "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["model"] == "deep-onmf" and document["ranks"] == [3, 2]
    assert document["layers"][1]["W"] == [3, 2]
    result = invoke("info", result_file)
    assert result.exit_code == 0 and "deep-onmf result" in result.stdout
