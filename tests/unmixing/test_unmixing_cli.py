"""The unmixing commands end to end: endmembers, abundances, evaluate, estimate-rank."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io

from mfcli.io.result import read_result


@pytest.fixture
def planted_scene(tmp_path):
    """A 10x12 image of 20 bands, X = E A with pure pixels, and its ground truth (two files)."""
    rng = np.random.default_rng(0)
    rows, cols, m, r = 10, 12, 20, 3
    E = np.abs(rng.standard_normal((m, r))) + 0.1
    A = rng.dirichlet(np.full(r, 0.8), size=rows * cols).T
    A[:, [5, 40, 77]] = np.eye(r)
    X = E @ A
    scipy.io.savemat(tmp_path / "scene.mat", {"Y": X, "nRow": rows, "nCol": cols})
    scipy.io.savemat(tmp_path / "gt.mat", {"M": E, "A": A})
    np.save(tmp_path / "E_only.npy", E.T)  # materials x bands
    return tmp_path, E, A


def test_endmembers_then_evaluate_recovers_the_planted_scene(invoke, planted_scene):
    folder, E, A = planted_scene
    out = folder / "vca.h5"
    result = invoke("endmembers", str(folder / "scene.mat"), "--rank", "3", "--method", "vca", "-o", str(out),
                    "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert sorted(summary["indices"]) == [5, 40, 77]
    assert summary["pixels"] is not None and "endmembers at pixels" in result.stderr
    layer = read_result(out).layers[0]
    np.testing.assert_allclose(layer.H.sum(axis=0), 1.0, atol=1e-5)

    result = invoke("evaluate", str(out), "--truth", str(folder / "gt.mat"), "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["mean_sad"] == pytest.approx(0.0, abs=1e-4)
    assert document["armse"] == pytest.approx(0.0, abs=1e-4)
    assert document["sre"] > 60
    assert document["abundances_from"].startswith("the layer's coefficients")
    assert sorted(entry["estimated"] for entry in document["matching"]) == [0, 1, 2]
    assert "mean SAD" in result.stderr and "SAD (deg)" in result.stderr


@pytest.mark.parametrize("order", ["F", "C"])
def test_endmembers_reports_the_image_position_of_each_pixel(invoke, planted_scene, order):
    from mfcli.dataset import pixels_to_image

    folder, E, A = planted_scene
    np.save(folder / "scene.npy", E @ A)
    result = invoke("endmembers", str(folder / "scene.npy"), "--image-shape", "10x12", "--order", order,
                    "--rank", "3", "--method", "vca", "-o", str(folder / f"vca_{order}.h5"), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    pixel_numbers = pixels_to_image(np.arange(120), (10, 12), order)
    assert [int(pixel_numbers[row, col]) for row, col in summary["pixels"]] == summary["indices"]


def test_evaluate_matches_on_abundances_and_with_spectra_only(invoke, planted_scene):
    folder, E, A = planted_scene
    out = folder / "fcls.h5"
    assert invoke("abundances", str(folder / "scene.mat"), "--endmembers", str(folder / "E_only.npy"),
                  "-o", str(out)).exit_code == 0
    result = invoke("evaluate", str(out), "--truth", str(folder / "gt.mat"), "--match", "abundance", "--json")
    document = json.loads(result.stdout)
    assert document["match"] == "abundance" and document["armse"] < 1e-6
    assert [entry["estimated"] for entry in document["matching"]] == [0, 1, 2]
    result = invoke("evaluate", str(out), "--truth", str(folder / "E_only.npy"), "--json")
    document = json.loads(result.stdout)
    assert document["armse"] is None and document["mean_sad"] == pytest.approx(0.0, abs=1e-6)
    result = invoke("evaluate", str(out), "--truth", str(folder / "E_only.npy"), "--match", "abundance")
    assert result.exit_code == 1 and "--match sad" in result.stderr and result.stdout == ""


def test_abundances_from_a_result_nnls_and_fcls(invoke, planted_scene):
    folder, E, A = planted_scene
    endmembers = folder / "spa.h5"
    assert invoke("endmembers", str(folder / "scene.mat"), "-r", "3", "--method", "spa", "--abundances", "none",
                  "-o", str(endmembers)).exit_code == 0
    for method in ("nnls", "fcls"):
        out = folder / f"{method}.h5"
        result = invoke("abundances", str(folder / "scene.mat"), "--endmembers", str(endmembers), "--method",
                        method, "-o", str(out), "--json")
        assert result.exit_code == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["relative_error"] < 1e-6
        layer = read_result(out).layers[0]
        assert layer.attrs["coefficients"] == method
        assert layer.H.min() >= 0
    result = invoke("abundances", str(folder / "scene.mat"), "--endmembers", str(endmembers), "-o",
                    str(folder / "fcls.h5"))
    assert result.exit_code == 1 and "--force" in result.stderr


def test_evaluate_permuted_nmf_like_result_uses_fcls_from_the_recorded_input(invoke, planted_scene, tmp_path):
    from mfcli.io import load_dataset
    from mfcli.io.result import write_result
    from mfcli.result import Layer, Result, input_metadata

    folder, E, A = planted_scene
    dataset = load_dataset(str(folder / "scene.mat"))
    order = [2, 0, 1]
    # An NMF-like result: permuted endmembers, coefficients that do not sum to one.
    result = Result(model="nmf", layers=[Layer(W=E[:, order], H=2.0 * A[order])], input=input_metadata(dataset))
    write_result(result, tmp_path / "nmf.h5")
    out = invoke("evaluate", str(tmp_path / "nmf.h5"), "--truth", str(folder / "gt.mat"), "--json")
    document = json.loads(out.stdout)
    assert [entry["estimated"] for entry in document["matching"]] == [1, 2, 0]
    assert document["abundances_from"].startswith("FCLS")
    assert document["armse"] < 1e-6 and document["mean_sad"] < 1e-4
    assert document["relative_error"] is None  # the hand-made result stored none of its own
    assert document["fcls_relative_error"] < 1e-6  # exact endmembers: FCLS reconstructs the data


def test_evaluate_samson_sample_notes_the_max_one_scaling(invoke, tmp_path):
    out = tmp_path / "samson_nfindr.h5"
    assert invoke("endmembers", "sample:samson", "-r", "3", "--method", "nfindr", "-o", str(out)).exit_code == 0
    result = invoke("evaluate", str(out), "--truth", "sample:samson", "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["truth"]["endmembers_scaled_to_max_one"] is True
    assert "scale-free" in result.stderr
    assert 0 < document["mean_sad"] < 10


def test_evaluate_library_labels(invoke, tmp_path, shared_data):
    out = tmp_path / "samson_vca.h5"
    assert invoke("endmembers", "sample:samson", "-r", "3", "-o", str(out)).exit_code == 0
    result = invoke("evaluate", str(out), "--truth", "sample:samson", "--library",
                    str(shared_data / "hsi" / "usgs_1995_library.mat"), "--top", "2", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert len(document["library"]) == 3 and all(len(row) == 2 for row in document["library"])
    assert all(row[0]["sad"] <= row[1]["sad"] for row in document["library"])


def test_estimate_rank_prints_the_rank_and_writes_a_scree_plot(invoke, tmp_path):
    rng = np.random.default_rng(1)
    E = np.abs(rng.standard_normal((40, 4)))
    X = E @ rng.dirichlet(np.ones(4), size=2000).T + 0.01 * rng.standard_normal((40, 2000))
    np.save(tmp_path / "data.npy", X)
    result = invoke("estimate-rank", str(tmp_path / "data.npy"), "--plot", str(tmp_path / "scree.png"))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "4"
    assert (tmp_path / "scree.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = invoke("estimate-rank", str(tmp_path / "data.npy"), "--json")
    assert json.loads(result.stdout)["rank"] == 4
    result = invoke("estimate-rank", str(tmp_path / "data.npy"), "--plot", str(tmp_path / "scree.png"))
    assert result.exit_code == 1 and "--force" in result.stderr
    result = invoke("estimate-rank", str(tmp_path / "data.npy"), "--plot", str(tmp_path / "scree.gif"))
    assert result.exit_code != 0 and result.stdout == ""


def test_factorize_minvol_then_evaluate(invoke, planted_scene):
    folder, E, A = planted_scene
    out = folder / "minvol.h5"
    result = invoke("factorize", str(folder / "scene.mat"), "-r", "3", "--model", "minvol", "--param", "lam=1e-5",
                    "-o", str(out))
    assert result.exit_code == 0, result.stderr
    document = json.loads(invoke("evaluate", str(out), "--truth", str(folder / "gt.mat"), "--json").stdout)
    assert document["mean_sad"] < 1.0
