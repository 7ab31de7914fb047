"""Conventions every command keeps (DESIGN.md): what -o means, where data and messages go, and
one-line errors for a user's mistakes, checked across commands."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture
def ratings_model(invoke, tmp_path):
    """A small ALS model saved by `mfcli complete`."""
    rng = np.random.default_rng(0)
    lines = [f"{u}\t{i}\t{rng.integers(1, 6)}" for u in range(1, 21) for i in range(1, 16) if rng.random() < 0.6]
    ratings = tmp_path / "u.data"
    ratings.write_text("\n".join(lines) + "\n")
    model = tmp_path / "model.h5"
    result = invoke("complete", str(ratings), "--rank", "2", "--epochs", "3", "-o", str(model))
    assert result.exit_code == 0, result.stderr
    return model


def test_predict_writes_its_csv_to_output_also_with_json(invoke, ratings_model, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("1,1\n2,3\n")
    out = tmp_path / "scores.csv"
    result = invoke("predict", str(ratings_model), str(pairs), "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["n_pairs"] == 2 and document["output"] == str(out)
    lines = out.read_text().splitlines()
    assert lines[0] == "user,item,score" and len(lines) == 3
    assert [float(line.split(",")[2]) for line in lines[1:]] == \
        pytest.approx([entry["score"] for entry in document["predictions"]], rel=1e-5)


def test_predict_output_dash_is_stdout(invoke, ratings_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pairs.csv").write_text("1,1\n")
    result = invoke("predict", str(ratings_model), "pairs.csv", "-o", "-")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "user,item,score"
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("args", [
    ("factorize", "sample:survey-ratings", "-r", "2"),
    ("endmembers", "sample:survey-ratings", "-r", "2"),
    ("abundances", "sample:samson", "--endmembers", "sample:samson:GT"),
    ("unmix", "sample:survey-ratings", "--ranks", "2,1"),
    ("report", "RESULT"),
    ("complete", "RATINGS"),
])
def test_an_output_that_is_a_file_refuses_stdout(invoke, ratings_model, tmp_path, monkeypatch, args):
    """A result file (HDF5), a folder or a report cannot go to stdout: '-o -' is a usage error
    before any work, not a file named '-'."""
    monkeypatch.chdir(tmp_path)
    args = [str(ratings_model) if a == "RESULT" else str(ratings_model.parent / "u.data") if a == "RATINGS"
            else a for a in args]
    result = invoke(*args, "-o", "-")
    assert result.exit_code == 2, result.stderr
    assert "standard output" in result.stderr and result.stdout == ""
    assert not (tmp_path / "-").exists()


def test_an_unwritable_output_folder_is_a_one_line_error_before_any_work(invoke, tmp_path, monkeypatch):
    import os

    real_access = os.access
    locked = str(tmp_path / "locked")
    os.mkdir(locked)
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if str(path) == locked and mode & os.W_OK
                        else real_access(path, mode, **kw))
    result = invoke("factorize", "sample:survey-ratings", "-r", "2", "-o", f"{locked}/out.h5")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: folder '{locked}' of output '{locked}/out.h5' is not writable; " \
                                    "choose another output"
    assert os.listdir(locked) == []


@pytest.mark.parametrize("args", [("factorize", "sample:survey-ratings", "-r", "2", "-o", "OUT/x.h5"),
                                  ("unmix", "sample:survey-ratings", "--ranks", "2", "-o", "OUT/x", "--no-plots")])
def test_a_failure_to_create_the_output_is_not_an_internal_error(invoke, tmp_path, monkeypatch, args):
    """Where the folder looks writable but is not (a read-only file system, root on /proc), the
    failure to create the temporary output is the user's to fix, not a bug to report."""
    import tempfile

    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    result = invoke(*[a.replace("OUT", str(tmp_path)) for a in args])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == f"Error: cannot write into folder '{tmp_path}' (Permission denied); " \
                                             "choose another output"
    assert "internal error" not in result.stderr


def test_factorize_reports_a_given_w_not_the_unused_init_method(invoke, tmp_path):
    w_file = tmp_path / "w.csv"
    w_file.write_text("\n".join(",".join(["1"] * 2) for _ in range(9)) + "\n")
    out = tmp_path / "out.h5"
    result = invoke("factorize", "sample:survey-ratings", "-r", "2", "--init-w", str(w_file), "-o", str(out),
                    "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["init"] == "given" and document["init_w"] == str(w_file) and document["init_h"] is None
    assert f"init W from {w_file}" in result.stderr and "nndsvda" not in result.stderr
    from mfcli.io.result import read_result

    assert read_result(out).params["init"] == document["init"]


def test_info_reads_each_array_of_the_file_once(invoke, tmp_path, monkeypatch):
    import h5py

    from mfcli.io.formats import HDF5Container

    path = tmp_path / "scene.h5"
    with h5py.File(path, "w") as f:
        f["Y"] = np.arange(24.0).reshape(3, 8)
        f["A"] = np.full((2, 8), 0.5)
        f["nRow"], f["nCol"] = 2, 4
    reads: list[str] = []
    real_read = HDF5Container.read
    monkeypatch.setattr(HDF5Container, "read", lambda self, name: reads.append(name) or real_read(self, name))
    result = invoke("info", str(path), "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["data"]["image_shape"] == [2, 4] and document["data"]["max"] == 23.0
    assert {v["name"]: v["max"] for v in document["variables"]}["A"] == 0.5
    assert sorted(name for name in reads if name in ("Y", "A")) == ["A", "Y"]


def test_an_image_shape_that_contradicts_a_cube_is_refused(invoke, tmp_path):
    path = tmp_path / "cube.npy"
    np.save(path, np.ones((4, 5, 3)))
    wrong = invoke("info", str(path), "--image-shape", "2x10")
    assert wrong.exit_code == 1 and wrong.stdout == ""
    assert wrong.stderr.startswith("Error: --image-shape 2x10 does not match the 4x5 image of the cube")
    agreeing = invoke("info", str(path), "--image-shape", "4x5", "--json")
    assert agreeing.exit_code == 0 and json.loads(agreeing.stdout)["data"]["image_shape"] == [4, 5]


@pytest.mark.parametrize("fraction", ["0", "1", "1.5", "-0.1"])
def test_complete_refuses_a_test_fraction_outside_0_1_as_a_usage_error(invoke, tmp_path, fraction):
    missing = tmp_path / "not-read.data"  # refused before the ratings are read
    result = invoke("complete", str(missing), "--test-fraction", fraction)
    assert result.exit_code == 2 and "--test-fraction" in result.stderr and result.stdout == ""


def test_model_is_m_on_every_command_that_has_a_model(invoke):
    from mfcli.cli.main import cli

    import click

    context = click.Context(cli)
    for name in cli.list_commands(context):
        for option in cli.get_command(context, name).params:
            if "--model" in getattr(option, "opts", []):
                assert "-m" in option.opts, f"mfcli {name} --model has no -m"


@pytest.mark.slow
def test_complete_dmf_d_prints_the_continuous_errors_it_reports(invoke, tmp_path):
    pytest.importorskip("torch", reason="torch (pip install 'mfcli[deep]') is needed for dmf-d")
    rng = np.random.default_rng(1)
    lines = [f"{u}\t{i}\t{rng.integers(1, 6)}" for u in range(30) for i in range(20) if rng.random() < 0.5]
    ratings = tmp_path / "r.tsv"
    ratings.write_text("\n".join(lines) + "\n")
    result = invoke("complete", str(ratings), "-m", "dmf-d", "--rank", "4", "--hidden", "8", "--epochs", "1",
                    "--batch-size", "16", "--device", "cpu", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert f"before the quantizer: RMSE {document['continuous_rmse']:.4f}" in result.stderr


def _help_text(name: str) -> str:
    import click

    from mfcli.cli.main import cli

    command = cli.get_command(click.Context(cli), name)
    return command.get_help(click.Context(command, info_name=name))


@pytest.mark.slow
def test_every_json_key_is_documented_in_help(invoke, ratings_model, tmp_path):
    """Scripts rely on --json keys (DESIGN.md): each command's --help names every top-level key
    its document has."""
    result_file, deep_dir = tmp_path / "f.h5", tmp_path / "deep"
    runs = {
        "samples": ["samples"],
        "info": ["info", "sample:survey-ratings"],
        "factorize": ["factorize", "sample:survey-ratings", "-r", "2", "-o", str(result_file)],
        "unmix": ["unmix", "sample:survey-ratings", "--ranks", "3,2", "-o", str(deep_dir), "--no-plots"],
        "transform": ["transform", str(result_file), "sample:survey-ratings", "-o", str(tmp_path / "t.h5")],
        "endmembers": ["endmembers", "sample:moffett", "-r", "3", "-o", str(tmp_path / "e.h5")],
        "abundances": ["abundances", "sample:moffett", "--endmembers", str(tmp_path / "e.h5"), "-o",
                       str(tmp_path / "a.h5")],
        "evaluate": ["evaluate", str(tmp_path / "e.h5"), "--truth", "sample:moffett"],
        "estimate-rank": ["estimate-rank", "sample:moffett"],
        "recommend": ["recommend", str(ratings_model), "--user", "1"],
        "info-result": ["info", str(result_file)],
    }
    for name, args in runs.items():
        result = invoke(*args, "--json")
        assert result.exit_code == 0, (name, result.stderr)
        document = json.loads(result.stdout)
        entries = document if isinstance(document, list) else [document]
        help_text = " ".join(_help_text(args[0]).split())
        for key in {key for entry in entries for key in entry}:
            assert key in help_text, f"mfcli {args[0]} --help does not document the JSON key '{key}'"


def test_unmix_refuses_a_file_as_its_folder_before_any_work(invoke, tmp_path):
    target = tmp_path / "afile"
    target.write_text("keep me")
    result = invoke("unmix", "sample:survey-ratings", "--ranks", "3,2", "-o", str(target), "--force")
    assert result.exit_code == 1 and "is not a folder" in result.stderr
    assert "Unmixing" not in result.stderr  # refused before the data were read or factorized
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("args, words", [
    (["--masks", "a.npz,b.npz"], "--masks needs a matrix input"),
    (["-m", "dmf", "--hidden", "big"], "'big' is not a list of integers"),
])
def test_complete_refuses_bad_options_before_reading_the_ratings(invoke, tmp_path, monkeypatch, args, words):
    import mfcli.io.ratings

    def not_to_be_read(*_args, **_kwargs):
        raise AssertionError("the ratings were read before the options were checked")

    monkeypatch.setattr(mfcli.io.ratings, "read_ratings", not_to_be_read)
    ratings = tmp_path / "u.data"
    ratings.write_text("1\t1\t5\n")
    result = invoke("complete", str(ratings), *args)
    assert result.exit_code in (1, 2) and words in result.stderr and result.stdout == ""
