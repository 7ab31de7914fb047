"""The standard pictures drawn with Pillow (mfcli.plotting.raster) show what matplotlib's drawing
of the same canvas shows: same size, same texts, same images, pixels close; and writing them
imports no matplotlib. The parts that replace matplotlib (viridis table, tick rule) are checked
against matplotlib itself."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mfcli.parallel import can_fork
from mfcli.plotting.bundle import picture_plan
from mfcli.plotting.canvas import Canvas, colormap_lut, integer_ticks, nice_ticks, round_ticks
from mfcli.plotting.raster import RasterPicture, dashed, raster_pictures
from mfcli.plotting.style import render_rgb
from plotting_results import deep_result


@pytest.fixture(scope="module")
def samson_deep():
    from mfcli.io import load_dataset

    data = load_dataset("sample:samson")
    assign = np.argmax(data.extras["S_GT"].reshape(-1, 3, order="F"), axis=1)
    return deep_result(data.X, assign, [np.array([0, 0, 1])], dataset=data,
                       labels=[["soil", "tree", "water"], ["land", "water"]])


def _figure_texts(figure) -> list[str]:
    return sorted(text.get_text() for text in figure.texts if text.get_text())


@pytest.mark.parametrize("which", range(6))
def test_each_standard_picture_matches_matplotlibs_drawing(samson_deep, which):
    plan = picture_plan(samson_deep)
    assert len(plan) == 6  # two layers of abundances and endmembers, the hierarchy, convergence
    name, make = plan[which]
    figure = make()
    expected, dpi = render_rgb(figure)
    with raster_pictures():
        picture = make()
    assert isinstance(picture, RasterPicture)
    pixels, raster_dpi = render_rgb(picture)
    assert raster_dpi == dpi and pixels.shape == expected.shape and pixels.dtype == np.uint8
    assert sorted(t.get_text() for t in picture.texts if t.get_text()) == _figure_texts(figure), name
    images = [artist for artist in figure.artists if hasattr(artist, "mfcli_values")]
    drawn = [image for image in picture.images if hasattr(image, "mfcli_values")]
    assert len(drawn) == len(images)
    for mine, theirs in zip(drawn, images):
        np.testing.assert_array_equal(mine.mfcli_values, theirs.mfcli_values)
        assert mine.mfcli_scale == theirs.mfcli_scale
    difference = np.abs(pixels.astype(np.int16) - expected.astype(np.int16))
    assert difference.mean() < 8.0, name  # text hinting and antialiasing differ; a misplaced panel does not pass
    assert (difference.max(axis=2) > 96).mean() < 0.06, name


def test_images_keep_their_orientation_and_colours():
    """An image of values lands in its box, the right way up, in the colour map's colours."""
    values = np.zeros((4, 6))
    values[0, 0] = 1.0  # top-left pixel bright
    with raster_pictures():
        canvas = Canvas(2.0, 1.0, 60)
        canvas.values_image(values, 0.5, 0.25, 1.0, 0.5, 0.0, 1.0, "viridis")
        pixels = canvas.finish().pixels
    lut = colormap_lut("viridis")
    top, left = int(0.25 * 60), int(0.5 * 60)
    np.testing.assert_array_equal(pixels[top + 2, left + 2], lut[255, :3])  # the bright corner
    np.testing.assert_array_equal(pixels[top + 20, left + 40], lut[0, :3])
    assert np.all(pixels[2, 2] == 255)  # outside the box: the white page


def test_the_viridis_table_is_matplotlibs():
    import matplotlib

    expected = (matplotlib.colormaps["viridis"](np.linspace(0.0, 1.0, 256)) * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(colormap_lut("viridis"), expected)


def test_round_ticks_are_matplotlibs_max_n_locator():
    from matplotlib.ticker import MaxNLocator

    rng = np.random.default_rng(0)
    ranges = [(0.0, 1.0), (0.0, 0.37), (1.0, 198.0), (0.0, 12.0), (3.0, 4.0), (0.0091, 0.0103), (-2.5, 7.1),
              (1e-5, 3e-4), (0.5, 1.5e6), (1000.0, 1000.5), (2500.0, 2500.01), (123456.0, 123460.0), (-5000.2, -5000.1)]
    ranges += [tuple(sorted(rng.uniform(-3, 3, 2) * 10.0 ** rng.integers(-6, 6))) for _ in range(300)]
    ranges += [(c, c + w) for c, w in zip(rng.uniform(-1e4, 1e4, 100), 10.0 ** rng.uniform(-4, 1, 100))]  # offsets
    for low, high in ranges:
        for bins in (4, 5, 8, 12):
            expected = MaxNLocator(bins, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
            np.testing.assert_allclose(round_ticks(low, high, bins), expected, rtol=1e-12, atol=1e-12 * (high - low))
        expected = MaxNLocator(8, integer=True).tick_values(low, high)
        ours = round_ticks(low, high, 8, steps=(1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10), integer=True)
        np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12 * (high - low))
    np.testing.assert_allclose(nice_ticks(0.0, 1.0), [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert list(integer_ticks(1, 198)) == [25, 50, 75, 100, 125, 150, 175]


def test_dashes_follow_the_pattern():
    points = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]])
    pieces = dashed(points, (3.0, 2.0))
    lengths = [float(np.sum(np.hypot(*np.diff(piece, axis=0).T))) for piece in pieces]
    assert np.allclose(lengths, [3, 3, 3, 3])  # 20 units: on 3, off 2, four times
    assert np.allclose(pieces[1][0], [5.0, 0.0]) and np.allclose(pieces[2][-1], [10.0, 3.0])  # the corner is followed


def _draw_in_a_fresh_process(result_path, folder, parallel=None, report: str = "") -> str:
    """Draw the pictures of the result file ``result_path`` into ``folder`` in a new interpreter
    (``paths``, ``notes`` and ``before``, whether numpy.ma was imported before the drawing, are
    then set); returns what the Python lines ``report`` print after."""
    script = (
        "import sys\n"
        "from mfcli.api import load_result\n"
        "from mfcli.plotting.bundle import write_pictures\n"
        f"result = load_result({str(result_path)!r})\n"
        "before = 'numpy.ma' in sys.modules\n"
        f"paths, notes = write_pictures(result, {str(folder)!r}, parallel={parallel!r})\n"
        + report
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_writing_the_standard_pictures_imports_no_matplotlib(tmp_path, samson_deep):
    from mfcli.io.result import write_result

    write_result(samson_deep, tmp_path / "deep.h5")
    printed = _draw_in_a_fresh_process(tmp_path / "deep.h5", tmp_path, report=(
        "assert len(paths) == 6 and not notes, (paths, notes)\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'matplotlib'))\n"))
    assert printed.strip() == "[]"
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(name for name, _ in picture_plan(samson_deep))


def test_drawing_an_unmix_result_imports_no_numpy_ma(tmp_path):
    """np.median, np.percentile and np.unique import numpy.ma on their first call (25 ms in each
    process that draws): the pictures of a real unmix result (convergence curves, maps, spectra
    with gaps) are drawn without them."""
    from mfcli.api import save_result, unmix

    save_result(unmix("sample:samson", [3, 2], max_iter=3), tmp_path / "deep.h5")
    printed = _draw_in_a_fresh_process(tmp_path / "deep.h5", tmp_path, parallel=False, report=(
        "assert not notes and 'convergence.png' in [path.name for path in paths], (paths, notes)\n"
        "print(before, 'numpy.ma' in sys.modules)\n"))
    assert printed.split() == ["False", "False"]


def test_png_encoder_writes_what_pillow_reads_back(tmp_path):
    """mfcli's own PNG writer (unfiltered rows, zlib): Pillow and matplotlib decode the same
    pixels, the resolution and the Software text; a picture of flat areas compresses well."""
    import io

    from PIL import Image

    from mfcli import __version__
    from mfcli.plotting.style import encode_png

    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (37, 51, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    encode_png(noise, buffer, 110)
    buffer.seek(0)
    with Image.open(buffer) as image:
        assert image.format == "PNG" and image.mode == "RGB" and image.size == (51, 37)
        np.testing.assert_array_equal(np.asarray(image), noise)
        assert image.info["Software"] == f"mfcli {__version__}"
        assert image.info["dpi"] == pytest.approx((110, 110), abs=0.01)
    flat = np.full((300, 400, 3), 255, dtype=np.uint8)
    flat[100:200, 50:350] = (68, 1, 84)
    path = tmp_path / "flat.png"
    with open(path, "wb") as handle:
        encode_png(flat, handle, 72)
    assert path.stat().st_size < flat.nbytes / 100
    import matplotlib.image

    np.testing.assert_array_equal((matplotlib.image.imread(path)[..., :3] * 255).round().astype(np.uint8), flat)
    with pytest.raises(ValueError, match="rows x cols x 3 uint8"):
        encode_png(flat.astype(np.float32), io.BytesIO(), 72)


@pytest.mark.skipif(not can_fork(), reason="this system cannot fork a copy of the process (Linux with 2 cores)")
def test_the_pictures_are_shared_with_a_forked_copy_costliest_first(samson_deep, tmp_path):
    """This process and a forked copy take the pictures one at a time, the costliest first (an
    abundance picture costs more with more maps): every picture is written once, by one of them."""
    from mfcli.plotting.bundle import PictureJob, picture_cost

    result = samson_deep
    plan = picture_plan(result)
    costs = {name: picture_cost(name, result) for name, _ in plan}
    ranks = {index: layer.rank for index, layer in enumerate(result.layers, 1)}
    maps = sorted((ranks[int(name[len("abundances_layer"):-4])], costs[name]) for name in costs
                  if name.startswith("abundances"))
    assert all(low[1] < high[1] for low, high in zip(maps, maps[1:]) if low[0] < high[0])
    job = PictureJob(result, tmp_path, parallel=True)
    assert [name for name, _ in job.queue.items] == sorted(costs, key=lambda name: -costs[name])
    timings = {}
    written, notes = job.finish(timings)
    assert not notes and [path.name for path in written] == [name for name, _ in plan]
    assert sorted(timings) == sorted(costs) and sorted(p.name for p in tmp_path.glob("*.png")) == sorted(costs)
