"""Every picture of real results: `mfcli factorize` and `mfcli unmix` on sample:samson and
sample:survey-ratings, drawn by every picture command, as valid images of sensible size; a
report of each is HTML with its pictures embedded; unmix leaves its pictures in its folder
unless --no-plots."""

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
    _run("unmix", "sample:samson", "--ranks", "3,2", "-p", "restarts=2", "--max-iter", "3",
         "-o", str(folder / "samson_unmix"))
    _run("unmix", "sample:survey-ratings", "--ranks", "4,3", "-o", str(folder / "survey_unmix"))
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
    ("samson_unmix/result", "plot-abundances", ["--layer", "all"], True),
    ("samson_unmix/result", "plot-endmembers", ["--layer", "1", "--truth", "sample:samson"], True),
    ("samson_unmix/result", "plot-tree", [], True),
    ("samson_unmix/result", "plot-convergence", [], True),
    ("survey_unmix/result", "plot-abundances", [], False),
    ("survey_unmix/result", "plot-endmembers", [], True),
    ("survey_unmix/result", "plot-tree", [], True),
    ("survey_unmix/result", "plot-convergence", [], True),
]


@pytest.mark.parametrize("name,command,extra,applies", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_pictures_of_real_results(real_results, tmp_path, name, command, extra, applies):
    out = tmp_path / "picture.png"
    run = CliRunner().invoke(cli, [command, str(real_results / f"{name}.h5"), *extra, "--dpi", "50", "-o", str(out)])
    if applies:
        assert run.exit_code == 0, run.stderr
        _check_png(out)
    else:
        assert run.exit_code == 1
        assert run.stderr.startswith("Error: ") and run.stderr.count("\n") == 1
        assert not out.exists()


@pytest.mark.parametrize("name,images", [("samson", 4), ("survey", 2), ("samson_unmix/result", 8),
                                         ("survey_unmix/result", 4)])
def test_reports_of_real_results(real_results, tmp_path, name, images):
    out = tmp_path / "report.html"
    extra = ["--truth", "sample:samson"] if name.startswith("samson") else []
    _run("report", str(real_results / f"{name}.h5"), *extra, "-o", str(out))
    text = out.read_text(encoding="utf-8")
    assert text.count('src="data:image/png;base64,') >= images
    assert 'src="http' not in text and "<script" not in text


def test_unmix_leaves_its_pictures_in_the_output_folder(real_results):
    samson = sorted(p.name for p in (real_results / "samson_unmix").glob("*.png"))
    assert samson == ["abundances_layer1.png", "abundances_layer2.png", "convergence.png", "endmembers_layer1.png",
                      "endmembers_layer2.png", "hierarchy.png"]
    for name in samson:
        _check_png(real_results / "samson_unmix" / name)
    survey = sorted(p.name for p in (real_results / "survey_unmix").glob("*.png"))
    assert survey == ["convergence.png", "endmembers_layer1.png", "endmembers_layer2.png", "hierarchy.png"]


def test_unmix_no_plots_writes_no_pictures_and_json_lists_them(tmp_path):
    import json

    run = _run("unmix", "sample:survey-ratings", "--ranks", "4,3", "--no-plots", "-o", str(tmp_path / "plain"))
    assert not list((tmp_path / "plain").glob("*.png"))
    run = _run("unmix", "sample:survey-ratings", "--ranks", "4,3", "--json", "-o", str(tmp_path / "pictures"))
    files = json.loads(run.stdout)["files"]
    assert "hierarchy.png" in files and "endmembers_layer2.png" in files
