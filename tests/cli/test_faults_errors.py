"""Each fault a user can cause, as listed in issue 14, is one specific line ``Error: ...`` with
exit status 1 (2 for a usage error), never ``internal error``, and leaves no file behind; the
inputs the issue found accepted are refused or explained; the documented stdin specs are read
everywhere an input is."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

REPO = Path(__file__).resolve().parents[2]


def one_error(result, code: int = 1) -> str:
    """The one ``Error:`` line of a failed run (and no traceback, no internal error)."""
    assert result.exit_code == code, (result.exit_code, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    return errors[0]


@pytest.fixture
def X(tmp_path) -> Path:
    np.save(tmp_path / "X.npy", np.random.default_rng(0).random((12, 40)))
    return tmp_path / "X.npy"


@pytest.fixture
def ratings(tmp_path) -> Path:
    path = tmp_path / "r.csv"
    path.write_text("".join(f"{u},{i},{(u * 7 + i) % 5 + 1}\n" for u in range(8) for i in range(6)))
    return path


@pytest.fixture
def model(invoke, tmp_path, ratings) -> Path:
    assert invoke("complete", str(ratings), "--epochs", "2", "-o", str(tmp_path / "model.h5")).exit_code == 0
    return tmp_path / "model.h5"


@pytest.fixture
def deep(invoke, tmp_path, X) -> Path:
    result = invoke("unmix", str(X), "--ranks", "3,2", "--max-iter", "1", "--no-plots", "-o", str(tmp_path / "deep"))
    assert result.exit_code == 0
    return tmp_path / "deep" / "result.h5"


# --------------------------------------------------------------------------- stdout failures

STDOUT_COMMANDS = {
    "samples --json": ["samples", "--json"],
    "info --json": ["info", "--json", "X.npy"],
    "convert -:npy": ["convert", "X.npy", "-:npy"],
    "convert -:csv": ["convert", "X.npy", "-:csv"],
    "export -o -": ["export", "deep/result.h5", "-o", "-"],
    "tree": ["tree", "deep/result.h5"],
    "complete --json": ["complete", "r.csv", "--epochs", "1", "--json"],
    "predict": ["predict", "model.h5", "pairs.csv"],
    "recommend": ["recommend", "model.h5", "--user", "1"],
    "estimate-rank": ["estimate-rank", "X.npy"],
    "factorize --json": ["factorize", "X.npy", "-r", "2", "--max-iter", "2", "-o", "f.h5", "--json"],
    "unmix --json": ["unmix", "X.npy", "--ranks", "2,1", "--max-iter", "1", "--no-plots", "-o", "u", "--json"],
}


@pytest.mark.slow
def test_a_full_standard_output_is_one_error_line_for_every_command_that_prints(tmp_path, X, ratings, model, deep):
    (tmp_path / "pairs.csv").write_text("1,1\n2,3\n")
    failures = []
    for name, args in STDOUT_COMMANDS.items():
        with open("/dev/full", "wb") as full:
            done = subprocess.run([sys.executable, "-m", "mfcli", "-q", *args], cwd=tmp_path, stdout=full,
                                  stderr=subprocess.PIPE, text=True, timeout=300)
        errors = [line for line in done.stderr.strip().splitlines() if not line.startswith("Warning: ")]
        if done.returncode != 1 or errors != ["Error: cannot write to standard output: No space left on device"]:
            failures.append(f"{name}: exit {done.returncode}, stderr {done.stderr!r}")
    assert failures == []
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


# --------------------------------------------------------------------------- output names

@pytest.mark.parametrize("command", ["factorize", "unmix", "complete", "plot-abundances", "plot-convergence",
                                     "export", "convert"])
def test_an_output_name_too_long_for_the_file_system_is_named_as_such(invoke, tmp_path, X, ratings, deep, command):
    long = str(tmp_path / ("x" * 300))
    args = {
        "factorize": ["factorize", str(X), "-r", "2", "-o", long + ".h5"],
        "unmix": ["unmix", str(X), "--ranks", "2", "-o", long],
        "complete": ["complete", str(ratings), "-o", long + ".h5"],
        "plot-abundances": ["plot-abundances", str(deep), "-o", long + ".png"],
        "plot-convergence": ["plot-convergence", str(deep), "-o", long + ".png"],
        "export": ["export", str(deep), "-o", long + ".csv"],
        "convert": ["convert", str(X), long + ".csv"],
    }[command]
    assert "bytes long but the file system allows 255" in one_error(invoke(*args))


def test_a_name_of_255_bytes_is_written_and_its_temporary_fits(invoke, tmp_path, X):
    name = "y" * 252 + ".h5"
    result = invoke("factorize", str(X), "-r", "2", "--max-iter", "2", "-o", str(tmp_path / name))
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["X.npy", name])


@pytest.mark.parametrize("output, message", [
    ("", "the output file name is empty"),
    ("newdir/", "ends with '/', which names a folder"),
    (".", "names a folder that exists"),
    ("afile/out.h5", "is a file, not a folder"),
])
@pytest.mark.parametrize("command", ["factorize", "transform", "predict"])
def test_bad_output_names_are_refused_before_any_work(invoke, tmp_path, X, model, command, output, message):
    (tmp_path / "afile").write_text("a file\n")
    nmf = tmp_path / "nmf.h5"
    assert invoke("factorize", str(X), "-r", "2", "--max-iter", "2", "-o", str(nmf)).exit_code == 0
    (tmp_path / "pairs.csv").write_text("1,1\n")
    target = output if output in ("", ".") else f"{tmp_path}/{output}"
    args = {"factorize": ["factorize", str(X), "-r", "2", "-o", target],
            "transform": ["transform", str(nmf), str(X), "-o", target],
            "predict": ["predict", str(model), str(tmp_path / "pairs.csv"), "-o", target]}[command]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert message in one_error(invoke(*args))
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no file named 'newdir', nothing hidden


@pytest.mark.parametrize("command", [["factorize", "-r", "2"], ["abundances", "--endmembers", "E"],
                                     ["unmix", "--ranks", "2"]])
def test_a_result_cannot_go_to_a_stdout_spec(invoke, tmp_path, X, command, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "E.npy", np.random.default_rng(0).random((12, 2)))
    args = [command[0], str(X), *[str(tmp_path / "E.npy") if a == "E" else a for a in command[1:]]]
    assert "cannot be written to standard output" in one_error(invoke(*args, "-o", "-:npy"), code=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["E.npy", "X.npy"]


def test_unmix_with_force_refuses_to_replace_the_current_folder(invoke, tmp_path, X, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "names a folder that exists" in one_error(invoke("unmix", str(X), "--ranks", "2", "-o", ".", "--force"))
    assert (tmp_path / "X.npy").exists()


def test_unmix_force_never_replaces_a_folder_mfcli_did_not_write(invoke, tmp_path, X):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"precious")
    error = one_error(invoke("unmix", str(X), "--ranks", "2", "--no-plots", "-o", str(mine), "--force"))
    assert "holds no result.h5, so mfcli did not write it" in error
    assert [p.name for p in mine.iterdir()] == ["holiday.jpg"] and (mine / "holiday.jpg").read_bytes() == b"precious"


def test_abundances_refuse_endmembers_and_delta_beyond_the_arithmetic(invoke, tmp_path, X):
    E = np.random.default_rng(0).random((12, 2))
    np.save(tmp_path / "E.npy", E)
    big = E.copy()
    big[0, 0] = 1e308
    np.save(tmp_path / "big.npy", big)
    assert "divide the data by a constant" in one_error(
        invoke("abundances", str(X), "--endmembers", str(tmp_path / "big.npy"), "-o", str(tmp_path / "a.h5")))
    assert "--delta 1e+300 is too large" in one_error(
        invoke("abundances", str(X), "--endmembers", str(tmp_path / "E.npy"), "--delta", "1e300", "-o",
               str(tmp_path / "a.h5")))
    assert not (tmp_path / "a.h5").exists()


# --------------------------------------------------------------------------- options

def test_a_negative_or_huge_seed_is_a_usage_error(invoke, X, tmp_path):
    for seed in ("-1", str(2 ** 70)):
        assert "--seed" in one_error(invoke("factorize", str(X), "-r", "3", "--seed", seed, "--init", "random",
                                            "-o", str(tmp_path / "s.h5")), code=2)
    assert not (tmp_path / "s.h5").exists()


def test_an_unknown_dask_scheduler_address_is_a_parameter_error(invoke, X, tmp_path):
    pytest.importorskip("distributed", reason="the dask extra (distributed) is not installed")
    error = one_error(invoke("factorize", str(X), "-r", "2", "--engine", "dask", "--scheduler", "garbage://x",
                             "-o", str(tmp_path / "d.h5")))
    assert "is not a Dask scheduler address" in error and "garbage" in error


@pytest.mark.parametrize("ranks", ["3,,2", "3,2,", ",3"])
def test_ranks_with_an_empty_item_are_refused(invoke, X, tmp_path, ranks):
    assert "empty item" in one_error(invoke("unmix", str(X), "--ranks", ranks, "-o", str(tmp_path / "u")), code=2)


def test_hard_and_soft_together_are_refused(invoke, deep, tmp_path):
    error = one_error(invoke("plot-abundances", str(deep), "--hard", "--soft", "-o", str(tmp_path / "m.png")), code=2)
    assert "--hard or --soft, not both" in error


# --------------------------------------------------------------------------- numeric extremes

@pytest.mark.parametrize("value", [1e300, 1e308, 1e-300])
@pytest.mark.parametrize("command", [["estimate-rank"], ["endmembers", "-r", "3"],
                                     ["factorize", "-r", "3", "-m", "onmf"], ["factorize", "-r", "3", "-m", "minvol"],
                                     ["unmix", "--ranks", "3,2"]])
def test_values_beyond_the_arithmetic_are_refused_with_how_to_rescale(invoke, tmp_path, command, value):
    X = np.random.default_rng(0).random((20, 30))
    if value < 1:
        X *= value
    else:
        X[0, 0] = value
    np.savetxt(tmp_path / "x.csv", X, delimiter=",")
    args = [command[0], str(tmp_path / "x.csv"), *command[1:]]
    if command[0] in ("endmembers", "factorize"):
        args += ["-o", str(tmp_path / "o.h5")]
    elif command[0] == "unmix":
        args += ["-o", str(tmp_path / "o")]
    error = one_error(invoke(*args))
    assert ("divide the data by a constant" if value > 1 else "multiply the data by a constant") in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


def test_the_limits_are_where_the_solvers_still_fit_the_data(invoke, tmp_path):
    """Just inside the limits every family of solver still gives a finite fit better than
    nothing (relative error < 1): the limits refuse no data the arithmetic can take."""
    import json

    from mfcli.validation import magnitude_limits

    X = np.random.default_rng(1).random((20, 30))
    smallest, largest = magnitude_limits(np.float64, X.size)
    for scale in (largest * 0.99, smallest * 1.01):
        np.save(tmp_path / "x.npy", X / X.max() * scale)
        for model in ("nmf", "onmf", "aonmf", "minvol", "aa"):
            result = invoke("factorize", str(tmp_path / "x.npy"), "-r", "3", "-m", model, "--max-iter", "20", "-o",
                            str(tmp_path / "o.h5"), "--force", "--json")
            assert result.exit_code == 0, (scale, model, result.stderr)
            assert json.loads(result.stdout)["relative_error"] < 1, (scale, model)


def test_all_zero_data_are_refused_rather_than_fitted_with_error_zero(invoke, tmp_path):
    np.savetxt(tmp_path / "z.csv", np.zeros((5, 6)), delimiter=",")
    assert "all zero" in one_error(invoke("factorize", str(tmp_path / "z.csv"), "-r", "2", "-o",
                                          str(tmp_path / "z.h5")))
    assert not (tmp_path / "z.h5").exists()


def test_a_rating_beyond_the_arithmetic_is_refused(invoke, tmp_path, ratings):
    with open(ratings, "a") as fh:
        fh.write("100,100,1e308\n")
    assert "divide the data by a constant" in one_error(invoke("complete", str(ratings), "-m", "svd"))


# --------------------------------------------------------------------------- ratings and pairs

def test_all_nan_dense_ratings_are_refused(invoke, tmp_path):
    np.savetxt(tmp_path / "allnan.csv", np.full((5, 6), np.nan), delimiter=",")
    assert "every value of its 5 x 6 matrix is NaN" in one_error(
        invoke("complete", str(tmp_path / "allnan.csv"), "--dense", "-m", "wals"))


def test_user_ids_beyond_64_bits_are_kept_as_text(invoke, tmp_path, ratings):
    with open(ratings, "a") as fh:
        fh.write(f"{10 ** 30 + 1},3,4\n")
    result = invoke("complete", str(ratings), "--epochs", "2", "-o", str(tmp_path / "m.h5"))
    assert result.exit_code == 0, result.stderr
    recommended = invoke("recommend", str(tmp_path / "m.h5"), "--user", str(10 ** 30 + 1))
    assert recommended.exit_code == 0, recommended.stderr


def test_a_third_pairs_column_that_is_not_a_rating_is_refused(invoke, tmp_path, model):
    (tmp_path / "pairs.csv").write_text("1,1,good\n2,3,bad\n")
    assert "'good' as its third field, which is not a rating" in one_error(
        invoke("predict", str(model), str(tmp_path / "pairs.csv")))


# --------------------------------------------------------------------------- damaged and odd files

def test_a_mat73_file_damaged_anywhere_is_a_one_line_error(invoke, tmp_path):
    """16 bytes zeroed at every 64th offset of a v7.3 file (the issue's "object visitation
    failed" among them): each read is a clean success or a one-line error."""
    from mfcli.io.write import _write_mat73

    good = tmp_path / "good.mat"
    _write_mat73(good, {"Y": np.random.default_rng(0).random((6, 9)), "nRow": np.array([[3.0]]),
                        "nCol": np.array([[3.0]])})
    data = good.read_bytes()
    codes = set()
    for offset in range(512, len(data), 64):
        damaged = bytearray(data)
        damaged[offset:offset + 16] = bytes(16)
        path = tmp_path / "bad.mat"
        path.write_bytes(bytes(damaged))
        result = invoke("info", str(path))
        if result.exit_code:
            one_error(result)
        codes.add(result.exit_code)
    assert 1 in codes  # some damage was noticed


@pytest.mark.parametrize("suffix", [".npz", ".npy"])
def test_random_bytes_with_a_numpy_name_do_not_mention_numpy_options(invoke, tmp_path, suffix):
    path = tmp_path / f"noise{suffix}"
    path.write_bytes(np.random.default_rng(0).bytes(300))
    error = one_error(invoke("info", str(path)))
    assert "allow_pickle" not in error and "does not start as one" in error


def test_a_result_without_w_is_named_damaged(invoke, tmp_path, deep):
    with h5py.File(deep, "a") as f:
        del f["layers/1/W"]
    error = one_error(invoke("export", str(deep)))
    assert "layer 1 has no W" in error and "__init__" not in error


def test_three_or_repeated_ground_truths_are_refused(invoke, tmp_path, deep):
    np.save(tmp_path / "E.npy", np.random.default_rng(0).random((12, 2)))
    truth = str(tmp_path / "E.npy")
    assert "3 ground truths given" in one_error(invoke("evaluate", str(deep), "--truth", truth, "--truth", truth,
                                                       "--truth", truth))
    assert "adds nothing to the ground truth" in one_error(invoke("evaluate", str(deep), "--truth", truth,
                                                                  "--truth", truth))


# --------------------------------------------------------------------------- ENVI headers and stored scales

def envi_pair(tmp_path: Path, **fields: str) -> Path:
    from mfcli.io.envi import write_envi

    write_envi(str(tmp_path / "e.img"), np.random.default_rng(0).random((4, 5, 3)))
    header = tmp_path / "e.hdr"
    lines = [line for line in header.read_text().splitlines()
             if not any(line.lower().startswith(key) for key in fields)]
    header.write_text("\n".join(lines + [f"{key} = {value}" for key, value in fields.items()]) + "\n")
    return tmp_path / "e.img"


@pytest.mark.parametrize("field, value, message", [
    ("interleave", "xyz", "interleave = xyz; it must be bsq, bil or bip"),
    ("reflectance scale factor", "0", "reflectance scale factor = 0; it must be a positive number"),
    ("reflectance scale factor", "nan", "reflectance scale factor = nan; it must be a positive number"),
    ("reflectance scale factor", "-2", "reflectance scale factor = -2; it must be a positive number"),
    ("samples", "0", "samples = 0; it must be a positive integer"),
    ("samples", "-5", "samples = -5; it must be a positive integer"),
    ("lines", "400", "but 'ENVI' holds"),
    ("data type", "99", "data type = 99"),
])
def test_bad_envi_header_fields_are_named(invoke, tmp_path, field, value, message):
    path = envi_pair(tmp_path, **{field: value})
    error = one_error(invoke("info", str(path)))
    assert message.replace("'ENVI'", f"'{path}'") in error


@pytest.mark.parametrize("value", [0.0, np.nan, -1.0])
def test_a_stored_max_value_that_cannot_be_a_scale_is_refused(invoke, tmp_path, value):
    scipy.io.savemat(tmp_path / "u.mat", {"Y": np.random.default_rng(0).random((5, 6)), "maxValue": value})
    assert "maxValue" in one_error(invoke("info", str(tmp_path / "u.mat")))


# --------------------------------------------------------------------------- stdin specs

@pytest.mark.parametrize("spec, payload", [("-:npy", "npy"), ("-", "npy"), ("-:csv", "csv"), ("-:tsv", "tsv")])
def test_the_documented_stdin_specs_are_read_as_inputs(invoke, tmp_path, spec, payload):
    import io

    X = np.random.default_rng(0).random((4, 6))
    if payload == "npy":
        buffer = io.BytesIO()
        np.save(buffer, X)
        data = buffer.getvalue()
    else:
        text = io.StringIO()
        np.savetxt(text, X, delimiter="," if payload == "csv" else "\t", fmt="%.17g")
        data = text.getvalue().encode()
    result = invoke("info", "--json", spec, input=data)
    assert result.exit_code == 0, result.stderr
    result = invoke("factorize", spec, "-r", "2", "--max-iter", "2", "-o", str(tmp_path / "f.h5"), "--force",
                    input=data)
    assert result.exit_code == 0, result.stderr


def test_stdin_specs_for_ratings_pairs_and_ground_truth(invoke, tmp_path, ratings, model, deep):
    import io

    text = ratings.read_bytes()
    assert invoke("complete", "-:csv", "--epochs", "1", input=text).exit_code == 0
    assert invoke("predict", str(model), "-:csv", input=b"1,1\n2,2\n").exit_code == 0
    buffer = io.BytesIO()
    np.save(buffer, np.random.default_rng(0).random((12, 2)))
    result = invoke("evaluate", str(deep), "--truth", "-:npy", input=buffer.getvalue())
    assert result.exit_code == 0, result.stderr
    assert "'-:npy' does not apply" in one_error(invoke("complete", "-:npy", input=b"1,1,1\n"))


# --------------------------------------------------------------------------- warnings

def test_a_library_warning_is_one_mfcli_line_without_source(invoke, X, tmp_path, monkeypatch):
    import mfcli.cli.commands.info as info_command

    def noisy_value_counts(*args, **kwargs):
        warnings.warn("overflow encountered in multiply", RuntimeWarning, stacklevel=1)
        return real(*args, **kwargs)

    import mfcli.io.load as load_module

    real = load_module.value_counts
    monkeypatch.setattr(load_module, "value_counts", noisy_value_counts)
    assert info_command  # the command imports value_counts from mfcli.io.load when it runs
    result = invoke("info", str(X))
    assert result.exit_code == 0
    lines = [line for line in result.stderr.splitlines() if "overflow" in line]
    assert lines == ["Warning: overflow encountered in multiply"]


# --------------------------------------------------------------------------- commits without renameat2

@pytest.mark.parametrize("missing", ["renameat2", "renameat2 and hard links"])
def test_the_no_replace_commit_holds_where_the_system_lacks_renameat2(tmp_path, monkeypatch, missing):
    """Where renameat2 is missing (other systems, some file systems), a hard link, else an
    exclusive claim of the name, keeps the commit from replacing what appeared meanwhile."""
    import errno

    import mfcli.io.atomic as atomic
    from mfcli.errors import OutputError

    monkeypatch.setattr(atomic, "_renameat2", lambda *args: False)
    if "hard links" in missing:
        def no_links(*args):
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(atomic.os, "link", no_links)
    for kind, make in (("file", lambda p: p.write_bytes(b"theirs")), ("folder", lambda p: p.mkdir())):
        target = tmp_path / f"out-{kind}"
        context = atomic.atomic_file(target) if kind == "file" else atomic.atomic_directory(target)
        with pytest.raises(OutputError, match="already exists"):
            with context as tmp:
                if kind == "file":
                    tmp.write_bytes(b"mine")
                else:
                    (tmp / "result.h5").write_bytes(b"mine")
                make(target)  # another process creates the output meanwhile
        if kind == "file":
            assert target.read_bytes() == b"theirs"
        else:
            assert list(target.iterdir()) == []
    with atomic.atomic_file(tmp_path / "new") as tmp:
        tmp.write_bytes(b"mine")
    assert (tmp_path / "new").read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "out-file", "out-folder"]


def test_an_envi_pair_whose_header_appears_meanwhile_is_taken_back_whole(invoke, tmp_path, X, monkeypatch):
    import mfcli.io.envi as envi_module

    write_envi = envi_module.write_envi

    def write_then_someone_else_writes_the_header(*args, **kwargs):
        written = write_envi(*args, **kwargs)
        (tmp_path / "e.hdr").write_text("theirs\n")
        return written

    monkeypatch.setattr(envi_module, "write_envi", write_then_someone_else_writes_the_header)
    assert "already exists" in one_error(invoke("convert", str(X), str(tmp_path / "e.img")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X.npy", "e.hdr"]
    assert (tmp_path / "e.hdr").read_text() == "theirs\n"


def test_ids_that_are_not_ascii_are_saved_and_read_back(invoke, tmp_path):
    lines = [f"{user},{item},{k % 5 + 1}\n" for k, (user, item) in enumerate(
        (u, i) for u in ("é", "ü", "b") for i in ("x", "ÿ"))]
    (tmp_path / "r.csv").write_text("".join(lines), encoding="utf-8")
    assert invoke("complete", str(tmp_path / "r.csv"), "--epochs", "1", "-o", str(tmp_path / "m.h5")).exit_code == 0
    (tmp_path / "pairs.csv").write_text("é,ÿ\n", encoding="utf-8")
    result = invoke("predict", str(tmp_path / "m.h5"), str(tmp_path / "pairs.csv"))
    assert result.exit_code == 0 and result.stdout.splitlines()[1].startswith("é,ÿ,")
