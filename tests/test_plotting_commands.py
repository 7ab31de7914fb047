"""Every picture of real results: `mfcli factorize` (and `mfcli unmix` where it exists) on
sample:samson and sample:survey-ratings, drawn by every picture command, as valid images of
sensible size; a report of each opens as HTML with all its pictures embedded."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mfcli.cli.main import cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(*args):
    run = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert run.exit_code == 0, run.stderr
    return run


@pytest.fixture(scope="module")
def real_results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("real")
    _run("factorize", "sample:samson", "-r", "3", "--init", "spa", "--max-iter", "15", "-o", str(folder / "samson.h5"))
    _run("factorize", "sample:samson", "-r", "3", "--model", "onmf", "--max-iter", "15",
         "-o", str(folder / "samson_onmf.h5"))
    _run("factorize", "sample:survey-ratings", "-r", "4", "--model", "onmf", "-o", str(folder / "survey.h5"))
    return folder


def _check_png(path):
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG_MAGIC
    height, width = imread(path).shape[:2]
    assert 100 <= width <= 4000 and 100 <= height <= 4000, (width, height)


# (result, command, extra options, expected to apply)
CASES = [
    ("samson", "plot-abundances", [], True),
    ("samson", "plot-endmembers", ["--truth", "sample:samson"], True),
    ("samson", "plot-convergence", [], True),
    ("samson", "plot-tree", [], False),  # plain NMF has no hierarchy: a one-line error
    ("samson_onmf", "plot-abundances", ["--hard"], True),
    ("samson_onmf", "plot-tree", [], True),
    ("survey", "plot-abundances", [], False),  # not an image: a one-line error
    ("survey", "plot-endmembers", [], True),
    ("survey", "plot-tree", [], True),
    ("survey", "plot-convergence", [], True),
]


@pytest.mark.parametrize("name,command,extra,applies", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_pictures_of_factorize_results(real_results, tmp_path, name, command, extra, applies):
    out = tmp_path / "picture.png"
    run = CliRunner().invoke(cli, [command, str(real_results / f"{name}.h5"), *extra, "--dpi", "50", "-o", str(out)])
    if applies:
        assert run.exit_code == 0, run.stderr
        _check_png(out)
    else:
        assert run.exit_code == 1
        assert run.stderr.startswith("Error: ") and run.stderr.count("\n") == 1
        assert not out.exists()


@pytest.mark.parametrize("name", ["samson", "survey"])
def test_reports_of_factorize_results(real_results, tmp_path, name):
    out = tmp_path / "report.html"
    extra = ["--truth", "sample:samson"] if name == "samson" else []
    _run("report", str(real_results / f"{name}.h5"), *extra, "-o", str(out))
    text = out.read_text(encoding="utf-8")
    assert text.count('src="data:image/png;base64,') >= (4 if name == "samson" else 2)
    assert 'src="http' not in text and "<script" not in text
