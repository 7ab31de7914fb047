"""mfcli factorize and mfcli transform: outputs, JSON keys, errors, exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mfcli.io.result import read_result


def test_factorize_writes_result_and_json(invoke, small_csv, tmp_path):
    path, X = small_csv
    out = tmp_path / "r.h5"
    result = invoke("factorize", str(path), "-r", "4", "--init", "spa", "-o", str(out), "--json", "--seed", "3")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    for key in ("model", "rank", "relative_error", "n_iter", "seconds", "converged", "output"):
        assert key in document
    assert document["model"] == "nmf" and document["rank"] == 4 and document["output"] == str(out)
    assert "relative error" in result.stderr  # the summary table goes to stderr
    saved = read_result(out)
    layer = saved.layers[0]
    assert layer.W.shape == (12, 4) and layer.H.shape == (4, 50)
    assert layer.relative_error == pytest.approx(document["relative_error"])
    assert layer.relative_error == pytest.approx(np.linalg.norm(X - layer.W @ layer.H) / np.linalg.norm(X))
    assert layer.history["relative_error"].size == document["n_iter"]
    assert saved.params["seed"] == 3 and saved.provenance["command_line"].startswith("mfcli")
    assert saved.input["shape"] == [12, 50]


@pytest.mark.parametrize("model", ["nmf", "onmf", "aonmf", "semi-nmf", "sparse-nmf", "nsnmf", "aa", "svd"])
def test_every_model_from_the_command_line(invoke, small_csv, tmp_path, model):
    path, _ = small_csv
    out = tmp_path / f"{model}.h5"
    result = invoke("factorize", str(path), "-r", "3", "-m", model, "-o", str(out), "--max-iter", "20", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["model"] == model
    assert read_result(out).model == model


def test_onmf_survey_partition_from_the_command_line(invoke, tmp_path):
    out = tmp_path / "onmf.h5"
    result = invoke("factorize", "sample:survey-ratings", "-r", "4", "-m", "onmf", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    layer = read_result(out).layers[0]
    assert np.all(np.count_nonzero(layer.H, axis=0) == 1)
    groups = sorted(sorted(int(j) + 1 for j in np.flatnonzero(layer.assignments == k)) for k in range(4))
    assert groups == [[1, 2, 3, 4, 5], [6, 8, 9], [7, 10], [11, 12, 13, 14, 15]]


def test_loss_param_dtype_and_init_files(invoke, small_csv, tmp_path):
    path, X = small_csv
    out = tmp_path / "kl.h5"
    result = invoke("factorize", str(path), "-r", "4", "--loss", "kl", "--dtype", "float32", "-o", str(out),
                    "--max-iter", "30", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["loss"] == "kl" and document["dtype"] == "float32" and "divergence" in document
    layer = read_result(out).layers[0]
    assert layer.W.dtype == np.float32
    # start from the previous result's W, and from a W in a CSV file
    again = tmp_path / "again.h5"
    result = invoke("factorize", str(path), "-r", "4", "--init-w", str(out), "-o", str(again), "--max-iter", "1")
    assert result.exit_code == 0, result.stderr
    assert read_result(again).params["init"] == "given"
    w_csv = tmp_path / "w.csv"
    np.savetxt(w_csv, np.abs(layer.W), delimiter=",")
    result = invoke("factorize", str(path), "-r", "4", "--init-w", str(w_csv), "-o", str(tmp_path / "w.h5"),
                    "-p", "solver=mu", "--max-iter", "3", "--json")
    assert result.exit_code == 0, result.stderr
    assert read_result(tmp_path / "w.h5").params["solver"] == "mu"
    result = invoke("factorize", str(path), "-r", "3", "--init-w", str(w_csv), "-o", str(tmp_path / "bad.h5"))
    assert result.exit_code == 1 and "4" in result.stderr and "Traceback" not in result.stderr


def test_stopping_options(invoke, small_csv, tmp_path):
    path, _ = small_csv
    result = invoke("factorize", str(path), "-r", "4", "-o", str(tmp_path / "a.h5"), "--max-iter", "3", "--tol", "0",
                    "--json")
    document = json.loads(result.stdout)
    assert document["n_iter"] == 3 and document["stop_reason"] == "max_iter" and document["converged"] is False
    result = invoke("factorize", str(path), "-r", "4", "-o", str(tmp_path / "b.h5"), "--target-error", "0.3",
                    "--tol", "0", "--json")
    document = json.loads(result.stdout)
    assert document["stop_reason"] == "target_error" and document["relative_error"] <= 0.3


@pytest.mark.parametrize("args,exit_code,message", [
    (["-r", "13"], 1, "larger than min"),
    (["-r", "3", "-m", "nope"], 2, "unknown model"),
    (["-r", "3", "--loss", "kl", "-m", "onmf"], 1, "supports --loss"),
    (["-r", "3", "-p", "theta=2"], 1, "no parameter"),
    (["-r", "3", "-m", "nsnmf", "-p", "theta=abc"], 1, "theta must be a finite number in [0, 1]"),
    (["-r", "3", "--init", "magic"], 1, "--init"),
    (["-r", "3", "-m", "svd", "--init", "spa"], 1, "no initialization"),
])
def test_errors_are_one_line(invoke, small_csv, tmp_path, args, exit_code, message):
    path, _ = small_csv
    result = invoke("factorize", str(path), *args, "-o", str(tmp_path / "e.h5"))
    assert result.exit_code == exit_code
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "e.h5").exists()


def test_negative_data_refused_or_clipped(invoke, tmp_path):
    X = np.random.default_rng(1).random((6, 20)) - 0.2
    path = tmp_path / "neg.csv"
    np.savetxt(path, X, delimiter=",")
    result = invoke("factorize", str(path), "-r", "2", "-o", str(tmp_path / "n.h5"))
    assert result.exit_code == 1 and "--clip-negative" in result.stderr
    result = invoke("factorize", str(path), "-r", "2", "-o", str(tmp_path / "n.h5"), "--clip-negative")
    assert result.exit_code == 0, result.stderr
    result = invoke("factorize", str(path), "-r", "2", "-m", "semi-nmf", "-o", str(tmp_path / "s.h5"))
    assert result.exit_code == 0, result.stderr


def test_existing_output_needs_force(invoke, small_csv, tmp_path):
    path, _ = small_csv
    out = tmp_path / "r.h5"
    assert invoke("factorize", str(path), "-r", "2", "-o", str(out)).exit_code == 0
    result = invoke("factorize", str(path), "-r", "2", "-o", str(out))
    assert result.exit_code == 1 and "--force" in result.stderr
    assert invoke("factorize", str(path), "-r", "2", "-o", str(out), "--force").exit_code == 0


def test_export_reads_factorize_results(invoke, small_csv, tmp_path):
    path, _ = small_csv
    out = tmp_path / "r.h5"
    invoke("factorize", str(path), "-r", "3", "-o", str(out))
    result = invoke("export", str(out), "--factor", "H")
    assert result.exit_code == 0
    H = np.loadtxt(result.stdout.splitlines(), delimiter=",")
    np.testing.assert_allclose(H, read_result(out).layers[0].H)


def test_transform_new_data(invoke, small_csv, tmp_path):
    path, X = small_csv
    fitted = tmp_path / "fit.h5"
    invoke("factorize", str(path), "-r", "4", "-o", str(fitted), "--max-iter", "300")
    new = tmp_path / "new.csv"
    np.savetxt(new, X[:, :7] * 2.0, delimiter=",")
    out = tmp_path / "coef.h5"
    result = invoke("transform", str(fitted), str(new), "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["method"] == "nnls" and document["rank"] == 4 and document["shape"] == [12, 7]
    saved = read_result(out).layers[0]
    W = read_result(fitted).layers[0].W
    np.testing.assert_allclose(saved.W, W)
    assert saved.H.shape == (4, 7) and saved.H.min() >= 0
    # KKT of NNLS: gradient >= 0, and zero where H > 0
    gradient = W.T @ W @ saved.H - W.T @ (X[:, :7] * 2.0)
    scale = np.abs(W.T @ X[:, :7]).max()
    assert gradient.min() > -1e-8 * scale
    assert np.abs(gradient[saved.H > 1e-12]).max() < 1e-8 * scale
    fcls_out = tmp_path / "fcls.h5"
    assert invoke("transform", str(fitted), str(new), "-o", str(fcls_out), "--method", "fcls").exit_code == 0
    np.testing.assert_allclose(read_result(fcls_out).layers[0].H.sum(axis=0), 1.0, atol=1e-8)


def test_transform_auto_solves_as_the_layer_was_solved(invoke, tmp_path):
    fitted = tmp_path / "fcls.h5"
    made = invoke("abundances", "sample:samson", "--endmembers", "sample:samson:GT", "--method", "fcls",
                  "-o", str(fitted))
    assert made.exit_code == 0, made.stderr
    out = tmp_path / "t.h5"
    result = invoke("transform", str(fitted), "sample:samson", "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["method"] == "fcls"
    np.testing.assert_allclose(read_result(out).layers[0].H.sum(axis=0), 1.0, atol=1e-5)


def test_transform_onmf_assigns_and_checks_bands(invoke, tmp_path):
    fitted = tmp_path / "onmf.h5"
    invoke("factorize", "sample:survey-ratings", "-r", "4", "-m", "onmf", "-o", str(fitted))
    out = tmp_path / "t.h5"
    result = invoke("transform", str(fitted), "sample:survey-ratings", "-o", str(out), "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["method"] == "assign"
    np.testing.assert_allclose(read_result(out).layers[0].H, read_result(fitted).layers[0].H, rtol=1e-9)
    result = invoke("transform", str(fitted), "sample:samson", "-o", str(tmp_path / "bad.h5"))
    assert result.exit_code == 1 and "features" in result.stderr
