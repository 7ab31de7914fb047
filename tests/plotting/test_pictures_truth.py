"""Pictures and numbers that tell the truth (issue 15).

1. Spectral axes: nanometres only from a source (the file, --wavelengths), else band numbers.
2. One number everywhere: the convergence picture, the report, the CLI table and the result
   file give each layer's relative error, the sweeps and the shares that --json gives.
3. One index base: people read #1..#k; JSON says it is 0-based.
4. Names: --truth names the estimates as `mfcli evaluate` matches them; samples carry names;
   colour bars say what they show; each layer has its own colour scale.
5. Legible at the default size: no text cut at an edge, no two texts drawn over each other, no
   axis repeating a tick label, in any picture the CLI draws of the bundled samples.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from legibility import all_text, legibility_problems
from mfcli.io.result import read_result
from plotting_results import deep_result


def _numbers(pattern: str, text: str) -> list[float]:
    return [float(value) for value in re.findall(pattern, text)]


def _agrees(shown: float, value: float, digits: int = 4) -> bool:
    """``shown`` is ``value`` written with ``digits`` significant digits."""
    return float(f"{value:.{digits}g}") == pytest.approx(shown, rel=1e-12, abs=1e-15)


def _unmix_samson(folder, *extra):
    """`mfcli unmix sample:samson --ranks 3,2 ... --json`: (output folder, JSON, stderr)."""
    from click.testing import CliRunner

    from mfcli.cli.main import cli

    run = CliRunner().invoke(cli, ["unmix", "sample:samson", "--ranks", "3,2", *extra, "-o", str(folder), "--json"],
                             catch_exceptions=False)
    assert run.exit_code == 0, run.stderr
    return folder, json.loads(run.stdout), run.stderr


@pytest.fixture(scope="module")
def samson_run(tmp_path_factory):
    return _unmix_samson(tmp_path_factory.mktemp("samson_run") / "out")


@pytest.fixture(scope="module")
def samson_named(tmp_path_factory):
    return _unmix_samson(tmp_path_factory.mktemp("samson_named") / "out", "--truth", "sample:samson")


@pytest.fixture(scope="module")
def urban_deep():
    """A deep hard result of the Urban sample from its ground truth's dominant materials, named
    after them (Urban's long material names test the titles' room)."""
    from mfcli.io import load_dataset
    from mfcli.io.truth import load_truth

    urban = load_dataset("sample:urban")
    truth = load_truth("sample:urban", n_bands=urban.n_features, n_pixels=urban.n_samples,
                       image_shape=urban.image_shape, pixel_order=urban.pixel_order)
    first = np.argmax(truth.abundances, axis=0)
    names = truth.material_names()
    result = deep_result(urban.X, first, [np.array([0, 0, 0, 1, 1, 2]), np.array([0, 1, 1])], dataset=urban,
                         labels=[names, ["road and vegetation", "roofs and metal", "dirt"], None])
    return result, truth


# ------------------------------------------------------------------------------------ 1. axes

def test_urban_spectra_are_drawn_against_band_numbers_never_invented_nanometres(urban_deep):
    from mfcli.plotting.endmembers import endmember_figure
    from mfcli.plotting.views import spectral_axis

    result, _ = urban_deep
    axis = spectral_axis(result, 162)
    assert not axis.is_wavelength and axis.x.max() <= 210  # HYDICE band numbers (SlectBands)
    text = all_text(endmember_figure(result, 1))
    assert "band number (wavelengths unknown)" in text
    assert not re.search(r"\bnm\b", text)


def test_samson_wavelengths_come_from_its_file_and_say_so(samson_run):
    from mfcli.plotting.endmembers import endmember_figure
    from mfcli.plotting.report import build_report

    folder, _, _ = samson_run
    result = read_result(folder / "result.h5")
    assert "'wavelengths' variable" in result.input["wavelengths_source"]
    assert "wavelength (nm)" in all_text(endmember_figure(result, 1))
    assert "401-889 nm, from the &#x27;wavelengths&#x27; variable" in build_report(result)


def test_wavelengths_given_by_the_user_are_recorded_in_the_result_and_drawn(invoke, tmp_path):
    from mfcli.plotting.endmembers import endmember_figure

    wavelengths = tmp_path / "moffett_nm.txt"
    wavelengths.write_text("\n".join(f"{w:.1f}" for w in np.linspace(400, 2500, 184)))
    out = tmp_path / "m.h5"
    run = invoke("factorize", "sample:moffett", "-r", "3", "--max-iter", "3", "--wavelengths", str(wavelengths),
                 "-o", str(out))
    assert run.exit_code == 0, run.stderr
    result = read_result(out)
    np.testing.assert_allclose(result.input["wavelengths"], np.linspace(400, 2500, 184), atol=0.05)
    assert result.input["wavelengths_source"] == f"--wavelengths {wavelengths}"
    assert "wavelength (nm)" in all_text(endmember_figure(result, 1))
    bad = invoke("factorize", "sample:moffett", "-r", "3", "--wavelengths", str(tmp_path / "nope.txt"),
                 "-o", str(tmp_path / "n.h5"))
    assert bad.exit_code == 1 and "does not exist" in bad.stderr


# ------------------------------------------------------------------------------------ 2. numbers

def test_convergence_picture_report_table_and_file_give_the_numbers_of_json(samson_run):
    from mfcli.plotting.convergence import convergence_figure
    from mfcli.plotting.report import build_report

    folder, document, stderr = samson_run
    layer_errors = document["relative_error"]["layers"]
    sweeps = document["n_iter"]
    result = read_result(folder / "result.h5")
    # the result file holds exactly the JSON's numbers
    assert [layer.relative_error for layer in result.layers] == layer_errors
    assert result.relative_error == document["relative_error"]["global"] and result.n_iter == sweeps

    figure = convergence_figure(result)
    text = all_text(figure)
    shown = {int(k): float(v) for k, v in re.findall(r"layer (\d) (\d\.\d+)", text)}
    assert sorted(shown) == [1, 2]
    assert all(_agrees(shown[k], layer_errors[k - 1]) for k in shown), (shown, layer_errors)
    # the model's error is its last layer's; where the endmembers were refined, the joint panel's
    # curve ends at the deep factorization's own error, labelled as such
    assert document["relative_error"]["global"] == layer_errors[-1]
    model = re.search(r"(?:model \(layer 2\)|deep factorization before refinement): (\d\.\d+) after (\d+) sweeps?",
                      text)
    assert model, text
    expected = document["relative_error"].get("unrefined", document["relative_error"]["global"])
    assert _agrees(float(model.group(1)), expected)
    assert "unrefined" in document["relative_error"]  # sample:samson is an image: refined by default
    assert int(model.group(2)) == sweeps
    assert not [p for p in legibility_problems(figure) if "repeated" in p]

    report = build_report(result)
    rows = re.findall(r"<tr><td class=\"num\">(\d)</td><td class=\"num\">(\d)</td><td class=\"num\">([\d.]+)</td>"
                      r"<td>([^<]*)</td>", report)
    assert [int(r[0]) for r in rows] == [1, 2]
    assert all(_agrees(float(r[2]), layer_errors[int(r[0]) - 1]) for r in rows)
    for row, entry in zip(rows, document["layers"]):  # shares, as the JSON's, to 0.1 %
        assert _numbers(r"([\d.]+)%", row[3]) == [round(100 * s, 1) for s in entry["shares"]]
    card = re.search(r"<b>(\d+)</b><span>sweeps of the joint refinement</span>", report)
    assert card and int(card.group(1)) == sweeps
    error_card = re.search(r"<b>([\d.]+)</b><span>relative error</span>", report)
    assert _agrees(float(error_card.group(1)), document["relative_error"]["global"])

    # and the CLI's table on stderr
    table_errors = [float(m) for m in re.findall(r"│ \d +│ \d +│ (\d\.\d+) +│", stderr)]
    assert len(table_errors) == 2 and all(_agrees(v, e) for v, e in zip(table_errors, layer_errors))
    assert f"joint refinement {sweeps} sweep" in stderr


def test_pictures_show_the_shares_of_json(samson_run):
    from mfcli.plotting.abundances import abundance_figure
    from mfcli.plotting.tree import tree_figure

    folder, document, _ = samson_run
    result = read_result(folder / "result.h5")
    for entry in document["layers"]:
        titles = all_text(abundance_figure(result, layer=entry["layer"]))
        assert _numbers(r"([\d.]+)% of pixels", titles) == [round(100 * s, 1) for s in entry["shares"]]
    tree_text = all_text(tree_figure(result))
    expected = sorted(round(100 * s, 1) for entry in document["layers"] for s in entry["shares"])
    assert sorted(_numbers(r"\n([\d.]+)%", tree_text)) == expected


def test_log_axis_ticks_never_repeat_a_label():
    from mfcli.plotting.convergence import log_ticks

    for low, high in [(0.1452, 0.1489), (0.14556, 0.14568), (0.06, 0.18), (1e-11, 30.0), (0.0597, 0.187)]:
        ticks, labels = log_ticks(low, high)
        assert len(set(labels)) == len(labels) >= 2, (low, high, labels)
        assert np.all((ticks >= low) & (ticks <= high))
        assert np.allclose([float(label) for label in labels], ticks, rtol=1e-9)  # each label is its tick


# ------------------------------------------------------------------------------------ 3. index base

def test_people_read_clusters_from_1_and_json_says_it_counts_from_0(samson_run, invoke):
    from mfcli.plotting.abundances import abundance_figure
    from mfcli.plotting.endmembers import endmember_figure
    from mfcli.plotting.tree import tree_figure

    folder, document, stderr = samson_run
    result = read_result(folder / "result.h5")
    assert document["index_base"] == 0
    assert "#0" not in stderr
    merged = document["layers"][1]["merged"]
    for merge in merged:  # JSON's 0-based cluster c is the table's #c+1
        assert f"#{merge['cluster'] + 1} = " + " + ".join(f"#{c + 1}" for c in merge["children"]) in stderr
    for figure, rank in [(abundance_figure(result, layer=1), 3), (endmember_figure(result, 1), 3),
                         (abundance_figure(result, layer=2), 2)]:
        assert sorted(set(map(int, re.findall(r"#(\d+)", all_text(figure))))) == list(range(1, rank + 1))
    assert "#0" not in all_text(tree_figure(result))
    tree_json = json.loads(invoke("tree", str(folder / "result.h5")).stdout)
    assert tree_json["index_base"] == 0 and tree_json["layers"][0]["clusters"][0]["id"] == 0
    dot = invoke("tree", str(folder / "result.h5"), "--format", "dot").stdout
    assert "#1\\n" in dot and "#0" not in dot and "L1_0" not in dot
    evaluation = invoke("evaluate", str(folder / "result.h5"), "--layer", "1", "--truth", "sample:samson", "--json")
    assert evaluation.exit_code == 0, evaluation.stderr
    assert json.loads(evaluation.stdout)["index_base"] == 0
    assert "#0" not in evaluation.stderr and "#1" in evaluation.stderr


# ------------------------------------------------------------------------------------ 4. names

def test_truth_names_the_estimates_as_evaluate_matches_them(samson_named, invoke):
    from mfcli.plotting.abundances import abundance_figure
    from mfcli.plotting.tree import tree_figure

    folder, document, _ = samson_named
    labels = document["layers"][0]["labels"]
    assert sorted(labels) == ["soil", "tree", "water"]
    evaluation = json.loads(invoke("evaluate", str(folder / "result.h5"), "--layer", "1", "--truth",
                                   "sample:samson", "--json").stdout)
    for entry in evaluation["matching"]:
        assert labels[entry["estimated"]] == entry["name"]
    result = read_result(folder / "result.h5")
    assert result.layers[0].labels == labels  # stored in the result, so every later picture has them
    hierarchy = json.loads((folder / "hierarchy.json").read_text())
    assert [c["label"] for c in hierarchy["layers"][0]["clusters"]] == labels
    figure = abundance_figure(result, layer=1)
    for k, name in enumerate(labels, start=1):
        assert f"#{k} {name}" in all_text(figure)
    assert legibility_problems(figure) == []
    assert all(name in all_text(tree_figure(result)) for name in labels)


def test_plot_abundances_and_plot_tree_take_a_ground_truth(samson_run, invoke, tmp_path):
    folder, _, _ = samson_run
    for command in ("plot-abundances", "plot-tree"):
        out = tmp_path / f"{command}.png"
        run = invoke(command, str(folder / "result.h5"), "--truth", "sample:samson", "-o", str(out))
        assert run.exit_code == 0, run.stderr
        assert out.stat().st_size > 1000


def test_bundled_samples_carry_their_material_names_in_the_order_of_their_spectra():
    from mfcli.io import load_dataset
    from mfcli.io.truth import load_truth

    for sample, names in (("samson", ["soil", "tree", "water"]), ("moffett", ["water", "soil", "vegetation"])):
        data = load_dataset(f"sample:{sample}")
        truth = load_truth(f"sample:{sample}", n_bands=data.n_features, n_pixels=data.n_samples,
                           image_shape=data.image_shape, pixel_order=data.pixel_order)
        assert truth.material_names() == names
        spectra = truth.endmembers / truth.endmembers.max(axis=0)
        first, last = spectra[: data.n_features // 8].mean(axis=0), spectra[-data.n_features // 5:].mean(axis=0)
        water = names.index("water")
        assert np.argmax(first - last) == water  # water is bright early and dark in the (near) infrared
    urban = load_truth("sample:urban")
    assert urban.material_names() == ["Asphalt Road", "Grass", "Tree", "Roof", "Metal", "Dirt"]


def test_colour_bars_say_what_the_maps_are(samson_run, urban_deep):
    from mfcli.plotting.abundances import abundance_figure

    folder, _, _ = samson_run
    result = read_result(folder / "result.h5")
    assert "NNLS abundance" in all_text(abundance_figure(result, layer=1))
    assert "membership (1: in the cluster)" in all_text(abundance_figure(result, layer=1, kind="hard"))
    assert "coefficient (data units)" in all_text(abundance_figure(urban_deep[0], layer=1))


def test_every_layer_has_its_own_colour_scale_by_default(urban_deep):
    from mfcli.plotting.abundances import abundance_figure
    from mfcli.plotting.views import layer_maps, robust_vmax

    result, _ = urban_deep
    result.layers[1].coefficients = result.layers[1].coefficients * 3.0  # a layer on another scale
    figure = abundance_figure(result, layer="all")
    panels = [a for a in figure.artists if hasattr(a, "mfcli_scale")]  # row by row, layer 1 first
    tops = {}
    per_layer = [result.layers[i].rank for i in range(3)]
    start = 0
    for index, rank in enumerate(per_layer, start=1):
        scales = {panel.mfcli_scale for panel in panels[start:start + rank]}
        assert len(scales) == 1  # one scale per layer...
        tops[index] = scales.pop()[1]
        assert tops[index] == pytest.approx(robust_vmax(layer_maps(result, index).values))  # ...its own
        start += rank
    assert tops[2] > 2 * tops[1]
    shared = abundance_figure(result, layer="all", shared_scale=True)
    assert len({a.mfcli_scale for a in shared.artists if hasattr(a, "mfcli_scale")}) == 1


# ------------------------------------------------------------------------------------ 5. legible

def _figures(urban_deep, samson_run):
    """Every kind of picture the CLI draws, of the bundled samples, at its default size."""
    from mfcli.io import load_dataset
    from mfcli.models.rank import hysime
    from mfcli.plotting.abundances import abundance_figure, truth_abundance_figure
    from mfcli.plotting.convergence import convergence_figure
    from mfcli.plotting.endmembers import endmember_figure
    from mfcli.plotting.scree import scree_figure
    from mfcli.plotting.tree import tree_figure
    from mfcli.plotting.truth import match_spectra

    urban, truth = urban_deep
    samson = read_result(samson_run[0] / "result.h5")
    ratings = load_dataset("sample:survey-ratings")
    survey = deep_result(ratings.X, np.array([0] * 5 + [1, 2, 1, 2, 2] + [3] * 5), [np.array([0, 1, 1, 2])],
                         dataset=ratings)
    match = match_spectra(urban, 1, truth)
    yield "urban maps, layer 1", abundance_figure(urban, layer=1)
    yield "urban maps, all layers", abundance_figure(urban, layer="all")
    yield "urban hard maps", abundance_figure(urban, layer="all", kind="hard")
    yield "urban maps against the truth", truth_abundance_figure(urban, 1, truth, match)
    yield "urban endmembers", endmember_figure(urban, 1)
    yield "urban endmembers against the truth", endmember_figure(urban, 1, truth=match)
    yield "urban hierarchy", tree_figure(urban)
    yield "urban convergence", convergence_figure(urban)
    yield "samson maps", abundance_figure(samson, layer="all")
    yield "samson endmembers", endmember_figure(samson, 1)
    yield "samson hierarchy", tree_figure(samson)
    yield "samson convergence", convergence_figure(samson)
    yield "survey hierarchy", tree_figure(survey)
    yield "survey endmembers", endmember_figure(survey, 1)
    yield "moffett scree", scree_figure(hysime(load_dataset("sample:moffett").X))


@pytest.mark.slow
def test_every_picture_is_legible_at_its_default_size(urban_deep, samson_run):
    problems = {name: legibility_problems(figure) for name, figure in _figures(urban_deep, samson_run)}
    assert not {name: found for name, found in problems.items() if found}


def test_the_legibility_check_sees_overlaps_clipping_and_repeated_ticks():
    from mfcli.plotting.style import new_figure

    figure = new_figure(2.0, 1.0, dpi=100, constrained=False)
    figure.text(0.1, 0.5, "a long text here")
    figure.text(0.15, 0.5, "drawn over it")
    figure.text(0.9, 0.1, "cut at the right edge")
    ax = figure.add_axes((0.2, 0.2, 0.6, 0.6))
    ax.set_yticks([0.1, 0.2])
    ax.set_yticklabels(["0.1", "0.1"])
    problems = legibility_problems(figure)
    assert any(p.startswith("overlap") for p in problems)
    assert any(p.startswith("clipped") and "right edge" in p for p in problems)
    assert any(p.startswith("repeated") for p in problems)


def test_text_drawn_as_one_bitmap_per_line_lands_where_matplotlib_draws_it():
    """The canvas's fast text (one FreeType bitmap per line) against matplotlib's own drawing of
    the same texts: the same ink, within a pixel, for every alignment and a rotated label."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from mfcli.plotting.style import canvas_class

    def ink(canvas_type):
        figure = Figure(figsize=(4, 2), dpi=110)
        canvas_type(figure)
        figure.text(0.1, 0.8, "#1 Asphalt Road · 12.3% of pixels", fontsize=7)
        figure.text(0.5, 0.5, "centre\ntwo lines", fontsize=8, ha="center", va="center")
        figure.text(0.95, 0.2, "right, bottom: gjpq", fontsize=7, ha="right", va="bottom", color="#aa2222")
        figure.text(0.05, 0.5, "rotated label", fontsize=7, rotation=90, ha="center", va="center",
                    rotation_mode="anchor")
        figure.canvas.draw()
        return 255.0 - np.asarray(figure.canvas.buffer_rgba())[..., :3].mean(axis=2)

    ours, theirs = ink(canvas_class()), ink(FigureCanvasAgg)
    assert canvas_class()(Figure()).get_renderer().fast  # the fast path was taken, not the fallback
    assert ours.sum() == pytest.approx(theirs.sum(), rel=0.05)
    for part in (np.s_[:, :60], np.s_[:, 60:]):  # the rotated label, then the other texts
        for axis in (0, 1):
            profile_ours, profile_theirs = ours[part].sum(axis=1 - axis), theirs[part].sum(axis=1 - axis)
            centre = [float(np.arange(p.size) @ p / p.sum()) for p in (profile_ours, profile_theirs)]
            assert abs(centre[0] - centre[1]) < 1.0
