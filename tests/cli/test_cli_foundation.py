"""The command-line skeleton: help, version, `python -m mfcli`, light imports, info/convert/samples,
stdout carrying data only, one-line errors with the right exit codes, atomic outputs."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import numpy as np
import pytest
import scipy.io

from mfcli import __version__
from mfcli.cli.main import MfcliGroup, cli

REPO = Path(__file__).resolve().parents[2]
MFCLI = [sys.executable, "-m", "mfcli"]


def run_mfcli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*MFCLI, *args], capture_output=True, text=True, cwd=kwargs.pop("cwd", REPO),
                          timeout=120, **kwargs)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


# --------------------------------------------------------------------------- help, version, imports

def test_help_lists_every_command_with_a_one_line_description(invoke):
    result = invoke("--help")
    assert result.exit_code == 0 and result.stderr == ""
    listing = result.stdout.split("Commands:", 1)[1]
    context = click.Context(cli)
    for name in cli.list_commands(context):
        command = cli.get_command(context, name)
        assert command.get_short_help_str(limit=200).strip(), f"mfcli {name} has no description"
        assert f"  {name} " in listing, f"mfcli {name} is missing from --help"
    for name in ("info", "convert", "samples", "export"):
        assert f"  {name} " in listing


def test_version(invoke):
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"mfcli, version {__version__}"


def test_python_dash_m_mfcli():
    result = run_mfcli("--version")
    assert result.returncode == 0 and __version__ in result.stdout
    result = run_mfcli("samples", "--json")
    assert result.returncode == 0
    assert [row["name"] for row in json.loads(result.stdout)] == [
        "sample:samson", "sample:moffett", "sample:urban", "sample:survey-ratings", "sample:usgs-1995"]


def test_help_imports_no_heavy_module():
    """`mfcli --help` must stay fast: the group and every command module import click only."""
    code = textwrap.dedent("""
        import sys
        from mfcli.cli.main import cli
        try:
            cli.main(["--help"], prog_name="mfcli", standalone_mode=False)
        except SystemExit:
            pass
        heavy = sorted(m for m in ("numpy", "scipy", "h5py", "matplotlib", "rich", "torch", "dask",
                                    "spectral", "sklearn") if m in sys.modules)
        print("HEAVY:" + ",".join(heavy))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("HEAVY:"), result.stdout.splitlines()[-1]


def test_the_numpy_free_copy_of_the_data_formats_is_exact():
    from mfcli.cli.options import DATA_FORMATS
    from mfcli.io.formats import FORMATS

    assert tuple(DATA_FORMATS) == tuple(FORMATS)


def test_every_command_has_help_text(invoke):
    context = click.Context(cli)
    for name in cli.list_commands(context):
        result = invoke(name, "--help")
        assert result.exit_code == 0, f"mfcli {name} --help failed: {result.stderr}"
        assert f"Usage: mfcli {name}" in result.stdout


# --------------------------------------------------------------------------- info, samples, convert

def test_info_samson_json(invoke):
    result = invoke("info", "sample:samson", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)  # stdout is one JSON document and nothing else
    data = document["data"]
    assert (data["n_features"], data["n_samples"], data["image_shape"]) == (156, 9025, [95, 95])
    assert data["pixel_order"] == "F" and data["layout"] == "bands-x-pixels"
    assert data["nan"] == data["inf"] == data["negative"] == 0
    assert {v["name"] for v in document["variables"]} >= {"Y", "GT", "S_GT", "lines", "cols"}


def test_info_urban_json(invoke):
    result = invoke("info", "sample:urban", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)["data"]
    assert (data["n_features"], data["n_samples"], data["image_shape"]) == (162, 94249, [307, 307])
    assert data["scale"] == 1000.0 and data["has_band_indices"]


def test_info_table_goes_to_stdout(invoke):
    """The table is what `info` is for (DESIGN.md: like `ls`), so `mfcli info ... | grep` finds it."""
    result = invoke("info", "sample:survey-ratings")
    assert result.exit_code == 0 and result.stderr == ""
    assert "survey-ratings" in result.stdout and "9 x 15" in result.stdout


def test_samples_lists_the_bundle_on_stdout(invoke):
    result = invoke("samples")
    assert result.exit_code == 0 and result.stderr == ""
    for name in ("sample:samson", "sample:moffett", "sample:urban", "sample:survey-ratings", "sample:usgs-1995"):
        assert name in result.stdout
    assert [line for line in result.stdout.splitlines() if "sample:urban" in line]  # one grep-able row
    rows = json.loads(invoke("samples", "--json").stdout)
    assert all(Path(row["file"]).is_file() for row in rows)
    urban = next(row for row in rows if row["name"] == "sample:urban")
    assert "reconstruction" in urban["description"] and "not the sensor image" in urban["description"]


@pytest.mark.parametrize("name", ["s.h5", "s.mat", "s73.mat:mat73", "s.npz", "s.img", "s.bip"])
def test_convert_keeps_the_picture(invoke, tmp_path, name):
    target = str(tmp_path / name)
    result = invoke("convert", "sample:moffett", target)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    from mfcli.io.load import load_dataset

    original = load_dataset("sample:moffett")
    back = load_dataset(target)
    assert back.image_shape == (50, 50)
    np.testing.assert_array_equal(back.to_image(back.X), original.to_image(original.X))


def test_convert_to_stdout_carries_data_only(invoke):
    result = invoke("convert", "sample:survey-ratings", "-:csv")
    assert result.exit_code == 0
    table = np.loadtxt(io.StringIO(result.stdout), delimiter=",")
    assert table.shape == (9, 15)
    result = invoke("convert", "sample:survey-ratings", "-", "--to", "npy")
    assert np.load(io.BytesIO(result.stdout_bytes)).shape == (9, 15)


def test_convert_keeps_nan_and_negative_values_and_info_counts_them(invoke, tmp_path):
    values = np.array([[1.0, np.nan, -2.0], [np.inf, 0.5, -np.inf]])
    np.save(tmp_path / "bad.npy", values)
    result = invoke("convert", str(tmp_path / "bad.npy"), str(tmp_path / "bad.csv"))
    assert result.exit_code == 0, result.stderr
    back = np.loadtxt(tmp_path / "bad.csv", delimiter=",")
    np.testing.assert_array_equal(back, values)
    result = invoke("info", str(tmp_path / "bad.csv"), "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)["data"]
    assert (data["nan"], data["inf"], data["nonfinite"], data["negative"]) == (1, 2, 3, 1)
    assert (data["min"], data["max"]) == (-2.0, 1.0)
    result = invoke("info", str(tmp_path / "bad.csv"))
    assert "Warning: 3 NaN/Inf values (1 NaN, 2 Inf)" in result.stderr


def test_pipeline_convert_to_info_through_a_real_pipe():
    command = f"set -o pipefail; {sys.executable} -m mfcli convert sample:samson -:csv | {sys.executable} -m mfcli info - --json"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["data"]
    assert (data["n_features"], data["n_samples"]) == (156, 9025)
    assert "Traceback" not in result.stderr


def test_a_closed_pipe_is_not_an_error_message():
    command = f"{sys.executable} -m mfcli convert sample:samson -:csv | head -c 100 > /dev/null"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr


def test_quiet_and_verbose(invoke):
    assert invoke("-q", "info", "sample:survey-ratings").stderr == ""
    verbose = invoke("-v", "convert", "sample:samson", "-:npy").stderr
    assert "using variable 'Y'" in verbose


# --------------------------------------------------------------------------- bad input

@pytest.fixture
def bad_files(tmp_path):
    """A folder of broken inputs; returns (folder, files)."""
    files = tmp_path / "in"
    files.mkdir()
    scipy.io.savemat(files / "good.mat", {"Y": np.ones((3, 4))})
    (files / "truncated.mat").write_bytes((files / "good.mat").read_bytes()[:150])
    (files / "corrupt.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00\x01" * 200)
    np.save(files / "good.npy", np.ones((3, 4)))
    (files / "truncated.npy").write_bytes((files / "good.npy").read_bytes()[:-20])
    (files / "binary.csv").write_bytes(bytes(range(256)) * 4)
    (files / "zero.csv").write_bytes(b"")
    (files / "header_only.csv").write_text("a,b,c\n")
    (files / "words.csv").write_text("1,2\n3,four\n")
    np.save(files / "vector.npy", np.arange(5.0))
    np.save(files / "four_d.npy", np.ones((2, 2, 2, 2)))
    np.save(files / "empty.npy", np.ones((0, 4)))
    scipy.io.savemat(files / "text.mat", {"s": "just words"})
    (files / "mystery.xyz").write_bytes(b"\x01\x02\x03 nothing known")
    (files / "folder").mkdir()
    (files / "taken.csv").write_text("keep me\n")
    return files


BAD_INPUTS = [
    # (arguments with {in} for the input folder, exit code, words in the message)
    (["info", "{in}/missing.mat"], 1, "does not exist"),
    (["convert", "{in}/missing.mat", "{out}/o.csv"], 1, "does not exist"),
    (["convert", "{in}/truncated.mat", "{out}/o.csv"], 1, "may be corrupt"),
    (["convert", "{in}/corrupt.h5", "{out}/o.csv"], 1, "corrupt"),
    (["convert", "{in}/truncated.npy", "{out}/o.csv"], 1, "may be corrupt"),
    (["convert", "{in}/binary.csv", "{out}/o.csv"], 1, "not a text file"),
    (["convert", "{in}/folder", "{out}/o.csv"], 1, "is a folder"),
    (["convert", "{in}/good.mat:Nope", "{out}/o.csv"], 1, "has no variable 'Nope'; available: Y"),
    (["convert", "{in}/good.mat", "{out}/o.csv", "--var", "Nope"], 1, "has no variable 'Nope'"),
    (["convert", "{in}/vector.npy", "{out}/o.csv"], 1, "has 1 dimension(s)"),
    (["convert", "{in}/four_d.npy", "{out}/o.csv"], 1, "has 4 dimension(s)"),
    (["convert", "{in}/empty.npy", "{out}/o.csv"], 1, "is empty"),
    (["convert", "{in}/zero.csv", "{out}/o.csv"], 1, "is empty (0 bytes)"),
    (["convert", "{in}/header_only.csv", "{out}/o.csv"], 1, "no numeric rows"),
    (["convert", "{in}/words.csv", "{out}/o.csv"], 1, "'four' is not a number"),
    (["convert", "{in}/text.mat", "{out}/o.csv"], 1, "found no non-empty 2-D or 3-D numeric array"),
    (["convert", "{in}/mystery.xyz", "{out}/o.csv"], 1, "cannot tell the format"),
    (["convert", "{in}/good.mat", "{out}/o.xyz"], 1, "cannot tell the format"),
    (["convert", "{in}/good.mat", "{in}/taken.csv"], 1, "already exists; use --force"),
    (["convert", "{in}/good.mat", "{out}/no/such/folder/o.csv"], 1, "does not exist; create it first"),
    (["convert", "sample:nope", "{out}/o.csv"], 1, "unknown sample 'nope'"),
    (["convert", "{in}/good.mat", "-:h5"], 1, "standard output takes CSV, TSV or NPY"),
    (["convert", "{in}/good.mat", "{out}/o.csv", "--layout", "cube"], 1, "needs a 3-D array"),
    (["convert", "{in}/good.mat", "{out}/o.csv", "--image-shape", "5x5"], 1, "matches neither side"),
    (["info", "{in}/good.mat", "--format", "xyz"], 2, "Invalid value for '--format'"),
    (["convert", "{in}/good.mat", "{out}/o", "--to", "xyz"], 2, "Invalid value for '--to'"),
    (["convert", "{in}/good.mat", "{out}/o.csv", "--image-shape", "3by4"], 2, "is not ROWSxCOLS"),
    (["convert", "{in}/good.mat", "{out}/o.csv", "--layout", "diagonal"], 2, "Invalid value for '--layout'"),
    (["convert", "{in}/good.mat"], 2, "Missing argument 'OUTPUT'"),
    (["no-such-command"], 2, "No such command"),
]


@pytest.mark.parametrize("args,code,words", BAD_INPUTS, ids=[" ".join(a[:2]) + f" {w[:25]}" for a, _, w in BAD_INPUTS])
def test_bad_input_gives_one_line_error_and_no_output(invoke, bad_files, tmp_path, args, code, words):
    out = tmp_path / "out"
    out.mkdir()
    before = sorted(p.name for p in bad_files.iterdir())
    result = invoke(*[a.format(**{"in": bad_files, "out": out}) for a in args])
    assert result.exit_code == code, result.stderr
    assert result.stdout == ""
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    if code == 1:  # data errors: the message is all there is on stderr
        assert result.stderr.strip().splitlines()[-1] == lines[0]
    assert list(out.iterdir()) == []
    assert sorted(p.name for p in bad_files.iterdir()) == before
    assert (bad_files / "taken.csv").read_text() == "keep me\n"


def test_unreadable_file(invoke, tmp_path, monkeypatch):
    path = tmp_path / "secret.csv"
    path.write_text("1,2\n")
    if os.geteuid() == 0:  # root reads anything: pretend the permission is missing
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(path) else real_access(p, mode))
    else:
        path.chmod(0)
    result = invoke("info", str(path))
    assert result.exit_code == 1
    assert error_lines(result.stderr) == [f"Error: file '{path}' is not readable (permission denied); "
                                          "check its permissions"]


def test_empty_stdin(invoke):
    result = invoke("info", "-", input="")
    assert result.exit_code == 1
    assert error_lines(result.stderr) == ["Error: standard input is empty; pipe CSV or NPY data into mfcli"]


def test_debug_shows_the_exception(invoke):
    from mfcli.errors import InputError

    with pytest.raises(InputError):
        invoke("--debug", "info", "missing-file.csv")


def test_errors_are_one_line_even_when_a_library_says_more(tmp_path):
    from mfcli.cli.main import one_line

    assert one_line("cannot read:\n  line one\n\tline two ") == "cannot read: line one line two"


# --------------------------------------------------------------------------- factorization input checks

def _factorization_group() -> click.Group:
    """A group with a stand-in factorization command built from the shared options."""
    from mfcli.cli.options import check_factorization_input, clip_negative_option, data_options, input_argument, \
        load_input

    @click.command("fake-nmf")
    @input_argument
    @data_options
    @clip_negative_option
    def fake_nmf(input_spec, clip_negative, **data_opts):
        """Stand-in for factorize/unmix: load, check, print the smallest value."""
        dataset = check_factorization_input(load_input(input_spec, **data_opts), "nmf", clip_negative=clip_negative)
        click.echo(f"{dataset.X.min():g}")

    group = MfcliGroup(name="mfcli")
    group.add_command(fake_nmf)
    return group


@pytest.mark.parametrize("values,words", [
    ([[1.0, np.nan], [2.0, 3.0]], "contain 1 non-finite values (1 NaN, 0 Inf)"),
    ([[1.0, np.inf], [np.nan, 3.0]], "contain 2 non-finite values (1 NaN, 1 Inf)"),
    ([[1.0, -2.0], [-0.5, 3.0]], "have 2 negative values (minimum -2) but nmf needs nonnegative data; "
                                 "use --clip-negative"),
])
def test_factorization_input_is_refused_with_one_line(runner, tmp_path, values, words):
    np.save(tmp_path / "x.npy", np.array(values))
    result = runner.invoke(_factorization_group(), ["fake-nmf", str(tmp_path / "x.npy")])
    assert result.exit_code == 1 and result.stdout == ""
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and words in lines[0]
    assert result.stderr.strip().splitlines()[-1] == lines[0]


def test_clip_negative_sets_negatives_to_zero_and_says_so(runner, tmp_path):
    np.save(tmp_path / "x.npy", np.array([[1.0, -2.0], [-0.5, 3.0]]))
    result = runner.invoke(_factorization_group(), ["fake-nmf", str(tmp_path / "x.npy"), "--clip-negative"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "0"
    assert "Warning: set 2 negative values to 0 (--clip-negative)" in result.stderr


# --------------------------------------------------------------------------- atomic outputs

def test_force_overwrites_and_output_gets_normal_permissions(invoke, tmp_path):
    target = tmp_path / "o.csv"
    target.write_text("old\n")
    result = invoke("convert", "sample:survey-ratings", str(target), "--force")
    assert result.exit_code == 0
    assert np.loadtxt(target, delimiter=",").shape == (9, 15)
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv"]


def test_an_interrupted_write_leaves_nothing(invoke, tmp_path, monkeypatch):
    import mfcli.io.write as write_module

    def write_half_then_fail(array, stream, delimiter=","):
        stream.write("1,2,3\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(write_module, "write_text_matrix", write_half_then_fail)
    result = invoke("convert", "sample:survey-ratings", str(tmp_path / "new.csv"))
    assert result.exit_code == 130 and error_lines(result.stderr) == ["Error: interrupted"]
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "old.csv").write_text("old\n")
    result = invoke("convert", "sample:survey-ratings", str(tmp_path / "old.csv"), "--force")
    assert result.exit_code == 130
    assert [p.name for p in tmp_path.iterdir()] == ["old.csv"] and (tmp_path / "old.csv").read_text() == "old\n"


def test_an_envi_pair_appears_whole_or_not_at_all(invoke, tmp_path, monkeypatch):
    import mfcli.io.envi as envi_module

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(envi_module, "write_envi", fail)
    result = invoke("convert", "sample:moffett", str(tmp_path / "m.img"))
    assert result.exit_code == 1
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "m.hdr").write_text("taken")
    monkeypatch.undo()
    result = invoke("convert", "sample:moffett", str(tmp_path / "m.img"))
    assert result.exit_code == 1 and "m.hdr' already exists" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["m.hdr"]


def test_sigterm_during_a_write_leaves_nothing(tmp_path):
    """A terminated mfcli (SIGTERM) unwinds like an exception: the temporary file goes away."""
    code = textwrap.dedent(f"""
        import signal, sys, time
        from mfcli import interrupts
        from mfcli.io.atomic import atomic_file
        interrupts.install()
        try:
            with atomic_file({str(tmp_path / 'out.h5')!r}) as tmp:
                tmp.write_bytes(b"half")
                print("writing", flush=True)
                time.sleep(60)
        except interrupts.Interrupted as exc:
            sys.exit(exc.exit_code)
    """)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert process.stdout.readline().strip() == "writing"
    assert len(list(tmp_path.iterdir())) == 1  # the temporary file, hidden beside the output
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []
