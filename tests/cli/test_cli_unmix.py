"""mfcli unmix and mfcli tree: the output folder, the survey showcase, JSON keys, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from checks import hierarchy_groups
from mfcli.io.result import read_result


def test_survey_showcase_from_the_command_line(invoke, tmp_path):
    out = tmp_path / "survey"
    result = invoke("unmix", "sample:survey-ratings", "--ranks", "4,3", "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    written = {p.name for p in out.iterdir()}
    assert {"hierarchy.dot", "hierarchy.json", "hierarchy.nwk", "result.h5"} <= written
    assert set(json.loads(result.stdout)["files"]) == written  # pictures (the plot hook) listed too
    tree = json.loads((out / "hierarchy.json").read_text())
    assert tree["ranks"] == [4, 3] and tree["n_columns"] == 15
    assert hierarchy_groups(tree, 1) == [[1, 2, 3, 4, 5], [6, 8, 9], [7, 10], [11, 12, 13, 14, 15]]
    assert hierarchy_groups(tree, 2) == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13, 14, 15]]
    document = json.loads(result.stdout)
    for key in ("ranks", "model", "relative_error", "seconds", "output"):
        assert key in document
    assert document["ranks"] == [4, 3] and document["model"] == "deep-onmf"
    assert len(document["relative_error"]["layers"]) == 2
    assert document["relative_error"]["global"] == pytest.approx(document["relative_error"]["layers"][-1])
    assert document["layers"][1]["merged"][0]["children"] and "merges" in result.stderr
    saved = read_result(out / "result.h5")
    assert saved.model == "deep-onmf" and saved.ranks == [4, 3]
    for layer in saved.layers:
        assert layer.abundances is not None and layer.abundances.shape == (layer.rank, 15)
        assert layer.abundances.min() >= 0
    assert saved.history["global_loss"].size == saved.n_iter + 1
    assert "(L1_" in (out / "hierarchy.nwk").read_text()
    assert (out / "hierarchy.dot").read_text().startswith("digraph")


def test_tree_command_formats(invoke, tmp_path):
    out = tmp_path / "survey"
    invoke("unmix", "sample:survey-ratings", "--ranks", "4,3", "-o", str(out), "--no-plots")
    result = invoke("tree", str(out / "result.h5"))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads((out / "hierarchy.json").read_text())
    result = invoke("tree", str(out / "result.h5"), "--format", "newick")
    assert result.stdout.strip() == (out / "hierarchy.nwk").read_text().strip()
    target = tmp_path / "t.dot"
    assert invoke("tree", str(out / "result.h5"), "--format", "dot", "-o", str(target)).exit_code == 0
    assert target.read_text() == (out / "hierarchy.dot").read_text()
    again = invoke("tree", str(out / "result.h5"), "--format", "dot", "-o", str(target))
    assert again.exit_code == 1 and "--force" in again.stderr
    slim = json.loads(invoke("tree", str(out / "result.h5"), "--no-members").stdout)
    assert slim["layers"][0]["clusters"][0]["members"] is None


def test_tree_of_a_single_layer_result_is_refused(invoke, tmp_path):
    fitted = tmp_path / "nmf.h5"
    invoke("factorize", "sample:survey-ratings", "-r", "3", "-o", str(fitted))
    result = invoke("tree", str(fitted))
    assert result.exit_code == 1 and "hierarch" in result.stderr and "Traceback" not in result.stderr


def test_fcls_abundances_sum_to_one_and_none(invoke, tmp_path):
    out = tmp_path / "fcls"
    assert invoke("unmix", "sample:survey-ratings", "--ranks", "3,2", "--abundances", "fcls", "-o",
                  str(out), "--no-plots").exit_code == 0
    for layer in read_result(out / "result.h5").layers:
        np.testing.assert_allclose(layer.abundances.sum(axis=0), 1.0, atol=1e-8)
    out = tmp_path / "none"
    assert invoke("unmix", "sample:survey-ratings", "--ranks", "3,2", "--abundances", "none", "-o",
                  str(out), "--no-plots").exit_code == 0
    assert all(layer.abundances is None for layer in read_result(out / "result.h5").layers)


@pytest.mark.parametrize("model", ["deep-aonmf", "multilayer", "deep-nmf", "deep-sparse", "deep-nsnmf", "deep-semi"])
def test_other_models(invoke, tmp_path, model):
    out = tmp_path / model
    result = invoke("unmix", "sample:survey-ratings", "--ranks", "4,3,2", "-m", model, "-o", str(out), "--json",
                    "--max-iter", "10", "--no-plots")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["model"] == model and len(document["layers"]) == 3
    assert read_result(out / "result.h5").model == model


@pytest.mark.parametrize("args,message", [
    (["--ranks", "3,4"], "rank 4 (layer 2) is larger than rank 3"),
    (["--ranks", "4,0"], "rank 0 (layer 2)"),
    (["--ranks", "10,3"], "rank 10 (layer 1) is larger than min"),
    (["--ranks", "4,3", "--init", "nndsvd"], "--init"),
    (["--ranks", "4,3", "-p", "theta=0.2"], "no parameter"),
])
def test_errors_leave_no_output(invoke, tmp_path, args, message):
    out = tmp_path / "bad"
    result = invoke("unmix", "sample:survey-ratings", *args, "-o", str(out))
    assert result.exit_code == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_max_iter_zero_keeps_the_layer_wise_solution(invoke, tmp_path):
    out = tmp_path / "layerwise"
    result = invoke("unmix", "sample:survey-ratings", "--ranks", "4,3", "--max-iter", "0", "-o", str(out), "--json",
                    "--no-plots")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["n_iter"] == 0
    assert read_result(out / "result.h5").history["global_loss"].size == 1


def test_usage_errors(invoke, tmp_path):
    result = invoke("unmix", "sample:survey-ratings", "--ranks", "4,x", "-o", str(tmp_path / "o"))
    assert result.exit_code == 2
    result = invoke("unmix", "sample:survey-ratings", "--ranks", "4,3", "-m", "deep-magic", "-o", str(tmp_path / "o"))
    assert result.exit_code == 2 and "unknown model" in result.stderr


def test_existing_folder_needs_force(invoke, tmp_path):
    out = tmp_path / "o"
    assert invoke("unmix", "sample:survey-ratings", "--ranks", "3,2", "-o", str(out), "--no-plots").exit_code == 0
    result = invoke("unmix", "sample:survey-ratings", "--ranks", "3,2", "-o", str(out), "--no-plots")
    assert result.exit_code == 1 and "--force" in result.stderr
    assert invoke("unmix", "sample:survey-ratings", "--ranks", "4,3", "-o", str(out), "--force",
                  "--no-plots").exit_code == 0
    assert read_result(out / "result.h5").ranks == [4, 3]


def test_pictures_are_drawn_unless_no_plots(invoke, tmp_path, monkeypatch):
    from mfcli.plotting import bundle

    calls = []

    class FakeJob:
        def __init__(self, result, folder):
            (folder / "picture.txt").write_text("x")
            calls.append(folder)

        def finish(self):
            return [calls[-1] / "picture.txt"], []

    monkeypatch.setattr(bundle, "start_pictures", lambda result, folder: FakeJob(result, folder))
    out = tmp_path / "plots"
    result = invoke("unmix", "sample:survey-ratings", "--ranks", "3,2", "-o", str(out), "--json")
    assert result.exit_code == 0 and calls and (out / "picture.txt").exists()
    assert "picture.txt" in json.loads(result.stdout)["files"]
    out2 = tmp_path / "noplots"
    invoke("unmix", "sample:survey-ratings", "--ranks", "3,2", "-o", str(out2), "--no-plots")
    assert len(calls) == 1 and not (out2 / "picture.txt").exists()


def test_a_failure_while_writing_the_result_stops_the_pictures(invoke, tmp_path, monkeypatch):
    """The forked process drawing pictures beside the result file is stopped and waited for, and
    no folder is left, when writing the result fails."""
    from mfcli.io import result as result_io
    from mfcli.plotting import bundle

    jobs = []
    real_start = bundle.start_pictures

    def start(result, folder):
        jobs.append(real_start(result, folder))
        return jobs[-1]

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bundle, "start_pictures", start)
    monkeypatch.setattr(result_io, "result_writer", broken)
    out = tmp_path / "full"
    result = invoke("unmix", "sample:urban", "--ranks", "3,2", "-o", str(out), "--max-iter", "2")
    assert result.exit_code != 0 and not out.exists()
    assert jobs and jobs[0].forked is not None and jobs[0].forked.pid is None  # stopped and waited for


@pytest.mark.slow
def test_urban_end_to_end(invoke, tmp_path):
    """The Urban stand-in with ranks 7,6,4,2: runs, hard layers, consistent sizes, and the rank-6
    layer finds the six ground-truth materials (metal included) within a few degrees."""
    from mfcli.io import load_dataset
    from mfcli.metrics import match_endmembers, spectral_angle_matrix

    out = tmp_path / "urban"
    result = invoke("unmix", "sample:urban", "--ranks", "7,6,4,2", "-o", str(out), "--json", "--no-plots",
                    "--abundances", "none")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ranks"] == [7, 6, 4, 2]
    assert all(sum(entry["sizes"]) == 94249 for entry in document["layers"])
    tree = json.loads((out / "hierarchy.json").read_text())
    assert tree["n_columns"] == 94249 and tree["unassigned"] == 0
    saved = read_result(out / "result.h5")
    assert saved.params["init"] == "spa"  # --init auto on an image
    truth = load_dataset("sample:urban").extras["M"]
    estimated = saved.layer(2).data_basis
    match = match_endmembers(estimated, truth)
    angles = spectral_angle_matrix(estimated, truth)[match, np.arange(truth.shape[1])]
    assert angles.max() < 10 and angles.mean() < 6, angles


def test_auto_init_keeps_restarts_for_non_image_data(invoke, tmp_path):
    result = invoke("unmix", "sample:survey-ratings", "--ranks", "4,3", "-o", str(tmp_path / "u"), "--no-plots")
    assert result.exit_code == 0, result.stderr
    assert read_result(tmp_path / "u" / "result.h5").params["init"] == "restarts"
