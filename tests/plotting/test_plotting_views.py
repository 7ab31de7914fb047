"""What the pictures are made of, checked without drawing: orientation, shares, hard
assignments, the spectral axis and its gaps."""

from __future__ import annotations

import numpy as np
import pytest

from mfcli.errors import DataError, InputError, ParameterError
from mfcli.plotting.views import (as_images, break_at_gaps, find_gaps, hard_assignments, layer_indices, layer_maps,
                                  percentile_of, read_wavelengths, robust_vmax, spectral_axis)
from plotting_results import deep_result, pattern_result


@pytest.mark.parametrize("order", ["F", "C"])
def test_images_come_out_the_same_way_round_for_both_pixel_orders(order):
    result, image = pattern_result(order)
    np.testing.assert_array_equal(as_images(result, result.layers[0].H)[0], image)


def test_the_two_pixel_orders_store_different_columns():
    # The check above would pass trivially if both orders stored the same pixel sequence.
    f_result, _ = pattern_result("F")
    c_result, _ = pattern_result("C")
    assert not np.array_equal(f_result.layers[0].H, c_result.layers[0].H)


def test_no_image_shape_is_a_one_line_data_error():
    result = deep_result(np.random.default_rng(0).random((5, 8)), np.array([0, 0, 1, 1, 2, 2, 0, 1]),
                         [np.array([0, 0, 1])])
    with pytest.raises(DataError, match="no image shape") as info:
        as_images(result, result.layers[0].data_coefficients)
    assert "\n" not in str(info.value)


def _survey_like():
    rng = np.random.default_rng(1)
    X = rng.random((6, 10)) + 0.1
    first = np.array([0, 0, 1, 1, 2, 2, 3, 3, 3, 0])
    return deep_result(X, first, [np.array([0, 1, 1, 2]), np.array([0, 0, 1])]), first


def test_hard_assignments_compose_the_layers_down_to_the_columns():
    result, first = _survey_like()
    np.testing.assert_array_equal(hard_assignments(result, 1), first)
    np.testing.assert_array_equal(hard_assignments(result, 2), np.array([0, 1, 1, 2])[first])
    np.testing.assert_array_equal(hard_assignments(result, 3), np.array([0, 0, 1])[np.array([0, 1, 1, 2])[first]])


def test_shares_of_a_layer_add_up_to_one_and_count_members():
    result, first = _survey_like()
    for index in (1, 2, 3):
        maps = layer_maps(result, index)
        assert maps.shares.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(layer_maps(result, 1).shares, np.bincount(first) / first.size)


def test_hard_maps_are_memberships_and_soft_maps_prefer_stored_abundances():
    result, first = _survey_like()
    hard = layer_maps(result, 1, "hard").values
    assert set(np.unique(hard)) <= {0.0, 1.0}
    np.testing.assert_array_equal(hard.sum(axis=0), np.ones(first.size))
    result.layers[0].abundances = np.full((4, first.size), 0.25)
    assert layer_maps(result, 1, "auto").description.startswith("soft abundances")
    np.testing.assert_array_equal(layer_maps(result, 1, "soft").values, result.layers[0].abundances)


def test_fractions_follow_the_solve_method_not_the_wording():
    result, first = _survey_like()
    result.layers = result.layers[:1]
    layer = result.layers[0]
    layer.attrs["coefficients"] = "fcls"  # H are sum-to-one abundances (mfcli abundances --method fcls)
    maps = layer_maps(result, 1)
    assert maps.method == "fcls" and maps.fractions and "FCLS" in maps.description
    layer.attrs["coefficients"] = "nnls"
    assert not layer_maps(result, 1).fractions
    layer.abundances = np.full((4, first.size), 0.25)
    layer.attrs["abundances"] = "fcls"
    assert layer_maps(result, 1).fractions and layer_maps(result, 1, "hard").fractions
    layer.attrs["abundances"] = "nnls"
    assert not layer_maps(result, 1).fractions


def test_without_assignments_columns_go_to_their_largest_coefficient():
    result, _ = _survey_like()
    H = np.array([[0.9, 0.0, 0.2], [0.1, 0.0, 0.7]])
    result.layers = result.layers[:1]
    result.layers[0].assignments = None
    result.layers[0].coefficients = H
    np.testing.assert_array_equal(hard_assignments(result, 1), [0, -1, 1])


def test_layer_choice():
    result, _ = _survey_like()
    assert layer_indices(result, "all") == [1, 2, 3]
    assert layer_indices(result, -1) == [3]
    with pytest.raises(ParameterError, match="layer 9 does not exist"):
        layer_indices(result, 9)


def test_colour_scale_top_is_one_for_fractions_and_ignores_a_hot_pixel():
    assert robust_vmax(np.array([0.0, 0.3, 1.0]), fractions=True) == 1.0
    assert robust_vmax(np.array([0.0, 0.2, 0.3]), fractions=True) == 1.0
    assert robust_vmax(np.array([0.0, 0.2, 0.3])) == pytest.approx(0.3, rel=0.01)  # coefficients: their range
    values = np.concatenate([np.linspace(0, 2, 999), [500.0]])
    assert 1.9 < robust_vmax(values) < 10


URBAN_REMOVED = {*range(1, 5), 76, 87, *range(101, 112), *range(136, 154), *range(198, 211)}


def test_urban_band_gaps_are_found_where_bands_were_removed():
    kept = np.array([b for b in range(1, 211) if b not in URBAN_REMOVED], dtype=np.float64)
    gaps = find_gaps(kept)
    # interior removed runs: 76, 87, 101-111, 136-153 (1-4 and 198-210 are at the ends)
    assert gaps == [(75, 77), (86, 88), (100, 112), (135, 154)]


def test_lines_break_in_every_gap_and_nowhere_else():
    x = np.array([1.0, 2, 3, 10, 11, 12, 30, 31])
    y = np.arange(8.0)
    gaps = find_gaps(x)
    assert gaps == [(3.0, 10.0), (12.0, 30.0)]
    bx, by = break_at_gaps(x, y, gaps)
    pieces = [p for p in np.split(bx, np.flatnonzero(np.isnan(bx))) if p.size]
    assert [p[~np.isnan(p)].tolist() for p in pieces] == [[1, 2, 3], [10, 11, 12], [30, 31]]
    np.testing.assert_array_equal(by[~np.isnan(by)], y)
    assert find_gaps(np.arange(20.0)) == []


def _result_with(meta, m=5):
    result, _ = pattern_result("C")
    result.layers[0].W = np.ones((m, 1))
    result.input.update(meta)
    return result


def test_spectral_axis_prefers_given_then_stored_wavelengths_then_band_numbers_then_index():
    stored = np.linspace(400, 800, 5)
    given = np.linspace(1000, 1400, 5)
    assert spectral_axis(_result_with({"wavelengths": stored}), 5, given).source == "--wavelengths"
    np.testing.assert_array_equal(spectral_axis(_result_with({"wavelengths": stored}), 5).x, stored)
    assert spectral_axis(_result_with({"wavelengths": stored}), 5).label == "wavelength (nm)"
    source = spectral_axis(_result_with({"wavelengths": stored, "wavelengths_source": "an ENVI header"}), 5)
    assert source.source == "an ENVI header"
    # band numbers are never turned into nanometres (issue 15): HYDICE-range numbers stay numbers
    bands = spectral_axis(_result_with({"band_indices": np.array([1, 2, 3, 50, 51])}), 5)
    assert not bands.is_wavelength and bands.x.tolist() == [1, 2, 3, 50, 51] and len(bands.gaps) == 1
    assert bands.label == "band number (wavelengths unknown)" and "nm" not in bands.label
    # wavelengths an older mfcli derived from band numbers are not believed
    nominal = spectral_axis(_result_with({"wavelengths": stored, "wavelengths_nominal": True,
                                          "band_indices": np.array([1, 2, 3, 50, 51])}), 5)
    assert not nominal.is_wavelength and nominal.x.tolist() == [1, 2, 3, 50, 51]
    plain = spectral_axis(_result_with({}), 5)
    assert plain.label == "band (wavelengths unknown)" and plain.x.tolist() == [1, 2, 3, 4, 5]
    with pytest.raises(InputError, match="gives 3 wavelengths but the data have 5 bands"):
        spectral_axis(_result_with({}), 5, np.arange(3.0))


def test_wavelength_files_in_micrometres_or_nm(tmp_path):
    micro = tmp_path / "um.txt"
    micro.write_text("0.4\n0.5\n0.6\n")
    np.testing.assert_allclose(read_wavelengths(str(micro)), [400, 500, 600])
    nm = tmp_path / "nm.csv"
    nm.write_text("400,500,600\n")
    np.testing.assert_allclose(read_wavelengths(str(nm)), [400, 500, 600])
    bad = tmp_path / "bad.txt"
    bad.write_text("400 abc\n")
    with pytest.raises(InputError, match="cannot read wavelengths"):
        read_wavelengths(str(bad))
    with pytest.raises(InputError, match="does not exist"):
        read_wavelengths(str(tmp_path / "missing.txt"))


def test_a_merged_cluster_keeps_the_colour_of_its_largest_child():
    from mfcli.plotting.style import component_color
    from mfcli.plotting.views import cluster_colors

    result, _ = _survey_like()  # layer-1 sizes 3, 2, 2, 3; merges [0, 1, 1, 2] then [0, 0, 1]
    assert cluster_colors(result, 1) == [component_color(k) for k in range(4)]
    # layer 2: #0 = {0}, #1 = {1, 2} (equal sizes: the first), #2 = {3}
    assert cluster_colors(result, 2) == [component_color(0), component_color(1), component_color(3)]
    # layer 3: #0 = layer-2 #0 (3 columns) + #1 (4 columns): the larger, #1, passes on its colour
    assert cluster_colors(result, 3) == [component_color(1), component_color(3)]
    for index in (1, 2, 3):
        colors = cluster_colors(result, index)
        assert len(set(colors)) == len(colors)


@pytest.mark.parametrize("size", [1, 2, 7, 1000, 65536, 200_000])
def test_percentile_of_is_numpys_and_leaves_the_values_alone(size):
    """The colour scale's percentile, by a partition of the values above a sampled threshold for
    large arrays, is np.percentile's to the bit, on spread values, on ties and zeros (the sample
    may land on a tie), and in either order."""
    rng = np.random.default_rng(size)
    cases = [rng.random(size) ** 3, np.where(rng.random(size) < 0.9, 0.0, rng.random(size)),
             rng.integers(0, 4, size).astype(float), np.sort(rng.random(size))[::-1].copy()]
    for values in cases:
        kept = values.copy()
        for percentile in (0, 50, 99.5, 99.99, 100):
            assert percentile_of(values, percentile) == float(np.percentile(values, percentile))
        np.testing.assert_array_equal(values, kept)
