"""The picture commands end to end: files are valid images of sensible size in the asked
format, images are the right way round in the rendered pixels, and mistakes give one line."""

from __future__ import annotations

import numpy as np
import pytest

from mfcli.io.result import write_result
from plotting_results import deep_result, pattern_result, spa_result

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DPI = "40"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Result files: samson (single layer, SPA), survey ratings (deep, no image), urban-like deep image."""
    from mfcli.io import load_dataset

    folder = tmp_path_factory.mktemp("results")
    samson, _ = spa_result("samson", 3)
    write_result(samson, folder / "samson.h5")
    ratings = load_dataset("sample:survey-ratings")
    survey = deep_result(ratings.X, np.array([0] * 5 + [1, 2, 1, 2, 2] + [3] * 5), [np.array([0, 1, 1, 2])],
                         dataset=ratings)
    write_result(survey, folder / "survey.h5")
    samson_data = load_dataset("sample:samson")
    assign = np.argmax(samson_data.extras["S_GT"].reshape(-1, 3, order="F"), axis=1)  # F order, like Y
    deep = deep_result(samson_data.X, assign, [np.array([0, 0, 1])], dataset=samson_data,
                       labels=[["soil", "tree", "water"], ["land", "water"]])
    write_result(deep, folder / "samson_deep.h5")
    return folder


def _png_size(path):
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    image = imread(path)
    return image.shape[1], image.shape[0]


def _sensible(path, min_px=60, max_px=4000):
    width, height = _png_size(path)
    assert min_px <= width <= max_px and min_px <= height <= max_px, (width, height)
    return width, height


COMMANDS = [
    ("plot-abundances", ["--layer", "all"]),
    ("plot-endmembers", []),
    ("plot-tree", []),
    ("plot-convergence", []),
]


@pytest.mark.parametrize("command,extra", COMMANDS)
def test_every_picture_of_a_deep_image_result(invoke, results, tmp_path, command, extra):
    out = tmp_path / f"{command}.png"
    run = invoke(command, str(results / "samson_deep.h5"), *extra, "--dpi", DPI, "-o", str(out))
    assert run.exit_code == 0, run.stderr
    assert run.stdout == ""
    assert "Wrote" in run.stderr
    _sensible(out)


@pytest.mark.parametrize("command,extra", [c for c in COMMANDS if c[0] != "plot-tree"])
def test_every_picture_of_a_single_layer_samson_result(invoke, results, tmp_path, command, extra):
    out = tmp_path / f"{command}.png"
    run = invoke(command, str(results / "samson.h5"), *extra, "--dpi", DPI, "-o", str(out))
    assert run.exit_code == 0, run.stderr
    _sensible(out)


@pytest.mark.parametrize("command", ["plot-endmembers", "plot-tree", "plot-convergence"])
def test_every_picture_of_the_survey_ratings(invoke, results, tmp_path, command):
    out = tmp_path / f"{command}.png"
    run = invoke(command, str(results / "survey.h5"), "--dpi", DPI, "-o", str(out))
    assert run.exit_code == 0, run.stderr
    _sensible(out)


def test_ratings_have_no_abundance_maps_and_say_so_in_one_line(invoke, results, tmp_path):
    out = tmp_path / "maps.png"
    run = invoke("plot-abundances", str(results / "survey.h5"), "-o", str(out))
    assert run.exit_code == 1
    assert "no image shape" in run.stderr and run.stderr.count("\n") == 1
    assert not out.exists()


def test_a_result_without_hierarchy_has_no_tree(invoke, results, tmp_path):
    run = invoke("plot-tree", str(results / "samson.h5"), "-o", str(tmp_path / "tree.png"))
    assert run.exit_code == 1
    assert "no cluster assignments" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("suffix,magic", [(".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_format_follows_the_extension(invoke, results, tmp_path, suffix, magic):
    out = tmp_path / f"spectra{suffix}"
    run = invoke("plot-endmembers", str(results / "samson.h5"), "-o", str(out))
    assert run.exit_code == 0, run.stderr
    assert out.read_bytes()[:5].startswith(magic)
    if suffix == ".svg":
        assert 'href="http' not in out.read_text()  # namespaces are names, not fetches


def test_unknown_extension_and_existing_output_fail_before_any_work(invoke, results, tmp_path):
    run = invoke("plot-convergence", str(results / "samson.h5"), "-o", str(tmp_path / "c.gif"))
    assert run.exit_code == 1 and ".png, .svg or .pdf" in run.stderr
    existing = tmp_path / "c.png"
    existing.write_bytes(b"keep")
    run = invoke("plot-convergence", str(results / "samson.h5"), "-o", str(existing))
    assert run.exit_code == 1 and "--force" in run.stderr
    assert existing.read_bytes() == b"keep"
    run = invoke("plot-convergence", str(results / "samson.h5"), "--dpi", DPI, "-o", str(existing), "--force")
    assert run.exit_code == 0 and existing.read_bytes()[:8] == PNG_MAGIC


def test_bad_options_are_clear(invoke, results, tmp_path):
    out = str(tmp_path / "x.png")
    run = invoke("plot-abundances", str(results / "samson.h5"), "--cmap", "nope", "-o", out)
    assert run.exit_code == 1 and "unknown colour map 'nope'" in run.stderr
    run = invoke("plot-abundances", str(results / "samson.h5"), "--layer", "two", "-o", out)
    assert run.exit_code == 2 and "not a layer number" in run.stderr
    run = invoke("plot-endmembers", str(results / "samson.h5"), "--layer", "3", "-o", out)
    assert run.exit_code == 1 and "layer 3 does not exist" in run.stderr
    run = invoke("plot-endmembers", str(tmp_path / "missing.h5"), "-o", out)
    assert run.exit_code == 1 and "does not exist" in run.stderr


def test_hard_soft_cmap_and_vmax_options(invoke, results, tmp_path):
    for extra in (["--hard"], ["--soft", "--cmap", "magma", "--vmax", "0.5"], ["--layer", "1"]):
        out = tmp_path / f"maps{len(extra)}.png"
        run = invoke("plot-abundances", str(results / "samson_deep.h5"), *extra, "--dpi", DPI, "-o", str(out))
        assert run.exit_code == 0, run.stderr
        _sensible(out)


def test_endmembers_against_the_ground_truth(invoke, results, tmp_path):
    out = tmp_path / "truth.png"
    run = invoke("plot-endmembers", str(results / "samson.h5"), "--truth", "sample:samson", "--dpi", DPI,
                 "-o", str(out))
    assert run.exit_code == 0, run.stderr
    assert "mean angle" in run.stderr
    _sensible(out)


def test_wavelength_file_must_fit_the_bands(invoke, results, tmp_path):
    wl = tmp_path / "wl.txt"
    wl.write_text("\n".join(str(400 + 3 * i) for i in range(10)))
    run = invoke("plot-endmembers", str(results / "samson.h5"), "--wavelengths", str(wl), "-o", str(tmp_path / "w.png"))
    assert run.exit_code == 1 and "gives 10 wavelengths but the data have 156 bands" in run.stderr


# --- Orientation in the rendered pixels ----------------------------------------------------------


def panel_images(figure):
    """The map panels of a picture, in drawing order: the image artists that keep the values they show."""
    return [artist for artist in figure.artists if hasattr(artist, "mfcli_values")]


def _panel_pixels(figure, path):
    """The saved PNG's pixels inside the first map panel (display extent at the saved dpi)."""
    from matplotlib.image import imread

    from mfcli.plotting.style import save_figure

    save_figure(figure, path, dpi=figure.dpi)
    png = imread(path)[:, :, :3]
    box = panel_images(figure)[0].get_window_extent()
    height = png.shape[0]
    return png[int(round(height - box.y1)):int(round(height - box.y0)), int(round(box.x0)):int(round(box.x1))]


@pytest.mark.parametrize("order", ["F", "C"])
def test_rendered_map_is_the_right_way_round(tmp_path, order):
    from mfcli.plotting.abundances import abundance_figure

    result, image = pattern_result(order)
    figure = abundance_figure(result, dpi=60)
    np.testing.assert_array_equal(panel_images(figure)[0].mfcli_values, image)  # what the panel shows
    panel = _panel_pixels(figure, tmp_path / f"pattern_{order}.png")
    rows, cols = image.shape
    # sample the centre of every image cell; viridis is monotone in brightness
    ys = ((np.arange(rows) + 0.5) * panel.shape[0] / rows).astype(int)
    xs = ((np.arange(cols) + 0.5) * panel.shape[1] / cols).astype(int)
    brightness = panel[np.ix_(ys, xs)].mean(axis=2)
    assert brightness[image == 1.0].min() > brightness[image == 0.5].max()
    assert brightness[image == 0.5].min() > brightness[image == 0.0].max()
    # and the panel has the image's aspect (6 rows x 9 columns: wider than tall)
    assert panel.shape[1] / panel.shape[0] == pytest.approx(cols / rows, rel=0.1)


def test_matlab_order_samson_matches_its_ground_truth_cube(results):
    """Samson's Y is stored in MATLAB (F) order and S_GT as an image cube: the map drawn from Y's
    pixel order must line up with the cube (the water strip is on the left)."""
    from mfcli.io import load_dataset
    from mfcli.io.result import read_result
    from mfcli.plotting.abundances import abundance_figure

    cube = load_dataset("sample:samson").extras["S_GT"]
    figure = abundance_figure(read_result(results / "samson_deep.h5"), layer=1, kind="hard", dpi=30)
    for k in range(3):
        drawn = panel_images(figure)[k].mfcli_values
        assert np.array_equal(drawn, (np.argmax(cube, axis=2) == k).astype(float))


def test_picture_bundle_for_an_output_folder(results, tmp_path):
    from mfcli.io.result import read_result
    from mfcli.plotting.bundle import write_pictures

    written, skipped = write_pictures(read_result(results / "samson_deep.h5"), tmp_path)
    names = sorted(p.name for p in written)
    assert names == ["abundances_layer1.png", "abundances_layer2.png", "convergence.png", "endmembers_layer1.png",
                     "endmembers_layer2.png", "hierarchy.png"]
    assert skipped == []
    for path in written:
        _sensible(path)
    (tmp_path / "survey").mkdir()
    written, _ = write_pictures(read_result(results / "survey.h5"), tmp_path / "survey")
    assert not any(p.name.startswith("abundances") for p in written)  # no image: no maps, no error
